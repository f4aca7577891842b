"""Active selection: which pooled pairs to ask people about next, by what a reward model does not know.

  disagreement  the pairs an ensemble's members disagree on most: the std across members of
                sigmoid(r_m(first) - r_m(second)) (rewardkit.data.kinds.pairwise.preference_uncertainty)
  margin        the pairs with the smallest |r(first) - r(second)|: the model's closest calls (any model)
  random        a random order, the baseline
"""

from __future__ import annotations

import random

from rewardkit.data.kinds.pairwise import preference_uncertainty
from rewardkit.errors import ConfigError
from rewardkit.scores import Scores

SELECTIONS = ("disagreement", "margin", "random")


def rank_pairs(how: str, scores: Scores, seed: int = 0) -> list[int]:
    """Pair indices, the most worth asking first. `scores` holds 2N items: pair i's first response at 2i, its
    second at 2i + 1 (and, for "disagreement", each item's ensemble members)."""
    n = len(scores) // 2
    if how == "random":
        order = list(range(n))
        random.Random(seed).shuffle(order)
        return order
    if how == "margin":
        worth = [-abs(scores.values[2 * i] - scores.values[2 * i + 1]) for i in range(n)]
    elif how == "disagreement":
        if scores.members is None:
            raise ConfigError("selection by disagreement needs an ensemble (a model with members); use margin")
        worth = [preference_uncertainty(scores.members[2 * i], scores.members[2 * i + 1]) for i in range(n)]
    else:
        raise ConfigError(f"selection must be one of {', '.join(SELECTIONS)}, got {how!r}")
    return sorted(range(n), key=lambda i: -worth[i])


def pair_items(contents: list[dict]) -> list[tuple]:
    """The (prompt, response) items a scorer takes for pooled pairwise contents, two per pair."""
    return [(c["prompt"], r) for c in contents for r in c["responses"]]
