"""Best-of-N selection and rejection sampling over scored pools.

`best_of_n` writes one record per prompt: the chosen candidate and every candidate with its score, so nothing is
hidden and the same file feeds `rejection_sample`. `rejection_sample` turns such records into training data:
SFT records (`prompt`, `completion`: TRL's prompt-completion layout) by per-prompt top-k, a score threshold or a
score quantile, and preference pairs (`prompt`, `chosen`, `rejected`: rewardkit's pairwise records and TRL's DPO
layout) best-vs-worst or best-vs-random. Every written record carries its provenance: the generator, the scorer,
the rule, the scores and the pool size N.
"""

from __future__ import annotations

import random
from collections import Counter

import numpy as np

from rewardkit.bon.pools import Pool, is_steps
from rewardkit.bon.select import pick, selection_values
from rewardkit.scores import Scores


def best_of_n(pools: list[Pool], scores: list[Scores], rule: str = "mean", k: float = 1.0,
              provenance: dict | None = None) -> tuple[list[dict], dict]:
    """(one record per pool, counts). A record: id, prompt, chosen (index or None), response, score (the chosen
    candidate's selection value), tied (how many share the top), candidates [{response, score, value, members,
    step_scores, gold, error}], provenance."""
    counts: Counter = Counter()
    out = []
    for pool, s in zip(pools, scores, strict=True):
        values = selection_values(s.values, s.members, rule, k)
        chosen, tied = pick(values)
        counts["pools"] += 1
        counts["candidates"] += len(pool.responses)
        counts["failed"] += sum(r is None for r in pool.responses)
        counts["empty"] += sum(r is not None and not pool.usable(i) for i, r in enumerate(pool.responses))
        counts["ties"] += tied > 1
        counts["no_candidate"] += chosen is None
        candidates = []
        for i, response in enumerate(pool.responses):
            c = {"response": response, "score": s.values[i], "value": values[i]}
            if s.members is not None:
                c["members"] = s.members[i]
            if s.steps is not None:
                c["step_scores"] = s.steps[i]
            if pool.gold is not None:
                c["gold"] = pool.gold[i]
            if pool.errors and pool.errors[i]:
                c["error"] = pool.errors[i]
            candidates.append(c)
        out.append({"id": pool.id, "prompt": pool.prompt, "chosen": chosen,
                    "response": None if chosen is None else pool.responses[chosen],
                    "score": None if chosen is None else values[chosen], "tied": tied, "candidates": candidates,
                    "provenance": {**(provenance or {}), "rule": rule, **({"k": k} if rule == "lcb" else {}),
                                   "n": len(pool.responses)}})
    return out, dict(counts)


def _text(response):
    """A candidate as training text: a solution's steps one per line."""
    return "\n".join(response) if is_steps(response) else response


def _ranked(record: dict) -> list[int]:
    """Indices of a record's scored candidates, best first (by selection value; ties keep candidate order)."""
    scored = [i for i, c in enumerate(record["candidates"]) if c["value"] is not None]
    return sorted(scored, key=lambda i: -record["candidates"][i]["value"])


def rejection_sample(records: list[dict], top_k: int = 1, threshold: float | None = None,
                     quantile: float | None = None, pairs: str = "", min_margin: float = 0.0,
                     seed: int = 0) -> tuple[list[dict], list[dict], dict]:
    """(SFT records, preference pairs, counts) from best-of-N records. A candidate is kept for SFT when it is
    among its prompt's top_k (0 = no limit) and its value is at least `threshold` and at least the `quantile` of
    all scored candidates' values. `pairs`: 'best-worst' or 'best-random' (a random other candidate), one pair per
    prompt whose two values differ by more than min_margin."""
    if pairs not in ("", "best-worst", "best-random"):
        raise ValueError(f"pairs must be best-worst or best-random, got {pairs!r}")
    every = [c["value"] for r in records for c in r["candidates"] if c["value"] is not None]
    cut = max(threshold if threshold is not None else -np.inf,
              float(np.quantile(every, quantile)) if quantile is not None and every else -np.inf)
    rng = random.Random(seed)
    sft, pair_records, counts = [], [], Counter()
    for r in records:
        ranked = _ranked(r)
        n = r["provenance"]["n"]
        for rank, i in enumerate(ranked[:top_k or None]):
            c = r["candidates"][i]
            if c["value"] >= cut:
                sft.append({"prompt": r["prompt"], "completion": _text(c["response"]), "id": r["id"],
                            "provenance": {**r["provenance"], "score": c["score"], "value": c["value"], "rank": rank + 1,
                                           "candidate": i, "n": n}})
            else:
                counts["below the cut"] += 1
        if pairs and len(ranked) >= 2:
            best = ranked[0]
            other = ranked[-1] if pairs == "best-worst" else rng.choice(ranked[1:])
            hi, lo = r["candidates"][best], r["candidates"][other]
            if hi["value"] - lo["value"] > min_margin:
                pair_records.append({"prompt": r["prompt"], "chosen": _text(hi["response"]), "rejected": _text(lo["response"]),
                                     "id": r["id"], "provenance": {**r["provenance"], "pairs": pairs,
                                     "chosen_score": hi["score"], "rejected_score": lo["score"],
                                     "chosen_candidate": best, "rejected_candidate": other}})
            else:
                counts["pair margin too small"] += 1
        elif pairs:
            counts["fewer than 2 scored candidates"] += 1
    counts.update({"prompts": len(records), "sft": len(sft), "pairs": len(pair_records)})
    return sft, pair_records, {"cut": None if cut == -np.inf else cut, **counts}
