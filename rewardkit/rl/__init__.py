"""Rewards inside policy optimisation: per-token KL, per-token and per-step rewards, advantages (GAE, GRPO,
Dr. GRPO, RLOO, REINFORCE++, GRPO process supervision), multi-reward aggregation, running reward normalisation,
and a reward-hacking monitor.
Pure tensor functions, usable under any RL engine; rewardkit.rl.trl wires them into TRL's GRPOTrainer."""

from rewardkit.rl.advantages import (
    combine_rewards,
    gae,
    grpo_advantages,
    process_advantages,
    reinforce_pp_advantages,
    rloo_advantages,
    whiten,
)
from rewardkit.rl.kl import kl_per_token
from rewardkit.rl.monitor import RewardMonitor
from rewardkit.rl.normalize import RunningNormalizer
from rewardkit.rl.rewards import discounted_returns, last_token_index, step_token_rewards, token_rewards

__all__ = ["RewardMonitor", "RunningNormalizer", "combine_rewards", "discounted_returns", "gae", "grpo_advantages", "kl_per_token",
           "last_token_index", "process_advantages", "reinforce_pp_advantages", "rloo_advantages",
           "step_token_rewards", "token_rewards", "whiten"]
