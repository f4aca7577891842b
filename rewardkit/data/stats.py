"""Dataset statistics: counts by kind and category, and length distributions in tokens."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

import numpy as np

from rewardkit.data.kinds import KINDS
from rewardkit.data.texts import is_features, text_of


def whitespace_tokens(text: str) -> int:
    return len(text.split())


def _summary(lengths: list[int]) -> dict:
    if not lengths:
        return {}
    a = np.asarray(lengths)
    return {"count": int(a.size), "mean": round(float(a.mean()), 1), "min": int(a.min()),
            "p50": int(np.percentile(a, 50)), "p90": int(np.percentile(a, 90)), "p99": int(np.percentile(a, 99)),
            "max": int(a.max())}


def dataset_stats(records: Iterable[dict], count_tokens: Callable[[str], int] = whitespace_tokens,
                  max_length: int | None = None) -> dict:
    kinds, categories = Counter(), Counter()
    prompt_len, response_len, total_len = [], [], []
    over = 0
    for r in records:
        kinds[r["kind"]] += 1
        if r.get("category") is not None:
            categories[str(r["category"])] += 1
        p = count_tokens(text_of(r.get("prompt", ""))) if r.get("prompt") else 0
        responses = KINDS[r["kind"]].responses(r)
        if is_features(responses[0]):
            continue  # feature vectors have no token length
        prompt_len.append(p)
        for resp in responses:
            n = count_tokens(text_of(resp))
            response_len.append(n)
            total_len.append(p + n)
            over += max_length is not None and p + n > max_length
    out = {"records": sum(kinds.values()), "kinds": dict(kinds), "categories": dict(categories.most_common()),
           "prompt_length": _summary(prompt_len), "response_length": _summary(response_len),
           "sequence_length": _summary(total_len)}
    if max_length is not None:
        out["sequences_over_max_length"] = over
    return out
