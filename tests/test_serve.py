"""The scoring server on a real loopback port: scores equal offline scoring, every endpoint's schema, auth,
limits, malformed input, a full queue, clients that disconnect, graceful shutdown; clients and adapters."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from conftest import write_jsonl

from rewardkit.cli import main
from rewardkit.scores import Scores
from rewardkit.serve.app import ServeConfig, create_app
from rewardkit.serve.background import BackgroundServer
from rewardkit.serve.batcher import DynamicBatcher, QueueFull
from rewardkit.serve.client import AsyncRewardClient, RewardClient, RewardServerError
from rewardkit.serve.protocol import split_query

PAIRS = [("What is 2 + 2?", "4"), ("Say hello.", "Hello there! How can I help you today?"),
         ("Name a colour.", "Blue."), ("", "A response without a prompt.")]


@pytest.fixture(scope="module")
def model_dir(tiny_bert_no_dropout, tmp_path_factory):
    from rewardkit.model.reward_model import RewardModel

    model = RewardModel.build(str(tiny_bert_no_dropout), max_length=64)
    model.spec.normalization = {"mean": 0.05, "std": 2.0}
    return model.save(tmp_path_factory.mktemp("serve") / "model")


@pytest.fixture(scope="module")
def model(model_dir):
    from rewardkit.model.reward_model import RewardModel

    return RewardModel.load(model_dir)


def serve(model, process=None, **overrides):
    cfg = ServeConfig(model="test", **overrides)
    return BackgroundServer(create_app(model, cfg, process))


@pytest.fixture(scope="module")
def server(model):
    with serve(model) as s:
        yield s


def offline(model, pairs):
    from rewardkit.model.scoring import score

    return score(model, pairs).values


def slow_process(seconds: float):
    def process(requests):
        time.sleep(seconds)
        return [Scores([float(len(r)) for _, r in items]) for items in requests]
    return process


# ---------------------------------------------------------------- endpoints


def test_score_equals_offline_rewardkit_score(server, model_dir, tmp_path):
    records = [{"prompt": p or "q", "chosen": r, "rejected": "no"} for p, r in PAIRS]
    write_jsonl(tmp_path / "in.jsonl", records)
    assert main(["score", str(model_dir), str(tmp_path / "in.jsonl"), str(tmp_path / "out.jsonl"), "--no-progress"]) == 0
    expected = [json.loads(line)["chosen_score"] for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    body = httpx.post(server.url + "/v1/score", json={"inputs": [{"prompt": r["prompt"], "response": r["chosen"]}
                                                                 for r in records]}).json()
    assert body["raw"] == pytest.approx(expected, abs=1e-4)
    assert body["normalized"] == pytest.approx([(x - 0.05) / 2.0 for x in expected], abs=1e-4)
    assert body["scores"] == body["normalized"]
    raw_only = httpx.post(server.url + "/v1/score", json={"inputs": [{"prompt": "q", "response": "4"}], "normalize": False}).json()
    assert raw_only["scores"] == raw_only["raw"]


def test_score_accepts_conversations(server, model):
    messages = [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "4"}]
    body = httpx.post(server.url + "/v1/score", json={"inputs": [{"messages": messages}]}).json()
    assert body["raw"] == pytest.approx(offline(model, [(messages[:1], "4")]), abs=1e-4)


def test_get_reward_is_openrlhf_compatible(server, model):
    sep = model.tokenizer.pad_token
    queries = [p + r + sep + sep for p, r in PAIRS]  # OpenRLHF's queries end in pad/eos tokens
    body = httpx.post(server.url + "/get_reward", json={"query": queries, "prompts": [p for p, _ in PAIRS],
                                                        "labels": [""] * len(PAIRS)}).json()
    assert set(body) == {"rewards", "scores", "extra_logs"}
    raw = offline(model, PAIRS)
    assert body["extra_logs"]["raw_reward"] == pytest.approx(raw, abs=1e-4)
    assert body["rewards"] == pytest.approx([(x - 0.05) / 2.0 for x in raw], abs=1e-4)
    assert all(0 <= s <= 1 for s in body["scores"])
    assert body["scores"][0] == pytest.approx(1 / (1 + math.exp(-body["rewards"][0])))
    # without prompts (older OpenRLHF) the whole query is the response
    alone = httpx.post(server.url + "/get_reward", json={"query": ["just text"]}).json()
    assert alone["extra_logs"]["raw_reward"] == pytest.approx(offline(model, [("", "just text")]), abs=1e-4)


def test_split_query():
    assert split_query("Q: hi A: yo</s><pad>", "Q: hi A:", ("<pad>", "</s>")) == ("Q: hi A:", " yo")
    assert split_query("no prompt match", "other", ()) == ("", "no prompt match")


def test_compare_gives_preference_probabilities(server, model):
    body = httpx.post(server.url + "/v1/compare", json={"prompt": "Name a colour.", "responses": ["Blue.", "Seven", "Red!"]}).json()
    assert body["scores"] == pytest.approx(offline(model, [("Name a colour.", r) for r in ["Blue.", "Seven", "Red!"]]), abs=1e-4)
    p = body["preference"]
    assert p[0][1] + p[1][0] == pytest.approx(1.0) and p[1][1] == 0.5
    assert sum(body["best_probability"]) == pytest.approx(1.0)
    assert body["best"] == max(range(3), key=lambda i: body["scores"][i])


def test_health_and_metrics(server):
    assert httpx.get(server.url + "/health").json()["status"] == "ok"
    httpx.post(server.url + "/v1/score", json={"inputs": [{"prompt": "a", "response": "b"}]})
    text = httpx.get(server.url + "/metrics").text
    assert 'rewardkit_requests_total{endpoint="/v1/score",status="200"}' in text
    assert "rewardkit_batch_sequences_bucket" in text and "rewardkit_request_seconds_count" in text
    assert "rewardkit_queue_sequences 0" in text


@pytest.mark.parametrize("payload, status, words", [
    (b"{not json", 400, "malformed JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (json.dumps({"inputs": "x"}).encode(), 422, "'inputs' must be a list"),
    (json.dumps({}).encode(), 422, "'inputs' is required"),
    (json.dumps({"inputs": [{"prompt": "p", "response": 7}]}).encode(), 422, "inputs[0].response"),
    (json.dumps({"inputs": []}).encode(), 422, "nothing to score"),
])
def test_malformed_input_gets_a_clear_error(server, payload, status, words):
    response = httpx.post(server.url + "/v1/score", content=payload, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert words in response.json()["error"]


def test_limits(model):
    with serve(model, max_body_mb=0.001, max_sequences=3, max_sequence_tokens=20) as s:
        big = httpx.post(s.url + "/v1/score", json={"inputs": [{"prompt": "p", "response": "x" * 5000}]})
        assert big.status_code == 413 and "max-body-mb" in big.json()["error"]
        many = httpx.post(s.url + "/v1/score", json={"inputs": [{"prompt": "p", "response": "r"}] * 4})
        assert many.status_code == 413 and "max-sequences 3" in many.json()["error"]
        long = httpx.post(s.url + "/v1/score", json={"inputs": [{"prompt": "p", "response": "ok"},
                                                                {"prompt": "p", "response": "word " * 40}]})
        assert long.status_code == 422 and "sequence 1" in long.json()["error"]
        assert httpx.post(s.url + "/v1/score", json={"inputs": [{"prompt": "p", "response": "ok"}]}).status_code == 200


def test_api_key(model):
    with serve(model, api_key="s3cret") as s:
        assert httpx.post(s.url + "/v1/score", json={"inputs": [{"prompt": "p", "response": "r"}]}).status_code == 401
        wrong = httpx.post(s.url + "/v1/score", json={"inputs": []}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        assert httpx.get(s.url + "/health").status_code == 200  # health checks need no key
        with RewardClient(s.url, api_key="s3cret") as client:
            assert len(client.score([("p", "r")])) == 1


# ---------------------------------------------------------------- load behaviour


def test_full_queue_answers_503_with_retry_after(model):
    with serve(model, slow_process(0.6), max_queue=2, max_wait_ms=0) as s:
        first = threading.Thread(target=httpx.post, args=(s.url + "/v1/score",),
                                 kwargs={"json": {"inputs": [{"prompt": "p", "response": "r"}] * 2}, "timeout": 10})
        first.start()
        time.sleep(0.2)
        busy = httpx.post(s.url + "/v1/score", json={"inputs": [{"prompt": "p", "response": "r"}]})
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1" and "busy" in busy.json()["error"]
        # the client retries on 503 and gets through once the queue drains
        with RewardClient(s.url, backoff=0.2) as client:
            assert client.score([("p", "abc")], normalize=False) == [3.0]
        first.join()


def test_a_client_disconnecting_does_not_harm_others(model):
    with serve(model, slow_process(0.5)) as s:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(s.url + "/v1/score", json={"inputs": [{"prompt": "p", "response": "gone"}]}, timeout=0.1)
        ok = httpx.post(s.url + "/v1/score", json={"inputs": [{"prompt": "p", "response": "stay"}]}, timeout=10)
        assert ok.status_code == 200 and ok.json()["raw"] == [4.0]
        assert httpx.get(s.url + "/health").json()["queue_sequences"] == 0


def test_shutdown_finishes_in_flight_requests(model):
    results = {}
    s = serve(model, slow_process(0.8))
    with s:
        def call():
            results["response"] = httpx.post(s.url + "/v1/score", json={"inputs": [{"prompt": "p", "response": "abc"}]}, timeout=10)
        worker = threading.Thread(target=call)
        worker.start()
        time.sleep(0.2)
    # leaving the context asked the server to exit while the request was being scored
    worker.join()
    assert results["response"].status_code == 200 and results["response"].json()["raw"] == [3.0]


def test_concurrent_requests_are_batched(model):
    def load(**overrides):
        with serve(model, **overrides) as s:
            async def run():
                async with AsyncRewardClient(s.url) as client:
                    return await asyncio.gather(*[client.score([p], normalize=False) for p in PAIRS * 8])
            scores = asyncio.run(run())
            metrics = s.server.config.app.state.metrics
            return scores, metrics.value("rewardkit_batch_sequences_sum") / metrics.value("rewardkit_batch_sequences_count")
    batched, mean_batch = load(max_wait_ms=20)
    single, mean_single = load(batching=False)
    assert mean_batch > 2 and mean_single == 1
    expected = offline(model, PAIRS * 8)
    assert [x[0] for x in batched] == pytest.approx(expected, abs=1e-4)
    assert [x[0] for x in single] == pytest.approx(expected, abs=1e-4)


def test_batcher_refuses_beyond_its_bound():
    async def run():
        batcher = DynamicBatcher(slow_process(0.3), max_batch_size=4, max_wait_ms=0, max_queue=3)
        await batcher.start()
        first = asyncio.create_task(batcher.submit([("p", "ab"), ("p", "c")]))
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFull):
            await batcher.submit([("p", "x"), ("p", "y")])
        assert (await first).values == [2.0, 1.0]
        assert (await batcher.submit([("p", "xyz")])).values == [3.0]
        await batcher.stop()
    asyncio.run(run())


def test_client_raises_server_errors(server):
    with RewardClient(server.url) as client:
        with pytest.raises(RewardServerError, match="422"):
            client.compare("p", ["only one"])


def test_serve_command_starts_and_stops_on_sigterm(model_dir):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "rewardkit.cli", "serve", str(model_dir), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with RewardClient(f"http://127.0.0.1:{port}", retries=40, backoff=0.25) as client:
            deadline = time.time() + 60
            while True:
                try:
                    client.health()
                    break
                except httpx.TransportError:
                    assert time.time() < deadline and proc.poll() is None
                    time.sleep(0.25)
            assert len(client.score(PAIRS)) == 4
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean shutdown
    finally:
        proc.kill()
    output = proc.stdout.read()
    assert "serving" in output and "stopped after finishing in-flight requests (4 sequences scored)" in output


# ---------------------------------------------------------------- adapters, called the way each framework calls them


def test_trl_reward_function_local_and_remote(server, model, model_dir):
    from rewardkit.serve.adapters import TRLReward

    prompts = [[{"role": "user", "content": p}] for p, _ in PAIRS[:3]]
    completions = [[{"role": "assistant", "content": r}] for _, r in PAIRS[:3]]
    expected = [(x - 0.05) / 2.0 for x in offline(model, [(m, c[0]["content"]) for m, c in zip(prompts, completions, strict=True)])]
    for target in (str(model_dir), server.url):
        reward = TRLReward(target)
        assert reward.__name__ == "rewardkit"
        out = reward(prompts=prompts, completions=completions, completion_ids=[[1]] * 3, answer=["x"] * 3)
        assert out == pytest.approx(expected, abs=1e-4)


def test_openrlhf_reward_func_file(server, model, monkeypatch):
    import importlib.util

    from rewardkit.serve import adapters

    spec = importlib.util.spec_from_file_location("reward_func_file", adapters.__file__.replace("adapters.py", "openrlhf_reward_func.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # OpenRLHF loads --remote_rm_url files this way
    monkeypatch.setenv("REWARDKIT_URL", server.url)
    queries = [p + r for p, r in PAIRS]
    out = module.reward_func(queries, [p for p, _ in PAIRS], [None] * 4)
    raw = offline(model, PAIRS)
    assert out["extra_logs"]["raw_reward"].tolist() == pytest.approx(raw, abs=1e-4)
    assert out["rewards"].tolist() == pytest.approx([(x - 0.05) / 2.0 for x in raw], abs=1e-4)
    assert ((out["scores"] >= 0) & (out["scores"] <= 1)).all()


def test_verl_compute_score(model, model_dir, monkeypatch):
    from rewardkit.serve.adapters import compute_score

    monkeypatch.setenv("REWARDKIT_MODEL", str(model_dir))
    monkeypatch.delenv("REWARDKIT_URL", raising=False)
    value = compute_score("gsm8k", "4", ground_truth="4", extra_info={"prompt": "What is 2 + 2?"})
    assert value == pytest.approx((offline(model, [PAIRS[0]])[0] - 0.05) / 2.0, abs=1e-4)
    assert os.environ["REWARDKIT_MODEL"] == str(model_dir)
