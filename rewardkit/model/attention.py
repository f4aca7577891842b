"""Attention precision under bf16 autocast: fp32 where that trains faster on this CPU.

CPU autocast runs scaled-dot-product attention in bf16 together with the matrix products. Whether that pays depends
on the head width and the sequence length, not only on the CPU: on a 2-core AMD EPYC, the flash-attention kernel's
forward and backward over 16 x 12 heads x 128 tokens x 32 (MiniLM) took 34 ms in bf16 and 17 ms in fp32, while at
64-wide heads and 512 tokens bf16 was 1.1x faster. So before training in bf16 on CPU, rewardkit times one attention
forward and backward at the run's shape in both precisions (cached per machine and shape, beside the matmul timings)
and runs attention in fp32 unless bf16 is clearly faster: the rule `auto` applies to the matrix products
(rewardkit.model.precision.choose_cpu_precision). Queries, keys and values are cast up and the output back down, so
everything around attention runs as before.

The fp32 kernel is registered with transformers' AttentionInterface under FP32_SDPA, with sdpa's mask format; a model
switches to it with `set_attn_implementation`, which only models on that interface support (BERT, Llama, Qwen, ...).
"""

from __future__ import annotations

import sys
import time

import torch
import torch.nn.functional as F

from rewardkit.model.machine import cache_dir, machine_key, read_cache, write_cache
from rewardkit.model.precision import choose_cpu_precision

FP32_SDPA = "rewardkit_sdpa_fp32"
TIMINGS_FILE = "attention_timings.json"


def sdpa_fp32(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
              attention_mask: torch.Tensor | None, **kwargs) -> tuple[torch.Tensor, None]:
    """transformers' sdpa attention with query, key and value [B, heads, T, head_dim] in fp32 and autocast off;
    the output [B, T, heads, head_dim] comes back in the query's dtype."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    with torch.autocast(query.device.type, enabled=False):
        out, weights = sdpa_attention_forward(module, query.float(), key.float(), value.float(), attention_mask,
                                              **kwargs)
    return out.to(query.dtype), weights


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(FP32_SDPA, sdpa_fp32)
    ALL_MASK_ATTENTION_FUNCTIONS.register(FP32_SDPA, sdpa_mask)


def attention_seconds(dtype: torch.dtype, rows: int, heads: int, length: int, head_dim: int,
                      repeats: int = 3) -> float:
    """Best-of-`repeats` seconds of one attention forward and backward over [rows, heads, length, head_dim] with
    a boolean mask (as padded and step-masked batches have), after one warm-up."""
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(rows, heads, length, head_dim, generator=gen).to(dtype).requires_grad_()
               for _ in range(3))
    mask = torch.ones(length, length, dtype=torch.bool).tril()
    best = float("inf")
    for i in range(repeats + 1):
        start = time.perf_counter()
        F.scaled_dot_product_attention(q, k, v, attn_mask=mask).sum().backward()
        if i:
            best = min(best, time.perf_counter() - start)
    return best


def attention_timings(rows: int, heads: int, length: int, head_dim: int) -> tuple[float, float | None, bool]:
    """(fp32 seconds, bf16 seconds or None, whether cached) for attention at this shape on this machine."""
    path = cache_dir() / TIMINGS_FILE
    key = f"{machine_key()} | {rows}x{heads}x{length}x{head_dim}"
    saved = read_cache(path)
    entry = saved.get(key)
    if isinstance(entry, dict) and isinstance(entry.get("fp32_seconds"), float):
        return entry["fp32_seconds"], entry.get("bf16_seconds"), True
    fp32 = attention_seconds(torch.float32, rows, heads, length, head_dim)
    try:
        bf16 = attention_seconds(torch.bfloat16, rows, heads, length, head_dim)
    except RuntimeError:  # a build without bf16 CPU kernels
        bf16 = None
    saved[key] = {"fp32_seconds": fp32, "bf16_seconds": bf16, "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    write_cache(path, saved)
    return fp32, bf16, False


def use_faster_training_attention(backbone: torch.nn.Module, length: int, batch_tokens: int) -> str:
    """Switch a Hugging Face backbone that trains under CPU bf16 autocast to fp32 attention where that is faster at
    `length` tokens per sequence and `batch_tokens` per forward pass; returns the attention precision it keeps.
    Backbones off sdpa (eager, flex) or off the AttentionInterface are left as they are ('bf16')."""
    config = getattr(backbone, "config", None)
    if getattr(config, "_attn_implementation", None) != "sdpa" or not hasattr(backbone, "set_attn_implementation"):
        return "bf16"
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    length = max(64, -(-length // 64) * 64)  # a multiple of 64, so nearby runs share a cached timing
    rows = max(1, batch_tokens // length)
    fp32, bf16, cached = attention_timings(rows, heads, length, head_dim)
    choice = choose_cpu_precision(fp32, bf16)
    if choice == "fp32":
        _register()
        backbone.set_attn_implementation(FP32_SDPA)
    speed = f"bf16 {fp32 / bf16:.2f}x fp32" if bf16 else "bf16 unavailable"
    print(f"attention under bf16 autocast -> {choice} ({speed} at {rows} x {heads} heads x {length} tokens x "
          f"{head_dim}; {'cached in' if cached else 'measured now, cached in'} {cache_dir()})", file=sys.stderr)
    return choice

