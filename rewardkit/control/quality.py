"""Is a learned reward any good for control? Measures without a policy and with one.

Without a policy, on held-out episodes (not used for training):
- *return correlation*: Pearson and Spearman between learned and true segment returns;
- *preference accuracy*: how often the learned reward orders two segments as the true return does;
- *EPIC distance* (Gleave et al. 2021): the Pearson distance sqrt((1 - rho) / 2) between the two rewards after
  canonicalisation, C(R)(s, a, s') = R(s, a) + g E[R(s', A)] - E[R(s, A)] - g E[R(S, A)], with S drawn from the
  held-out states and A uniformly from the action space; 0 = the same reward up to shaping and scale, 1 = opposite.
  It needs the true reward as a function of (s, a): `TRUE_REWARDS` holds it for the environments where it is known.
With a policy: its mean true return over evaluation episodes, normalised so a random policy scores 0 and a policy
trained on the true reward (same algorithm and steps) scores 1.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
from scipy import stats

from rewardkit.control.envs import INSTRUCTIONS, Episode, action_features, instructed_reach_reward
from rewardkit.control.reward import StepRewardModel
from rewardkit.control.segments import Segment


def pendulum_reward(obs: np.ndarray, actions: np.ndarray, instructions=None) -> np.ndarray:
    """Pendulum-v1's reward [N] from observations [N, 3] (cos, sin, angular velocity) and torques [N, 1]."""
    theta = np.arctan2(obs[:, 1], obs[:, 0])
    torque = np.clip(actions[:, 0], -2.0, 2.0)
    return -(theta ** 2 + 0.1 * obs[:, 2] ** 2 + 0.001 * torque ** 2)


def reach_reward(obs: np.ndarray, actions: np.ndarray, instructions) -> np.ndarray:
    return instructed_reach_reward(obs, actions, np.array([INSTRUCTIONS.index(t) for t in instructions]))


TRUE_REWARDS: dict[str, Callable] = {"Pendulum-v1": pendulum_reward, "rewardkit/InstructedReach-v0": reach_reward}


def collect_episodes(env_id: str, policy, episodes: int, seed: int, obs_dim: int | None = None) -> list[Episode]:
    """Episodes of `policy` (an SB3 algorithm, acting deterministically, or None for uniform random actions)."""
    env = gym.make(env_id)
    env.action_space.seed(seed)
    out = []
    for e in range(episodes):
        obs, info = env.reset(seed=seed + e)
        rows, acts, rewards, done = [], [], [], False
        while not done:
            action = env.action_space.sample() if policy is None else policy.predict(obs, deterministic=True)[0]
            rows.append(np.asarray(obs, dtype=np.float32)[:obs_dim])
            acts.append(action_features(np.asarray(action)[None], env.action_space)[0])
            obs, reward, terminated, truncated, info = env.step(action)
            rewards.append(reward)
            done = terminated or truncated
        out.append(Episode(np.stack(rows), np.stack(acts), np.asarray(rewards, dtype=np.float32), info.get("instruction")))
    return out


def mean_return(episodes: list[Episode]) -> float:
    return float(np.mean([e.rewards.sum() for e in episodes]))


def normalised_return(value: float, random: float, expert: float) -> float:
    """0 for a random policy, 1 for the policy trained on the true reward."""
    return (value - random) / (expert - random)


def return_agreement(learned: np.ndarray, true: np.ndarray, rng: np.random.Generator) -> dict:
    """Pearson and Spearman of learned vs true segment returns [B], and the preference accuracy over random pairs;
    None where undefined (a constant true reward, such as CartPole's 1 per step, orders no segments)."""
    i, j = rng.integers(0, len(true), (2, 4 * len(true)))
    keep = true[i] != true[j]
    varied = np.ptp(true) > 0 and np.ptp(learned) > 0
    return {"pearson": float(stats.pearsonr(learned, true)[0]) if varied else None,
            "spearman": float(stats.spearmanr(learned, true)[0]) if varied else None,
            "preference_accuracy": float(np.mean((learned[i] > learned[j])[keep] == (true[i] > true[j])[keep]))
            if keep.any() else None}


def held_out(env_id: str, policy, learned_returns: Callable, reward_fn: Callable, episodes: int, seed: int,
             obs_dim: int, segment: int) -> dict:
    """The policy's and a random policy's true return over `episodes` fresh episodes, and how well the learned reward
    orders 400 segments drawn from them (return_agreement, and EPIC where the true reward is known).
    `learned_returns(segments)` -> [B]; `reward_fn(obs, actions, instructions)` -> [N]."""
    from rewardkit.control.loop import draw_segments

    mine = collect_episodes(env_id, policy, episodes, 10_000 + 100 * seed, obs_dim)
    rand = collect_episodes(env_id, None, episodes, 20_000 + 100 * seed, obs_dim)
    rng = np.random.default_rng(seed)
    segments = draw_segments(mine + rand, 400, segment, rng)
    true = np.array([s.rewards.sum() for s in segments])
    out = {"true_return": mean_return(mine), "random_return": mean_return(rand),
           **return_agreement(np.asarray(learned_returns(segments)), true, rng)}
    if env_id in TRUE_REWARDS:
        out["epic"] = epic_distance(reward_fn, TRUE_REWARDS[env_id], mine + rand, gym.make(env_id).action_space, rng)
    return out


def epic_distance(learned: Callable, true: Callable, episodes: list[Episode], action_space: gym.Space,
                  rng: np.random.Generator, gamma: float = 0.99, n_transitions: int = 2000, n_actions: int = 32,
                  n_states: int = 256) -> float:
    """EPIC distance between two rewards R(obs [N, D], actions [N, ...], instructions [N]) -> [N], on transitions
    drawn from `episodes` (see the module docstring)."""
    rows = [(e, t) for e in episodes for t in range(len(e.rewards) - 1)]
    picks = [rows[k] for k in rng.integers(0, len(rows), n_transitions)]
    s = np.stack([e.observations[t] for e, t in picks])
    a = np.stack([e.actions[t] for e, t in picks])
    s_next = np.stack([e.observations[t + 1] for e, t in picks])
    texts = [e.instruction for e, _ in picks]
    sampled_actions = action_features(np.stack([action_space.sample() for _ in range(n_actions)]), action_space)
    all_states = np.concatenate([e.observations for e in episodes])
    sampled_states = all_states[rng.integers(0, len(all_states), n_states)]

    def over_actions(reward: Callable, states: np.ndarray, instructions: list) -> np.ndarray:
        """E_A[R(s, A)] for each state [N]."""
        n = len(states)
        rep_s = np.repeat(states, n_actions, axis=0)
        rep_a = np.tile(sampled_actions, (n, 1) if sampled_actions.ndim == 2 else (n, 1, 1))
        rep_t = [t for t in instructions for _ in range(n_actions)]
        return reward(rep_s, rep_a, rep_t).reshape(n, n_actions).mean(axis=1)

    def canonical(reward: Callable) -> np.ndarray:
        # E[R(S, A)] is taken per instruction, so each instruction's reward is canonicalised on its own.
        per_text = {t: over_actions(reward, sampled_states, [t] * n_states).mean() for t in set(texts)}
        mean_sa = np.array([per_text[t] for t in texts])
        return (reward(s, a, texts) + gamma * over_actions(reward, s_next, texts)
                - over_actions(reward, s, texts) - gamma * mean_sa)

    rho = np.corrcoef(canonical(learned), canonical(true))[0, 1]
    return float(np.sqrt(max(0.0, 1 - rho) / 2))


def learned_reward_fn(model: StepRewardModel) -> Callable:
    """reward(obs, actions, instructions) -> [N] for EPIC; a model without instructions ignores them."""
    def reward(obs, actions, instructions):
        return model.reward(obs, actions, list(instructions) if model.spec.instructed else None)
    return reward


def learned_returns_fn(model: StepRewardModel) -> Callable:
    """segments -> the members' mean return [B]; a model without instructions scores them without the instruction
    the environment gave (it does not read one)."""
    def returns(segments: list[Segment]) -> np.ndarray:
        if not model.spec.instructed:
            segments = [Segment(s.observations, s.actions, None, s.rewards, s.frames) for s in segments]
        return model.score_segments(segments).mean(axis=0)
    return returns
