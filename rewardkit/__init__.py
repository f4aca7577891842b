"""rewardkit: train, evaluate and serve reward models from human or AI feedback.

The Python API (the same jobs as the `rewardkit` command):

    import rewardkit as rk
    model = rk.load_model("runs/reward-model")       # a model, an ensemble, or a training / recipe run
    scores = rk.score(model, [("What is 2+2?", "4"), ("What is 2+2?", "5")])
    scores.values                                    # one reward per (prompt, response); .members for ensembles
    scored = rk.score_records(model, rk.read_records("pairs.jsonl"))   # fields: rewardkit.data.kinds
    summary = rk.train_model(rk.TrainConfig(train="pairs.jsonl", output="runs/rm"))
    report = rk.evaluate(model, "test.jsonl")          # accuracy, calibration, bias, probes, ...
    report = rk.evaluate_suites(model, ["synthetic"])  # named suites, as `rewardkit eval --suite`

Names are imported on first use, so `import rewardkit` stays fast. (`rewardkit.train` is the training package;
the function that trains is `train_model`.)
"""

from importlib import import_module
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "load_model": "rewardkit.model.load",
    "RewardModel": "rewardkit.model.reward_model",
    "ModelEnsemble": "rewardkit.model.ensemble",
    "score": "rewardkit.model.scoring",
    "score_records": "rewardkit.model.scoring",
    "score_steps": "rewardkit.model.scoring",
    "Scores": "rewardkit.scores",
    "TrainConfig": "rewardkit.train.config",
    "train_model": "rewardkit.train.trainer",
    "evaluate": "rewardkit.eval.evaluate",
    "evaluate_suites": "rewardkit.eval.suites",
    "read_records": "rewardkit.data.io",
    "iter_records": "rewardkit.data.io",
    "write_records": "rewardkit.data.io",
    "KINDS": "rewardkit.data.kinds",
    "RewardkitError": "rewardkit.errors",
    "ConfigError": "rewardkit.errors",
    "DataError": "rewardkit.errors",
    "ModelError": "rewardkit.errors",
    "TrainingError": "rewardkit.errors",
}

__all__ = ["ConfigError", "DataError", "KINDS", "ModelEnsemble", "ModelError", "RewardModel", "RewardkitError", "Scores",
           "TrainConfig", "TrainingError", "__version__", "evaluate", "evaluate_suites", "iter_records", "load_model",
           "read_records", "score", "score_records", "score_steps", "train_model", "write_records"]

if TYPE_CHECKING:
    from rewardkit.data.io import iter_records, read_records, write_records
    from rewardkit.data.kinds import KINDS
    from rewardkit.errors import ConfigError, DataError, ModelError, RewardkitError, TrainingError
    from rewardkit.eval.evaluate import evaluate
    from rewardkit.eval.suites import evaluate_suites
    from rewardkit.model.ensemble import ModelEnsemble
    from rewardkit.model.load import load_model
    from rewardkit.model.reward_model import RewardModel
    from rewardkit.model.scoring import score, score_records, score_steps
    from rewardkit.scores import Scores
    from rewardkit.train.config import TrainConfig
    from rewardkit.train.trainer import train as train_model


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rewardkit' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), "train" if name == "train_model" else name)
    globals()[name] = value
    return value
