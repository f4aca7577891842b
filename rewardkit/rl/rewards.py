"""Per-token rewards for policy optimisation, built from what a reward model gives.

Vocabulary. A batch holds B responses of up to T tokens; `mask` [B, T] is True at a response's own tokens (left or
right padding both work: positions are found from the mask, never assumed). A *score* is one reward per response
(an outcome reward model, a verifier); *step rewards* are a process reward model's rewards at the last token of
each step (`step_ends` [B, S] token indices, -1 for a missing step). The per-token reward a PPO-style learner
sums is

    reward[b, t] = -beta * kl[b, t]  (+ score[b] at the response's last token)       ("token" KL placement)

or, with the KL summed over the response ("sequence" placement, TRL RLOO): score[b] - beta * sum_t kl[b, t] at the
last token. The score lands on the last response token (OpenRLHF, verl), not on the first padding token after it
(TRL PPO, trl#3750).
"""

from __future__ import annotations

import torch


def last_token_index(mask: torch.Tensor) -> torch.Tensor:
    """[B] the index of each row's last True position. mask: [B, T] bool, every row with at least one True."""
    mask = mask.bool()
    if not mask.any(dim=1).all():
        empty = (~mask.any(dim=1)).nonzero().flatten().tolist()
        raise ValueError(f"responses {empty} have no tokens: an empty response has no position for its reward")
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    return torch.where(mask, positions, -1).max(dim=1).values


def check_finite(name: str, values: torch.Tensor) -> None:
    """Raise on NaN or inf, naming the rows: a non-finite reward must never reach an optimiser."""
    bad = ~torch.isfinite(values)
    if bad.any():
        rows = bad.reshape(bad.shape[0], -1).any(dim=1).nonzero().flatten().tolist()
        raise ValueError(f"{name} is NaN or infinite in rows {rows[:10]}")


def check_tokens(name: str, values: torch.Tensor, mask: torch.Tensor) -> None:
    """Raise unless `values` has the mask's shape [B, T] and is finite at every response token (padding may hold
    anything: it is never read)."""
    if values.shape != mask.shape:
        raise ValueError(f"{name} {tuple(values.shape)} must have the mask's shape {tuple(mask.shape)}")
    check_finite(name, torch.where(mask.bool(), values.float(), torch.zeros_like(values, dtype=torch.float32)))


def token_rewards(scores: torch.Tensor, mask: torch.Tensor, kl: torch.Tensor | None = None, beta: float = 0.0,
                  kl_placement: str = "token", clip: float | None = None, ended: torch.Tensor | None = None,
                  missing_eos_penalty: float = 0.0) -> torch.Tensor:
    """[B, T] per-token rewards: the score at each response's last token, minus beta times the KL.

    scores: [B] one reward per response; mask: [B, T] response tokens; kl: [B, T] per-token KL (rewardkit.rl.kl),
    required when beta > 0; kl_placement: 'token' (each token pays its own KL) or 'sequence' (the summed KL is paid
    at the last token); clip: scores are clipped to [-clip, clip] first (OpenRLHF's reward clip range);
    ended: [B] bool, True where the response ended with an end token — those that did not lose missing_eos_penalty."""
    if scores.dim() != 1 or scores.shape[0] != mask.shape[0]:
        raise ValueError(f"scores {tuple(scores.shape)} must be [B] for mask {tuple(mask.shape)}")
    check_finite("scores", scores)
    scores = scores.float()
    if clip is not None:
        scores = scores.clamp(-clip, clip)
    if ended is not None:
        if ended.shape != scores.shape:
            raise ValueError(f"ended {tuple(ended.shape)} must be [B] like scores {tuple(scores.shape)}")
        scores = scores - missing_eos_penalty * (~ended.bool()).float()
    last = last_token_index(mask)
    rows = torch.arange(mask.shape[0], device=mask.device)
    rewards = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
    if beta:
        if kl is None:
            raise ValueError("beta > 0 needs the per-token KL")
        check_tokens("kl", kl, mask)
        kl = torch.where(mask.bool(), kl.float(), torch.zeros_like(kl, dtype=torch.float32))
        if kl_placement == "token":
            rewards -= beta * kl
        elif kl_placement == "sequence":
            rewards[rows, last] -= beta * kl.sum(dim=1)
        else:
            raise ValueError(f"kl_placement must be 'token' or 'sequence', got {kl_placement!r}")
    rewards[rows, last] += scores
    return rewards


def step_token_rewards(step_rewards: torch.Tensor, step_ends: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[B, T] a process reward model's step rewards placed at the last token of each step, 0 elsewhere.

    step_rewards: [B, S]; step_ends: [B, S] token index of each step's last token, -1 where a response has fewer
    than S steps; mask: [B, T]. A step end outside its response is an error."""
    if step_rewards.shape != step_ends.shape or step_rewards.shape[0] != mask.shape[0]:
        raise ValueError(f"step_rewards {tuple(step_rewards.shape)} and step_ends {tuple(step_ends.shape)} must be "
                         f"[B, S] with B = {mask.shape[0]}")
    present = step_ends >= 0
    check_finite("step rewards", torch.where(present, step_rewards.float(), torch.zeros_like(step_rewards, dtype=torch.float32)))
    rows = torch.arange(mask.shape[0], device=mask.device).unsqueeze(1).expand_as(step_ends)
    if (step_ends >= mask.shape[1]).any() or not mask.bool()[rows[present], step_ends[present]].all():
        raise ValueError("a step ends outside its response (step_ends must index response tokens)")
    out = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
    out.index_put_((rows[present], step_ends[present]), step_rewards[present].float(), accumulate=True)
    return out


def discounted_returns(rewards: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
    """[B, T] return at each response token: sum over t' >= t of gamma^(t'-t) * reward[t'], counting response tokens
    only (padding neither earns nor discounts). rewards, mask: [B, T]."""
    check_tokens("rewards", rewards, mask)
    rewards = torch.where(mask.bool(), rewards.float(), torch.zeros_like(rewards, dtype=torch.float32))
    out = torch.zeros_like(rewards)
    running = torch.zeros(rewards.shape[0], device=rewards.device)
    for t in range(rewards.shape[1] - 1, -1, -1):
        on = mask[:, t].bool()
        running = torch.where(on, rewards[:, t] + gamma * running, running)
        out[:, t] = torch.where(on, running, torch.zeros_like(running))
    return out
