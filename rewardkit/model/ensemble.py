"""An ensemble of K separately trained reward models, scored as one model.

A saved ensemble is a directory with
  ensemble.json    {"members": ["member-0", ...], "aggregate": "mean" | "min", "calibration": ...}
  member-0/ ...    each a complete rewardkit model directory (see reward_model.py)

Members are trained apart (other seeds, data or objectives), and a Bradley-Terry reward is only defined up to
a shift, so their raw scores sit at different offsets and scales. Each member's score is therefore standardised
with the reward mean and std it stored at the end of training before the members are combined: the ensemble's
score, and its spread (the std across members, the uncertainty), are in those standard units.

Members must read text the same way (tokenizer, maximum length, chat template), so that one encoding of a batch
feeds all of them; an ensemble of different backbones is refused with the field that differs.
`forward` returns one column per member, like a multi-head RewardModel, so scoring, evaluation and the server
treat both kinds of ensemble alike.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from torch import nn

from rewardkit.errors import ModelError
from rewardkit.model.reward_model import RewardModel

ENSEMBLE_FILE = "ensemble.json"
AGGREGATES = ("mean", "min")


READING_FIELDS = ("backbone_type", "is_decoder", "max_length", "chat_template", "mlp_input_dim")


def check_members(members: list, names: list[str], fields: tuple[str, ...]) -> None:
    """Refuse, by name, models that cannot be combined: fewer than 2, an ensemble among them, a spec field that
    differs from the first model's, or another tokenizer. Ensembles check the fields that decide how text is read
    (one encoding feeds every member); weight averaging (merge.py) also checks the architecture's."""
    if len(members) < 2:
        raise ModelError(f"combining models needs at least 2 members, got {len(members)}")
    first = members[0]
    for name, m in zip(names, members, strict=True):
        if not isinstance(m, RewardModel):
            raise ModelError(f"member {name} is itself an ensemble; list its members instead")
        for field in fields:
            if getattr(m.spec, field) != getattr(first.spec, field):
                raise ModelError(f"member {name} differs from {names[0]} in {field}: "
                                 f"{getattr(m.spec, field)!r} vs {getattr(first.spec, field)!r}")
        if m.tokenizer is not None and m.tokenizer.get_vocab() != first.tokenizer.get_vocab():
            raise ModelError(f"member {name} has another tokenizer than {names[0]}")


class ModelEnsemble(nn.Module):
    """K reward models behind one interface: `forward(batch)` -> standardised member scores [B, K]."""

    def __init__(self, members: list[RewardModel], aggregate: str = "mean", calibration: dict | None = None,
                 names: list[str] | None = None):
        super().__init__()
        names = names or [f"member-{i}" for i in range(len(members))]
        if aggregate not in AGGREGATES:
            raise ModelError(f"ensemble aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")
        check_members(members, names, READING_FIELDS)
        first = members[0]
        for name, m in zip(names, members, strict=True):
            if not m.spec.normalization:
                raise ModelError(f"ensemble member {name} stores no reward mean/std (spec.normalization), so its scores "
                                 "cannot be put on a common scale; train it with an evaluation split")
        self.members = nn.ModuleList(members)
        self.names = names
        self.directory: Path | None = None  # where it was loaded from (save() there rewrites only the manifest)
        k = len(members)
        self.spec = dataclasses.replace(
            first.spec, backbone=f"ensemble of {k}: {first.spec.backbone}", heads=list(names), head_weights=[1.0 / k] * k,
            normalization=None, calibration=calibration, ensemble=k, aggregate=aggregate)
        self.tokenizer, self.encoder = first.tokenizer, first.encoder
        stats = [m.spec.normalization for m in members]
        self.register_buffer("member_mean", torch.tensor([s["mean"] for s in stats]), persistent=False)
        self.register_buffer("member_std", torch.tensor([max(s["std"], 1e-8) for s in stats]), persistent=False)

    def forward(self, batch: dict) -> torch.Tensor:
        raw = torch.stack([m.score(batch) for m in self.members], dim=1)
        return (raw.float() - self.member_mean) / self.member_std

    def score(self, batch: dict) -> torch.Tensor:
        return self.aggregate(self(batch))

    def aggregate(self, per_member: torch.Tensor) -> torch.Tensor:
        if self.spec.aggregate == "min":
            return per_member.min(dim=1).values
        return per_member.mean(dim=1)

    def save(self, directory: str | Path) -> Path:
        """Write the members and ensemble.json. Into the directory the ensemble was loaded from, only the
        manifest is rewritten (e.g. after calibration)."""
        directory = Path(directory)
        if self.directory is None or directory.resolve() != self.directory.resolve():
            for name, member in zip(self.names, self.members, strict=True):
                member.save(directory / name)
        manifest = {"members": self.names, "aggregate": self.spec.aggregate, "calibration": self.spec.calibration}
        (directory / ENSEMBLE_FILE).write_text(json.dumps(manifest, indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> ModelEnsemble:
        directory = Path(directory)
        try:
            manifest = json.loads((directory / ENSEMBLE_FILE).read_text())
            names = [str(n) for n in manifest["members"]]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ModelError(f"{directory / ENSEMBLE_FILE}: not a readable ensemble manifest ({err})") from None
        for name in names:
            if Path(name).is_absolute() or ".." in Path(name).parts:
                raise ModelError(f"{directory / ENSEMBLE_FILE}: member {name!r} must be a sub-directory of the ensemble")
        members = [RewardModel.load(directory / name, device) for name in names]
        ensemble = cls(members, manifest.get("aggregate", "mean"), manifest.get("calibration"), names)
        ensemble.directory = directory
        return ensemble.to(device).eval()
