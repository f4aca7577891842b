"""Choosing among scored candidates, and what choosing the best of n does to a proxy and a gold score.

Vocabulary:
- a *pool* is one prompt's candidate responses; each has a reward (its score), and from an ensemble, its
  members' rewards;
- a *rule* turns those into the one value selection maximises:
    mean   the reward (an ensemble's mean over members);
    lcb    mean - k * std over the members: a lower confidence bound, so a candidate the members disagree on
           (where the reward model is likely wrong, and a policy likely to exploit it) is held back;
    min    the members' minimum, the most conservative;
- a *tie* is several candidates sharing the top value; the first of them is picked, and the tie is counted;
- a candidate with no score (empty, or its generation failed) is never picked.
The expected best-of-n pick of a pool of M >= n candidates is exact, not sampled: the candidate ranked i-th lowest by
proxy is the pick of C(i - 1, n - 1) of the C(M, n) subsets of size n (Gao et al. 2022 use the same estimator).
"""

from __future__ import annotations

import math

import numpy as np

RULES = ("mean", "lcb", "min")


def selection_values(values: list[float | None], members: list[list[float] | None] | None = None,
                     rule: str = "mean", k: float = 1.0) -> list[float | None]:
    """[M] the value `rule` gives each candidate (None for one without a score). `members` [M][K] are an
    ensemble's member rewards; lcb and min need them."""
    if rule not in RULES:
        raise ValueError(f"unknown selection rule {rule!r}; choose from {', '.join(RULES)}")
    if rule == "mean":
        return list(values)
    if members is None:
        raise ValueError(f"selection rule {rule!r} needs an ensemble's member scores; this scorer gives one reward")
    out: list[float | None] = []
    for value, member in zip(values, members, strict=True):
        if value is None or member is None:
            out.append(None)
        elif rule == "min":
            out.append(float(min(member)))
        else:
            out.append(float(np.mean(member) - k * np.std(member, ddof=1)))
    return out


def pick(values: list[float | None]) -> tuple[int | None, int]:
    """(index of the highest value, how many candidates share it); (None, 0) when no candidate has a value."""
    scored = [(v, i) for i, v in enumerate(values) if v is not None and not math.isnan(v)]
    if not scored:
        return None, 0
    top = max(v for v, _ in scored)
    tied = [i for v, i in scored if v == top]
    return tied[0], len(tied)


def expected_best_of(proxy: np.ndarray, gold: np.ndarray, n: int) -> tuple[float, float]:
    """(E[proxy], E[gold]) of the proxy-best candidate of a uniformly random n-subset of a pool. proxy, gold: [M];
    1 <= n <= M. Ties in proxy are broken at random, so tied candidates share their mean gold."""
    proxy, gold = np.asarray(proxy, dtype=float), np.asarray(gold, dtype=float)
    m = len(proxy)
    if not 1 <= n <= m:
        raise ValueError(f"best of {n} needs 1 <= n <= {m} candidates")
    order = np.argsort(proxy, kind="stable")
    p, g = proxy[order], gold[order].copy()
    for value in np.unique(p):  # a random tie-break picks each tied candidate equally often
        same = p == value
        g[same] = g[same].mean()
    ranks = np.arange(1, m + 1)  # the candidate at rank i is the pick of C(i-1, n-1) subsets
    weights = np.array([math.comb(int(i) - 1, n - 1) for i in ranks], dtype=float) / math.comb(m, n)
    return float(weights @ p), float(weights @ g)


def kl_bound(n: int) -> float:
    """log n - (n - 1) / n: the analytic KL(best-of-n || sampling policy) of Gao et al. 2022, an upper bound on the
    true value (Beirami et al. 2024); nats."""
    return math.log(n) - (n - 1) / n
