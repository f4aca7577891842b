"""Agreement and calibration metrics, as small functions over plain lists of numbers.

Conventions shared by every function here:
- a *margin* is score(chosen) - score(rejected); a pair is right when the margin is positive, and a
  tie in scores counts as half (a constant scorer gets 50%, never 100%);
- pairs whose *label* is a tie are not scored for accuracy; callers count them separately;
- rank correlations use average ranks for ties (Kendall's tau-b, Spearman's rho on average ranks);
- a statistic that is undefined on its input (a constant side, too few items, an empty class) is nan.

The statistics themselves come from scipy and scikit-learn; what is written here are the conventions
(nan instead of warnings or exceptions for degenerate inputs) and what the libraries do not have.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats
from sklearn.metrics import ndcg_score, roc_auc_score

from rewardkit.scores import pair_credit, probability


def pairwise_accuracy(margins: Sequence[float], label_ties: Sequence[bool] | None = None) -> dict:
    """Accuracy over pairs with a strict label; label ties are counted, not scored."""
    ties = list(label_ties) if label_ties is not None else [False] * len(margins)
    credit = [pair_credit(m) for m, tie in zip(margins, ties, strict=True) if not tie]
    return {"accuracy": float(np.mean(credit)) if credit else float("nan"), "pairs": len(credit),
            "label_ties": sum(ties), "score_ties": sum(1 for m, t in zip(margins, ties, strict=True) if m == 0 and not t)}


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks 1..n of the values (ascending); tied values share the mean of the ranks they span."""
    return stats.rankdata(np.asarray(values, dtype=float), method="average")


def auroc(signal: Sequence[float], positive: Sequence[bool]) -> float:
    """Probability that a random positive has a higher signal than a random negative (ties count half);
    nan when either class is empty."""
    pos = np.asarray(positive, dtype=bool)
    if pos.all() or not pos.any():
        return float("nan")
    return float(roc_auc_score(pos, np.asarray(signal, dtype=float)))


def _varies(*columns: np.ndarray) -> bool:
    """Whether a correlation of these columns is defined: at least 2 points and no constant column."""
    return all(len(c) >= 2 and c.min() != c.max() for c in columns)


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation; nan when either side is constant or there are fewer than 2 points."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return float(stats.pearsonr(a, b).statistic) if _varies(a, b) else float("nan")


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho: Pearson correlation of the average ranks; nan as for `pearson`."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return float(stats.spearmanr(a, b).statistic) if _varies(a, b) else float("nan")


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b: (concordant - discordant) / sqrt((n0 - ties_x)(n0 - ties_y)); nan as for `pearson`."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return float(stats.kendalltau(a, b, variant="b").statistic) if _varies(a, b) else float("nan")


def best_of_k(scores: Sequence[float], best: int) -> float:
    """RewardBench-2 credit: 1 / (number tied at the top) if the labelled best is at the top, else 0."""
    top = max(scores)
    return 1.0 / sum(1 for s in scores if s == top) if scores[best] == top else 0.0


def ndcg(scores: Sequence[float], relevance: Sequence[float]) -> float:
    """Normalised DCG with linear gains (non-negative relevance) and 1/log2(1 + position) discounts.

    Responses tied in score share the mean discount of the positions they span (McSherry & Najork 2008),
    so ties never profit from the order the responses were given in. nan when every relevance is 0.
    """
    s, rel = np.asarray(scores, dtype=float), np.asarray(relevance, dtype=float)
    if not rel.any():
        return float("nan")
    if len(s) == 1:  # scikit-learn refuses a one-item list; its only order is the ideal one
        return 1.0
    return float(ndcg_score(rel[None, :], s[None, :], ignore_ties=False))


def preference_probability(margins: Sequence[float], temperature: float = 1.0, bias: float = 0.0) -> np.ndarray:
    """P(first > second) = sigmoid(margin / T + b), elementwise."""
    return probability(np.asarray(margins, dtype=float), temperature, bias)


def calibration(margins: Sequence[float], temperature: float = 1.0, bias: float = 0.0, bins: int = 10) -> dict:
    """Log-loss, Brier score and expected calibration error of P(chosen > rejected).

    ECE and the reliability diagram use the predicted winner's confidence, max(p, 1 - p) in [0.5, 1],
    against how often the predicted winner is the labelled one; `bins` equal-width bins over [0.5, 1].
    """
    p = np.clip(preference_probability(margins, temperature, bias), 1e-12, 1 - 1e-12)
    if len(p) == 0:
        return {"pairs": 0}
    ece, table = _reliability(p, bins)
    # Log-loss and Brier by hand: every pair's target is 1 (the chosen response wins), a single class that
    # scikit-learn's log_loss refuses without extra arguments; each is one line of numpy here.
    return {"pairs": len(p), "temperature": temperature, "bias": bias, "log_loss": float(-np.log(p).mean()),
            "brier": float(((1 - p) ** 2).mean()), "ece": ece, "reliability": table}


def _reliability(p: np.ndarray, bins: int) -> tuple[float, list[dict]]:
    """ECE and the reliability table of the predicted winner's confidence, in equal-width bins over [0.5, 1]."""
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
    return float(ece), table


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
    """Two-sample Kolmogorov-Smirnov statistic and its asymptotic p-value; nan, nan when a sample is empty.

    The p-value is the Kolmogorov distribution's tail at Stephens' small-sample corrected
    lambda = (sqrt(n) + 0.12 + 0.11 / sqrt(n)) * D, n = n_a n_b / (n_a + n_b); scipy's ks_2samp offers an
    exact p-value and an asymptotic one without that correction, neither of them this one.
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) == 0 or len(y) == 0:
        return float("nan"), float("nan")
    d = float(stats.ks_2samp(x, y, method="asymp").statistic)
    n = len(x) * len(y) / (len(x) + len(y))
    return d, kolmogorov_survival((math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * d)


def kolmogorov_survival(lam: float) -> float:
    """P(K > lam) for the Kolmogorov distribution (the limit of sqrt(n) times the KS statistic)."""
    return float(stats.kstwobign.sf(lam))
