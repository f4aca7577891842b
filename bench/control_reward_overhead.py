"""The learned reward's share of environment-step time inside a vectorised environment loop.

    python bench/control_reward_overhead.py [--env Pendulum-v1] [--n-envs 1,8,32] [--hidden 256,64] [--steps 3000]

For each number of environments: the same random actions stepped through a DummyVecEnv three ways — bare (the
baseline), through LearnedRewardVecEnv with the reward computed by torch (plain path), and with the MLP's NumPy
copy (fast path, the default). The reward model is a control ensemble of 3 members with 3 hidden layers of each
--hidden width (256 is the default, PEBBLE's). The share is reward time / bare env-step time, measured by the wrapper itself; the whole loop's wall time is reported
too. Writes bench/results/control_reward_overhead.json with the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run(env_id: str, n_envs: int, steps: int, wrap: str, hidden: int) -> dict:
    import gymnasium as gym
    import numpy as np
    from stable_baselines3.common.vec_env import DummyVecEnv

    from rewardkit.control.envs import LearnedRewardVecEnv
    from rewardkit.control.loop import reward_inputs
    from rewardkit.control.reward import StepRewardModel, StepRewardSpec

    probe = gym.make(env_id)
    obs_dim, action_dim, _ = reward_inputs(probe, False)
    venv = DummyVecEnv([lambda: gym.make(env_id)] * n_envs)
    if wrap != "bare":
        venv = LearnedRewardVecEnv(venv, StepRewardModel(StepRewardSpec(obs_dim, action_dim, hidden=hidden)).eval(), fast=wrap == "numpy")
    rng = np.random.default_rng(0)
    low, high = probe.action_space.low, probe.action_space.high
    actions = rng.uniform(low, high, (steps, n_envs, *probe.action_space.shape)).astype(np.float32)
    venv.seed(0)
    venv.reset()
    started = time.perf_counter()
    for t in range(steps):
        venv.step(actions[t])
    wall = time.perf_counter() - started
    out = {"wall_seconds": round(wall, 4), "env_steps": steps * n_envs, "us_per_env_step": round(1e6 * wall / (steps * n_envs), 2)}
    if wrap != "bare":
        out["reward_share_of_env_step"] = round(venv.reward_seconds / venv.step_seconds, 4)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="Pendulum-v1")
    parser.add_argument("--n-envs", default="1,8,32")
    parser.add_argument("--hidden", default="256,64")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "control_reward_overhead.json"))
    args = parser.parse_args()
    import torch

    from rewardkit.model.machine import machine_info

    torch.set_num_threads(args.threads)
    results = {"env": args.env, "steps_per_env": args.steps, "threads": args.threads, "machine": machine_info(), "runs": []}
    sizes = [(int(h), int(n)) for h in args.hidden.split(",") for n in args.n_envs.split(",")]
    for hidden, n in sizes:
        row = {"hidden": hidden, "n_envs": n,
               **{wrap: run(args.env, n, args.steps, wrap, hidden) for wrap in ("bare", "torch", "numpy")}}
        results["runs"].append(row)
        print(f"hidden {hidden:3d} n_envs {n:3d}: bare {row['bare']['us_per_env_step']} us/step | torch reward "
              f"{row['torch']['reward_share_of_env_step']:.1%} of env time | numpy reward "
              f"{row['numpy']['reward_share_of_env_step']:.1%}")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
