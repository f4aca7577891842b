"""The control loop (PEBBLE-style rounds) on Stable-Baselines3: the policy trains on the learned reward while the
reward model learns from a teacher's answers to the queries it picks.

  warm-up          `warmup` environment steps (SAC: random actions), recorded as episodes
  each round       draw `oversample` x k candidate pairs of segments from recorded episodes, keep the k the
                   selection rule ranks first, ask the teacher, refit the reward model on every label so far,
                   relabel the SAC replay buffer with the new reward, train the policy until the next round
The rounds are spaced evenly over the environment steps after the warm-up; the query budget is split evenly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.vec_env import DummyVecEnv

from rewardkit.control.envs import INSTRUCTIONS, Episode, LearnedRewardVecEnv, action_features
from rewardkit.control.learn import fit_preferences, pair_tensors
from rewardkit.control.queries import select_queries
from rewardkit.control.reward import StepRewardModel, StepRewardSpec
from rewardkit.control.segments import Segment
from rewardkit.control.settings import LoopSettings
from rewardkit.control.teachers import TEACHERS, label_pairs, segment_margin
from rewardkit.errors import ConfigError

ALGORITHMS = {"sac": SAC, "ppo": PPO}


@dataclass
class LoopResult:
    reward_model: StepRewardModel
    policy: object                 # the Stable-Baselines3 algorithm
    pairs: list[tuple[Segment, Segment]]
    labels: np.ndarray
    curve: list[dict]
    timing: dict


def reward_inputs(env: gym.Env, instructed: bool) -> tuple[int, int, tuple]:
    """(obs_dim, action_dim, action shape) the reward model reads from `env`."""
    space = env.observation_space
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise ConfigError(f"the control loop needs a flat Box observation space, got {space}")
    obs_dim = space.shape[0]
    gives_instructions = hasattr(env.unwrapped, "instruction")
    if instructed and not gives_instructions:
        raise ConfigError("an instructed reward model needs an environment that gives instructions, "
                          "e.g. rewardkit/InstructedReach-v0")
    if gives_instructions:  # the policy's one-hot copy of the instruction is not the reward model's to read
        obs_dim -= len(INSTRUCTIONS)
    actions = action_features(np.asarray([env.action_space.sample()]), env.action_space)
    return obs_dim, int(np.prod(actions.shape[1:])), actions.shape[1:]


def draw_segments(episodes: list[Episode], n: int, length: int, rng: np.random.Generator) -> list[Segment]:
    """n segments of `length` steps at random offsets in random episodes at least that long."""
    long_enough = [e for e in episodes if len(e.rewards) >= length]
    if not long_enough:
        raise ConfigError(f"no recorded episode has {length} steps; use a shorter --segment")
    out = []
    for i in rng.integers(0, len(long_enough), n):
        e = long_enough[i]
        start = int(rng.integers(0, len(e.rewards) - length + 1))
        window = slice(start, start + length)
        out.append(Segment(e.observations[window], e.actions[window], e.instruction, e.rewards[window]))
    return out


def make_algorithm(settings: LoopSettings, venv) -> object:
    kwargs = {"learning_starts": settings.warmup} if settings.algorithm == "sac" else {}
    return ALGORITHMS[settings.algorithm]("MlpPolicy", venv, seed=settings.seed, verbose=0, device="cpu", **kwargs)


def train_on_true_reward(settings: LoopSettings) -> object:
    """The same algorithm, seed and environment steps trained on the environment's own reward: the reference a
    learned reward's policy is normalised against."""
    algorithm = make_algorithm(settings, gym.make(settings.env))
    algorithm.learn(settings.steps)
    return algorithm


def relabel_replay_buffer(algorithm, model: StepRewardModel, instructed: bool) -> None:
    """Rewrite the rewards stored in an off-policy algorithm's replay buffer with the current learned reward."""
    buffer = getattr(algorithm, "replay_buffer", None)
    if buffer is None:
        return
    size = buffer.buffer_size if buffer.full else buffer.pos
    obs = buffer.observations[:size].reshape(size * buffer.n_envs, -1)
    actions = algorithm.policy.unscale_action(buffer.actions[:size].reshape(size * buffer.n_envs, -1))
    instructions = None
    if instructed:
        instructions = [INSTRUCTIONS[g] for g in obs[:, -len(INSTRUCTIONS):].argmax(axis=1)]
    rewards = np.concatenate([model.reward(obs[i:i + 65536, : model.spec.obs_dim], actions[i:i + 65536],
                                           None if instructions is None else instructions[i:i + 65536])
                              for i in range(0, len(obs), 65536)])
    buffer.rewards[:size] = rewards.reshape(size, buffer.n_envs)


def ask_teacher(model: StepRewardModel, episodes: list[Episode], k: int, settings: LoopSettings,
                rng: np.random.Generator) -> tuple[list[tuple[Segment, Segment]], list[float]]:
    """One round's queries: the k candidate pairs the selection rule picks, and the teacher's labels for those it
    answers (skipped ones are left out)."""
    candidates = draw_segments(episodes, 2 * k * settings.oversample, settings.segment, rng)
    a, b = candidates[0::2], candidates[1::2]
    chosen = select_queries(settings.selection, model.score_segments(a), model.score_segments(b), k, rng)
    floor = min(float(e.rewards.min()) for e in episodes)
    margin = segment_margin(np.stack([s.rewards for s in candidates]), floor)
    labels = label_pairs(TEACHERS[settings.teacher], np.stack([a[i].rewards for i in chosen]),
                         np.stack([b[i].rewards for i in chosen]), margin, floor, rng)
    answered = [(i, float(label)) for i, label in zip(chosen, labels, strict=True) if not np.isnan(label)]
    return [(a[i], b[i]) for i, _ in answered], [label for _, label in answered]


def train_policy(algorithm, until: int) -> None:
    """Train until `until` environment steps in all (PPO may already be past it: it collects whole rollouts)."""
    if until > algorithm.num_timesteps:
        algorithm.learn(total_timesteps=until - algorithm.num_timesteps, reset_num_timesteps=False)


def run_loop(settings: LoopSettings, progress=None) -> LoopResult:
    """Train a policy on a reward learned from `settings.queries` teacher answers; see the module docstring."""
    if settings.teacher not in TEACHERS:
        raise ConfigError(f"teacher must be one of {', '.join(TEACHERS)}, got {settings.teacher!r}")
    if settings.algorithm not in ALGORITHMS:
        raise ConfigError(f"algorithm must be one of {', '.join(ALGORITHMS)}, got {settings.algorithm!r}")
    if settings.rounds < 1 or settings.queries < settings.rounds:
        raise ConfigError(f"need at least one query per round ({settings.queries} queries, {settings.rounds} rounds)")
    if not 0 <= settings.label_flips < 0.5:
        raise ConfigError(f"--label-flips must be in [0, 0.5), got {settings.label_flips}")
    if settings.steps <= settings.warmup:
        raise ConfigError(f"--steps {settings.steps} leaves no steps after the --warmup {settings.warmup}")
    rng = np.random.default_rng(settings.seed)
    torch.manual_seed(settings.seed)
    probe = gym.make(settings.env)
    obs_dim, action_dim, action_shape = reward_inputs(probe, settings.instructed)
    chunk = action_shape[0] if len(action_shape) == 2 else 0
    model = StepRewardModel(StepRewardSpec(obs_dim, action_dim if not chunk else action_shape[1], chunk=chunk,
                                           members=settings.members, hidden=settings.hidden, layers=settings.layers,
                                           instructed=settings.instructed)).eval()
    venv = LearnedRewardVecEnv(DummyVecEnv([lambda: gym.make(settings.env)] * settings.n_envs), model)
    venv.seed(settings.seed)
    algorithm = make_algorithm(settings, venv)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    pairs: list[tuple[Segment, Segment]] = []
    labels: list[float] = []
    curve: list[dict] = []
    per_round = [settings.queries // settings.rounds + (i < settings.queries % settings.rounds) for i in range(settings.rounds)]
    schedule = np.linspace(settings.warmup, settings.steps, settings.rounds + 1).astype(int)
    timing = {"policy_seconds": 0.0, "reward_fit_seconds": 0.0, "query_seconds": 0.0}
    started = time.perf_counter()
    for r, k in enumerate(per_round):
        t0 = time.perf_counter()
        train_policy(algorithm, int(schedule[r]))
        t1 = time.perf_counter()
        new_pairs, new_labels = ask_teacher(model, list(venv.episodes), k, settings, rng)
        pairs += new_pairs
        labels += new_labels
        t2 = time.perf_counter()
        fit = fit_preferences(model, pair_tensors(model, pairs, np.asarray(labels)), epochs=settings.epochs,
                              seed=settings.seed + r, optimizer=optimizer,
                              stop_accuracy=settings.stop_accuracy, label_flips=settings.label_flips,
                              held_out=settings.refit_stop == "held-out") if pairs else {}
        relabel_replay_buffer(algorithm, model, settings.instructed)
        t3 = time.perf_counter()
        timing["policy_seconds"] += t1 - t0
        timing["query_seconds"] += t2 - t1
        timing["reward_fit_seconds"] += t3 - t2
        recent = venv.true_returns[-10:]
        point = {"round": r, "env_steps": int(algorithm.num_timesteps), "queries": sum(per_round[:r + 1]),
                 "labelled": len(labels), "skipped": k - len(new_labels),
                 "recent_true_return": float(np.mean(recent)) if recent else None, **fit}
        curve.append(point)
        if progress:
            progress(point)
    t0 = time.perf_counter()
    train_policy(algorithm, settings.steps)
    timing["policy_seconds"] += time.perf_counter() - t0
    timing.update(total_seconds=time.perf_counter() - started, env_step_seconds=venv.step_seconds,
                  reward_in_env_seconds=venv.reward_seconds,
                  reward_share_of_env_step=venv.reward_seconds / max(venv.step_seconds + venv.reward_seconds, 1e-12))
    return LoopResult(model, algorithm, pairs, np.asarray(labels, dtype=np.float32), curve, timing)
