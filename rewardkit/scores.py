"""What a reward model's scores are, and the three pieces of arithmetic every consumer of them shares.

Scores        the value a scoring call returns: one reward per (prompt, response) item, for an ensemble the
              members' rewards of each item (in the same units), whose spread is the ensemble's uncertainty, and
              for an item that is a solution in steps, the reward of each step (rewardkit.model.steps)
normalize     the stored reward mean/std a model carries: (r - mean) / std
probability   the Bradley-Terry / calibrated preference probability sigmoid(margin / T + b)
pair_credit   how right a pair's score margin is: 1, 0.5 for tied scores, 0
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Scores:
    """values [N]: one reward per item; members [N][K]: each item's K ensemble-member rewards, or None;
    steps [N]: each item's step rewards (None for an item that is not a solution in steps), or None."""

    values: list[float]
    members: list[list[float]] | None = None
    steps: list[list[float] | None] | None = None

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, index: slice) -> Scores:
        """The scores of a slice of the items, members and steps kept alongside."""
        return Scores(self.values[index], None if self.members is None else self.members[index],
                      None if self.steps is None else self.steps[index])

    @property
    def spreads(self) -> list[float] | None:
        """Per item, the standard deviation across members (the uncertainty about the reward); None without members."""
        return None if self.members is None else [member_spread(m) for m in self.members]


def member_spread(members: list[float]) -> float:
    """Standard deviation across ensemble members (unbiased, as torch.std)."""
    return float(torch.tensor(members, dtype=torch.float32).std())


def normalize(values: torch.Tensor, stats: dict | None) -> torch.Tensor:
    """(r - mean) / std with the reward statistics a model stores at the end of training; unchanged without them."""
    if not stats:
        return values
    return (values - stats["mean"]) / max(stats["std"], 1e-8)


def probability(margin, temperature: float = 1.0, bias: float = 0.0):
    """P(first beats second) = sigmoid(margin / T + b), written with tanh so that no margin overflows; a float
    for a float margin, elementwise for an array of margins."""
    return 0.5 * (1.0 + np.tanh((np.asarray(margin, dtype=float) / temperature + bias) / 2))


def pair_credit(margin):
    """1 for a pair ranked right (margin > 0), 0.5 for tied scores, 0 for a pair ranked wrong; a float for a
    float margin, elementwise for a tensor of margins."""
    return (margin > 0) * 1.0 + (margin == 0) * 0.5
