"""How forward passes run: fp32, or bf16 autocast where the hardware multiplies bf16 natively; optionally compiled.

bf16 autocast keeps the weights (and the optimizer state) in fp32 and runs matrix multiplications in bf16.
On CPUs with AVX512-BF16 or AMX it is several times faster than fp32; elsewhere it is emulated and slower,
which is why `auto` checks the hardware and falls back to fp32.
"""

from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("fp32", "bf16", "auto")


def precision_option():
    """The --precision option shared by train, score, eval and serve."""
    from rewardkit.config import option

    return option("fp32", help="fp32, bf16 (autocast: fp32 weights, bf16 matmuls), or auto (bf16 where the hardware "
                  "has native bf16, else fp32)", choices=PRECISIONS)


def compile_option():
    """The --compile option shared by score, eval and serve."""
    from rewardkit.config import option

    return option(False, help="torch.compile the backbone for inference (dynamic shapes: one compile for all batch "
                  "shapes; a slower start, faster steady scoring; needs a C++ compiler on CPU)")


def compile_for_inference(model: torch.nn.Module) -> torch.nn.Module:
    """Compile a model's backbone (each member's, for an ensemble) in place; module structure and weights unchanged."""
    for member in getattr(model, "members", [model]):
        getattr(member, "backbone", member).compile(dynamic=True)
    return model


def bf16_supported(device: torch.device | str = "cpu") -> bool:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: torch.device | str = "cpu") -> str:
    """'auto' -> 'bf16' when the device has native bf16 matrix units, else 'fp32'."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "bf16" if bf16_supported(device) else "fp32"
    return precision


def autocast(precision: str, device: torch.device | str = "cpu"):
    """A context manager running the forward pass in the resolved precision."""
    device = torch.device(device)
    if resolve_precision(precision, device) == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
