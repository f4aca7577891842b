"""FLOP accounting for transformer reward models, and this machine's matmul peak, for model FLOP
utilisation (MFU): useful FLOPs per second / peak FLOPs per second.

Useful FLOPs count real tokens only (padding is waste, not work): per token 2 x (weights of every Linear
layer), plus attention's two T x T products per layer (QK^T and AV: 4 * T^2 * d per layer for a sequence
of T tokens). Embedding look-ups, norms and activations are left out (a few percent).
"""

from __future__ import annotations

import time

import torch
from torch import nn


def linear_flops_per_token(model: nn.Module) -> int:
    return 2 * sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, nn.Linear))


def forward_flops(model: nn.Module, config, lengths: list[int]) -> float:
    """FLOPs of forward passes over sequences of the given lengths (no padding)."""
    per_token = linear_flops_per_token(model)
    layers = getattr(config, "num_hidden_layers", 0)
    width = getattr(config, "hidden_size", 0)
    return float(sum(per_token * t + 4 * t * t * width * layers for t in lengths))


def matmul_seconds(dtype: torch.dtype, shape: tuple[int, int, int], repeats: int = 5, budget: float = 0.15) -> float:
    """Seconds of one (m x k) @ (k x n) product: the best of up to `repeats` timed runs after one warm-up run
    (the first run pays for allocation and kernel selection). Stops early once `budget` seconds are spent, after
    at least two timed runs, so a slow path (e.g. emulated bf16) cannot make the measurement drag on."""
    m, k, n = shape
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    torch.mm(a, b)
    best, spent = float("inf"), 0.0
    for run in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b)
        elapsed = time.perf_counter() - started
        best, spent = min(best, elapsed), spent + elapsed
        if run >= 1 and spent > budget:
            break
    return best


def matmul_peak(dtype: torch.dtype = torch.float32, sizes: tuple[int, ...] = (1024, 2048, 3072), seconds: float = 1.5) -> float:
    """Measured FLOP/s of square matrix products on this machine: the best single run over a few sizes
    (on a shared machine a short measurement underestimates the peak, which would overstate MFU)."""
    best_rate = 0.0
    for n in sizes:
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        torch.mm(a, b)
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            torch.mm(a, b)
            best_rate = max(best_rate, 2 * n ** 3 / (time.perf_counter() - started))
    return best_rate
