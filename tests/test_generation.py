"""Generation backends: a local causal LM (one computed prompt shared by its samples = a plain generate per
sample) and an OpenAI-compatible server on loopback, with the failures a real one has: time-outs, 429 / 503,
malformed bodies, refused requests. Nothing already produced is lost."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from rewardkit.errors import GenerationError
from rewardkit.generation import Sampling, load_generator
from rewardkit.generation.local import LocalGenerator
from rewardkit.generation.openai import OpenAIGenerator

# ---------------------------------------------------------------- local


def test_shared_prompt_sampling_equals_a_plain_generate_per_sample(tiny_lm):
    generator = LocalGenerator(str(tiny_lm), batch_size=2)
    greedy = Sampling(max_new_tokens=6, temperature=0.0)
    out = generator.generate(["the cat sat on", "a"], 3, greedy)  # 3 samples in chunks of 2; a one-token prompt
    for prompt, samples in zip(["the cat sat on", "a"], out.samples, strict=True):
        ids = torch.tensor([generator.prompt_ids(prompt)])
        plain = generator.model.generate(ids, do_sample=False, max_new_tokens=6, pad_token_id=generator.pad_id)
        want = generator.decode(plain[0, ids.shape[1]:]).text
        assert [s.text for s in samples] == [want] * 3
        assert all(s.finish_reason == "length" and s.tokens == 6 for s in samples)
    assert out.info["generator"] == f"local:{tiny_lm}" and out.info["n"] == 3


def test_local_sampling_is_seeded_per_prompt(tiny_lm):
    generator = LocalGenerator(str(tiny_lm), batch_size=4)
    hot = Sampling(max_new_tokens=8, temperature=1.5, seed=7)
    first = generator.generate(["one", "two"], 4, hot)
    again = generator.generate(["one", "two"], 4, hot)
    alone = generator.generate(["one"], 4, hot)  # a prompt's samples do not depend on the prompts after it
    assert [[s.text for s in row] for row in first.samples] == [[s.text for s in row] for row in again.samples]
    assert [s.text for s in alone.samples[0]] == [s.text for s in first.samples[0]]
    assert len({s.text for s in first.samples[0]}) > 1


# ---------------------------------------------------------------- an OpenAI-compatible server on loopback


class ChatServer:
    """Speaks POST /v1/chat/completions. `script` lists what the next requests get: 'ok', 'slow' (answers after
    the client's time-out), 'malformed', '429', '503', '400'; when it runs out, every request is 'ok'.
    `per_sample` holds such a list for the requests of one sample ("CONTENT/SEED"), whatever order they come in.
    `reply` makes the text of an ok answer from the request body."""

    def __init__(self, reply):
        self.script, self.per_sample, self.requests, self.reply = [], {}, [], reply
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    server.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                    mine = server.per_sample.get(f"{body['messages'][-1]['content']}/{body.get('seed')}")
                    queue = mine if mine is not None else server.script
                    action = queue.pop(0) if queue else "ok"
                if action == "slow":
                    time.sleep(1.0)
                if action in ("429", "503", "400"):
                    self.send_response(int(action))
                    if action == "429":
                        self.send_header("Retry-After", "0")
                    self.end_headers()
                    self.wfile.write(b'{"error": "try later"}')
                    return
                payload = b'{"choices": [{"mess' if action == "malformed" else json.dumps({
                    "object": "chat.completion", "choices": [{"index": 0, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": server.reply(body)}}],
                    "usage": {"completion_tokens": 3}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except BrokenPipeError:  # the client gave up on a slow answer
                    pass

        lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def echo_server():
    server = ChatServer(lambda body: f"{body['messages'][-1]['content']} / seed {body.get('seed')}")
    yield server
    server.close()


def client(server, **options) -> OpenAIGenerator:
    return OpenAIGenerator(server.url, "tiny", **{"timeout": 0.5, "retries": 3, "backoff": 0.01, **options})


def test_openai_backend_requests_and_seeds(echo_server, monkeypatch):
    monkeypatch.setenv("TEST_KEY", "secret")
    out = client(echo_server, api_key_env="TEST_KEY").generate(
        ["hi", [{"role": "system", "content": "be brief"}, {"role": "user", "content": "yo"}]], 2, Sampling(seed=5))
    assert [[s.text for s in row] for row in out.samples] == [["hi / seed 5", "hi / seed 6"],
                                                             ["yo / seed 100008", "yo / seed 100009"]]
    request = echo_server.requests[0]
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer secret"
    assert request["body"]["model"] == "tiny" and request["body"]["max_tokens"] == 256 and "n" not in request["body"]
    assert out.samples[0][0].finish_reason == "stop" and out.samples[0][0].tokens == 3


@pytest.mark.parametrize("failure", ["slow", "malformed", "429", "503"])
def test_openai_backend_retries_a_passing_failure(echo_server, failure):
    echo_server.script = [failure, failure]
    out = client(echo_server, concurrency=1).generate(["q"], 1, Sampling(seed=0))
    assert out.samples[0][0].text == "q / seed 0" and out.failures == 0
    assert len(echo_server.requests) == 3


def test_openai_backend_keeps_what_it_made_when_a_request_keeps_failing(echo_server):
    echo_server.per_sample = {"a/0": ["503"] * 3, "a/1": ["400"]}  # retries run out; a request is refused
    out = client(echo_server, concurrency=1, retries=2).generate(["a", "b"], 2, Sampling(seed=0))
    texts = [[s.text for s in row] for row in out.samples]
    assert texts == [[None, None], ["b / seed 100003", "b / seed 100004"]]
    assert "HTTP 503" in out.samples[0][0].error and "after 3 attempts" in out.samples[0][0].error
    assert "HTTP 400" in out.samples[0][1].error and "after 1 attempt)" in out.samples[0][1].error
    assert out.failures == 2


def test_openai_backend_that_fails_every_request_is_an_error(echo_server):
    echo_server.script = ["400"] * 4
    with pytest.raises(GenerationError, match="every request failed: 4 x HTTP 400"):
        client(echo_server).generate(["a", "b"], 2, Sampling())
    with pytest.raises(GenerationError, match="connection failed"):
        OpenAIGenerator("http://127.0.0.1:9/v1", "m", retries=0, timeout=0.5).generate(["a"], 1, Sampling())


def test_bon_generates_through_a_server_that_serves_the_bundled_model(tmp_path, tiny_bert):
    """The loopback server answers with SmolLM2-135M-Instruct (bundled), sampled by rewardkit's local backend;
    `rewardkit bon --prompts` reaches it over HTTP, scores and chooses."""
    from rewardkit.cli import main
    from rewardkit.model.reward_model import RewardModel
    from tests.conftest import write_jsonl

    local = load_generator("local:smollm2", batch_size=2)

    def reply(body):
        sampling = Sampling(max_new_tokens=body["max_tokens"], temperature=body["temperature"], seed=body.get("seed"))
        return local.generate([body["messages"]], 1, sampling).samples[0][0].text

    server = ChatServer(reply)
    try:
        RewardModel.build(str(tiny_bert), max_length=64).save(tmp_path / "rm")
        write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": "Name a colour.", "id": "c"}, {"prompt": "Say hello."}])
        out = tmp_path / "bon.jsonl"
        server.script = ["503"]
        assert main(["bon", str(tmp_path / "rm"), "--prompts", str(tmp_path / "prompts.jsonl"), "--n", "2",
                     "--generator", server.url, "--server-model", "smollm2", "--max-new-tokens", "6",
                     "--output", str(out), "--no-progress"]) == 0
    finally:
        server.close()
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in records] == ["c", "2"]
    assert all(c["response"] and c["score"] is not None for r in records for c in r["candidates"])
    assert records[0]["provenance"]["generator"] == f"openai:smollm2@{server.url}"
    assert len(server.requests) == 5  # four samples, one of them retried


def test_bon_generates_with_the_local_backend_and_rejection_samples(tiny_lm, tiny_bert, tmp_path):
    from rewardkit.cli import main
    from rewardkit.model.reward_model import RewardModel
    from tests.conftest import write_jsonl

    RewardModel.build(str(tiny_bert), max_length=64).save(tmp_path / "rm")
    write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": "the cat"}, {"prompt": "a dog", "id": "d"}])
    out = tmp_path / "bon.jsonl"
    assert main(["bon", str(tmp_path / "rm"), "--prompts", str(tmp_path / "prompts.jsonl"), "--n", "3",
                 "--generator", f"local:{tiny_lm}", "--max-new-tokens", "5", "--output", str(out), "--no-progress"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [len(r["candidates"]) for r in records] == [3, 3] and records[1]["id"] == "d"
    assert records[0]["provenance"]["generator"] == f"local:{tiny_lm}" and records[0]["provenance"]["n"] == 3
    assert main(["rejection-sample", str(out), "--output", str(tmp_path / "rs"), "--top-k", "2"]) == 0
    sft = [json.loads(line) for line in (tmp_path / "rs" / "sft.jsonl").read_text().splitlines()]
    assert len(sft) == 4 and {r["provenance"]["rank"] for r in sft} == {1, 2}
