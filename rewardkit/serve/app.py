"""The scoring server: FastAPI routes in front of a dynamic batcher.

Endpoints
- POST /get_reward   OpenRLHF's remote reward model: {"query": [...], "prompts": [...], "labels": [...]} ->
                     {"rewards": [...], "scores": [...] in [0, 1], "extra_logs": {"raw_reward": [...]}}
- POST /v1/score     {"inputs": [{"prompt", "response"} | {"messages"}], "normalize": bool} -> raw and normalised scores
- POST /v1/compare   {"prompt", "responses": [2..K]} -> scores, P(i beats j), P(i is best)
- POST /v1/steps     {"inputs": [{"prompt", "steps": [...]}], "normalize": bool} -> step rewards and their aggregate
- POST /v1/step_rewards  (a control reward model, instead of the four above) {"observations", "actions",
                     "instructions"} -> a reward per (observation, action) step (serve/control.py)
- a generative judge (`rewardkit serve judge:SPEC[@k]`) answers /v1/score and /v1/compare with its votes
  (serve/judge.py)
- GET  /health       liveness and queue depth (no key needed)
- GET  /metrics      Prometheus text format
Errors are JSON {"error": message}: 400 malformed JSON, 401 missing/wrong key, 413 body or request too
large, 422 invalid fields (the message names the field), 503 queue full (with Retry-After).

Requests are parsed in protocol.py, scored by service.py's ModelService through batcher.py, and counted in
metrics.py; background.py runs an app in a thread for tests and benchmarks.
"""

# No `from __future__ import annotations` here: FastAPI reads the route functions' annotations (Request)
# when they are defined, inside functions, so that importing this module (for ServeConfig) needs no FastAPI.
import hmac
import math
import sys
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal

from tyro.conf import Positional

from rewardkit.options import Compile, Precision, Threads
from rewardkit.scores import Scores, probability
from rewardkit.serve.batcher import DynamicBatcher, ProcessFn, QueueFull
from rewardkit.serve.control import ControlService, step_reward_items
from rewardkit.serve.judge import JudgeService, judge_compare_item, judge_score_items
from rewardkit.serve.metrics import CONTENT_TYPE, ServerMetrics
from rewardkit.serve.protocol import (
    RequestError,
    compare_items,
    parse_body,
    process_reward_fields,
    reward_items,
    score_request,
    steps_request,
)
from rewardkit.serve.service import ModelService


@dataclass
class ServeConfig:
    """Serve a reward model over HTTP to RL loops (OpenRLHF's /get_reward, rewardkit's /v1/score and
    /v1/compare), with dynamic batching, normalisation with the model's stored statistics, optional API key."""

    model: Positional[str]
    """rewardkit model directory (or a training output directory), a control reward model, or judge:SPEC[@k]"""
    host: str = "127.0.0.1"
    """address to bind (loopback by default; use 0.0.0.0 to expose)"""
    port: int = 8000
    """TCP port"""
    max_batch_size: int = 32
    """most sequences scored in one model call"""
    max_wait_ms: float = 5.0
    """how long the first request of a batch waits for others"""
    max_batch_tokens: int = 16384
    """most padded tokens per model call (long sequences go in smaller batches)"""
    max_queue: int = 2048
    """most sequences admitted and waiting; beyond it requests get 503"""
    batching: bool = True
    """batch requests together (--no-batching scores each request on its own)"""
    normalize: bool = True
    """/get_reward returns rewards normalised with the model's stored mean/std"""
    clip: float = 0.0
    """clip returned rewards to [-clip, clip] (0 = no clipping)"""
    api_key: str = ""
    """require 'Authorization: Bearer KEY' (empty: $REWARDKIT_API_KEY if set)"""
    max_body_mb: float = 16.0
    """largest request body accepted"""
    max_sequences: int = 1024
    """most sequences in one request"""
    max_sequence_tokens: int = 32768
    """longest sequence accepted (tokens before truncation to the model's maximum)"""
    threads: Threads = 0
    precision: Precision = "fp32"
    compile: Compile = False
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "warning"
    """uvicorn log level"""


class Guard:
    """ASGI middleware (cheaper per request than Starlette's BaseHTTPMiddleware): API key, body-size limit
    from Content-Length, and request metrics."""

    def __init__(self, app, cfg: ServeConfig, metrics: ServerMetrics):
        self.app, self.cfg, self.metrics = app, cfg, metrics
        self.expected = f"Bearer {cfg.api_key}".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, path, status = time.perf_counter(), scope["path"], 500
        error = self._refusal(scope["path"], dict(scope["headers"]))

        async def send_and_record(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await (error or self.app)(scope, receive, send_and_record)
        finally:
            self.metrics.request(path, status, time.perf_counter() - started)

    def _refusal(self, path: str, headers: dict):
        """The 401 or 413 response that refuses a request before it is read, or None to let it through."""
        from fastapi.responses import JSONResponse

        if self.cfg.api_key and path != "/health" and not hmac.compare_digest(headers.get(b"authorization", b""), self.expected):
            return JSONResponse({"error": "missing or wrong API key: send 'Authorization: Bearer KEY'"}, 401,
                                headers={"WWW-Authenticate": "Bearer"})
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.cfg.max_body_mb * 2 ** 20:
            return JSONResponse({"error": f"request body of {int(length)} bytes exceeds --max-body-mb {self.cfg.max_body_mb}"}, 413)
        return None


class Endpoints:
    """What each route does with a request's JSON: parse it (protocol), score its items through the batcher,
    and shape the answer."""

    def __init__(self, model, cfg: ServeConfig, service: ModelService, batcher: DynamicBatcher):
        self.model, self.cfg, self.service, self.batcher = model, cfg, service, batcher
        tokenizer = getattr(model, "tokenizer", None)
        self.strip_tokens = tuple({t for t in (getattr(tokenizer, "pad_token", None), getattr(tokenizer, "eos_token", None)) if t})
        self.name = str(model.spec.backbone)

    async def scores_for(self, items: list) -> Scores:
        """The items' Scores, once the batcher has scored them; 413 above --max-sequences, 503 on a full queue."""
        if not items:
            raise RequestError(422, "nothing to score")
        if len(items) > self.cfg.max_sequences:
            raise RequestError(413, f"{len(items)} sequences in one request exceed --max-sequences {self.cfg.max_sequences}")
        try:
            return await self.batcher.submit(items)
        except QueueFull as err:
            raise RequestError(503, f"server busy: {err}; retry later") from None

    async def get_reward(self, data: dict) -> dict:
        """OpenRLHF's remote reward model: rewards (normalised unless --no-normalize, clipped), their
        probabilities in [0, 1], and the raw rewards. With "step_separator", a process reward model's step
        aggregate, and step statistics in extra_logs (protocol.process_reward_fields)."""
        scores = await self.scores_for(reward_items(data, self.strip_tokens))
        raw = scores.values
        rewards = self.service.clipped(self.service.normalized(raw) if self.cfg.normalize else raw)
        if scores.steps is not None:
            probabilities, logs = process_reward_fields(raw, scores.steps, self.model.spec.step_aggregate)
            return {"rewards": rewards, "scores": probabilities, "extra_logs": logs}
        return {"rewards": rewards, "scores": probability(rewards).tolist(), "extra_logs": {"raw_reward": raw}}

    async def score(self, data: dict) -> dict:
        """Raw and normalised scores; with an ensemble, each item's spread across members, in raw units."""
        items, normalize = score_request(data)
        scores = await self.scores_for(items)
        raw = scores.values
        normalized = self.service.normalized(raw) if self.model.spec.normalization else None
        chosen = normalized if (normalize is not False and normalized is not None) else raw
        out = {"model": self.name, "scores": self.service.clipped(chosen), "raw": raw, "normalized": normalized}
        if scores.members is not None:
            out["uncertainty"] = scores.spreads
        return out

    async def steps(self, data: dict) -> dict:
        """Process rewards: each solution's step rewards and their aggregate, as logits (P(step is right) =
        sigmoid; None for a step dropped by truncation), or standardised with "normalize": true when the model
        stores its reward statistics."""
        items, normalize = steps_request(data)
        scores = await self.scores_for(items)
        rescale = bool(normalize) and self.model.spec.normalization is not None
        adjust = self.service.normalized if rescale else list
        steps = [adjust(kept) + [None] * (len(item[1]) - len(kept)) for item, kept in zip(items, scores.steps, strict=True)]
        return {"model": self.name, "aggregate": self.model.spec.step_aggregate, "normalized": rescale,
                "scores": self.service.clipped(adjust(scores.values)), "step_scores": steps}

    async def compare(self, data: dict) -> dict:
        """Raw scores, P(i beats j) with the model's calibration, and P(i is best) (a softmax at the same
        temperature)."""
        raw = (await self.scores_for(compare_items(data))).values
        cal = self.model.spec.calibration or {}
        t, b = cal.get("temperature", 1.0), cal.get("bias", 0.0)
        preference = [[0.5 if i == j else float(probability(ri - rj, t, b)) for j, rj in enumerate(raw)]
                      for i, ri in enumerate(raw)]
        top = max(raw)
        weights = [math.exp((r - top) / t) for r in raw]
        return {"model": self.name, "scores": raw, "preference": preference,
                "best_probability": [w / sum(weights) for w in weights], "best": raw.index(top),
                "calibrated": bool(cal)}

    async def health(self) -> dict:
        return {"status": "ok", "model": self.name, "queue_sequences": self.batcher.admitted, "batching": self.cfg.batching}


class ControlEndpoints(Endpoints):
    """A control step reward model's one route: a reward and its members' spread per (observation, action) step."""

    def __init__(self, model, cfg: ServeConfig, service, batcher: DynamicBatcher):
        self.model, self.cfg, self.service, self.batcher = model, cfg, service, batcher
        self.name = f"control step reward model ({model.spec.architecture}, {model.spec.members} members)"

    async def step_rewards(self, data: dict) -> dict:
        scores = await self.scores_for(step_reward_items(data))
        return {"model": self.name, "rewards": scores.values, "uncertainty": scores.spreads}


class JudgeEndpoints(Endpoints):
    """A generative judge's routes: ratings (/v1/score) and verdicts in both orders (/v1/compare), with the votes."""

    def __init__(self, model, cfg: ServeConfig, service, batcher: DynamicBatcher):
        self.model, self.cfg, self.service, self.batcher = model, cfg, service, batcher
        self.name = model.name

    async def score(self, data: dict) -> dict:
        items, _ = score_request(data)
        out = await self.scores_for(judge_score_items(items))
        failures = sum(v is None for row in out["votes"] for v in row)
        return {"model": self.name, "scores": out["scores"].values, "votes": out["votes"], "failures": failures,
                "seconds_per_judgement": out["seconds"]}

    async def compare(self, data: dict) -> dict:
        prompt = data.get("prompt", "")
        items = compare_items(data)
        out = await self.scores_for(judge_compare_item(prompt, [response for _, response in items]))
        v = out["verdict"]
        return {"model": self.name, "p_first": v.p_first, "votes": v.votes, "position_flip": v.flip,
                "failures": v.failures, "seconds_per_judgement": out["seconds"]}


def _json_route(handler, max_body_mb: float):
    """A FastAPI endpoint that hands the request's JSON object to `handler` (protocol.parse_body checks it)."""
    from fastapi import Request

    async def route(request: Request):
        return await handler(parse_body(await request.body(), max_body_mb))

    return route


def _metrics_route(metrics: ServerMetrics):
    from fastapi.responses import Response

    async def prometheus():
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return prometheus


def _lifespan(batcher: DynamicBatcher, metrics: ServerMetrics):
    """Start the batcher with the server; on shutdown, finish what was admitted before stopping."""

    @asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        yield
        await batcher.stop()
        print(f"rewardkit serve: stopped after finishing in-flight requests ({metrics.sequences} sequences scored)",
              file=sys.stderr, flush=True)

    return lifespan


def _add_error_handlers(app) -> None:
    """Every error is JSON {"error": message}: a RequestError with its status (503 with Retry-After),
    anything else a 500."""
    from fastapi.responses import JSONResponse

    @app.exception_handler(RequestError)
    async def request_error(request, err: RequestError):
        headers = {"Retry-After": "1"} if err.status == 503 else None
        return JSONResponse({"error": str(err)}, err.status, headers=headers)

    @app.exception_handler(Exception)
    async def internal_error(request, err: Exception):
        return JSONResponse({"error": f"internal error while scoring: {type(err).__name__}: {err}"}, 500)


def create_app(model, cfg: ServeConfig, process: ProcessFn | None = None):
    """The FastAPI app; `process` replaces the model call (tests use a slow one)."""
    from fastapi import FastAPI

    from rewardkit.control.reward import StepRewardModel
    from rewardkit.judge import Judge

    control, judge = isinstance(model, StepRewardModel), isinstance(model, Judge)
    service = ControlService(model) if control else JudgeService(model) if judge else ModelService(model, cfg)
    metrics = ServerMetrics()
    batcher = DynamicBatcher(process or service.process, cfg.max_batch_size if cfg.batching else 1,
                             cfg.max_wait_ms if cfg.batching else 0.0, cfg.max_queue, metrics)
    endpoints = (ControlEndpoints if control else JudgeEndpoints if judge else Endpoints)(model, cfg, service, batcher)
    app = FastAPI(title="rewardkit reward model server", lifespan=_lifespan(batcher, metrics))
    app.state.batcher, app.state.metrics, app.state.config = batcher, metrics, cfg
    app.add_middleware(Guard, cfg=cfg, metrics=metrics)
    _add_error_handlers(app)
    routes = ((("/v1/step_rewards", endpoints.step_rewards),) if control else
              (("/v1/score", endpoints.score), ("/v1/compare", endpoints.compare)) if judge else
              (("/get_reward", endpoints.get_reward), ("/v1/score", endpoints.score),
               ("/v1/compare", endpoints.compare), ("/v1/steps", endpoints.steps)))
    for path, handler in routes:
        app.add_api_route(path, _json_route(handler, cfg.max_body_mb), methods=["POST"], name=handler.__name__)
    app.add_api_route("/health", endpoints.health, methods=["GET"])
    app.add_api_route("/metrics", _metrics_route(metrics), methods=["GET"], name="metrics")
    return app
