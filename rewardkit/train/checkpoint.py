"""Checkpoints that survive a kill at any moment, and resume to the same run.

A checkpoint directory holds the model (as RewardModel.save writes it), optimizer.pt (tensors only, read back
with weights_only=True), rng.safetensors (torch's random state) and trainer_state.json (progress, the
scheduler's state and the best-so-far bookkeeping). checkpoints/last is rewritten as training goes;
checkpoints/best is a copy of the last one that improved the evaluation metric.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from rewardkit.model.reward_model import swap_in_directory


def save_checkpoint(directory: Path, model, optimizer, scheduler, state: dict) -> None:
    """Model + optimizer + scheduler + RNG + progress, written to a temporary directory and swapped in, so that a
    kill at any moment leaves a complete checkpoint (read it back through intact_directory)."""
    raw = getattr(model, "module", model)
    tmp = directory.with_name(f".{directory.name}.tmp")
    raw.save(tmp)
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    save_file({"torch_rng": torch.get_rng_state()}, str(tmp / "rng.safetensors"))
    (tmp / "trainer_state.json").write_text(json.dumps({**state, "scheduler": scheduler.state_dict()}, indent=2))
    swap_in_directory(tmp, directory)


def load_checkpoint(directory: Path, model, optimizer, scheduler) -> dict:
    """Restore what save_checkpoint wrote; returns the trainer state."""
    raw = getattr(model, "module", model)
    raw.load_state_dict(load_file(str(directory / "model.safetensors")), strict=False)
    optimizer.load_state_dict(torch.load(directory / "optimizer.pt", weights_only=True, map_location="cpu"))
    state = json.loads((directory / "trainer_state.json").read_text())
    scheduler.load_state_dict(state.pop("scheduler"))
    torch.set_rng_state(load_file(str(directory / "rng.safetensors"))["torch_rng"])
    return state


def copy_last_to_best(checkpoints: Path) -> None:
    """checkpoints/best becomes a copy of checkpoints/last (without the optimizer), replaced in one rename."""
    best, tmp = checkpoints / "best", checkpoints / ".best.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(checkpoints / "last", tmp, ignore=shutil.ignore_patterns("optimizer.pt"))
    if best.exists():
        shutil.rmtree(best)
    tmp.rename(best)
