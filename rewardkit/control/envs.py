"""Environments seen through a learned reward, and a language-conditioned task.

- `LearnedRewardVecEnv`: a Stable-Baselines3 VecEnv wrapper whose rewards come from a step reward model, computed
  for all environments in one batched call; the true reward stays in info["true_reward"]. It also records the
  episodes it sees (observations, actions, true rewards, instruction) for the query pool, and times itself.
- `LearnedReward`: the same for one gymnasium environment (the exported reward as a gymnasium wrapper).
- `InstructedReach`: a 2-D point mass with a red and a blue target; each episode draws an instruction ("reach the
  red target" or "reach the blue target") and the true reward is the negative distance to the instructed one.
  The policy sees the instruction as a one-hot after the state; a reward model sees only the state (its first
  `obs_dim` entries) and the instruction's text, so it must read the text to know which target counts.
A reward model reads the first `obs_dim` entries of an observation; actions enter as the environment takes them
(a discrete action as a one-hot).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.vec_env import VecEnvWrapper

from rewardkit.control.reward import StepRewardModel
from rewardkit.errors import ModelError

INSTRUCTIONS = ("reach the red target", "reach the blue target")
TARGETS = np.array([[-0.6, 0.6], [0.6, 0.6]], dtype=np.float32)


class InstructedReach(gym.Env):
    """Push a point mass towards the target the episode's instruction names; 50 steps an episode."""

    metadata = {"render_modes": []}

    def __init__(self, horizon: int = 50):
        self.horizon = horizon
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (4 + len(INSTRUCTIONS),), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.state = np.zeros(4, dtype=np.float32)
        self.goal, self.t = 0, 0

    @property
    def instruction(self) -> str:
        return INSTRUCTIONS[self.goal]

    def _obs(self) -> np.ndarray:
        return np.concatenate([self.state, np.eye(len(INSTRUCTIONS), dtype=np.float32)[self.goal]])

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.goal = int(self.np_random.integers(len(INSTRUCTIONS)))
        self.state = np.concatenate([self.np_random.uniform(-0.2, 0.2, 2), np.zeros(2)]).astype(np.float32)
        self.t = 0
        return self._obs(), {"instruction": self.instruction}

    def step(self, action):
        action = np.clip(np.asarray(action, dtype=np.float32), -1, 1)
        reward = instructed_reach_reward(self.state[None], action[None], np.array([self.goal]))[0]
        velocity = 0.8 * self.state[2:] + 0.02 * action  # at most 0.1 a step: a target is 5 to 15 steps away
        self.state = np.concatenate([self.state[:2] + velocity, velocity]).astype(np.float32)
        self.t += 1
        return self._obs(), float(reward), False, self.t >= self.horizon, {"instruction": self.instruction}


def instructed_reach_reward(state: np.ndarray, action: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """True rewards [N] of states [N, >=2] (position first), actions [N, 2], goals [N] (target index)."""
    return -np.linalg.norm(state[:, :2] - TARGETS[goal], axis=1) - 0.05 * (action ** 2).sum(axis=1)


gym.register("rewardkit/InstructedReach-v0", entry_point=InstructedReach)


def action_features(actions: np.ndarray, space: gym.Space) -> np.ndarray:
    """Actions [N, ...] as the reward model reads them: as given for a box, one-hot for a discrete space."""
    if isinstance(space, gym.spaces.Discrete):
        return np.eye(space.n, dtype=np.float32)[np.asarray(actions, dtype=np.int64).reshape(-1)]
    return np.asarray(actions, dtype=np.float32).reshape(len(actions), *space.shape)


@dataclass
class Episode:
    observations: np.ndarray  # [T, D_obs] (the reward model's part of each observation)
    actions: np.ndarray       # [T, ...]
    rewards: np.ndarray       # [T] true
    instruction: str | None


class EpisodeRecorder:
    """The episodes of N vectorised environments, recorded a step at a time for all of them at once (one append a
    step, whatever N is); an environment's episode is cut out of the steps when it ends. Finished episodes in
    `episodes` (the last `keep`), their true returns in `true_returns` (all of them)."""

    def __init__(self, n_envs: int, keep: int = 2000):
        self.episodes: deque[Episode] = deque(maxlen=keep)
        self.true_returns: list[float] = []
        self._steps: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (states, actions, true rewards) [N, ...]
        self._starts = np.zeros(n_envs, dtype=np.int64)  # where each environment's running episode begins in _steps
        self._instructions: list[str | None] = [None] * n_envs

    def add(self, states: np.ndarray, actions: np.ndarray, rewards: np.ndarray, dones: np.ndarray,
            instructions: list[str | None] | None = None) -> None:
        self._steps.append((states, np.array(actions), np.asarray(rewards, dtype=np.float32)))  # actions: the caller's
        if instructions is not None:
            self._instructions = list(instructions)
        stacked: dict[int, list[np.ndarray]] = {}  # environments that started together share one stack of steps
        for i in np.flatnonzero(dones):
            start = int(self._starts[i])
            if start not in stacked:
                stacked[start] = [np.stack(part) for part in zip(*self._steps[start:], strict=True)]  # [T, N, ...]
            states, actions, rewards = (np.ascontiguousarray(part[:, i]) for part in stacked[start])
            self.episodes.append(Episode(states, actions, rewards, self._instructions[i]))
            self.true_returns.append(float(rewards.sum()))
            self._starts[i] = len(self._steps)
        if self._starts.min() >= 1000:  # every environment has moved past these steps: drop them
            done_with = int(self._starts.min())
            del self._steps[:done_with]
            self._starts -= done_with

    def restart(self) -> None:
        """Forget the unfinished episodes (the environments were reset); finished ones stay."""
        self._steps, self._starts[:] = [], 0


class LearnedRewardVecEnv(VecEnvWrapper):
    """Rewards from `model` for (observation before the step, action[, instruction]); the episodes it sees are
    recorded (`episodes`, at most `keep`, and `true_returns`). `fast` computes an MLP's rewards with NumPy
    (model.numpy_mlp) instead of torch."""

    def __init__(self, venv, model: StepRewardModel, keep: int = 2000, fast: bool = True):
        if model.spec.frame_shape:
            raise ModelError("the environment wrappers pass state observations only; this model also needs frames")
        super().__init__(venv)
        self.model, self.fast = model, fast
        self.recorder = EpisodeRecorder(self.num_envs, keep)
        self.reward_seconds = self.step_seconds = 0.0
        self._last_obs = None
        self._embeddings: dict[str, np.ndarray] = {}
        self._fast, self._fast_version = None, -1

    @property
    def episodes(self) -> deque[Episode]:
        return self.recorder.episodes

    @property
    def true_returns(self) -> list[float]:
        return self.recorder.true_returns

    def reset(self):
        self._last_obs = self.venv.reset()
        self.recorder.restart()
        return self._last_obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = action_features(actions, self.action_space)
        self.venv.step_async(actions)

    def step_wait(self):
        start = time.perf_counter()
        obs, true_rewards, dones, infos = self.venv.step_wait()
        stepped = time.perf_counter()
        state = self._last_obs[:, : self.model.spec.obs_dim].astype(np.float32)
        instructions = [info.get("instruction") for info in infos] if self.model.spec.instructed else None
        rewards = self.learned_rewards(state, self._actions, instructions)
        self.reward_seconds += time.perf_counter() - stepped
        for info, true_reward in zip(infos, true_rewards.tolist(), strict=True):
            info["true_reward"] = true_reward
        self.recorder.add(state, self._actions, true_rewards, dones, instructions)
        self._last_obs = obs
        self.step_seconds += stepped - start
        return obs, rewards.astype(np.float32), dones, infos

    def learned_rewards(self, state: np.ndarray, actions: np.ndarray, instructions: list[str] | None) -> np.ndarray:
        """The members' mean reward [N] for one step of every environment."""
        if self._fast_version != self.model.version:  # refitted: new weights, perhaps a new instruction centre
            self._fast = self.model.numpy_mlp() if self.fast else None
            self._fast_version, self._embeddings = self.model.version, {}
        emb = None
        if instructions is not None:
            for text in set(instructions) - set(self._embeddings):
                self._embeddings[text] = self.model.embed_instructions([text])[0].numpy()
            emb = np.stack([self._embeddings[t] for t in instructions])  # [N, E]
        if self._fast is not None:
            parts = [state] + ([emb] if emb is not None else []) + [actions.reshape(len(actions), -1)]
            return self._fast(np.concatenate(parts, axis=1)).mean(axis=0)
        with torch.inference_mode():
            per_step = self.model.step_rewards(torch.from_numpy(state).unsqueeze(1), torch.from_numpy(actions).unsqueeze(1),
                                               None if emb is None else torch.from_numpy(emb))
        return per_step.mean(dim=0)[:, 0].numpy()


class LearnedReward(gym.Wrapper):
    """One gymnasium environment whose reward is the learned one; the true reward goes to info["true_reward"]."""

    def __init__(self, env: gym.Env, model: StepRewardModel):
        if model.spec.frame_shape:
            raise ModelError("the environment wrappers pass state observations only; this model also needs frames")
        super().__init__(env)
        self.model = model
        self._last_obs = None
        self._instruction = None

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._last_obs, self._instruction = obs, info.get("instruction")
        return obs, info

    def step(self, action):
        state = np.asarray(self._last_obs, dtype=np.float32)[: self.model.spec.obs_dim]
        features = action_features(np.asarray(action)[None], self.action_space)[0]
        obs, true_reward, terminated, truncated, info = self.env.step(action)
        instruction = self._instruction if self.model.spec.instructed else None
        reward = float(self.model.reward(state, features, instruction))
        self._last_obs = obs
        return obs, reward, terminated, truncated, {**info, "true_reward": true_reward}
