"""Every project metric against an independent reference implementation, on seeded random inputs with many
ties (small integer values), so that the tie conventions are checked as well as the arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score, ndcg_score, roc_auc_score

from rewardkit.data.quality import cohens_kappa, fleiss_kappa
from rewardkit.eval import metrics

TRIALS = 200
TOL = 1e-9


def _tied_pairs(seed: int):
    """Seeded (x, y) integer vectors of 2..15 items drawn from few values: ties on both sides are common."""
    rng = np.random.default_rng(seed)
    for _ in range(TRIALS):
        n = int(rng.integers(2, 16))
        yield rng.integers(0, int(rng.integers(2, 6)), n).astype(float), rng.integers(0, 4, n).astype(float)


def _defined(x: np.ndarray, y: np.ndarray) -> bool:
    return len(set(x)) > 1 and len(set(y)) > 1


def test_kendall_tau_b_equals_the_pairwise_definition_and_scipy():
    for x, y in _tied_pairs(1):
        ours = metrics.kendall_tau(x, y)
        if not _defined(x, y):
            assert math.isnan(ours)
            continue
        # tau-b from its definition: (concordant - discordant) / sqrt((n0 - ties in x) (n0 - ties in y))
        i, j = np.triu_indices(len(x), k=1)
        sx, sy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        by_definition = (sx * sy).sum() / math.sqrt(np.count_nonzero(sx) * np.count_nonzero(sy))
        assert ours == pytest.approx(by_definition, abs=TOL)
        assert ours == pytest.approx(stats.kendalltau(x, y).statistic, abs=TOL)


def test_spearman_and_pearson_equal_numpy():
    for x, y in _tied_pairs(2):
        if not _defined(x, y):
            assert math.isnan(metrics.spearman(x, y)) and math.isnan(metrics.pearson(x, y))
            continue
        assert metrics.pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1], abs=TOL)
        ranks = [np.array([(col < v).sum() + ((col == v).sum() + 1) / 2 for v in col]) for col in (x, y)]  # average ranks
        assert metrics.average_ranks(x).tolist() == pytest.approx(ranks[0].tolist(), abs=TOL)
        assert metrics.spearman(x, y) == pytest.approx(np.corrcoef(*ranks)[0, 1], abs=TOL)


def test_auroc_equals_the_pair_count_and_scikit_learn():
    for signal, labels in _tied_pairs(3):
        positive = labels >= 2
        ours = metrics.auroc(signal, positive)
        if positive.all() or not positive.any():
            assert math.isnan(ours)
            continue
        pos, neg = signal[positive], signal[~positive]
        wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
        assert ours == pytest.approx(wins / (len(pos) * len(neg)), abs=TOL)
        assert ours == pytest.approx(roc_auc_score(positive, signal), abs=TOL)


def _kolmogorov_tail(lam: float) -> float:
    """P(K > lam) from the Kolmogorov distribution's two series (each converges fast on its side)."""
    if lam <= 0:
        return 1.0
    if lam < 1.18:
        cdf = math.sqrt(2 * math.pi) / lam * sum(math.exp(-((2 * k - 1) ** 2) * math.pi ** 2 / (8 * lam * lam))
                                                 for k in range(1, 20))
        return min(max(1.0 - cdf, 0.0), 1.0)
    return min(max(2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 20)), 0.0), 1.0)


def test_ks_statistic_and_p_value_equal_the_ecdf_and_the_kolmogorov_series():
    rng = np.random.default_rng(4)
    for _ in range(TRIALS):
        a = rng.integers(0, 6, int(rng.integers(1, 40))).astype(float)
        b = (rng.integers(0, 6, int(rng.integers(1, 40))) + rng.integers(0, 2)).astype(float)
        d, p = metrics.ks_statistic(a, b)
        grid = np.concatenate([a, b])
        ecdf_gap = np.abs((a[None, :] <= grid[:, None]).mean(1) - (b[None, :] <= grid[:, None]).mean(1)).max()
        assert d == pytest.approx(ecdf_gap, abs=TOL)
        assert d == pytest.approx(stats.ks_2samp(a, b).statistic, abs=TOL)
        n = len(a) * len(b) / (len(a) + len(b))
        assert p == pytest.approx(_kolmogorov_tail((math.sqrt(n) + 0.12 + 0.11 / math.sqrt(n)) * d), abs=TOL)
    assert all(math.isnan(v) for v in metrics.ks_statistic([], [1.0]))


def test_ndcg_equals_scikit_learn_with_tie_averaging():
    for scores, relevance in _tied_pairs(5):
        ours = metrics.ndcg(scores, relevance)
        if not relevance.any():
            assert math.isnan(ours)
            continue
        assert ours == pytest.approx(ndcg_score([relevance], [scores], ignore_ties=False), abs=TOL)
    assert metrics.ndcg([0.3], [2.0]) == 1.0


def test_cohens_kappa_equals_scikit_learn():
    rng = np.random.default_rng(6)
    for _ in range(TRIALS):
        n, k = int(rng.integers(2, 30)), int(rng.integers(2, 5))
        a = rng.integers(0, k, n)
        b = np.where(rng.random(n) < 0.6, a, rng.integers(0, k, n))  # raters who agree more often than chance
        labels = ["yes", "no", "tie", "skip"]
        ours = cohens_kappa([labels[i] for i in a], [labels[i] for i in b])
        if len(set(a) | set(b)) == 1:
            assert ours == 1.0
            continue
        assert ours == pytest.approx(cohen_kappa_score(a, b), abs=TOL)
    assert cohens_kappa([1, "1", 1], [1, "1", "1"]) == pytest.approx(cohen_kappa_score([0, 1, 0], [0, 1, 1]), abs=TOL)


def test_fleiss_kappa_equals_statsmodels():
    from statsmodels.stats.inter_rater import aggregate_raters
    from statsmodels.stats.inter_rater import fleiss_kappa as reference

    rng = np.random.default_rng(7)
    for _ in range(TRIALS):
        items, raters, k = int(rng.integers(2, 25)), int(rng.integers(2, 6)), int(rng.integers(2, 5))
        truth = rng.integers(0, k, (items, 1))
        ratings = np.where(rng.random((items, raters)) < 0.5, truth, rng.integers(0, k, (items, raters)))
        ours = fleiss_kappa(ratings.tolist())
        if len(np.unique(ratings)) == 1:
            assert ours == 1.0
            continue
        assert ours == pytest.approx(reference(aggregate_raters(ratings)[0]), abs=TOL)


def test_preference_probability_is_the_shared_logistic():
    from rewardkit.scores import probability

    margins = np.linspace(-800, 800, 41)
    assert metrics.preference_probability(margins, 2.0, 0.3).tolist() == probability(margins, 2.0, 0.3).tolist()
    assert metrics.preference_probability([0.0]).tolist() == [0.5]
