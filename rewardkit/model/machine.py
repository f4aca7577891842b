"""What machine this is and how fast it multiplies matrices in fp32 and bf16, measured once per machine.

The timings decide `--precision auto` on CPU (rewardkit.model.precision) and go into every benchmark's JSON
(`machine_info()`), so a result says where it was measured. A CPU can report bf16 support and still multiply
bf16 slower than fp32 (AVX512-BF16 without AMX), so only a measurement tells which precision is faster.

The measurement is cached in a small JSON file, keyed by CPU model, torch version and thread count, under
$REWARDKIT_CACHE_DIR, else $XDG_CACHE_HOME/rewardkit, else ~/.cache/rewardkit; delete it to measure again.

`limit_kernel_cache` bounds oneDNN's cache of compiled kernels, which training and scoring otherwise grow with every
new batch shape.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import time
from pathlib import Path

import torch

from rewardkit.model.flops import matmul_seconds

# A batch of 512 tokens through a 768 -> 3072 feed-forward projection (a base-size transformer layer); 2.4
# GFLOP, so about 15 ms per product on a 2-core VM: big enough for peak-like rates, small enough that warm-up
# plus best-of-5 in both precisions stays around 0.2 s.
MATMUL_SHAPE = (512, 768, 3072)
TIMINGS_FILE = "matmul_timings.json"


@dataclasses.dataclass(frozen=True)
class MatmulTimings:
    """Best-of-n seconds of one MATMUL_SHAPE product per precision; bf16_seconds is None where bf16 failed."""

    fp32_seconds: float
    bf16_seconds: float | None
    shape: tuple[int, int, int] = MATMUL_SHAPE
    cached: bool = False

    def gflop_per_second(self) -> dict[str, float]:
        m, k, n = self.shape
        flops = 2 * m * k * n
        rates = {"fp32": flops / self.fp32_seconds}
        if self.bf16_seconds:
            rates["bf16"] = flops / self.bf16_seconds
        return {name: round(rate / 1e9, 1) for name, rate in rates.items()}


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def physical_cores() -> int | None:
    """Distinct (socket, core) pairs in /proc/cpuinfo; None where that file does not say."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    cores, socket = set(), "0"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "physical id":
            socket = value.strip()
        elif key.strip() == "core id":
            cores.add((socket, value.strip()))
    return len(cores) or None


def cache_dir() -> Path:
    """Where per-machine measurements are kept: $REWARDKIT_CACHE_DIR, else the XDG user cache."""
    if os.environ.get("REWARDKIT_CACHE_DIR"):
        return Path(os.environ["REWARDKIT_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rewardkit"


def machine_key() -> str:
    """What the matmul timings depend on: the CPU, the torch build (its kernels) and the thread count."""
    return f"{cpu_model()} | torch {torch.__version__} | {torch.get_num_threads()} threads"


def measure_matmul_timings() -> MatmulTimings:
    """Time fp32 and bf16 products of MATMUL_SHAPE on the CPU now (about 0.2 s; more on a slow or busy one)."""
    fp32 = matmul_seconds(torch.float32, MATMUL_SHAPE)
    try:
        bf16 = matmul_seconds(torch.bfloat16, MATMUL_SHAPE)
    except RuntimeError:  # a build without bf16 CPU kernels
        bf16 = None
    return MatmulTimings(fp32, bf16)


def read_cache(path: Path) -> dict:
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return saved if isinstance(saved, dict) else {}


def write_cache(path: Path, saved: dict) -> None:
    """Write through a temporary file and rename, so processes started together never read half a file;
    an unwritable cache only means measuring again next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(saved, indent=2))
        os.replace(tmp, path)
    except OSError:
        pass


def matmul_timings(refresh: bool = False) -> MatmulTimings:
    """This machine's fp32 and bf16 matmul timings, from the cache, or measured now and cached."""
    path, key = cache_dir() / TIMINGS_FILE, machine_key()
    saved = read_cache(path)
    entry = saved.get(key)
    if not refresh and isinstance(entry, dict) and entry.get("shape") == list(MATMUL_SHAPE):
        try:
            return MatmulTimings(float(entry["fp32_seconds"]), entry.get("bf16_seconds"), MATMUL_SHAPE, cached=True)
        except (KeyError, TypeError, ValueError):
            pass  # a damaged entry: measure again
    timings = measure_matmul_timings()
    saved[key] = {"fp32_seconds": timings.fp32_seconds, "bf16_seconds": timings.bf16_seconds,
                  "shape": list(MATMUL_SHAPE), "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    write_cache(path, saved)
    return timings


# oneDNN keeps up to 1,024 compiled kernels, with their buffers, one set per matrix shape, and rewardkit's batches
# change shape nearly every time. That cache grew a MiniLM PRM training run at 512 tokens from 1.9 to 2.5 GB in 24
# steps, and scoring 2,000 RMB responses to 1.77 GB; at 16 kernels they peaked at 1.9 and 1.1 GB, as fast (MiniLM and
# SmolLM2 + LoRA, 2-core AMD EPYC).
ONEDNN_KERNEL_CACHE = 16


def limit_kernel_cache(capacity: int = ONEDNN_KERNEL_CACHE) -> None:
    """Keep at most `capacity` oneDNN kernels unless ONEDNN_PRIMITIVE_CACHE_CAPACITY is set already. oneDNN reads
    the variable when it compiles its first kernel, so this only takes effect before the process's first CPU matmul."""
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", str(capacity))


def machine_info() -> dict:
    """The machine a benchmark ran on, for its JSON: CPU, cores, threads, torch, and fp32 / bf16 matmul rates
    (GFLOP/s of the MATMUL_SHAPE product, best of a few; the cached measurement where there is one)."""
    timings = matmul_timings()
    info = {"cpu": cpu_model(), "physical_cores": physical_cores(), "logical_cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version(),
            "platform": platform.platform(),
            "matmul_gflop_per_second": timings.gflop_per_second(), "matmul_shape": list(timings.shape)}
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name()
    return info
