"""Fit a step reward model to labelled pairs of segments: Bradley-Terry on segment returns, soft labels allowed.

Each member sees the data in its own random order (PEBBLE), so members trained on the same labels still differ
where the labels say little, which is what query selection reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rewardkit.control.reward import StepRewardModel
from rewardkit.control.segments import Segment
from rewardkit.errors import DataError
from rewardkit.losses.preference import flip_robust_nll


@dataclass
class PairTensors:
    """Labelled pairs ready for training: obs [2, N, T, D_obs], actions [2, N, T, ...], instruction embeddings
    [2, N, E] or None, frames [2, N, T, C, H, W] or None, labels [N] = P(a is preferred). Index 0 of the first
    dimension is segment a."""

    obs: torch.Tensor
    actions: torch.Tensor
    instruction: torch.Tensor | None
    frames: torch.Tensor | None
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


def pair_tensors(model: StepRewardModel, pairs: list[tuple[Segment, Segment]], labels: np.ndarray) -> PairTensors:
    labels = np.asarray(labels, dtype=np.float32)
    bad = ~((labels >= 0) & (labels <= 1))  # NaN included: a skipped query has no label to train on
    if bad.any():
        raise DataError(f"label {int(np.argmax(bad))}: must be P(a is preferred) in [0, 1], got {labels[bad][0]}")
    obs = torch.as_tensor(np.stack([np.stack([a.observations for a, _ in pairs]), np.stack([b.observations for _, b in pairs])]))
    act = torch.as_tensor(np.stack([np.stack([a.actions for a, _ in pairs]), np.stack([b.actions for _, b in pairs])]))
    instruction = None
    if model.spec.instructed:
        model.center_instructions([s.instruction for pair in pairs for s in pair])
        instruction = torch.stack([model.embed_instructions([a.instruction for a, _ in pairs]),
                                   model.embed_instructions([b.instruction for _, b in pairs])])
    frames = None
    if model.spec.frame_shape:
        frames = torch.as_tensor(np.stack([np.stack([a.frames for a, _ in pairs]), np.stack([b.frames for _, b in pairs])]))
    return PairTensors(obs, act, instruction, frames, torch.as_tensor(labels, dtype=torch.float32))


def pair_loss(model: StepRewardModel, data: PairTensors, index: torch.Tensor,
              label_flips: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean Bradley-Terry loss over members, member m on pairs index[m] ([M, b]), for a teacher who names the
    wrong segment with probability `label_flips`; and whether each member's higher return falls on the preferred
    segment [M, b] (pairs labelled 0.5 count as right)."""
    def part(x: torch.Tensor | None, s: int) -> torch.Tensor | None:
        return None if x is None else x[s][index]

    returns = [model.segment_returns(part(data.obs, s), part(data.actions, s), part(data.instruction, s), part(data.frames, s))
               for s in (0, 1)]
    diff = returns[0] - returns[1]                      # [M, b]
    label = data.labels[index]
    loss = flip_robust_nll(diff, label, label_flips).mean()
    right = ((diff > 0) == (label > 0.5)) | (label == 0.5)
    return loss, right


def fit_preferences(model: StepRewardModel, data: PairTensors, epochs: int = 50, batch_size: int = 128,
                    lr: float = 3e-4, seed: int = 0, optimizer: torch.optim.Optimizer | None = None,
                    stop_accuracy: float = 0.97, label_flips: float = 0.0) -> dict:
    """Train in place for at most `epochs` passes over the data, stopping after the first pass whose training
    accuracy reaches `stop_accuracy` (PEBBLE's rule; above 1 = never stop early); the model's input
    standardisation is set from the data's steps first. With `label_flips` > 0 the loss expects that share of
    wrong labels (rewardkit.losses.flip_robust_nll). Returns the last pass's loss, training accuracy and the passes
    run. Pass the same optimizer between rounds to continue training, as PEBBLE does."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    model.standardise_inputs(data.obs, data.actions)
    model.train()
    n, members = len(data), model.spec.members
    passes = 0
    while passes < epochs:
        passes += 1
        order = torch.stack([torch.randperm(n, generator=generator) for _ in range(members)])  # [M, N]
        total, right = 0.0, 0
        for start in range(0, n, batch_size):
            loss, correct = pair_loss(model, data, order[:, start:start + batch_size], label_flips)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * correct.shape[1]
            right += int(correct.sum())
        if right / (n * members) >= stop_accuracy:
            break
    model.eval()
    model.version += 1
    return {"loss": total / n, "train_accuracy": right / (n * members), "epochs": passes}
