"""The scoring server: FastAPI endpoints in front of a dynamic batcher.

Endpoints
- POST /get_reward   OpenRLHF's remote reward model: {"query": [...], "prompts": [...], "labels": [...]} ->
                     {"rewards": [...], "scores": [...] in [0, 1], "extra_logs": {"raw_reward": [...]}}
- POST /v1/score     {"inputs": [{"prompt", "response"} | {"messages"}], "normalize": bool} -> raw and normalised scores
- POST /v1/compare   {"prompt", "responses": [2..K]} -> scores, P(i beats j), P(i is best)
- GET  /health       liveness and queue depth (no key needed)
- GET  /metrics      Prometheus text format
Errors are JSON {"error": message}: 400 malformed JSON, 401 missing/wrong key, 413 body or request too
large, 422 invalid fields (the message names the field), 503 queue full (with Retry-After).
"""

# No `from __future__ import annotations` here: FastAPI reads the handlers' annotations (Request) at
# definition time, and they are local to create_app so that importing this module needs no FastAPI.
import hmac
import json
import math
import sys
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass

from rewardkit.config import option
from rewardkit.data.records import DataError, check_text, is_conversation
from rewardkit.model.precision import compile_for_inference, compile_option, precision_option
from rewardkit.serve.batcher import DynamicBatcher, ProcessFn, QueueFull
from rewardkit.serve.metrics import ServerMetrics


@dataclass
class ServeConfig:
    """Serve a reward model over HTTP to RL loops (OpenRLHF's /get_reward, rewardkit's /v1/score and
    /v1/compare), with dynamic batching, normalisation with the model's stored statistics, optional API key."""

    model: str = option(help="rewardkit model directory (or a training output directory)", positional=True)
    host: str = option("127.0.0.1", help="address to bind (loopback by default; use 0.0.0.0 to expose)")
    port: int = option(8000, help="TCP port")
    max_batch_size: int = option(32, help="most sequences scored in one model call")
    max_wait_ms: float = option(5.0, help="how long the first request of a batch waits for others")
    max_batch_tokens: int = option(16384, help="most padded tokens per model call (long sequences go in smaller batches)")
    max_queue: int = option(2048, help="most sequences admitted and waiting; beyond it requests get 503")
    batching: bool = option(True, help="batch requests together (--no-batching scores each request on its own)")
    normalize: bool = option(True, help="/get_reward returns rewards normalised with the model's stored mean/std")
    clip: float = option(0.0, help="clip returned rewards to [-clip, clip] (0 = no clipping)")
    api_key: str = option("", help="require 'Authorization: Bearer KEY' (default: $REWARDKIT_API_KEY if set)")
    max_body_mb: float = option(16.0, help="largest request body accepted")
    max_sequences: int = option(1024, help="most sequences in one request")
    max_sequence_tokens: int = option(32768, help="longest sequence accepted (tokens before truncation to the model's maximum)")
    threads: int = option(0, help="CPU threads for the model (0 = torch's default)")
    precision: str = precision_option()
    compile: bool = compile_option()
    log_level: str = option("warning", help="uvicorn log level", choices=("critical", "error", "warning", "info", "debug"))


class RequestError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def sigmoid(x: float) -> float:
    return 0.5 * (1.0 + math.tanh(x / 2))


class Scores(list):
    """A request's scores, with each one's spread across ensemble members (zeros for a single-head model)."""

    def __init__(self, scores: list[float], spreads: list[float]):
        super().__init__(scores)
        self.spreads = spreads


class ModelService:
    """Encodes, checks and scores the requests of one batch (runs in the model thread)."""

    def __init__(self, model, cfg: ServeConfig):
        from rewardkit.model.scoring import encode_items

        self.model, self.cfg, self.encode = model, cfg, encode_items
        if cfg.compile:  # compile now, on two sequences of different lengths, not in the first request
            compile_for_inference(model)
            self.process([[("warm-up", "a short response"), ("warm-up", "a somewhat longer response than the first")]])

    def process(self, requests: list[list]) -> list:
        from rewardkit.model.scoring import score_encoded

        results: list = []
        flat: list = []
        spans: list[tuple[int, int] | None] = []
        for items in requests:
            encoded = self.encode(self.model, items)
            too_long = [i for i, e in enumerate(encoded) if self._original_length(e) > self.cfg.max_sequence_tokens]
            if too_long:
                spans.append(None)
                results.append(RequestError(422, f"sequence {too_long[0]} has more than {self.cfg.max_sequence_tokens} "
                                                 "tokens (--max-sequence-tokens)"))
                continue
            spans.append((len(flat), len(flat) + len(encoded)))
            results.append(None)
            flat.extend(encoded)
        spreads: list[float] = []
        scores = score_encoded(self.model, flat, self.cfg.max_batch_size, self.cfg.max_batch_tokens,
                               precision=self.cfg.precision, spreads=spreads) if flat else []
        return [r if span is None else Scores(scores[span[0]:span[1]], spreads[span[0]:span[1]])
                for r, span in zip(results, spans, strict=True)]

    @staticmethod
    def _original_length(encoded) -> int:
        if isinstance(encoded, list):  # feature vectors
            return len(encoded)
        return len(encoded.input_ids) + encoded.notes["prompt_cut"] + encoded.notes["response_cut"]

    def normalized(self, raw: list[float]) -> list[float]:
        norm = self.model.spec.normalization
        return [(r - norm["mean"]) / max(norm["std"], 1e-8) for r in raw] if norm else list(raw)

    def clipped(self, values: list[float]) -> list[float]:
        c = self.cfg.clip
        return [min(max(v, -c), c) for v in values] if c > 0 else values


# ---------------------------------------------------------------- request parsing

def _field(data: dict, name: str, kind: type, required: bool = True):
    if name not in data:
        if required:
            raise RequestError(422, f"field '{name}' is required")
        return None
    if not isinstance(data[name], kind):
        raise RequestError(422, f"field '{name}' must be a {kind.__name__}")
    return data[name]


def _text(value, where: str, allow_empty: bool = True):
    try:
        return check_text(value, where, allow_empty=allow_empty)
    except DataError as err:
        raise RequestError(422, str(err)) from None


def split_query(query: str, prompt: str | None, strip_tokens: tuple[str, ...]) -> tuple[str, str]:
    """OpenRLHF sends prompt + response as one string: trailing pad/eos tokens are stripped and the prompt
    (when given and a prefix of the query) is split off, so the model sees the same (prompt, response)
    split it was trained on."""
    text = query
    changed = True
    while changed:
        changed = False
        for token in strip_tokens:
            if token and text.endswith(token):
                text, changed = text[: -len(token)], True
    if prompt and text.startswith(prompt):
        return prompt, text[len(prompt):]
    return "", text


class Guard:
    """ASGI middleware (cheaper per request than Starlette's BaseHTTPMiddleware): API key, body-size limit
    from Content-Length, and request metrics."""

    def __init__(self, app, cfg: ServeConfig, metrics: ServerMetrics):
        self.app, self.cfg, self.metrics = app, cfg, metrics
        self.expected = f"Bearer {cfg.api_key}".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        from fastapi.responses import JSONResponse

        started, path, status = time.perf_counter(), scope["path"], 500
        headers = dict(scope["headers"])
        error = None
        if self.cfg.api_key and path != "/health" and not hmac.compare_digest(headers.get(b"authorization", b""), self.expected):
            error = JSONResponse({"error": "missing or wrong API key: send 'Authorization: Bearer KEY'"}, 401,
                                 headers={"WWW-Authenticate": "Bearer"})
        length = headers.get(b"content-length", b"")
        if error is None and length.isdigit() and int(length) > self.cfg.max_body_mb * 2 ** 20:
            error = JSONResponse({"error": f"request body of {int(length)} bytes exceeds --max-body-mb {self.cfg.max_body_mb}"}, 413)

        async def send_and_record(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await (error or self.app)(scope, receive, send_and_record)
        finally:
            self.metrics.request(path, status, time.perf_counter() - started)


def create_app(model, cfg: ServeConfig, process: ProcessFn | None = None):
    """The FastAPI app; `process` replaces the model call (tests use a slow one)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, PlainTextResponse

    service = ModelService(model, cfg)
    metrics = ServerMetrics()
    batcher = DynamicBatcher(process or service.process, cfg.max_batch_size if cfg.batching else 1,
                             cfg.max_wait_ms if cfg.batching else 0.0, cfg.max_queue, metrics)
    tokenizer = getattr(model, "tokenizer", None)
    strip_tokens = tuple({t for t in (getattr(tokenizer, "pad_token", None), getattr(tokenizer, "eos_token", None)) if t})
    name = str(model.spec.backbone)

    @asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        yield
        await batcher.stop()
        print(f"rewardkit serve: stopped after finishing in-flight requests ({metrics.sequences} sequences scored)",
              file=sys.stderr, flush=True)

    app = FastAPI(title="rewardkit reward model server", lifespan=lifespan)
    app.state.batcher, app.state.metrics, app.state.config = batcher, metrics, cfg

    app.add_middleware(Guard, cfg=cfg, metrics=metrics)

    async def body_of(request: Request) -> dict:
        raw = await request.body()
        if len(raw) > cfg.max_body_mb * 2 ** 20:
            raise RequestError(413, f"request body exceeds --max-body-mb {cfg.max_body_mb}")
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise RequestError(400, f"malformed JSON: {err}") from None
        if not isinstance(data, dict):
            raise RequestError(400, "the request body must be a JSON object")
        return data

    async def scores_for(items: list) -> list[float]:
        if not items:
            raise RequestError(422, "nothing to score")
        if len(items) > cfg.max_sequences:
            raise RequestError(413, f"{len(items)} sequences in one request exceed --max-sequences {cfg.max_sequences}")
        try:
            return await batcher.submit(items)
        except QueueFull as err:
            raise RequestError(503, f"server busy: {err}; retry later") from None

    @app.exception_handler(RequestError)
    async def request_error(request: Request, err: RequestError):
        headers = {"Retry-After": "1"} if err.status == 503 else None
        return JSONResponse({"error": str(err)}, err.status, headers=headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, err: Exception):
        return JSONResponse({"error": f"internal error while scoring: {type(err).__name__}: {err}"}, 500)

    @app.post("/get_reward")
    async def get_reward(request: Request):
        data = await body_of(request)
        queries = _field(data, "query", list)
        prompts = _field(data, "prompts", list, required=False)
        if prompts is not None and len(prompts) != len(queries):
            raise RequestError(422, f"'prompts' has {len(prompts)} entries for {len(queries)} queries")
        items = []
        for i, query in enumerate(queries):
            query = _text(query, f"query[{i}]")
            prompt = _text(prompts[i], f"prompts[{i}]") if prompts is not None else None
            items.append(split_query(query, prompt, strip_tokens))
        raw = await scores_for(items)
        rewards = service.clipped(service.normalized(raw) if cfg.normalize else raw)
        return {"rewards": rewards, "scores": [sigmoid(r) for r in rewards], "extra_logs": {"raw_reward": raw}}

    @app.post("/v1/score")
    async def score(request: Request):
        data = await body_of(request)
        inputs = _field(data, "inputs", list)
        normalize = _field(data, "normalize", bool, required=False)
        items = []
        for i, entry in enumerate(inputs):
            if not isinstance(entry, dict):
                raise RequestError(422, f"inputs[{i}] must be an object with prompt/response or messages")
            if "messages" in entry:
                messages = entry["messages"]
                if not is_conversation(messages) or messages[-1].get("role") != "assistant":
                    raise RequestError(422, f"inputs[{i}].messages must be a conversation ending with an assistant turn")
                items.append((messages[:-1], _text(messages[-1].get("content"), f"inputs[{i}].messages[-1].content")))
            else:
                items.append((_text(entry.get("prompt", ""), f"inputs[{i}].prompt"),
                              _text(entry.get("response"), f"inputs[{i}].response")))
        raw = await scores_for(items)
        normalized = service.normalized(raw) if model.spec.normalization else None
        chosen = normalized if (normalize is not False and normalized is not None) else raw
        out = {"model": name, "scores": service.clipped(chosen), "raw": raw, "normalized": normalized}
        if model.spec.ensemble >= 2:  # the spread across ensemble members, in the units of `raw`
            out["uncertainty"] = list(getattr(raw, "spreads", []))
        return out

    @app.post("/v1/compare")
    async def compare(request: Request):
        data = await body_of(request)
        prompt = _text(data.get("prompt", ""), "prompt")
        responses = _field(data, "responses", list)
        if len(responses) < 2:
            raise RequestError(422, "'responses' needs at least 2 responses")
        raw = await scores_for([(prompt, _text(r, f"responses[{i}]")) for i, r in enumerate(responses)])
        cal = model.spec.calibration or {}
        t, b = cal.get("temperature", 1.0), cal.get("bias", 0.0)
        preference = [[0.5 if i == j else sigmoid((ri - rj) / t + b) for j, rj in enumerate(raw)] for i, ri in enumerate(raw)]
        top = max(raw)
        weights = [math.exp((r - top) / t) for r in raw]
        return {"model": name, "scores": raw, "preference": preference,
                "best_probability": [w / sum(weights) for w in weights], "best": raw.index(top),
                "calibrated": bool(cal)}

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": name, "queue_sequences": batcher.admitted, "batching": cfg.batching}

    @app.get("/metrics")
    async def prometheus():
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    return app


class BackgroundServer:
    """Run an app with uvicorn in a thread on a loopback port (port 0 = a free one): for tests, benchmarks
    and notebooks. Leaving the context shuts down gracefully, finishing requests in flight."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"):
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level,
                                                    timeout_graceful_shutdown=30))
        self.host = host
        self.port = port
        self.thread = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> "BackgroundServer":
        import threading

        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.time() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        if self.thread:
            self.thread.join(timeout=60)
