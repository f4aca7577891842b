"""What a control run is asked to do (rewardkit.control.loop); kept apart so the command line can read it without
importing Stable-Baselines3."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class LoopSettings:
    env: str = "Pendulum-v1"
    """a gymnasium environment id with a flat Box observation (e.g. Pendulum-v1, MountainCarContinuous-v0,
    CartPole-v1 with --algorithm ppo, rewardkit/InstructedReach-v0 with --instructed)"""
    teacher: Literal["oracle", "stoch", "mistake", "skip", "equal", "myopic"] = "oracle"
    """the simulated teacher (B-Pref): rational, Boltzmann (beta 1), 10% mistakes, skips, ties, myopic (gamma 0.9)"""
    queries: int = 200
    """total queries asked over the run"""
    steps: int = 10_000
    """environment steps of policy training"""
    algorithm: Literal["sac", "ppo"] = "sac"
    """the Stable-Baselines3 algorithm (SAC's replay buffer is relabelled after every reward update)"""
    selection: Literal["uniform", "disagreement", "entropy"] = "disagreement"
    """how queries are picked from oversample x k candidate pairs"""
    rounds: int = 10
    """query rounds, spaced evenly over the steps after the warm-up"""
    segment: int = 50
    """steps per segment shown to the teacher"""
    oversample: int = 10
    """candidate pairs drawn per query asked"""
    warmup: int = 1_000
    """environment steps before the first round (SAC acts at random during them)"""
    epochs: int = 50
    """most passes over the labels per refit"""
    stop_accuracy: float = 0.97
    """a refit stops after the first pass whose training accuracy reaches this (PEBBLE's rule)"""
    refit_stop: Literal["accuracy", "held-out"] = "accuracy"
    """how a refit stops early: by --stop-accuracy, or when the members' loss on their own held-out folds of the
    labels stops falling (then the best pass is kept; with a noisy teacher this keeps the wrong answers unlearnt)"""
    label_flips: float = 0.0
    """share of answers the teacher is expected to get wrong (0.1 for B-Pref's mistake teacher): an answer the
    ensemble is confident is wrong then stops pulling on it"""
    lr: float = 3e-4
    """the reward model's learning rate (Adam, kept across rounds)"""
    members: int = 3
    """reward models in the ensemble"""
    hidden: int = 64
    """width of each member's hidden layers"""
    layers: int = 3
    """hidden layers per member"""
    instructed: bool = False
    """condition the reward on the episode's language instruction (the environment must give one)"""
    n_envs: int = 1
    """vectorised environments (the learned reward is computed for all of them in one call)"""
    seed: int = 0
    """seeds the environments, the policy, the reward model and the teacher"""
