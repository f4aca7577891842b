"""Reward-model losses: small pure functions of reward tensors, one family per file.

preference    pairs r⁺, r⁻ [B]: Bradley–Terry (with margin, label smoothing, per-member weights, a teacher's
              flip rate), hinge, InfoNCE
ranking       K responses [B, K] with a valid mask: listwise softmax, all pairs, Plackett–Luce
regression    ratings: mean squared error
regularizers  centring, length penalty (correlation or covariance), L2 on the head
process       steps of solutions [B, T]: binary cross-entropy with hard or soft labels
"""

from rewardkit.losses.preference import (
           bradley_terry,
           contrastive,
           flip_robust_nll,
           hinge,
           preference_nll,
           weighted_bradley_terry,
)
from rewardkit.losses.process import step_bce
from rewardkit.losses.ranking import NEG_INF, listwise_softmax, plackett_luce, ranking_pairs
from rewardkit.losses.regression import regression
from rewardkit.losses.regularizers import correlation, l2_penalty, length_penalty, reward_centering

__all__ = ["NEG_INF", "bradley_terry", "contrastive", "correlation", "flip_robust_nll", "hinge", "l2_penalty", "length_penalty",
           "listwise_softmax", "plackett_luce", "preference_nll", "ranking_pairs", "regression", "reward_centering", "step_bce",
           "weighted_bradley_terry"]
