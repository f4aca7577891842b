"""Pools: one prompt's candidate responses, read from a file or generated, then scored by any scorer.

A pool file holds one record per prompt: `prompt` (a string or chat messages), `responses` [M] (texts, or lists
of steps for a process reward model), and optionally `gold` [M] (numbers or booleans from a verifier no reward
model sees: the over-optimisation curves read it) and `id`. A prompts file holds records with a `prompt` (and an
optional `id`); the candidates are generated. A candidate that is empty, or whose generation failed, stays in its
pool (with its reason) and gets no score, so it is counted and never chosen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from rewardkit.data.io import iter_raw
from rewardkit.data.texts import Steps, check_text, text_of, text_steps
from rewardkit.errors import ConfigError, DataError
from rewardkit.generation.base import Generator, Prompt, Sampling
from rewardkit.scores import Scores


@dataclass
class Pool:
    prompt: Prompt
    responses: list            # [M] str, list[str] (steps), or None where generation failed
    gold: list[float] | None = None
    id: str | None = None
    errors: list[str | None] | None = None  # [M] why a generation failed

    def usable(self, i: int) -> bool:
        """Whether candidate i can be scored: generated, and not empty."""
        return bool(response_text(self.responses[i]).strip())


def is_steps(value) -> bool:
    """A solution in steps: a list of strings (a list of messages is a conversation)."""
    return isinstance(value, list) and bool(value) and all(isinstance(s, str) for s in value)


def response_text(response) -> str:
    """A candidate as plain text: a solution's steps one per line, a conversation's words, "" for a failed one."""
    if response is None:
        return ""
    return "\n".join(response) if is_steps(response) else text_of(response)


def _check_response(value, field: str):
    if is_steps(value):
        return list(value)
    return check_text(value, field, allow_empty=True)


def read_prompts(path: str | Path) -> list[tuple[str, Prompt]]:
    """(id, prompt) of every record of a prompts file; the id defaults to the line number."""
    out = []
    for line, raw in iter_raw(path):
        if not isinstance(raw, dict):
            raise DataError("a record must be an object with a 'prompt'", source=str(path), line=line)
        try:
            out.append((str(raw.get("id", line)), check_text(raw.get("prompt"), "prompt")))
        except DataError as err:
            raise DataError(err.message, source=str(path), line=line, field=err.field) from None
    return out


def read_pools(path: str | Path) -> list[Pool]:
    """The pools of a candidates file, checked: an error names the file, line and field."""
    pools = []
    for line, raw in iter_raw(path):
        try:
            if not isinstance(raw, dict):
                raise DataError("a record must be an object with 'prompt' and 'responses'")
            prompt = check_text(raw.get("prompt"), "prompt")
            responses = raw.get("responses")
            if not isinstance(responses, list) or not responses:
                raise DataError("must be a non-empty list of candidate responses", field="responses")
            responses = [_check_response(r, f"responses[{i}]") for i, r in enumerate(responses)]
            gold = raw.get("gold")
            if gold is not None:
                if not isinstance(gold, list) or len(gold) != len(responses):
                    raise DataError(f"must list one value per response ({len(responses)})", field="gold")
                if not all(isinstance(g, int | float) for g in gold):  # bool is an int: right / wrong
                    raise DataError("values must be numbers or booleans", field="gold")
                gold = [float(g) for g in gold]
            pools.append(Pool(prompt, responses, gold, str(raw.get("id", line))))
        except DataError as err:
            raise DataError(err.message, source=str(path), line=line, field=err.field) from None
    return pools


def generate_pools(generator: Generator, prompts: list[tuple[str, Prompt]], n: int, sampling: Sampling,
                   progress: bool = False) -> tuple[list[Pool], dict]:
    """n generated candidates per prompt, and the generator's provenance."""
    generated = generator.generate([p for _, p in prompts], n, sampling, progress)
    pools = [Pool(prompt, [s.text for s in samples], None, pid, [s.error for s in samples])
             for (pid, prompt), samples in zip(prompts, generated.samples, strict=True)]
    return pools, generated.info


def score_pools(scorer, pools: list[Pool], step_separator: str = "") -> list[Scores]:
    """Per pool, the Scores of its usable candidates (a candidate without one gets value None). With
    `step_separator`, text responses are cut into steps at it (for a process reward model)."""
    from rewardkit.eval.scorers import score_items

    items, where = [], []
    for p, pool in enumerate(pools):
        for i, response in enumerate(pool.responses):
            if pool.usable(i):
                if is_steps(response):
                    response = Steps(response)
                elif step_separator:
                    response = Steps(text_steps(response, step_separator))
                items.append((pool.prompt, response))
                where.append((p, i))
    scored = score_items(scorer, items) if items else Scores([])
    values = [[None] * len(pool.responses) for pool in pools]
    members = [[None] * len(pool.responses) for pool in pools] if scored.members is not None else None
    steps = [[None] * len(pool.responses) for pool in pools] if scored.steps is not None else None
    for j, (p, i) in enumerate(where):
        values[p][i] = scored.values[j]
        if members is not None:
            members[p][i] = scored.members[j]
        if steps is not None:
            steps[p][i] = scored.steps[j]
    return [Scores(values[p], None if members is None else members[p], None if steps is None else steps[p])
            for p in range(len(pools))]


def gold_from(scorer, pools: list[Pool], step_separator: str = "") -> None:
    """Give pools without gold values a gold: a (stronger) scorer's score of each candidate, NaN where it has none."""
    if any(p.gold is not None for p in pools):
        raise ConfigError("a gold model gives gold values to pools without them; these pools have their own")
    for pool, scores in zip(pools, score_pools(scorer, pools, step_separator), strict=True):
        pool.gold = [math.nan if v is None else v for v in scores.values]
