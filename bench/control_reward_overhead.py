"""The learned reward's share of environment-step time inside a vectorised environment loop.

    python bench/control_reward_overhead.py [--env Pendulum-v1,HalfCheetah-v4] [--n-envs 1,8,32] [--hidden 64,256]

For each environment and number of environments: the same random actions stepped through a DummyVecEnv three
ways — bare (the baseline), through LearnedRewardVecEnv with the reward computed by torch (plain path), and with
the MLP's NumPy copy (fast path, the default). The reward model is a control ensemble of 3 members with 3 hidden
layers of each --hidden width (64 is rewardkit's default, 256 PEBBLE's). Two numbers per run: the reward's share
(reward time / the inner environments' step time, both timed by the wrapper) and the wrapper's whole overhead
(wall time through the wrapper / bare wall time - 1: the reward plus recording the episodes), each from the fastest
of --repeats interleaved rounds. An environment that cannot be made here (MuJoCo ones need `mujoco`) is listed as
skipped. Writes bench/results/control_reward_overhead.json with the machine it ran on.
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


def can_make(env_id: str) -> str | None:
    """None when the environment can be made here, else why not."""
    import gymnasium as gym

    try:
        gym.make(env_id).close()
    except Exception as error:  # a missing simulator (mujoco) or an unknown id: report it, measure the rest
        return f"{type(error).__name__}: {error}"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="Pendulum-v1,HalfCheetah-v4")
    parser.add_argument("--n-envs", default="1,8,32")
    parser.add_argument("--hidden", default="64,256")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the three runs; the fastest of each is kept")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "control_reward_overhead.json"))
    args = parser.parse_args()
    import torch

    from rewardkit.model.machine import machine_info

    torch.set_num_threads(args.threads)
    results = {"envs": args.env.split(","), "steps_per_env": args.steps, "threads": args.threads, "repeats": args.repeats,
               "machine": machine_info(), "skipped": {}, "runs": []}
    for env_id in args.env.split(","):
        if (why := can_make(env_id)) is not None:
            results["skipped"][env_id] = why
            print(f"{env_id}: skipped ({why})")
            continue
        for hidden in (int(h) for h in args.hidden.split(",")):
            for n in (int(n) for n in args.n_envs.split(",")):
                rounds = [{wrap: run(env_id, n, args.steps, wrap, hidden) for wrap in ("bare", "torch", "numpy")}
                          for _ in range(args.repeats)]  # interleaved, so a slow spell of the machine hits all three
                row = {"env": env_id, "hidden": hidden, "n_envs": n,
                       **{wrap: min((r[wrap] for r in rounds), key=lambda out: out["wall_seconds"])
                          for wrap in ("bare", "torch", "numpy")}}
                for wrap in ("torch", "numpy"):
                    row[wrap]["wrapper_overhead"] = round(row[wrap]["wall_seconds"] / row["bare"]["wall_seconds"] - 1, 4)
                results["runs"].append(row)
                print(f"{env_id} hidden {hidden:3d} n_envs {n:3d}: bare {row['bare']['us_per_env_step']} us/step | "
                      f"reward share: torch {row['torch']['reward_share_of_env_step']:.1%}, numpy "
                      f"{row['numpy']['reward_share_of_env_step']:.1%} | whole wrapper (numpy) "
                      f"{row['numpy']['wrapper_overhead']:+.1%}")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
