"""Sampling from any OpenAI-compatible chat-completions server: vLLM, SGLang, llama.cpp's server, Ollama.

Each sample is one request (`n` is not sent: not every server honours it), at most `concurrency` in flight. A
request that times out, cannot connect, gets 429 or a 5xx, or gets a body that is not a chat completion is retried
after an exponential back-off (a server's Retry-After wins, capped at max_backoff); after `retries` retries the
sample is kept as a failure with its reason and the others go on. Any other 4xx is not retried (the request is
wrong, not the moment). If every request fails, GenerationError names the reasons. The API key is read from the
environment variable named by `api_key_env` (never from a file or flag), and sent only when set.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter

from rewardkit.errors import GenerationError
from rewardkit.generation.base import Generated, Prompt, Sample, Sampling, as_messages

RETRY_STATUS = {408, 429, 500, 502, 503, 504}


class RequestFailed(Exception):
    def __init__(self, reason: str, retry: bool, wait: float | None = None):
        super().__init__(reason)
        self.reason, self.retry, self.wait = reason, retry, wait


class OpenAIGenerator:
    def __init__(self, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY", concurrency: int = 8,
                 timeout: float = 120.0, retries: int = 4, backoff: float = 0.5, max_backoff: float = 30.0):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.api_key_env = model, api_key_env
        self.concurrency, self.timeout, self.retries = concurrency, timeout, retries
        self.backoff, self.max_backoff = backoff, max_backoff
        self.name = f"openai:{model}@{base_url}"

    def body(self, prompt: Prompt, sampling: Sampling, seed: int | None) -> dict:
        body = {"model": self.model, "messages": as_messages(prompt), "max_tokens": sampling.max_new_tokens,
                "temperature": sampling.temperature, "top_p": sampling.top_p}
        return body if seed is None else {**body, "seed": seed}

    async def request(self, client, body: dict) -> Sample:
        """One chat completion, or RequestFailed saying whether to retry."""
        import httpx

        try:
            response = await client.post(self.url, json=body)
        except httpx.TimeoutException:
            raise RequestFailed(f"timed out after {self.timeout:g} s", retry=True) from None
        except httpx.TransportError as err:
            raise RequestFailed(f"connection failed: {err!r}", retry=True) from None
        if response.status_code != 200:
            wait = response.headers.get("retry-after")
            raise RequestFailed(f"HTTP {response.status_code}: {response.text[:200]}", response.status_code in RETRY_STATUS,
                                float(wait) if wait and wait.replace(".", "", 1).isdigit() else None)
        try:
            choice = response.json()["choices"][0]
            text = choice["message"]["content"]
            if not isinstance(text, str):
                raise TypeError("content is not text")
        except (ValueError, KeyError, IndexError, TypeError) as err:
            raise RequestFailed(f"not a chat completion ({type(err).__name__}: {err}): {response.text[:120]!r}",
                                retry=True) from None
        usage = response.json().get("usage") or {}
        return Sample(text, None, choice.get("finish_reason"), usage.get("completion_tokens"))

    async def sample(self, client, gate: asyncio.Semaphore, body: dict) -> Sample:
        reason = ""
        for attempt in range(self.retries + 1):
            async with gate:
                try:
                    return await self.request(client, body)
                except RequestFailed as failed:
                    reason = failed.reason
                    if not failed.retry:
                        break
                    wait = failed.wait
            if attempt < self.retries:  # back off outside the gate, so other requests go on
                delay = wait if wait is not None else self.backoff * 2 ** attempt * (0.5 + random.random())
                await asyncio.sleep(min(delay, self.max_backoff))
        return Sample(None, f"{reason} (after {attempt + 1} attempt{'s' if attempt else ''})")

    async def run(self, prompts: list[Prompt], n: int, sampling: Sampling, progress: bool) -> list[list[Sample]]:
        import httpx
        from tqdm.auto import tqdm

        key = os.environ.get(self.api_key_env)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        gate = asyncio.Semaphore(self.concurrency)
        limits = httpx.Limits(max_connections=self.concurrency)
        async with httpx.AsyncClient(timeout=self.timeout, headers=headers, limits=limits) as client:
            bar = tqdm(total=len(prompts) * n, desc="generating", unit="sample", disable=not progress)

            async def one(i: int, j: int) -> Sample:
                out = await self.sample(client, gate, self.body(prompts[i], sampling, sampling.sample_seed(i, j)))
                bar.update()
                return out

            flat = await asyncio.gather(*(one(i, j) for i in range(len(prompts)) for j in range(n)))
            bar.close()
        return [list(flat[i * n:(i + 1) * n]) for i in range(len(prompts))]

    def generate(self, prompts: list[Prompt], n: int, sampling: Sampling, progress: bool = False) -> Generated:
        samples = asyncio.run(self.run(prompts, n, sampling, progress))
        out = Generated(samples, {"generator": self.name, "n": n, **vars(sampling)})
        if prompts and n and out.failures == len(prompts) * n:
            reasons = Counter(s.error for row in samples for s in row).most_common(3)
            raise GenerationError(f"{self.url}: every request failed: " + "; ".join(f"{c} x {r}" for r, c in reasons))
        return out
