"""Losses over the steps of solutions: step rewards [B, T] (logits), labels [B, T] in [0, 1], a mask [B, T]."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def step_bce(step_rewards: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy −[y·log σ(r) + (1 − y)·log σ(−r)] averaged over the masked steps; a soft label y
    (e.g. a Monte-Carlo estimate 0.7) is used as it is, not rounded. 0 when no step is masked in."""
    per_step = F.binary_cross_entropy_with_logits(step_rewards.float(), labels.nan_to_num(0.0).float(),
                                                  reduction="none")
    return (per_step * mask).sum() / mask.sum().clamp(min=1)
