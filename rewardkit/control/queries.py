"""Which pairs of segments to ask the teacher about: from a pool of candidate pairs, the k the rule ranks first.

  uniform       k candidates at random
  disagreement  the pairs on which the ensemble's members disagree most: std over members of P_m(a > b)
  entropy       the pairs the ensemble is least sure of: the binary entropy of the members' mean P(a > b)
P_m(a > b) = sigmoid(R_m(a) - R_m(b)) with member m's segment returns (Bradley-Terry, as the model is trained).
PEBBLE draws the pool as `oversample` x k random pairs (10 in its code), then keeps k.
"""

from __future__ import annotations

import numpy as np

SELECTIONS = ("uniform", "disagreement", "entropy")


def pair_probabilities(returns_a: np.ndarray, returns_b: np.ndarray) -> np.ndarray:
    """P_m(a > b) [M, N] from member returns [M, N] of each pair's two segments."""
    return 1 / (1 + np.exp(-np.clip(returns_a - returns_b, -50, 50)))


def query_scores(how: str, returns_a: np.ndarray, returns_b: np.ndarray) -> np.ndarray:
    """How much each candidate pair is worth asking about [N] (higher first); uniform scores are all zero."""
    p = pair_probabilities(returns_a, returns_b)
    if how == "uniform":
        return np.zeros(p.shape[1])
    if how == "disagreement":
        return p.std(axis=0)
    if how == "entropy":
        q = np.clip(p.mean(axis=0), 1e-12, 1 - 1e-12)
        return -(q * np.log(q) + (1 - q) * np.log(1 - q))
    raise ValueError(f"query selection must be one of {', '.join(SELECTIONS)}, got {how!r}")


def select_queries(how: str, returns_a: np.ndarray, returns_b: np.ndarray, k: int,
                   rng: np.random.Generator) -> np.ndarray:
    """Indices of the k candidate pairs to ask about, best first (ties broken at random)."""
    scores = query_scores(how, returns_a, returns_b)
    order = np.lexsort((rng.random(len(scores)), -scores))  # by score, then a random tie-break
    return order[:k]
