"""Penalties added to a preference loss: centring, length de-biasing, weight decay of the head."""

from __future__ import annotations

import torch


def reward_centering(r_pos: torch.Tensor, r_neg: torch.Tensor) -> torch.Tensor:
    """mean((r⁺ + r⁻)²): keeps rewards centred on zero (Eisenstein et al., 2023)."""
    return ((r_pos + r_neg) ** 2).mean()


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
