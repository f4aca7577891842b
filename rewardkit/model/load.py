"""Find and load a saved reward model: a model directory, an ensemble, or a run that holds one.

A training run writes its model to OUTPUT/model and a recipe to OUTPUT/run/model, so a user can point any
command at the run they started instead of the directory inside it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from rewardkit.model.ensemble import ENSEMBLE_FILE, ModelEnsemble
from rewardkit.model.reward_model import SPEC_FILE, RewardModel

# Where a saved model may sit, relative to the path a user gives.
MODEL_PLACES = (".", "model", "run/model")


def model_directory(path: str | Path) -> Path | None:
    """The rewardkit model or ensemble directory at `path`, `path`/model or `path`/run/model; None if none."""
    for place in MODEL_PLACES:
        directory = Path(path) / place
        if (directory / SPEC_FILE).exists() or (directory / ENSEMBLE_FILE).exists():
            return directory if place != "." else Path(path)
    return None


def load_model(path: str | Path, device: str | torch.device = "cpu") -> RewardModel | ModelEnsemble:
    """A rewardkit model or ensemble, from its directory or from the training or recipe run that holds it."""
    directory = model_directory(path) or Path(path)  # RewardModel.load explains what is missing
    if (directory / ENSEMBLE_FILE).exists():
        return ModelEnsemble.load(directory, device)
    return RewardModel.load(directory, device)
