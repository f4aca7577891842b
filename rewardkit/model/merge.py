"""Weight averaging of reward models (WARM, Ramé et al. 2024): K models fine-tuned from one pretrained backbone
(other seeds, data orders or learning rates) averaged weight by weight into one model of the same size.

Why: fine-tunes that start from the same pretrained weights stay in one basin, so their average is itself a good
model; what the members agree on survives and what one seed happened to fit averages out. The result scores with
one forward pass instead of K. Unlike an ensemble (ensemble.py) it has no spread across members, so no uncertainty.

Checked here: the members have the same weights (names and shapes) and read text the same way. Not checkable:
that they started from the same pretrained weights. Averaging models that did not (two random initialisations,
two different backbones of one architecture) gives a broken model, so use it for runs of one recipe. Heads that
were initialised differently on one pretrained backbone still average, but their random parts cancel and shrink
the reward scale (five-fold for three MiniLM seeds), so a recipe that merges gives its runs one init_seed.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable

import torch

from rewardkit.data.kinds import KINDS
from rewardkit.errors import ModelError
from rewardkit.model.ensemble import READING_FIELDS, check_members
from rewardkit.model.reward_model import RewardModel

ARCHITECTURE_FIELDS = READING_FIELDS + ("pooling", "heads", "head_bias", "mlp_hidden", "mlp_layers", "ensemble", "aggregate")


def merge_models(members: list[RewardModel], names: list[str] | None = None) -> RewardModel:
    """The element-wise mean of the members' weights, as a new model. Its reward mean/std and calibration are
    left unset: the members' do not carry over (set them with reward_statistics / `rewardkit calibrate`)."""
    names = names or [f"member-{i}" for i in range(len(members))]
    check_members(members, names, ARCHITECTURE_FIELDS)
    states = []
    for name, m in zip(names, members, strict=True):
        if m.spec.lora:
            raise ModelError(f"member {name} holds unmerged LoRA adapters; merge the final model, not a checkpoint")
        state = m.state_dict()
        reference = states[0] if states else state
        if state.keys() != reference.keys():
            raise ModelError(f"member {name} has other weights than {names[0]}: "
                             f"{sorted(state.keys() ^ reference.keys())[:5]}")
        for key, value in state.items():
            if value.shape != reference[key].shape:
                raise ModelError(f"member {name} weight {key} has shape {tuple(value.shape)}, {names[0]} has {tuple(reference[key].shape)}")
        states.append(state)
    merged = {}
    for key, value in states[0].items():
        if value.is_floating_point():  # accumulate in fp32 so that bf16 members average without rounding each step
            merged[key] = torch.stack([s[key].float() for s in states]).mean(dim=0).to(value.dtype)
        else:                           # integer buffers (position ids) are the same in every member
            merged[key] = value.clone()
    model = copy.deepcopy(members[0])
    model.load_state_dict(merged)
    model.spec = dataclasses.replace(members[0].spec, backbone=f"weight average of {len(members)}: {members[0].spec.backbone}",
                                     normalization=None, calibration=None)
    return model.eval()


def reward_statistics(model: RewardModel, records: Iterable[dict], batch_size: int = 32, precision: str = "fp32") -> dict:
    """Mean and std of the model's raw reward over every response in `records` (as the trainer stores them for its
    evaluation split), so that servers can normalise a merged model's scores and it can join an ensemble."""
    from rewardkit.model.scoring import score

    items = [(r.get("prompt", ""), response) for r in records for response in KINDS[r["kind"]].responses(r)]
    scores = score(model, items, batch_size, precision=precision).values
    if len(scores) < 2:
        raise ModelError(f"reward statistics need at least 2 scored responses, got {len(scores)}")
    values = torch.tensor(scores, dtype=torch.float64)
    return {"mean": float(values.mean()), "std": float(values.std()), "source": f"{len(scores)} responses"}
