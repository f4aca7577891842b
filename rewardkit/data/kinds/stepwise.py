"""Stepwise records: a prompt, the steps of a solution and a label per step (bool, or a float in [0, 1] such as a
Monte-Carlo estimate of the chance the step leads to a right answer); `first_error` (-1 = none) where known.

Scored as a solution in steps (rewardkit.model.steps): step_scores [T] (logits: P(step is right) = sigmoid; None
for a step dropped by truncation), steps_dropped when any were, and response_score, the model's aggregate of its
steps; an ensemble adds response_members and response_uncertainty.
Objective: step-bce, binary cross-entropy of each step's reward against its label (soft labels as they are).
TrainConfig decides which steps count: all, or only the last (an outcome reward model from the same data), and
whether steps after the first wrong one count as wrong or are left out.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from rewardkit import losses
from rewardkit.data.kinds.base import BatchRewards, Kind, with_spread
from rewardkit.data.texts import Steps, check_text
from rewardkit.errors import DataError
from rewardkit.scores import Scores


class Stepwise(Kind):
    name = "stepwise"
    objectives = ("step-bce",)

    def validate(self, r: dict) -> None:
        """Check the record's fields in place (normalising them), or raise DataError naming the field."""
        r["prompt"] = check_text(r.get("prompt"), "prompt")
        steps, labels = r.get("steps"), r.get("labels")
        if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
            raise DataError("must be a non-empty list of strings", field="steps")
        empty = [i for i, s in enumerate(steps) if not s.strip()]
        if empty:
            raise DataError(f"step {empty[0]} is empty", field="steps")
        if not isinstance(labels, list) or len(labels) != len(steps):
            got = len(labels) if isinstance(labels, list) else type(labels).__name__
            raise DataError(f"must give one label per step ({len(steps)} steps, got {got})", field="labels")
        r["labels"] = [_label(x) for x in labels]
        first = r.get("first_error")
        if first is not None and (isinstance(first, bool) or not isinstance(first, int) or not -1 <= first < len(steps)):
            raise DataError(f"must be -1 or a step index in 0..{len(steps) - 1}, got {first!r}", field="first_error")

    def responses(self, record: dict) -> list:
        return [Steps(record["steps"])]

    def write_scores(self, record: dict, scores: Scores) -> None:
        record["response_score"] = scores.values[0]
        if scores.steps is not None and scores.steps[0] is not None:
            kept = scores.steps[0]
            record["step_scores"] = kept + [None] * (len(record["steps"]) - len(kept))
            if len(kept) < len(record["steps"]):
                record["steps_dropped"] = len(record["steps"]) - len(kept)
        with_spread(record, "response", None if scores.members is None else scores.members[0])

    def targets(self, record: dict, heads: dict[str, int]) -> dict:
        return {"labels": [float(x) for x in record["labels"]]}

    def collate(self, targets: list[dict], sizes: list[int], n_heads: int) -> dict[str, torch.Tensor]:
        # a solution's size is its kept steps: the labels of steps that truncation dropped are left out
        k = max(sizes)
        return {"labels": torch.tensor([t["labels"][:n] + [math.nan] * (k - n) for t, n in zip(targets, sizes, strict=True)])}

    def loss(self, rewards: BatchRewards, batch: dict, objective: str, cfg: Any) -> tuple[torch.Tensor, dict]:
        """BCE of step rewards [B, T] against the labels on the steps `counted_steps` keeps; metrics: steps whose
        reward is on the side of 0 their (rounded) label is on."""
        labels = batch["labels"]
        counted = counted_steps(labels, rewards.valid, cfg.last_step_only, cfg.after_first_error)
        if cfg.after_first_error == "wrong":
            labels = torch.where(after_first_error(labels, rewards.valid), torch.zeros_like(labels), labels)
        loss = losses.step_bce(rewards.grouped, labels, counted)
        right = ((rewards.grouped.detach() > 0) == (labels >= 0.5)) & counted
        return loss, {"correct_steps": float(right.sum()), "steps": int(counted.sum())}

    def summary(self, totals: dict) -> dict:
        return {"step_accuracy": totals["correct_steps"] / totals["steps"]} if totals.get("steps") else {}


def _label(value: Any) -> bool | float:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and math.isfinite(value) and 0.0 <= value <= 1.0:
        return float(value)
    raise DataError(f"labels must be booleans or numbers in [0, 1], got {value!r}", field="labels")


def after_first_error(labels: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """[B, T]: the steps after each solution's first wrong step (label < 0.5)."""
    wrong = (labels < 0.5) & valid
    return ((wrong.long().cumsum(dim=1) - wrong.long()) > 0) & valid


def counted_steps(labels: torch.Tensor, valid: torch.Tensor, last_step_only: bool, after_error: str) -> torch.Tensor:
    """[B, T]: the steps the loss counts. last_step_only keeps each solution's last kept step (an outcome reward
    from step data); after_error 'ignore' leaves out the steps after the first wrong one."""
    counted = valid.clone()
    if after_error == "ignore":
        counted &= ~after_first_error(labels, valid)
    if last_step_only:
        counted &= valid.long().cumsum(dim=1) == valid.sum(dim=1, keepdim=True)
    return counted


STEPWISE = Stepwise()
