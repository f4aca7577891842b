"""Fit a step reward model to labelled pairs of segments: Bradley-Terry on segment returns, soft labels allowed.

Each member sees the data in its own random order (PEBBLE), so members trained on the same labels still differ
where the labels say little, which is what query selection reads.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch

from rewardkit.control.reward import StepRewardModel, StepRewardSpec
from rewardkit.control.segments import Segment, check_segment
from rewardkit.errors import DataError
from rewardkit.losses.preference import flip_robust_nll

FOLDS = 5  # held-out stopping: at least this many folds, so a member trains on at least 4/5 of the pairs


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


def pair_accuracy(model: StepRewardModel, data: PairTensors) -> float:
    """Share of (member, pair) where the member's higher return falls on the preferred segment."""
    with torch.no_grad():
        _, right = pair_loss(model, data, torch.arange(len(data)).expand(model.spec.members, -1))
    return float(right.float().mean())


def spec_for_pairs(pairs: list[tuple[Segment, Segment]], where: str, architecture: str = "mlp", members: int = 3,
                   hidden: int = 64, layers: int = 3) -> StepRewardSpec:
    """The model the first pair's segments ask for (observation and action sizes, chunks, instruction, frames);
    every segment is checked against it, errors naming `where`, the record and the field."""
    first = pairs[0][0]
    chunked = first.actions.ndim == 3
    instructed = first.instruction is not None
    frame_shape = list(first.frames.shape[1:]) if first.frames is not None else []
    spec = StepRewardSpec(first.observations.shape[1], first.actions.shape[-1], chunk=first.actions.shape[1] if chunked else 0,
                          architecture=architecture, members=members, hidden=hidden, layers=layers,
                          instructed=instructed, frame_shape=frame_shape)
    for i, (a, b) in enumerate(pairs):
        for name, segment in (("a", a), ("b", b)):
            check_segment(segment, f"{where}: record {i + 1}.{name}", spec.obs_dim, spec.action_shape, instructed,
                          frame_shape)
    return spec


def shuffled(pool: torch.Tensor, width: int, generator: torch.Generator) -> torch.Tensor:
    """The pair indices of `pool` in a random order, padded to `width` by repeating random ones of them."""
    order = pool[torch.randperm(len(pool), generator=generator)]
    if len(order) < width:
        order = torch.cat([order, pool[torch.randint(len(pool), (width - len(pool),), generator=generator)]])
    return order


def member_folds(n: int, members: int, generator: torch.Generator) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Cross-validation folds for an ensemble: pair i belongs to fold i mod F, F = max(members, 5), so a pair keeps
    its fold as labels are added round after round. Member m trains on the pairs outside fold m and is checked on
    fold m: each member trains on at least 4/5 of the pairs, and the ensemble as a whole on all of them. Returns
    each member's training pairs and the validation index [M, V] (shorter folds padded by repeats). Needs n >= F."""
    fold = torch.arange(n) % max(members, FOLDS)
    train = [torch.nonzero(fold != m).flatten() for m in range(members)]
    held = [torch.nonzero(fold == m).flatten() for m in range(members)]
    width = max(len(h) for h in held)
    validation = torch.stack([shuffled(h, width, generator) for h in held])
    return train, validation


def fit_preferences(model: StepRewardModel, data: PairTensors, epochs: int = 50, batch_size: int = 128,
                    lr: float = 3e-4, seed: int = 0, optimizer: torch.optim.Optimizer | None = None,
                    stop_accuracy: float = 0.97, label_flips: float = 0.0, held_out: bool = False,
                    patience: int = 5) -> dict:
    """Train in place for at most `epochs` passes over the data; the model's input standardisation is set from the
    data's steps first. Two ways to stop early:
    - by training accuracy (default): after the first pass whose accuracy reaches `stop_accuracy` (PEBBLE's rule;
      above 1 = never stop early). With a noisy teacher this rule is rarely met, and the passes run on until the
      members have learnt the wrong answers too;
    - `held_out`: each member holds out its own fold of the pairs (member_folds); after `patience` passes without a
      lower mean loss on the held-out folds, training stops and the weights of the best pass are restored. With
      fewer pairs than folds (an early round) the accuracy rule is used instead.
    With `label_flips` > 0 the loss expects that share of wrong labels (rewardkit.losses.flip_robust_nll). Returns
    the last pass's loss and training accuracy, the passes run, the rule used (`stop`) and with held-out stopping
    the best pass (`best_epoch`) and its loss on the held-out folds (`fold_loss`). Pass the same optimizer between
    rounds to continue training, as PEBBLE does."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    model.standardise_inputs(data.obs, data.actions)
    n, members = len(data), model.spec.members
    held_out = held_out and n >= max(members, FOLDS)
    pools, validation = member_folds(n, members, generator) if held_out else ([torch.arange(n)] * members, None)
    width = max(len(p) for p in pools)
    best = {"loss": math.inf, "pass": 0, "weights": None}
    passes = 0
    while passes < epochs:
        passes += 1
        model.train()
        order = torch.stack([shuffled(p, width, generator) for p in pools])                   # [M, W]
        total, right = 0.0, 0
        for start in range(0, width, batch_size):
            loss, correct = pair_loss(model, data, order[:, start:start + batch_size], label_flips)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * correct.shape[1]
            right += int(correct.sum())
        if not held_out:
            if right / (width * members) >= stop_accuracy:
                break
            continue
        model.eval()
        with torch.no_grad():
            held_loss = pair_loss(model, data, validation, label_flips)[0].item()
        if held_loss < best["loss"]:
            best = {"loss": held_loss, "pass": passes, "weights": copy.deepcopy(model.state_dict())}
        elif passes - best["pass"] >= patience:
            break
    model.eval()
    model.version += 1
    fit = {"loss": total / width, "train_accuracy": right / (width * members), "epochs": passes,
           "stop": "held-out" if held_out else "accuracy"}
    if held_out:
        model.load_state_dict(best["weights"])
        fit.update(best_epoch=best["pass"], fold_loss=best["loss"])
    return fit
