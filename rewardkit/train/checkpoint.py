"""Checkpoints that survive a kill at any moment, and resume to the same run.

A checkpoint directory holds the model (as RewardModel.save writes it), the optimizer's state (its tensors in
optimizer.safetensors, its parameter groups in optimizer.json: nothing is pickled), rng.safetensors (torch's random
state) and trainer_state.json (progress, the scheduler's state and the best-so-far bookkeeping). checkpoints/last
is rewritten as training goes; checkpoints/best is a copy of the last one that improved the evaluation metric.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from rewardkit.model.reward_model import swap_in_directory


def save_optimizer(optimizer: torch.optim.Optimizer, directory: Path) -> None:
    """optimizer.state_dict() as optimizer.safetensors ("state.<param index>.<name>") and optimizer.json."""
    saved = optimizer.state_dict()
    tensors = {f"state.{index}.{name}": value.contiguous() for index, per_param in saved["state"].items()
               for name, value in per_param.items()}
    save_file(tensors, str(directory / "optimizer.safetensors"))
    (directory / "optimizer.json").write_text(json.dumps({"param_groups": saved["param_groups"]}, indent=2))


def load_optimizer(optimizer: torch.optim.Optimizer, directory: Path) -> None:
    """Restore what save_optimizer wrote."""
    state: dict[int, dict] = {}
    for key, value in load_file(str(directory / "optimizer.safetensors")).items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    groups = json.loads((directory / "optimizer.json").read_text())["param_groups"]
    for group in groups:  # JSON has no tuples; Adam's betas are one
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def save_checkpoint(directory: Path, model, optimizer, scheduler, state: dict) -> None:
    """Model + optimizer + scheduler + RNG + progress, written to a temporary directory and swapped in, so that a
    kill at any moment leaves a complete checkpoint (read it back through intact_directory)."""
    raw = getattr(model, "module", model)
    tmp = directory.with_name(f".{directory.name}.tmp")
    raw.save(tmp)
    save_optimizer(optimizer, tmp)
    save_file({"torch_rng": torch.get_rng_state()}, str(tmp / "rng.safetensors"))
    (tmp / "trainer_state.json").write_text(json.dumps({**state, "scheduler": scheduler.state_dict()}, indent=2))
    swap_in_directory(tmp, directory)


def load_checkpoint(directory: Path, model, optimizer, scheduler) -> dict:
    """Restore what save_checkpoint wrote; returns the trainer state."""
    raw = getattr(model, "module", model)
    raw.load_state_dict(load_file(str(directory / "model.safetensors")), strict=False)
    load_optimizer(optimizer, directory)
    state = json.loads((directory / "trainer_state.json").read_text())
    scheduler.load_state_dict(state.pop("scheduler"))
    torch.set_rng_state(load_file(str(directory / "rng.safetensors"))["torch_rng"])
    return state


def copy_last_to_best(checkpoints: Path) -> None:
    """checkpoints/best becomes a copy of checkpoints/last (without the optimizer), replaced in one rename."""
    best, tmp = checkpoints / "best", checkpoints / ".best.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(checkpoints / "last", tmp, ignore=shutil.ignore_patterns("optimizer.*"))
    if best.exists():
        shutil.rmtree(best)
    tmp.rename(best)
