"""Losses over K ranked or best-of-K responses: rewards [B, K], a boolean `valid` mask [B, K] (records may have
different K), ranks [B, K] (1 = best) or the index of the best [B]. Every loss returns the batch mean."""

from __future__ import annotations

import torch
import torch.nn.functional as F

NEG_INF = -1e9  # a masked logit: exp() of it is 0, and it stays finite in bf16


def listwise_softmax(rewards: torch.Tensor, best: torch.Tensor, valid: torch.Tensor | None = None,
                     temperature: float = 1.0) -> torch.Tensor:
    """−log softmax(R / T)_b for best-of-K records: the human's pick b among K candidates.

    Its gradient with respect to R_i is (P_i − 1[i = b]) / T, so that the parameter gradient is
    −(∇R_b − Σ_i P_i ∇R_i) / T.
    """
    logits = rewards / temperature
    if valid is not None:
        logits = logits.masked_fill(~valid, NEG_INF)
    return -logits.log_softmax(dim=-1).gather(1, best.view(-1, 1)).mean()


def ranking_pairs(rewards: torch.Tensor, ranks: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """A full ranking as all C(K, 2) pairs, each Bradley–Terry, weighted 1 / C(K, 2).

    `ranks` are 1 = best; tied pairs carry no preference and add nothing (but still count in C(K, 2)).
    """
    valid = torch.ones_like(ranks, dtype=torch.bool) if valid is None else valid
    better = (ranks.unsqueeze(2) < ranks.unsqueeze(1)) & valid.unsqueeze(2) & valid.unsqueeze(1)  # [B, i, j]: i beats j
    diff = rewards.unsqueeze(2) - rewards.unsqueeze(1)
    per_pair = torch.where(better, -F.logsigmoid(diff), torch.zeros_like(diff))
    k = valid.sum(dim=1).float()
    n_pairs = (k * (k - 1) / 2).clamp(min=1)
    return (per_pair.sum(dim=(1, 2)) / n_pairs).mean()


def plackett_luce(rewards: torch.Tensor, ranks: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Plackett–Luce negative log-likelihood of a ranking (1 = best), with Breslow's rule for ties.

    −Σ_i [r_i − log Σ_{j : rank_j ≥ rank_i} exp r_j]; without ties this is the usual product of
    successive softmax choices (the last, certain choice contributes zero).
    """
    valid = torch.ones_like(ranks, dtype=torch.bool) if valid is None else valid
    at_or_below = (ranks.unsqueeze(1) >= ranks.unsqueeze(2)) & valid.unsqueeze(1)  # [B, i, j]: rank_j >= rank_i
    expanded = rewards.unsqueeze(1).expand(-1, rewards.shape[1], -1).masked_fill(~at_or_below, NEG_INF)
    terms = rewards - expanded.logsumexp(dim=-1)
    return -(torch.where(valid, terms, torch.zeros_like(terms)).sum(dim=1)).mean()
