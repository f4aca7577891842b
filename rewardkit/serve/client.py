"""Python clients for `rewardkit serve`: sync and async, with timeouts, retries and connection reuse.

    client = RewardClient("http://127.0.0.1:8000", api_key=None)
    client.score([("What is 2 + 2?", "4")])          # -> [1.93]
    client.compare("What is 2 + 2?", ["4", "5"])     # -> {"scores", "preference", "best_probability", "best"}

Retries cover connection errors and 503 (server busy), with exponential back-off; other HTTP errors
raise `RewardServerError` with the server's message.
"""

from __future__ import annotations

import asyncio
import time

import httpx

RETRY_STATUS = {502, 503, 504}


class RewardServerError(RuntimeError):
    def __init__(self, status: int, message: str):
        super().__init__(f"reward server answered {status}: {message}")
        self.status = status


def score_payload(pairs, normalize: bool | None) -> dict:
    payload: dict = {"inputs": [{"prompt": p, "response": r} for p, r in pairs]}
    if normalize is not None:
        payload["normalize"] = normalize
    return payload


def reward_payload(queries: list[str], prompts: list[str] | None, labels: list | None,
                   step_separator: str | None = None) -> dict:
    """The body OpenRLHF posts to a remote reward model (with a step separator: process rewards)."""
    payload: dict = {"query": queries}
    if step_separator is not None:
        payload["step_separator"] = step_separator
    if prompts is not None:
        payload["prompts"] = prompts
    if labels is not None:
        payload["labels"] = labels
    return payload


def _result(response: httpx.Response) -> dict:
    if response.status_code != 200:
        try:
            message = response.json().get("error", response.text)
        except ValueError:
            message = response.text
        raise RewardServerError(response.status_code, message)
    return response.json()


class _Base:
    def __init__(self, url: str, api_key: str | None = None, timeout: float = 60.0, retries: int = 3, backoff: float = 0.5):
        self.url = url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout, self.retries, self.backoff = timeout, retries, backoff

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        after = response.headers.get("retry-after") if response is not None else None
        return float(after) if after and after.replace(".", "", 1).isdigit() else self.backoff * 2 ** attempt


def steps_payload(solutions: list[tuple], normalize: bool | None) -> dict:
    payload: dict = {"inputs": [{"prompt": prompt, "steps": list(steps)} for prompt, steps in solutions]}
    if normalize is not None:
        payload["normalize"] = normalize
    return payload


class RewardClient(_Base):
    def __init__(self, url: str, api_key: str | None = None, timeout: float = 60.0, retries: int = 3, backoff: float = 0.5):
        super().__init__(url, api_key, timeout, retries, backoff)
        self._http = httpx.Client(timeout=timeout, headers=self.headers)  # one pooled connection set

    def _post(self, path: str, payload: dict) -> dict:
        for attempt in range(self.retries + 1):
            response = None
            try:
                response = self._http.post(self.url + path, json=payload)
                if response.status_code not in RETRY_STATUS or attempt == self.retries:
                    return _result(response)
            except httpx.TransportError:
                if attempt == self.retries:
                    raise
            time.sleep(self._delay(attempt, response))
        raise AssertionError("unreachable")

    def score(self, pairs, normalize: bool | None = None) -> list[float]:
        return self.score_details(pairs, normalize)["scores"]

    def score_details(self, pairs, normalize: bool | None = None) -> dict:
        """The whole /v1/score answer: scores, raw, normalized and, for an ensemble, each item's "uncertainty"."""
        return self._post("/v1/score", score_payload(pairs, normalize))

    def compare(self, prompt, responses: list) -> dict:
        return self._post("/v1/compare", {"prompt": prompt, "responses": responses})

    def steps(self, solutions: list[tuple], normalize: bool | None = None) -> dict:
        """Process rewards of (prompt, steps) solutions: {"scores": aggregates, "step_scores": per step}."""
        return self._post("/v1/steps", steps_payload(solutions, normalize))

    def get_reward(self, queries: list[str], prompts: list[str] | None = None, labels: list | None = None,
                   step_separator: str | None = None) -> dict:
        return self._post("/get_reward", reward_payload(queries, prompts, labels, step_separator))

    def health(self) -> dict:
        return _result(self._http.get(self.url + "/health"))

    def close(self) -> None:
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class AsyncRewardClient(_Base):
    def __init__(self, url: str, api_key: str | None = None, timeout: float = 60.0, retries: int = 3, backoff: float = 0.5):
        super().__init__(url, api_key, timeout, retries, backoff)
        self._http = httpx.AsyncClient(timeout=timeout, headers=self.headers,
                                       limits=httpx.Limits(max_connections=256, max_keepalive_connections=256))

    async def _post(self, path: str, payload: dict) -> dict:
        for attempt in range(self.retries + 1):
            response = None
            try:
                response = await self._http.post(self.url + path, json=payload)
                if response.status_code not in RETRY_STATUS or attempt == self.retries:
                    return _result(response)
            except httpx.TransportError:
                if attempt == self.retries:
                    raise
            await asyncio.sleep(self._delay(attempt, response))
        raise AssertionError("unreachable")

    async def score(self, pairs, normalize: bool | None = None) -> list[float]:
        return (await self._post("/v1/score", score_payload(pairs, normalize)))["scores"]

    async def compare(self, prompt, responses: list) -> dict:
        return await self._post("/v1/compare", {"prompt": prompt, "responses": responses})

    async def steps(self, solutions: list[tuple], normalize: bool | None = None) -> dict:
        return await self._post("/v1/steps", steps_payload(solutions, normalize))

    async def get_reward(self, queries: list[str], prompts: list[str] | None = None, labels: list | None = None,
                         step_separator: str | None = None) -> dict:
        return await self._post("/get_reward", reward_payload(queries, prompts, labels, step_separator))

    async def health(self) -> dict:
        return _result(await self._http.get(self.url + "/health"))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.aclose()
