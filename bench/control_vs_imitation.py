"""Preference-based control side by side: rewardkit's loop against imitation's PreferenceComparisons, on the same
environment, query budget, environment steps, teacher, RL algorithm and seeds, in one script.

    python bench/control_vs_imitation.py [--env Pendulum-v1] [--teachers oracle,mistake] [--queries 200,1000]
        [--seeds 0,1,2] [--steps 10000] [--jobs 2]
    python bench/control_vs_imitation.py --env rewardkit/InstructedReach-v0 --teachers oracle --queries 200 \
        --methods rewardkit,rewardkit-no-instruction,imitation

Methods (each run in its own process with one torch thread; --jobs at a time):
  rewardkit          rewardkit.control.loop: SAC, ensemble of 3 (3 x 64), disagreement queries, 10 rounds,
                     replay buffer relabelled after every reward update
  rewardkit-no-instruction   the same without the instruction (InstructedReach only: the reward model sees the
                     state, not which target the episode asks for)
  imitation          imitation 1.0.1's PreferenceComparisons with the same SAC as its agent (AgentTrainer), its
                     BasicRewardNet with RunningNorm inputs, the settings of its Pendulum tutorial (3 epochs per
                     round, initial epoch multiplier 4, exploration 0.05, hyperbolic query schedule), 10 iterations
                     and fragments of the same length as rewardkit's segments
Both ask the same simulated teacher (rewardkit.control.teachers, imitation through a PreferenceGatherer that calls
it), so only the preference learning differs. With --label-flips F both losses expect that share of wrong answers
(rewardkit's --label-flips F, imitation's PreferenceModel(noise_prob=2F): the same likelihood). References per
seed: a uniformly random policy and SAC trained on the true reward for the same steps; the normalised return is
(R - R_random) / (R_true_reward_SAC - R_random).
Reward quality is measured on held-out episodes (10 of the final policy, 10 random): Pearson/Spearman of learned vs
true segment returns, preference accuracy and, where the true reward is known as a function, EPIC distance.
Writes bench/results/control_vs_imitation[-ENV].json (every run, the means and spreads, the machine).

    python bench/control_vs_imitation.py --plot OUT.png RESULTS.json [RESULTS.json ...]
draws the normalised return against the query budget, per method and teacher (mean and spread over seeds), from
the summaries of earlier runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))



def quality(spec: dict, policy, learned_returns, reward_fn) -> dict:
    """Held-out reward quality and the policy's true return (rewardkit.control.quality.held_out)."""
    import gymnasium as gym

    from rewardkit.control.envs import INSTRUCTIONS
    from rewardkit.control.quality import held_out

    obs_dim = gym.make(spec["env"]).observation_space.shape[0] - (len(INSTRUCTIONS) if "Instructed" in spec["env"] else 0)
    out = held_out(spec["env"], policy, learned_returns, reward_fn, spec["eval_episodes"], spec["seed"], obs_dim,
                   spec["segment"])
    out.pop("random_return")  # the reference runs measure it
    return out


def run_rewardkit(spec: dict, instructed: bool) -> dict:
    from rewardkit.control.loop import LoopSettings, run_loop
    from rewardkit.control.quality import learned_returns_fn, learned_reward_fn

    settings = LoopSettings(env=spec["env"], teacher=spec["teacher"], queries=spec["queries"], steps=spec["steps"],
                            rounds=spec["rounds"], segment=spec["segment"], warmup=spec["warmup"], instructed=instructed,
                            label_flips=spec["label_flips"], refit_stop=spec["refit_stop"], seed=spec["seed"])
    result = run_loop(settings)
    model = result.reward_model
    return {**quality(spec, result.policy, learned_returns_fn(model), learned_reward_fn(model)),
            "labelled": int(len(result.labels)), "timing": result.timing}


def run_imitation(spec: dict) -> dict:
    import gymnasium as gym
    import numpy as np
    import torch
    from imitation.algorithms import preference_comparisons as pc
    from imitation.rewards.reward_nets import BasicRewardNet
    from imitation.util.networks import RunningNorm
    from stable_baselines3 import SAC
    from stable_baselines3.common.vec_env import DummyVecEnv

    from rewardkit.control.teachers import TEACHERS, label_pairs, segment_margin

    class RewardkitTeacher(pc.PreferenceGatherer):
        """imitation's gatherer interface answered by a rewardkit simulated teacher."""

        def __init__(self, teacher, rng):
            super().__init__(rng=rng)
            self.teacher, self.floor, self.generator = teacher, np.inf, rng

        def __call__(self, fragment_pairs):
            ra = np.stack([a.rews for a, _ in fragment_pairs])
            rb = np.stack([b.rews for _, b in fragment_pairs])
            self.floor = min(self.floor, float(ra.min()), float(rb.min()))
            margin = segment_margin(np.concatenate([ra, rb]), self.floor)
            labels = label_pairs(self.teacher, ra, rb, margin, self.floor, self.generator)
            return np.nan_to_num(labels, nan=0.5).astype(np.float32)  # imitation cannot skip a query

    env_id, seed = spec["env"], spec["seed"]
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    venv = DummyVecEnv([lambda: gym.make(env_id)])
    venv.seed(seed)
    net = BasicRewardNet(venv.observation_space, venv.action_space, normalize_input_layer=RunningNorm)
    agent = SAC("MlpPolicy", venv, seed=seed, verbose=0, device="cpu", learning_starts=spec["warmup"])
    generator = pc.AgentTrainer(algorithm=agent, reward_fn=net, venv=venv, exploration_frac=0.05, rng=rng)
    # imitation's noise_prob is the share of uniformly random answers, half of them wrong: 2x the flip rate
    model = pc.PreferenceModel(net, noise_prob=2 * spec["label_flips"])
    trainer = pc.BasicRewardTrainer(model, loss=pc.CrossEntropyRewardLoss(), epochs=3, rng=rng)
    comparisons = pc.PreferenceComparisons(
        generator, net, num_iterations=spec["rounds"], fragmenter=pc.RandomFragmenter(warning_threshold=0, rng=rng),
        preference_gatherer=RewardkitTeacher(TEACHERS[spec["teacher"]], rng), reward_trainer=trainer,
        fragment_length=spec["segment"], transition_oversampling=1, initial_comparison_frac=0.1,
        allow_variable_horizon=False, initial_epoch_multiplier=4, query_schedule="hyperbolic")
    started = time.perf_counter()
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):  # imitation prints a table per round
        comparisons.train(total_timesteps=spec["steps"], total_comparisons=spec["queries"])
    seconds = time.perf_counter() - started

    def reward_fn(obs, actions, instructions=None):
        full = obs if obs.shape[1] == venv.observation_space.shape[0] else np.concatenate(
            [obs, one_hot_instructions(instructions)], axis=1)
        return net.predict_processed(full, actions, full, np.zeros(len(obs), dtype=bool))

    def score_segments(segments):
        return np.array([reward_fn(s.observations, s.actions, [s.instruction] * len(s)).sum() for s in segments])

    return {**quality(spec, agent, score_segments, reward_fn),
            "timing": {"total_seconds": seconds}}


def one_hot_instructions(instructions):
    import numpy as np

    from rewardkit.control.envs import INSTRUCTIONS

    return np.eye(len(INSTRUCTIONS), dtype=np.float32)[[INSTRUCTIONS.index(t) for t in instructions]]


def run_reference(spec: dict) -> dict:
    """Random policy and SAC on the true reward, for normalising."""
    import gymnasium as gym
    import torch
    from stable_baselines3 import SAC

    from rewardkit.control.quality import collect_episodes, mean_return

    env_id, seed, episodes = spec["env"], spec["seed"], spec["eval_episodes"]
    torch.manual_seed(seed)
    agent = SAC("MlpPolicy", gym.make(env_id), seed=seed, verbose=0, device="cpu", learning_starts=spec["warmup"])
    agent.learn(spec["steps"])
    return {"random_return": mean_return(collect_episodes(env_id, None, episodes, 20_000 + 100 * seed)),
            "true_reward_sac_return": mean_return(collect_episodes(env_id, agent, episodes, 10_000 + 100 * seed))}


def job(spec: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    started = time.perf_counter()
    kind = spec["method"]
    if kind == "reference":
        out = run_reference(spec)
    elif kind == "imitation":
        out = run_imitation(spec)
    else:
        out = run_rewardkit(spec, instructed=kind == "rewardkit" and "Instructed" in spec["env"])
    result = {**spec, **out, "wall_seconds": round(time.perf_counter() - started, 1)}
    print(json.dumps({k: v for k, v in result.items() if k != "timing"}), flush=True)
    return result


def summarise(runs: list[dict]) -> list[dict]:
    import numpy as np

    refs = {r["seed"]: r for r in runs if r["method"] == "reference"}
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        if r["method"] != "reference":
            ref = refs[r["seed"]]
            r["normalised_return"] = (r["true_return"] - ref["random_return"]) / (ref["true_reward_sac_return"] - ref["random_return"])
            key = (r["method"], r["teacher"], r["queries"], r.get("label_flips", 0.0), r.get("refit_stop", ""))
            groups.setdefault(key, []).append(r)
    rows = []
    for (method, teacher, queries, flips, stop), rs in sorted(groups.items()):
        row = {"method": method, "teacher": teacher, "queries": queries, "label_flips": flips,
               **({"refit_stop": stop} if stop else {}), "seeds": len(rs)}
        for key in ("normalised_return", "true_return", "pearson", "spearman", "preference_accuracy", "epic", "wall_seconds"):
            values = [r[key] for r in rs if r.get(key) is not None]
            if values:
                row[key] = {"mean": round(float(np.mean(values)), 4), "std": round(float(np.std(values)), 4)}
        rows.append(row)
    return rows


def plot(output: str, results: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines: dict[tuple, list] = {}
    for path in results:
        data = json.loads(Path(path).read_text())
        for row in data["summary"]:
            lines.setdefault((row["method"], row["teacher"]), []).append(
                (row["queries"], row["normalised_return"]["mean"], row["normalised_return"]["std"]))
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for (method, teacher), points in sorted(lines.items()):
        q, mean, std = zip(*sorted(points), strict=True)
        ax.errorbar(q, mean, yerr=std, marker="o", capsize=3, label=f"{method}, {teacher}",
                    linestyle="-" if method.startswith("rewardkit") else "--")
    ax.set_xscale("log")
    ax.set_xlabel("queries")
    ax.set_ylabel("normalised true return")
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.legend(fontsize=7)
    ax.set_title(f"{data['env']}, {data['steps']} SAC steps, mean ± std over seeds", fontsize=9)
    fig.tight_layout()
    fig.savefig(output, dpi=110)


def main() -> int:
    if sys.argv[1:2] == ["--plot"]:
        plot(sys.argv[2], sys.argv[3:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="Pendulum-v1")
    parser.add_argument("--teachers", default="oracle,mistake")
    parser.add_argument("--queries", default="200,1000")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--methods", default="rewardkit,imitation")
    parser.add_argument("--warmup", type=int, default=1000, help="SAC's random steps before learning (both methods)")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=10, help="query rounds (imitation: iterations)")
    parser.add_argument("--segment", type=int, default=50, help="steps per segment (imitation: fragment length)")
    parser.add_argument("--references", default="", help="reuse the reference runs of an earlier results file "
                        "(same env, steps, warm-up and seeds) instead of training them again")
    parser.add_argument("--label-flips", type=float, default=0.0, help="share of wrong answers both methods' losses "
                        "expect (rewardkit: --label-flips; imitation: PreferenceModel's noise_prob, twice this)")
    parser.add_argument("--refit-stop", default="accuracy", choices=["accuracy", "held-out"],
                        help="how rewardkit's refits stop (control run --refit-stop)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--output", default="")
    args = parser.parse_args()
    import multiprocessing

    from rewardkit.model.machine import machine_info

    seeds = [int(s) for s in args.seeds.split(",")]
    common = {"env": args.env, "steps": args.steps, "warmup": args.warmup, "eval_episodes": args.eval_episodes,
              "rounds": args.rounds, "segment": args.segment}
    reused = []
    if args.references:
        earlier = json.loads(Path(args.references).read_text())
        reused = [r for r in earlier["runs"] if r["method"] == "reference" and r["seed"] in seeds
                  and all(r[k] == v for k, v in common.items() if k in r)]
        if len(reused) != len(seeds):
            parser.error(f"{args.references} has no reference run with these settings for every seed")
    specs = [] if reused else [{"method": "reference", "seed": s, "teacher": None, "queries": 0, **common} for s in seeds]
    specs += [{"method": m, "teacher": t, "queries": int(q), "seed": s, "label_flips": args.label_flips,
               **({"refit_stop": args.refit_stop} if m == "rewardkit" else {}), **common}
              for q in args.queries.split(",") for t in args.teachers.split(",") for m in args.methods.split(",")
              for s in seeds]
    started = time.perf_counter()
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        runs = reused + list(pool.map(job, specs))
    summary = summarise(runs)
    for row in summary:
        print(json.dumps(row))
    name = "control_vs_imitation" + ("" if args.env == "Pendulum-v1" else "-" + args.env.split("/")[-1].split("-")[0])
    output = Path(args.output or ROOT / "bench" / "results" / f"{name}.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"env": args.env, "steps": args.steps, "segment": args.segment, "rounds": args.rounds,
                                  "sac": {"learning_starts": args.warmup}, "jobs": args.jobs, "torch_threads_per_job": 1,
                                  "wall_seconds": round(time.perf_counter() - started, 1),
                                  "machine": machine_info(), "summary": summary, "runs": runs}, indent=2) + "\n")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
