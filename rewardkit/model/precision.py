"""How forward passes run: fp32, or bf16 autocast; optionally compiled. `auto` picks whichever is faster here.

bf16 autocast keeps the weights (and the optimizer state) in fp32 and runs matrix multiplications in bf16.
Whether that is faster depends on the CPU, and a capability flag does not tell: an AMD EPYC with AVX512-BF16
multiplies bf16 about 4x faster than fp32, while an Intel Xeon that reports AVX512-BF16 but has no AMX
multiplies it at 0.6x and trains 2.1x slower under autocast. So on CPU `auto` times an fp32 and a bf16 matrix
product once per machine (rewardkit.model.machine caches the timings) and takes bf16 only when it is clearly
faster; on CUDA it takes bf16 wherever the GPU supports it.
"""

from __future__ import annotations

import contextlib
import functools
import sys

import torch

from rewardkit.model.machine import cache_dir, cpu_model, matmul_timings

PRECISIONS = ("fp32", "bf16", "auto")


def compile_for_inference(model: torch.nn.Module) -> torch.nn.Module:
    """Compile a model's backbone (each member's, for an ensemble) in place; module structure and weights unchanged."""
    for member in getattr(model, "members", [model]):
        getattr(member, "backbone", member).compile(dynamic=True)
    return model


def bf16_supported(device: torch.device | str = "cpu") -> bool:
    """Whether the device reports bf16 kernels (oneDNN on CPU). Says that bf16 runs, not that it is faster:
    `auto` measures that instead."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


# bf16 must multiply at least this much faster than fp32 before `auto` takes it on CPU. The matrix product is
# only part of a step: autocast casts activations and weights on every forward pass and norms, softmax and the
# loss stay in fp32, so a small matmul gain is eaten by the casts (on the Xeon above a 0.6x matmul made training
# 2.1x slower, worse than the matmul alone). Best-of-n timings on a shared VM also vary by about 10% each, so a
# ratio up to ~1.2x can be noise. Where it is a wash fp32 wins: it is the exact path.
BF16_MIN_SPEEDUP = 1.3


def choose_cpu_precision(fp32_seconds: float, bf16_seconds: float | None,
                         min_speedup: float = BF16_MIN_SPEEDUP) -> str:
    """'bf16' when a bf16 matrix product took at most 1 / min_speedup of the fp32 one, else 'fp32'
    (also when bf16 could not be timed: bf16_seconds None)."""
    if not bf16_seconds or bf16_seconds <= 0:
        return "fp32"
    return "bf16" if fp32_seconds / bf16_seconds >= min_speedup else "fp32"


@functools.cache
def _auto_precision(device_type: str, threads: int) -> str:
    """What `auto` means on this device type at this thread count, decided once per process and said once on
    stderr. `threads` is part of the key because the timings depend on it."""
    if device_type == "cuda":
        choice = "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        reason = f"{torch.cuda.get_device_name()} {'supports' if choice == 'bf16' else 'lacks'} bf16"
    elif device_type == "cpu":
        timings = matmul_timings()
        choice = choose_cpu_precision(timings.fp32_seconds, timings.bf16_seconds)
        speed = (f"bf16 matmul {timings.fp32_seconds / timings.bf16_seconds:.2f}x fp32" if timings.bf16_seconds
                 else "bf16 matmul unavailable")
        source = "cached in" if timings.cached else "measured now, cached in"
        reason = (f"{speed} on {cpu_model()}, {threads} threads; bf16 needs {BF16_MIN_SPEEDUP}x; "
                  f"{source} {cache_dir()}")
    else:
        choice, reason = "fp32", f"no bf16 rule for {device_type}"
    print(f"precision auto -> {choice} ({reason})", file=sys.stderr)
    return choice


def resolve_precision(precision: str, device: torch.device | str = "cpu") -> str:
    """'fp32' or 'bf16'; 'auto' -> bf16 where it is measurably faster on this CPU (or the GPU supports it)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return _auto_precision(torch.device(device).type, torch.get_num_threads())
    return precision


def autocast(precision: str, device: torch.device | str = "cpu"):
    """A context manager running the forward pass in the resolved precision."""
    device = torch.device(device)
    if resolve_precision(precision, device) == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
