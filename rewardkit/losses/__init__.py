"""Reward-model objectives as small pure functions of reward tensors.

Shapes: pairwise losses take r_pos, r_neg [B]; listwise and ranking losses take rewards [B, K] with a
boolean `valid` mask [B, K] (records may have different K). Every loss returns the batch mean.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

NEG_INF = -1e9


def bradley_terry(r_pos: torch.Tensor, r_neg: torch.Tensor, margin: torch.Tensor | float | None = None,
                  label_smoothing: float = 0.0) -> torch.Tensor:
    """-log σ(r⁺ − r⁻ − m): Bradley–Terry, optionally with a per-pair margin m (Llama 2 style).
    With label smoothing ε the label is "chosen wins with probability 1 − ε": −(1 − ε)·log σ(d) − ε·log σ(−d),
    whose minimum is at d = log((1 − ε)/ε), so no pair's margin is pushed without bound (noisy human labels)."""
    diff = r_pos - r_neg
    if margin is not None:
        diff = diff - margin
    return preference_nll(diff, label_smoothing).mean()


def preference_nll(diff: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Per-pair −log P(label) for margins d = r⁺ − r⁻ (unreduced), the label right with probability 1 − ε."""
    if not label_smoothing:
        return -F.logsigmoid(diff)
    return -((1 - label_smoothing) * F.logsigmoid(diff) + label_smoothing * F.logsigmoid(-diff))


def hinge(r_pos: torch.Tensor, r_neg: torch.Tensor, margin: torch.Tensor | float = 1.0) -> torch.Tensor:
    """max(0, m − (r⁺ − r⁻))."""
    return F.relu(margin - (r_pos - r_neg)).mean()


def listwise_softmax(rewards: torch.Tensor, best: torch.Tensor, valid: torch.Tensor | None = None,
                     temperature: float = 1.0) -> torch.Tensor:
    """−log softmax(R / T)_b for best-of-K records: the human's pick b among K candidates.

    Its gradient with respect to R_i is (P_i − 1[i = b]) / T, so that the parameter gradient is
    −(∇R_b − Σ_i P_i ∇R_i) / T.
    """
    logits = rewards / temperature
    if valid is not None:
        logits = logits.masked_fill(~valid, NEG_INF)
    return -logits.log_softmax(dim=-1).gather(1, best.view(-1, 1)).mean()


def ranking_pairs(rewards: torch.Tensor, ranks: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """A full ranking as all C(K, 2) pairs, each Bradley–Terry, weighted 1 / C(K, 2).

    `ranks` are 1 = best; tied pairs carry no preference and add nothing (but still count in C(K, 2)).
    """
    valid = torch.ones_like(ranks, dtype=torch.bool) if valid is None else valid
    better = (ranks.unsqueeze(2) < ranks.unsqueeze(1)) & valid.unsqueeze(2) & valid.unsqueeze(1)  # [B, i, j]: i beats j
    diff = rewards.unsqueeze(2) - rewards.unsqueeze(1)
    per_pair = torch.where(better, -F.logsigmoid(diff), torch.zeros_like(diff))
    k = valid.sum(dim=1).float()
    n_pairs = (k * (k - 1) / 2).clamp(min=1)
    return (per_pair.sum(dim=(1, 2)) / n_pairs).mean()


def plackett_luce(rewards: torch.Tensor, ranks: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Plackett–Luce negative log-likelihood of a ranking (1 = best), with Breslow's rule for ties.

    −Σ_i [r_i − log Σ_{j : rank_j ≥ rank_i} exp r_j]; without ties this is the usual product of
    successive softmax choices (the last, certain choice contributes zero).
    """
    valid = torch.ones_like(ranks, dtype=torch.bool) if valid is None else valid
    at_or_below = (ranks.unsqueeze(1) >= ranks.unsqueeze(2)) & valid.unsqueeze(1)  # [B, i, j]: rank_j >= rank_i
    expanded = rewards.unsqueeze(1).expand(-1, rewards.shape[1], -1).masked_fill(~at_or_below, NEG_INF)
    terms = rewards - expanded.logsumexp(dim=-1)
    return -(torch.where(valid, terms, torch.zeros_like(terms)).sum(dim=1)).mean()


def regression(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error against (optionally per-annotator standardised) ratings."""
    return F.mse_loss(predicted, target)


def contrastive(r_pos: torch.Tensor, r_neg: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """InfoNCE with temperature τ: each chosen response against every rejected response in the batch.

    −log exp(r⁺_i/τ) / (exp(r⁺_i/τ) + Σ_j exp(r⁻_j/τ)). With a batch of one pair and τ = 1 it is
    Bradley–Terry; in-batch negatives add pressure against responses rejected for other prompts.
    """
    positives = (r_pos / temperature).unsqueeze(1)                                    # [B, 1]
    negatives = (r_neg / temperature).unsqueeze(0).expand(r_pos.shape[0], -1)        # [B, B]
    logits = torch.cat([positives, negatives], dim=1)
    return -logits.log_softmax(dim=1)[:, 0].mean()


def reward_centering(r_pos: torch.Tensor, r_neg: torch.Tensor) -> torch.Tensor:
    """mean((r⁺ + r⁻)²): keeps rewards centred on zero (Eisenstein et al., 2023)."""
    return ((r_pos + r_neg) ** 2).mean()


def weighted_bradley_terry(r_pos: torch.Tensor, r_neg: torch.Tensor, weights: torch.Tensor,
                           label_smoothing: float = 0.0) -> torch.Tensor:
    """Bradley–Terry per ensemble member: r_pos, r_neg, weights [B, K]; member k's loss is the
    weights[:, k]-weighted mean over pairs (bootstrap weights make the members differ); returns the mean over k."""
    per_pair = preference_nll(r_pos - r_neg, label_smoothing)
    return ((per_pair * weights).sum(dim=0) / weights.sum(dim=0).clamp(min=1e-8)).mean()


def correlation(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of two [N] tensors (0 when either is constant)."""
    x, y = x - x.mean(), y - y.mean()
    return (x * y).sum() / (x.norm() * y.norm()).clamp(min=1e-8)


def length_penalty(rewards: torch.Tensor, lengths: torch.Tensor, kind: str = "correlation") -> torch.Tensor:
    """How much the batch's rewards [N] follow response length; adding it pushes them to carry no length signal.

    correlation: corr(reward, length)². It is scale-free, so its gradient grows as 1/std(reward): at initialisation,
    where a new head's rewards spread by about 0.04, it is 10-20 times the Bradley-Terry gradient (measured on
    MiniLM) and, after clipping, starves the preference signal. covariance: cov(reward, z)², z the batch's
    standardised length, i.e. (reward units per std of length)²; its gradient grows with the rewards' spread, so it
    waits until the model has a reward scale and then holds the length slope down in the same units as the margin.

    For ensemble members [N, K] it is the mean over members, so that every member meets the penalty as a single
    model would. On the members' mean instead, members could cancel each other's length signal, and members that
    start independent would feel the penalty up to √K times more strongly against their own Bradley–Terry terms
    (the mean's spread is √K smaller)."""
    if rewards.dim() == 2:
        return torch.stack([length_penalty(rewards[:, k], lengths, kind) for k in range(rewards.shape[1])]).mean()
    lengths = lengths.to(rewards.dtype)
    if kind == "covariance":
        z = (lengths - lengths.mean()) / lengths.std().clamp(min=1e-8)
        return ((rewards - rewards.mean()) * z).mean() ** 2
    return correlation(rewards, lengths) ** 2


def l2_penalty(parameters) -> torch.Tensor:
    """Σ θ² over the given parameters (the reward head by default in the trainer)."""
    return sum((p**2).sum() for p in parameters)


def standardize_by_annotator(scores: list[float], annotators: list) -> list[float]:
    """z-score each annotator's ratings so that harsh and lenient raters agree in scale."""
    groups: dict = {}
    for s, a in zip(scores, annotators, strict=True):
        groups.setdefault(a, []).append(s)
    stats = {}
    for a, values in groups.items():
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
        stats[a] = (mean, std if std > 0 else 1.0)
    return [(s - stats[a][0]) / stats[a][1] for s, a in zip(scores, annotators, strict=True)]


PAIRWISE_OBJECTIVES = ("bt", "margin", "hinge", "contrastive")
RANKING_OBJECTIVES = ("listwise", "ranking-pairs", "plackett-luce")
RATING_OBJECTIVES = ("regression",)
OBJECTIVES = PAIRWISE_OBJECTIVES + RANKING_OBJECTIVES + RATING_OBJECTIVES
KIND_OF_OBJECTIVE = {**dict.fromkeys(PAIRWISE_OBJECTIVES, "pairwise"), **dict.fromkeys(RANKING_OBJECTIVES, "ranking"),
                     **dict.fromkeys(RATING_OBJECTIVES, "rating")}
DEFAULT_OBJECTIVE = {"pairwise": "bt", "ranking": "listwise", "rating": "regression"}
