"""Agreement and calibration metrics, as small pure functions over plain lists of numbers.

Conventions shared by every function here:
- a *margin* is score(chosen) - score(rejected); a pair is right when the margin is positive, and a
  tie in scores counts as half (a constant scorer gets 50%, never 100%);
- pairs whose *label* is a tie are not scored for accuracy; callers count them separately;
- rank correlations use average ranks for ties (Kendall's tau-b, Spearman's rho on average ranks).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np


def pair_credit(margin: float) -> float:
    """1 if the chosen response scored higher, 0.5 for a tie in scores, 0 otherwise."""
    return 1.0 if margin > 0 else 0.5 if margin == 0 else 0.0


def pairwise_accuracy(margins: Sequence[float], label_ties: Sequence[bool] | None = None) -> dict:
    """Accuracy over pairs with a strict label; label ties are counted, not scored."""
    ties = list(label_ties) if label_ties is not None else [False] * len(margins)
    credit = [pair_credit(m) for m, tie in zip(margins, ties, strict=True) if not tie]
    return {"accuracy": float(np.mean(credit)) if credit else float("nan"), "pairs": len(credit),
            "label_ties": sum(ties), "score_ties": sum(1 for m, t in zip(margins, ties, strict=True) if m == 0 and not t)}


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n of the values (ascending); tied values share the mean of the ranks they span."""
    x = np.asarray(values, dtype=float)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and x[order[j + 1]] == x[order[i]]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def auroc(signal: Sequence[float], positive: Sequence[bool]) -> float:
    """Probability that a random positive has a higher signal than a random negative (ties count half);
    nan when either class is empty. Computed from average ranks (Mann-Whitney U)."""
    pos = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if not n_pos or not n_neg:
        return float("nan")
    ranks = average_ranks(signal)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation; nan when either side is constant or there are fewer than 2 points."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    return pearson(average_ranks(x), average_ranks(y))


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b: (concordant - discordant) / sqrt((n0 - ties_x)(n0 - ties_y)). O(n^2), fine per prompt."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    i, j = np.triu_indices(len(a), k=1)
    sx, sy = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    pairs_x, pairs_y = np.count_nonzero(sx), np.count_nonzero(sy)
    if pairs_x == 0 or pairs_y == 0:
        return float("nan")
    return float((sx * sy).sum() / math.sqrt(pairs_x * pairs_y))


def best_of_k(scores: Sequence[float], best: int) -> float:
    """RewardBench-2 credit: 1 / (number tied at the top) if the labelled best is at the top, else 0."""
    top = max(scores)
    return 1.0 / sum(1 for s in scores if s == top) if scores[best] == top else 0.0


def ndcg(scores: Sequence[float], relevance: Sequence[float]) -> float:
    """Normalised DCG with linear gains and 1/log2(1 + position) discounts.

    Responses tied in score share the mean discount of the positions they span (McSherry & Najork 2008),
    so ties never profit from the order the responses were given in.
    """
    s, rel = np.asarray(scores, dtype=float), np.asarray(relevance, dtype=float)
    discounts = 1.0 / np.log2(np.arange(2, len(s) + 2))
    ideal = float((np.sort(rel)[::-1] * discounts).sum())
    if ideal == 0:
        return float("nan")
    dcg, position = 0.0, 0
    for value in sorted(set(s.tolist()), reverse=True):
        tied = s == value
        span = discounts[position:position + tied.sum()]
        dcg += rel[tied].sum() * span.mean()
        position += int(tied.sum())
    return dcg / ideal


def preference_probability(margins: Sequence[float], temperature: float = 1.0, bias: float = 0.0) -> np.ndarray:
    """P(first > second) = sigmoid(margin / T + b)."""
    z = np.asarray(margins, dtype=float) / temperature + bias
    return 0.5 * (1.0 + np.tanh(z / 2))  # the logistic function, without overflow for large margins


def calibration(margins: Sequence[float], temperature: float = 1.0, bias: float = 0.0, bins: int = 10) -> dict:
    """Log-loss, Brier score and expected calibration error of P(chosen > rejected).

    ECE and the reliability diagram use the predicted winner's confidence, max(p, 1 - p) in [0.5, 1],
    against how often the predicted winner is the labelled one; `bins` equal-width bins over [0.5, 1].
    """
    p = np.clip(preference_probability(margins, temperature, bias), 1e-12, 1 - 1e-12)
    if len(p) == 0:
        return {"pairs": 0}
    confidence = np.maximum(p, 1 - p)
    correct = (p > 0.5) + 0.5 * (p == 0.5)
    edges = np.linspace(0.5, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            conf, acc = float(confidence[members].mean()), float(correct[members].mean())
            ece += members.mean() * abs(acc - conf)
            table.append({"low": float(edges[b]), "high": float(edges[b + 1]), "count": int(members.sum()),
                          "confidence": conf, "accuracy": acc})
    return {"pairs": len(p), "temperature": temperature, "bias": bias, "log_loss": float(-np.log(p).mean()),
            "brier": float(((1 - p) ** 2).mean()), "ece": float(ece), "reliability": table}


def fit_calibration(margins: Sequence[float], targets: Sequence[float] | None = None) -> tuple[float, float]:
    """Platt scaling: the temperature T and bias b minimising log-loss of sigmoid(margin / T + b).

    `targets` are P(first is better) labels (1, 0 or 0.5 for a tie). Chosen-vs-rejected pairs have
    target 1 only, which would push b to infinity, so without targets every pair is used in both
    orders (margin with target 1, -margin with target 0): the fit is then a pure temperature, b = 0.
    """
    import torch

    m = torch.tensor(list(margins), dtype=torch.float64)
    if targets is None:
        y = torch.cat([torch.ones_like(m), torch.zeros_like(m)])
        m = torch.cat([m, -m])
    else:
        y = torch.tensor(list(targets), dtype=torch.float64)
    if len(m) == 0:
        raise ValueError("no pairs to fit a calibration on")
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    params = [log_t] if targets is None else [log_t, b]
    optimizer = torch.optim.LBFGS(params, lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(m / log_t.exp() + b, y)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp()), float(b.detach())


def bootstrap_ci(values: Sequence[float], statistic: Callable[[np.ndarray], float] = np.mean,
                 groups: Sequence | None = None, resamples: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval. With `groups`, whole groups are resampled (e.g. the 9 style pairs
    of one RM-Bench prompt), since items of one prompt are not independent."""
    x = np.asarray(values, dtype=float)
    if len(x) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    if groups is None:
        stats = [statistic(x[rng.integers(0, len(x), len(x))]) for _ in range(resamples)]
    else:
        keys: dict = {}
        members = [keys.setdefault(g, []) for g in groups]
        for i, bucket in enumerate(members):
            bucket.append(i)
        buckets = [np.asarray(b) for b in keys.values()]
        stats = []
        for _ in range(resamples):
            picked = rng.integers(0, len(buckets), len(buckets))
            stats.append(statistic(x[np.concatenate([buckets[k] for k in picked])]))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(stats, [tail, 100 - tail])
    return (float(low), float(high))


def ks_statistic(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and its asymptotic p-value."""
    x, y = np.sort(np.asarray(a, dtype=float)), np.sort(np.asarray(b, dtype=float))
    if len(x) == 0 or len(y) == 0:
        return float("nan"), float("nan")
    grid = np.concatenate([x, y])
    d = float(np.abs(np.searchsorted(x, grid, side="right") / len(x) - np.searchsorted(y, grid, side="right") / len(y)).max())
    n = len(x) * len(y) / (len(x) + len(y))
    lam = (math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * d
    return d, kolmogorov_survival(lam)


def kolmogorov_survival(lam: float) -> float:
    """P(K > lam) for the Kolmogorov distribution, with the series that converges fast on each side."""
    if lam <= 0:
        return 1.0
    if lam < 1.18:
        cdf = math.sqrt(2 * math.pi) / lam * sum(math.exp(-((2 * k - 1) ** 2) * math.pi ** 2 / (8 * lam * lam))
                                                 for k in range(1, 20))
        return float(min(max(1.0 - cdf, 0.0), 1.0))
    return float(min(max(2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 20)), 0.0), 1.0))
