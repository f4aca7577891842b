"""`rewardkit control run` (the preference loop on a gymnasium environment) and `rewardkit control fit` (a step
reward model from a file of labelled segment pairs)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tyro.conf import Positional

from rewardkit.config import Command, ConfigError
from rewardkit.control.settings import LoopSettings
from rewardkit.options import Progress, Threads


@dataclass
class ControlConfig(LoopSettings):
    """Train a policy with Stable-Baselines3 on a reward learned from a simulated teacher's preferences between
    segments of its own rollouts (PEBBLE-style rounds: query, refit the reward, relabel the replay buffer, train).
    Writes OUTPUT/reward (the step reward model), OUTPUT/policy (safetensors), OUTPUT/queries.jsonl (every labelled
    pair), OUTPUT/curve.json and .png, and OUTPUT/summary.json (true return of the final policy, reward quality on
    held-out episodes, time spent)."""

    eval_episodes: int = 10
    """episodes for the final policy's true return and the held-out reward quality"""
    reference: bool = False
    """also train the same algorithm on the true reward, to report the normalised return (doubles the time)"""
    output: str = "runs/control"
    """directory for the run's outputs (written whole at the end, never half)"""
    threads: Threads = 1
    progress: Progress = True


def run_control(cfg: ControlConfig) -> int:

    from rewardkit.control import quality as q
    from rewardkit.control.loop import run_loop, train_on_true_reward
    from rewardkit.control.plots import plot_curve
    from rewardkit.control.policy import save_policy
    from rewardkit.control.segments import write_pairs
    from rewardkit.model.backbone import set_threads

    set_threads(cfg.threads)
    output = Path(cfg.output)
    staging = output.with_name(output.name + ".partial")
    settings = LoopSettings(**{k: getattr(cfg, k) for k in LoopSettings.__dataclass_fields__})

    def report(point: dict) -> None:
        if cfg.progress:
            recent = point["recent_true_return"]
            print(f"round {point['round'] + 1}/{cfg.rounds}: {point['env_steps']} steps, {point['labelled']} labels "
                  f"({point['skipped']} skipped), reward fit accuracy {point.get('train_accuracy', 0):.3f}, "
                  f"recent true return {recent if recent is None else round(recent, 1)}", flush=True)

    result = run_loop(settings, progress=report)
    model = result.reward_model
    quality = q.held_out(cfg.env, result.policy, q.learned_returns_fn(model), q.learned_reward_fn(model),
                         cfg.eval_episodes, cfg.seed, model.spec.obs_dim, cfg.segment)
    summary = {"env": cfg.env, "teacher": cfg.teacher, "queries": cfg.queries, "labelled": len(result.labels),
               "steps": cfg.steps, "algorithm": cfg.algorithm, "selection": cfg.selection, "seed": cfg.seed,
               "true_return": quality.pop("true_return"), "random_return": quality.pop("random_return"),
               "held_out": quality, "timing": result.timing}
    if cfg.reference:
        expert = train_on_true_reward(settings)
        summary["true_reward_policy_return"] = q.mean_return(q.collect_episodes(
            cfg.env, expert, cfg.eval_episodes, 10_000 + 100 * cfg.seed, model.spec.obs_dim))
        summary["normalised_return"] = q.normalised_return(summary["true_return"], summary["random_return"],
                                                           summary["true_reward_policy_return"])
    if staging.exists():
        shutil.rmtree(staging)
    model.save(staging / "reward")
    save_policy(result.policy, cfg.env, staging / "policy")
    write_pairs(staging / "queries.jsonl", result.pairs, result.labels)
    (staging / "curve.json").write_text(json.dumps(result.curve, indent=1) + "\n")
    plot_curve(result.curve, staging / "curve.png", f"{cfg.env}: {cfg.teacher} teacher, {cfg.selection} queries")
    (staging / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if output.exists():
        shutil.rmtree(output)
    staging.rename(output)
    held = {k: (v if v is not None else float("nan")) for k, v in summary["held_out"].items()}
    print(f"true return {summary['true_return']:.1f} (random {summary['random_return']:.1f}"
          + (f", true-reward {cfg.algorithm} {summary['true_reward_policy_return']:.1f}, normalised "
             f"{summary['normalised_return']:.3f}" if cfg.reference else "")
          + f"); held-out learned vs true return: Pearson {held['pearson']:.3f}, Spearman {held['spearman']:.3f}, "
          f"preference accuracy {held['preference_accuracy']:.3f}"
          + (f", EPIC {held['epic']:.3f}" if "epic" in held else "") + f" -> {output}")
    return 0


@dataclass
class FitConfig:
    """Train a step reward model on labelled segments from a file (JSONL: pairs {"a": SEGMENT, "b": SEGMENT,
    "label": P(a is preferred)}, ratings {"segment": SEGMENT, "rating": number} and success labels {"segment":
    SEGMENT, "success": bool}, mixed as you like; SEGMENT = {"observations", "actions", optional "instruction",
    optional "frames" T x C x H x W}). Ratings and success labels become pairs: a segment is preferred to every
    segment of its length rated lower, a success to every failure. E.g. the
    queries.jsonl of a `rewardkit control run` or labels people gave. Holds out --eval-fraction of the pairs and
    reports the preference accuracy on them."""

    pairs: Positional[str]
    """the labelled pairs file"""
    output: str = "runs/control-reward"
    """directory for the reward model"""
    architecture: Literal["mlp", "chunk-transformer"] = "mlp"
    """per-step MLP, or a transformer over an action chunk's actions (actions T x K x D_act)"""
    members: int = 3
    """reward models in the ensemble"""
    hidden: int = 64
    """width of each member's hidden layers"""
    layers: int = 3
    """hidden layers per member (transformer layers for the chunk-transformer)"""
    epochs: int = 50
    """passes over the training pairs (at most, with --stop held-out)"""
    stop: Literal["epochs", "held-out"] = "epochs"
    """run every pass, or stop when the members' loss on their own held-out folds of the training pairs stops
    falling and keep the best pass"""
    lr: float = 3e-4
    """Adam's learning rate"""
    label_flips: float = 0.0
    """share of labels expected to be wrong: a label the ensemble is confident is wrong then stops pulling on it"""
    eval_fraction: float = 0.2
    """share of the pairs held out to report accuracy on"""
    seed: int = 0
    """seeds the split and the initial weights"""
    threads: Threads = 1


def run_fit(cfg: FitConfig) -> int:
    import numpy as np
    import torch

    from rewardkit.control.learn import fit_preferences, pair_accuracy, pair_tensors, spec_for_pairs
    from rewardkit.control.reward import StepRewardModel
    from rewardkit.control.segments import read_pairs
    from rewardkit.model.backbone import set_threads

    set_threads(cfg.threads)
    if not 0 <= cfg.eval_fraction < 1:
        raise ConfigError(f"--eval-fraction must be in [0, 1), got {cfg.eval_fraction}")
    if not 0 <= cfg.label_flips < 0.5:
        raise ConfigError(f"--label-flips must be in [0, 0.5), got {cfg.label_flips}")
    pairs, labels = read_pairs(cfg.pairs)
    spec = spec_for_pairs(pairs, cfg.pairs, cfg.architecture, cfg.members, cfg.hidden, cfg.layers)
    torch.manual_seed(cfg.seed)
    order = np.random.default_rng(cfg.seed).permutation(len(pairs))
    n_eval = int(round(cfg.eval_fraction * len(pairs)))
    held, train = order[:n_eval], order[n_eval:]
    model = StepRewardModel(spec)
    fit = fit_preferences(model, pair_tensors(model, [pairs[i] for i in train], labels[train]), epochs=cfg.epochs,
                          lr=cfg.lr, seed=cfg.seed, stop_accuracy=2.0, label_flips=cfg.label_flips,
                          held_out=cfg.stop == "held-out")
    out = {"pairs": len(pairs), "train": len(train), "held_out": len(held), **fit}
    if len(held):
        out["held_out_accuracy"] = pair_accuracy(model, pair_tensors(model, [pairs[i] for i in held], labels[held]))
    model.save(cfg.output)
    (Path(cfg.output) / "fit.json").write_text(json.dumps(out, indent=2) + "\n")
    kept = f" (kept pass {fit['best_epoch']} of {fit['epochs']}: held-out folds)" if fit["stop"] == "held-out" else ""
    print(f"{len(train)} pairs trained, training accuracy {fit['train_accuracy']:.3f}{kept}"
          + (f", held-out accuracy {out['held_out_accuracy']:.3f} on {len(held)}" if len(held) else "") + f" -> {cfg.output}")
    return 0


def register(commands: dict[str, Command]) -> None:
    commands["control run"] = Command(ControlConfig, run_control,
                                  "train a policy (Stable-Baselines3) on a reward learned from a teacher's preferences")
    commands["control fit"] = Command(FitConfig, run_fit, "train a step reward model on labelled segment pairs")
