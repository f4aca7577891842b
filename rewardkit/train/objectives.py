"""The loss of one single-kind training batch: a forward pass, then the loss its record kind defines.

Generic here: which reward each sequence gets (the aggregate, or the head an example names), the loss weight of
the kind in mixed data (TrainConfig.mix_weights) and the L2 penalty on the heads. Everything kind-specific —
pairs, rankings, ratings — is the kind's `loss` (rewardkit.data.kinds), which calls the pure losses in
rewardkit.losses.
"""

from __future__ import annotations

import torch

from rewardkit import losses
from rewardkit.data.kinds import KINDS, BatchRewards


def batch_rewards(model, batch: dict) -> BatchRewards:
    """Forward all sequences of the batch; each sequence's reward is the aggregate score, or the head its
    example asks for (batch['head'] >= 0)."""
    raw = getattr(model, "module", model)  # unwrapped from DDP, whose forward still runs the sync hooks
    per_head = model(batch["inputs"])                                    # [N, H]
    sequence = raw.aggregate(per_head)                                   # [N]
    head = batch["head"].to(per_head.device)
    if (head >= 0).any():
        seq_head = head.repeat_interleave(batch["valid"].sum(dim=1).to(head.device))
        chosen = per_head.gather(1, seq_head.clamp(min=0).unsqueeze(1)).squeeze(1)
        sequence = torch.where(seq_head >= 0, chosen, sequence)
    device = per_head.device
    return BatchRewards(sequence, per_head, batch["index"].to(device), batch["valid"].to(device),
                        raw.spec.heads, raw.spec.ensemble)


def batch_loss(model, batch: dict, objectives: dict[str, str], cfg) -> tuple[torch.Tensor, dict, torch.Tensor]:
    """Loss of one single-kind batch, its detached metrics (e.g. pairs ranked right, counts), and the
    per-sequence rewards [N]."""
    rewards = batch_rewards(model, batch)
    device = rewards.sequence.device
    targets = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items() if k != "inputs"}
    kind = batch["kind"]
    loss, metrics = KINDS[kind].loss(rewards, targets, objectives[kind], cfg)
    loss = cfg.mix_weights.get(kind, 1.0) * loss
    if cfg.l2_weight:
        loss = loss + cfg.l2_weight * losses.l2_penalty(getattr(model, "module", model).head.parameters())
    return loss, {"examples": int(rewards.index.shape[0]), **metrics}, rewards.sequence.detach()
