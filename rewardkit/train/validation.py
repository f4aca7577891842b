"""Validation during training: the loss and each kind's accuracy on held-out examples, and reward statistics."""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch

from rewardkit.data.kinds import KINDS
from rewardkit.model.precision import autocast
from rewardkit.train.batches import layout, shard
from rewardkit.train.examples import Example, collate
from rewardkit.train.objectives import batch_loss


@torch.inference_mode()
def evaluate(model, examples: list[Example], objectives: dict, cfg, accelerator=None, batch_size: int = 32) -> dict:
    """Loss, each kind's metrics (pairwise / best-of-K accuracy, rating MSE), their mean accuracy, and the mean
    and std of the rewards, on examples sharded across processes."""
    raw = getattr(model, "module", model)
    was_training = raw.training
    raw.eval()
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator else (0, 1)
    mine = shard(list(range(len(examples))), rank, world)
    mine.sort(key=lambda i: (examples[i].kind, len(examples[i])))  # by kind and length: little padding
    device = next(raw.parameters()).device
    totals: dict[str, Counter] = {}
    scores: list[float] = []
    for start in range(0, len(mine), batch_size):
        chunk = [examples[i] for i in mine[start:start + batch_size]]
        for kind in {ex.kind for ex in chunk}:
            batch = collate([ex for ex in chunk if ex.kind == kind], raw, cfg.padding_side, layout(cfg))
            batch["inputs"] = {k: v.to(device) for k, v in batch["inputs"].items()}
            with autocast(cfg.precision, device):
                loss, metrics, rewards = batch_loss(raw, batch, objectives, cfg)
            totals.setdefault(kind, Counter()).update({"loss_sum": float(loss) * metrics["examples"], **metrics})
            scores += rewards.float().cpu().tolist()
    if world > 1:
        totals, scores = _gather(totals, scores)
    raw.train(was_training)
    return summarize(totals, scores)


def summarize(totals: dict[str, Counter], scores: list[float]) -> dict:
    n = sum(t["examples"] for t in totals.values())
    out: dict = {"loss": sum(t["loss_sum"] for t in totals.values()) / max(n, 1)}
    for kind in sorted(totals):
        out.update(KINDS[kind].summary(totals[kind]))
    accuracies = [v for k, v in out.items() if k.endswith("_accuracy")]
    out["accuracy"] = sum(accuracies) / len(accuracies) if accuracies else float("nan")
    if scores:
        out["reward_mean"], out["reward_std"] = float(np.mean(scores)), float(np.std(scores))
    out["examples"] = int(n)
    return out


def _gather(totals: dict[str, Counter], scores: list[float]) -> tuple[dict[str, Counter], list[float]]:
    """Every process's totals and scores, added up (all processes get the same result)."""
    from accelerate.utils import gather_object

    merged: dict[str, Counter] = {}
    merged_scores: list[float] = []
    for part_totals, part_scores in gather_object([(totals, scores)]):
        for kind, counts in part_totals.items():
            merged.setdefault(kind, Counter()).update(counts)
        merged_scores += part_scores
    return merged, merged_scores
