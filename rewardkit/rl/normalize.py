"""Running reward normalisation: the mean and variance of every reward seen so far (Welford / Chan's parallel
update, exact for any batch sizes), so rewards reach the learner on a stable scale while the policy, and with it
the reward distribution, moves. Its state is a plain dict, saved beside the policy's checkpoint and loaded to
resume, or seeded from the reward model's stored statistics (RewardModel.spec.normalization) so the first batches
are already on the reward model's scale."""

from __future__ import annotations

import torch

from rewardkit.rl.rewards import check_finite


class RunningNormalizer:
    def __init__(self, mean: float = 0.0, std: float = 1.0, count: float = 0.0, eps: float = 1e-8):
        self.mean, self.m2, self.count, self.eps = float(mean), float(std) ** 2 * count, float(count), eps

    @classmethod
    def from_model_statistics(cls, stats: dict, weight: float = 100.0) -> RunningNormalizer:
        """Seeded with a reward model's stored {mean, std}, counted as `weight` rewards."""
        return cls(stats["mean"], stats["std"], weight)

    @property
    def std(self) -> float:
        return (self.m2 / self.count) ** 0.5 if self.count else 1.0

    def update(self, rewards: torch.Tensor) -> None:
        """Add a batch [N] of rewards to the statistics."""
        check_finite("rewards", rewards.reshape(-1, 1))
        x = rewards.detach().double().flatten()
        n = x.numel()
        if not n:
            return
        batch_mean, batch_m2 = x.mean().item(), ((x - x.mean()) ** 2).sum().item()
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean += delta * n / total
        self.m2 += batch_m2 + delta ** 2 * self.count * n / total
        self.count = total

    def __call__(self, rewards: torch.Tensor, update: bool = True) -> torch.Tensor:
        """[N] (r - mean) / std, after adding the batch to the statistics (update=False: with them as they are)."""
        if update:
            self.update(rewards)
        return (rewards.float() - self.mean) / (self.std + self.eps)

    def state_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std, "count": self.count}

    @classmethod
    def from_state_dict(cls, state: dict) -> RunningNormalizer:
        return cls(state["mean"], state["std"], state["count"])
