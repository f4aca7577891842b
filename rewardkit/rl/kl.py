"""Per-token KL between the policy and its reference, estimated from the log-probabilities of the sampled tokens.

With r = log pi_ref(a) - log pi(a) at each sampled token a (Schulman's notation):
    k1 = -r                 unbiased, can be negative; what OpenRLHF (default) and TRL PPO/RLOO put in the reward
    k2 = r^2 / 2            biased, never negative; OpenRLHF's k2, verl's "mse"
    k3 = exp(r) - 1 - r     unbiased and never negative; GRPO's loss term (DeepSeekMath, TRL GRPO), verl's
                            "low_var_kl", OpenRLHF's k3
"""

from __future__ import annotations

import torch

from rewardkit.rl.rewards import check_tokens

ESTIMATORS = ("k1", "k2", "k3")


def kl_per_token(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor, estimator: str = "k1",
                 clamp: float | None = 10.0) -> torch.Tensor:
    """[B, T] KL estimates at the response tokens, 0 elsewhere.

    logprobs, ref_logprobs: [B, T] log-probabilities of the sampled tokens under the policy and the reference;
    mask: [B, T] bool, True at response tokens; clamp: |KL| is cut at this value (OpenRLHF cuts every estimator at
    10, verl only k3), None for no cut."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown KL estimator {estimator!r}; choose from {', '.join(ESTIMATORS)}")
    if logprobs.shape != ref_logprobs.shape or logprobs.shape != mask.shape:
        raise ValueError(f"logprobs {tuple(logprobs.shape)}, ref_logprobs {tuple(ref_logprobs.shape)} and mask "
                         f"{tuple(mask.shape)} must have one shape [B, T]")
    check_tokens("logprobs", logprobs, mask)
    check_tokens("ref_logprobs", ref_logprobs, mask)
    r = (ref_logprobs - logprobs).float()
    if estimator == "k1":
        kl = -r
    elif estimator == "k2":
        kl = r.square() / 2
    else:
        kl = torch.expm1(r.clamp(max=20.0)) - r  # exp(r) - 1 - r, with exp kept finite
    if clamp is not None:
        kl = kl.clamp(-clamp, clamp)
    return torch.where(mask.bool(), kl, torch.zeros_like(kl))
