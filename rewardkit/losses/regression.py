"""Losses that fit rewards to numeric ratings."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def regression(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error against (optionally per-annotator standardised) ratings."""
    return F.mse_loss(predicted, target)
