"""Advantages: how much better than expected each response (or token) did, for the policy-gradient step.

Shapes: B responses in groups of G consecutive responses to the same prompt (B = n_prompts * G); scores [B] are
one reward per response; token tensors are [B, T] with a response mask. Group statistics use the unbiased
standard deviation (torch.std), as TRL, verl and the DeepSeekMath paper write it. A group of one has no baseline:
the group estimators refuse G = 1. A group whose rewards are all equal gets advantage 0 (no signal, never NaN:
every eps must be above 0). NaN or inf in any input at a response token is an error naming the rows; a row with
no response tokens gets zeros from the token-level estimators (token_rewards refuses it: its score has no token).
"""

from __future__ import annotations

import torch

from rewardkit.rl.rewards import check_finite, check_tokens, discounted_returns, step_token_rewards


def positive_eps(eps: float) -> None:
    if not eps > 0:
        raise ValueError(f"eps must be above 0 (a group of equal rewards would divide 0 by 0), got {eps}")


def grouped(scores: torch.Tensor, group_size: int) -> torch.Tensor:
    """[B] -> [B / G, G], checked."""
    if scores.dim() != 1:
        raise ValueError(f"scores must be [B], got {tuple(scores.shape)}")
    if group_size < 2:
        raise ValueError(f"a group of {group_size} response(s) has no baseline: group estimators need G >= 2 "
                         "(use reinforce_pp_advantages for one response per prompt)")
    if scores.shape[0] % group_size:
        raise ValueError(f"{scores.shape[0]} scores do not split into groups of {group_size}")
    check_finite("scores", scores)
    return scores.float().view(-1, group_size)


def grpo_advantages(scores: torch.Tensor, group_size: int, scale: str = "group", eps: float = 1e-4) -> torch.Tensor:
    """[B] GRPO outcome advantages (r - group mean) / (std + eps), one per response (every token of it gets it).

    scale: 'group' (the group's std: DeepSeekMath, TRL's default, verl), 'batch' (the whole batch's std, the group's
    mean: TRL scale_rewards='batch'), 'none' (no division: Dr. GRPO; TRL scale_rewards='none', verl
    norm_adv_by_std_in_grpo=False, OpenRLHF dr_grpo). eps: TRL 1e-4, verl 1e-6, OpenRLHF 1e-9."""
    positive_eps(eps)
    groups = grouped(scores, group_size)
    centred = groups - groups.mean(dim=1, keepdim=True)
    if scale == "group":
        centred = centred / (groups.std(dim=1, keepdim=True) + eps)
    elif scale == "batch":
        centred = centred / (groups.flatten().std() + eps)
    elif scale != "none":
        raise ValueError(f"scale must be 'group', 'batch' or 'none', got {scale!r}")
    return centred.flatten()


def rloo_advantages(scores: torch.Tensor, group_size: int) -> torch.Tensor:
    """[B] leave-one-out: r minus the mean of the other G - 1 rewards of its group (TRL RLOO, OpenRLHF rloo)."""
    groups = grouped(scores, group_size)
    others = (groups.sum(dim=1, keepdim=True) - groups) / (group_size - 1)
    return (groups - others).flatten()


def whiten(values: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """[B, T] values standardised over the masked entries of the whole batch (unbiased variance; shift_mean=False
    keeps the mean, as TRL PPO whitens rewards), 0 outside the mask."""
    positive_eps(eps)
    check_tokens("values", values, mask)
    mask = mask.bool()
    chosen = values[mask].float()
    if chosen.numel() < 2:
        raise ValueError("whitening needs at least two masked values")
    mean, var = chosen.mean(), chosen.var()
    out = (values.float() - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        out = out + mean
    return torch.where(mask, out, torch.zeros_like(out))


def reinforce_pp_advantages(rewards: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
    """[B, T] REINFORCE++: each token's discounted return, whitened over the batch's response tokens (no critic,
    no group baseline; KL is expected in the per-token rewards). rewards, mask: [B, T]."""
    return whiten(discounted_returns(rewards, mask, gamma), mask)


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0,
        lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages [B, T], returns [B, T]) by generalised advantage estimation over the response tokens.

    rewards, values, mask: [B, T]; the value after a response's last token is 0. delta_t = r_t + gamma * V_{t+1} - V_t,
    A_t = delta_t + gamma * lam * A_{t+1}; returns = A + V. Not whitened (PPO trainers whiten A themselves)."""
    check_tokens("rewards", rewards, mask)
    check_tokens("values", values, mask)
    mask = mask.bool()
    rewards = torch.where(mask, rewards.float(), torch.zeros_like(rewards, dtype=torch.float32))
    values = torch.where(mask, values.float(), torch.zeros_like(values, dtype=torch.float32))
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros(rewards.shape[0], device=rewards.device)
    running = torch.zeros_like(next_value)
    for t in range(rewards.shape[1] - 1, -1, -1):
        on = mask[:, t]
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = torch.where(on, delta + gamma * lam * running, running)
        advantages[:, t] = torch.where(on, running, torch.zeros_like(running))
        next_value = torch.where(on, values[:, t], next_value)
    return advantages, advantages + values


def process_advantages(step_rewards: torch.Tensor, step_ends: torch.Tensor, mask: torch.Tensor, group_size: int,
                       eps: float = 1e-4) -> torch.Tensor:
    """[B, T] GRPO process supervision (DeepSeekMath 4.1.3): every step reward is normalised by the mean and std of
    all step rewards of its group's G responses, and each token's advantage is the sum of the normalised rewards
    of the steps that end at or after it.

    step_rewards: [B, S]; step_ends: [B, S] token index of each step's last token, -1 for a missing step; mask:
    [B, T] response tokens."""
    positive_eps(eps)
    if group_size < 2:
        raise ValueError("process supervision normalises over a group: it needs G >= 2")
    if step_rewards.shape != step_ends.shape or step_rewards.shape[0] % group_size:
        raise ValueError(f"step_rewards {tuple(step_rewards.shape)} and step_ends {tuple(step_ends.shape)} must be "
                         f"[B, S] with B a multiple of G = {group_size}")
    present = step_ends >= 0
    check_finite("step rewards", torch.where(present, step_rewards.float(), torch.zeros_like(step_rewards, dtype=torch.float32)))
    normalised = torch.zeros_like(step_rewards, dtype=torch.float32)
    for start in range(0, step_rewards.shape[0], group_size):
        rows = slice(start, start + group_size)
        values = step_rewards[rows][present[rows]].float()
        if values.numel() == 0:
            continue
        std = values.std() if values.numel() > 1 else torch.tensor(0.0)
        normalised[rows] = torch.where(present[rows], (step_rewards[rows].float() - values.mean()) / (std + eps), 0.0)
    placed = step_token_rewards(normalised, step_ends, mask)
    return discounted_returns(placed, mask, gamma=1.0)


def combine_rewards(rewards: torch.Tensor, weights: list[float] | None = None, how: str = "sum",
                    group_size: int = 0, eps: float = 1e-4) -> torch.Tensor:
    """[B] one reward from K reward functions [B, K]: 'sum' (weighted sum; TRL's sum_then_normalize before its
    group step) or 'normalize_then_sum' (each function z-scored in its group, weighted sum, then z-scored over the
    batch: TRL's normalize_then_sum / GDPO; needs group_size)."""
    if rewards.dim() != 2:
        raise ValueError(f"rewards must be [B, K], got {tuple(rewards.shape)}")
    check_finite("rewards", rewards)
    w = torch.tensor(weights if weights is not None else [1.0] * rewards.shape[1], dtype=torch.float32)
    if w.shape[0] != rewards.shape[1]:
        raise ValueError(f"{w.shape[0]} weights for {rewards.shape[1]} reward functions")
    if how == "sum":
        return rewards.float() @ w
    if how != "normalize_then_sum":
        raise ValueError(f"how must be 'sum' or 'normalize_then_sum', got {how!r}")
    per_function = torch.stack([grpo_advantages(rewards[:, k], group_size, "group", eps)
                                for k in range(rewards.shape[1])], dim=1)
    total = per_function @ w
    return (total - total.mean()) / (total.std() + eps)
