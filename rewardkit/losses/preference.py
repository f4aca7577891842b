"""Losses over pairs of rewards r⁺ (chosen), r⁻ (rejected), each [B] (or [B, K] for ensemble members).

Every loss returns the batch mean."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def bradley_terry(r_pos: torch.Tensor, r_neg: torch.Tensor, margin: torch.Tensor | float | None = None,
                  label_smoothing: torch.Tensor | float = 0.0) -> torch.Tensor:
    """-log σ(r⁺ − r⁻ − m): Bradley–Terry, optionally with a per-pair margin m (Llama 2 style).
    With label smoothing ε the label is "chosen wins with probability 1 − ε": −(1 − ε)·log σ(d) − ε·log σ(−d),
    whose minimum is at d = log((1 − ε)/ε), so no pair's margin is pushed without bound (noisy human labels).
    ε may be one number or one per pair [B] (soft labels: ε = 1 − P(chosen wins), e.g. a judge's vote share)."""
    diff = r_pos - r_neg
    if margin is not None:
        diff = diff - margin
    return preference_nll(diff, label_smoothing).mean()


def preference_nll(diff: torch.Tensor, label_smoothing: torch.Tensor | float = 0.0) -> torch.Tensor:
    """Per-pair −log P(label) for margins d = r⁺ − r⁻ (unreduced), the label right with probability 1 − ε
    (ε a number, or a tensor that broadcasts against d)."""
    if not isinstance(label_smoothing, torch.Tensor) and not label_smoothing:
        return -F.logsigmoid(diff)
    return -((1 - label_smoothing) * F.logsigmoid(diff) + label_smoothing * F.logsigmoid(-diff))


def flip_robust_nll(diff: torch.Tensor, label: torch.Tensor | float, flip: float) -> torch.Tensor:
    """Per-pair −log P(label) for margins d [B] when the teacher names the wrong side with probability `flip`
    (B-Pref's "mistake" teacher): it says "a" with probability q = flip + (1 − 2·flip)·σ(d), and a soft label p
    (P(a preferred), [B] or a number) is scored as −p·log q − (1 − p)·log(1 − q). Unlike label smoothing, whose
    loss on a wrongly labelled pair grows linearly with the margin against it, this loss is bounded by −log(flip):
    once the model is confident a label is a mistake, that label stops pulling on it. flip = 0 is Bradley–Terry."""
    if not 0 <= flip < 0.5:
        raise ValueError(f"flip must be in [0, 0.5), got {flip}")
    if not flip:
        return preference_nll(diff, 1 - label)
    log_flip, log_keep = math.log(flip), math.log1p(-2 * flip)
    says_a = torch.logaddexp(torch.full_like(diff, log_flip), log_keep + F.logsigmoid(diff))
    says_b = torch.logaddexp(torch.full_like(diff, log_flip), log_keep + F.logsigmoid(-diff))
    return -(label * says_a + (1 - label) * says_b)


def weighted_bradley_terry(r_pos: torch.Tensor, r_neg: torch.Tensor, weights: torch.Tensor,
                           label_smoothing: torch.Tensor | float = 0.0) -> torch.Tensor:
    """Bradley–Terry per ensemble member: r_pos, r_neg, weights [B, K]; member k's loss is the
    weights[:, k]-weighted mean over pairs (bootstrap weights make the members differ); returns the mean over k."""
    per_pair = preference_nll(r_pos - r_neg, label_smoothing)
    return ((per_pair * weights).sum(dim=0) / weights.sum(dim=0).clamp(min=1e-8)).mean()


def hinge(r_pos: torch.Tensor, r_neg: torch.Tensor, margin: torch.Tensor | float = 1.0) -> torch.Tensor:
    """max(0, m − (r⁺ − r⁻))."""
    return F.relu(margin - (r_pos - r_neg)).mean()


def contrastive(r_pos: torch.Tensor, r_neg: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """InfoNCE with temperature τ: each chosen response against every rejected response in the batch.

    −log exp(r⁺_i/τ) / (exp(r⁺_i/τ) + Σ_j exp(r⁻_j/τ)). With a batch of one pair and τ = 1 it is
    Bradley–Terry; in-batch negatives add pressure against responses rejected for other prompts.
    """
    positives = (r_pos / temperature).unsqueeze(1)                                    # [B, 1]
    negatives = (r_neg / temperature).unsqueeze(0).expand(r_pos.shape[0], -1)        # [B, B]
    logits = torch.cat([positives, negatives], dim=1)
    return -logits.log_softmax(dim=1)[:, 0].mean()
