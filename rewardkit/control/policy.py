"""Save and load a Stable-Baselines3 policy without pickles: its weights as safetensors, how to rebuild it as JSON.

(SB3's own `save` writes a zip whose parameters and settings are pickled; loading one runs code from the file.)
"""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
from safetensors.torch import load_file, save_file

from rewardkit.errors import ModelError

WEIGHTS_FILE, SPEC_FILE = "policy.safetensors", "policy.json"


def save_policy(algorithm, env_id: str, directory: str | Path) -> None:
    from rewardkit.control.loop import ALGORITHMS

    name = next(k for k, cls in ALGORITHMS.items() if isinstance(algorithm, cls))
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in algorithm.policy.state_dict().items()}
    save_file(state, str(directory / WEIGHTS_FILE))
    spec = {"algorithm": name, "env": env_id, "policy": "MlpPolicy", "num_timesteps": int(algorithm.num_timesteps)}
    (directory / SPEC_FILE).write_text(json.dumps(spec, indent=2) + "\n")


def load_policy(directory: str | Path):
    """The saved algorithm with its policy's weights (for predict; its replay buffer and optimiser are not kept)."""
    from rewardkit.control.loop import ALGORITHMS

    directory = Path(directory)
    if not (directory / SPEC_FILE).exists():
        raise ModelError(f"{directory} holds no saved policy ({SPEC_FILE} is missing)")
    spec = json.loads((directory / SPEC_FILE).read_text())
    if spec.get("algorithm") not in ALGORITHMS:
        raise ModelError(f"{directory / SPEC_FILE}: algorithm must be one of {', '.join(ALGORITHMS)}")
    algorithm = ALGORITHMS[spec["algorithm"]](spec["policy"], gym.make(spec["env"]), device="cpu", verbose=0)
    algorithm.policy.load_state_dict(load_file(str(directory / WEIGHTS_FILE)))
    return algorithm
