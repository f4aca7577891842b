"""Serving a generative judge (rewardkit.judge) with the server's batching, limits and auth.

POST /v1/score    {"inputs": [{"prompt", "response"} | {"messages"}]} -> {"scores": [mean parsed vote, 1-10, or null
                  when no vote parsed], "votes": [[...k]], "failures": n, "seconds_per_judgement": s}
POST /v1/compare  {"prompt", "responses": [first, second]} -> {"p_first", "votes", "position_flip", "failures",
                  "seconds_per_judgement"} (both answer orders; k votes each)
Questions from requests that arrive together go to the judge in one generate call (one batch for the local model,
concurrent requests for a server backend), like the reward model routes.
"""

from __future__ import annotations

import math
import time

from rewardkit.scores import Scores
from rewardkit.serve.protocol import RequestError


class JudgeService:
    """process(requests) for the DynamicBatcher. An item is ("rate", prompt, response) or ("compare", prompt, a, b)."""

    def __init__(self, judge):
        self.judge = judge

    def process(self, requests: list[list[tuple]]) -> list:
        items = [item for request in requests for item in request]
        rated = [item[1:] for item in items if item[0] == "rate"]
        compared = [item[1:] for item in items if item[0] == "compare"]
        started = time.perf_counter()
        ratings = self.judge.rate(rated) if rated else None
        verdicts = iter(self.judge.compare(compared)) if compared else iter(())
        judgements = self.judge.k * (len(rated) + 2 * len(compared))
        seconds = (time.perf_counter() - started) / max(judgements, 1)
        rates = iter(range(len(rated)))
        results = []
        for request in requests:
            if request[0][0] == "rate":
                index = [next(rates) for _ in request]
                scores = [ratings.scores[i] for i in index]
                results.append({"scores": Scores([None if math.isnan(s) else s for s in scores]),
                                "votes": [ratings.votes[i] for i in index], "seconds": seconds})
            else:
                results.append({"verdict": next(verdicts), "seconds": seconds})
        return results


def judge_score_items(items: list[tuple]) -> list[tuple]:
    return [("rate", prompt, response) for prompt, response in items]


def judge_compare_item(prompt, responses: list) -> list[tuple]:
    if len(responses) != 2:
        raise RequestError(422, "a judge compares exactly 2 responses")
    return [("compare", prompt, responses[0], responses[1])]
