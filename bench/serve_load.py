"""Load test of `rewardkit serve` on loopback, with and without dynamic batching, against offline scoring.

    python bench/serve_load.py [--model DIR] [--clients 32] [--requests 512] [--threads 2]

N concurrent clients each send one sequence per request to /get_reward (as OpenRLHF does) until a fixed
number of requests is done. Reports throughput, p50/p95/p99 latency and mean batch size (read from the
server's /metrics) for the batching server and for the same server with --no-batching, and the
throughput of scoring the same sequences offline in one process (no HTTP). The server runs in its own
process; the load generator shares the machine's cores with it, as it would on one box.
Writes bench/results/serve_load.json. Without --model it uses the bundled MiniLM backbone with a fresh
head (scoring speed does not depend on the head's weights).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def sequences(n: int) -> list[tuple[str, str]]:
    from rewardkit.data.synth import generate

    records = generate("mix", n, seed=1, split="test")
    return [(r["prompt"], r["chosen"] if i % 2 else r["rejected"]) for i, r in enumerate(records)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: str, port: int, threads: int, extra: list[str]) -> subprocess.Popen:
    import httpx

    proc = subprocess.Popen([sys.executable, "-m", "rewardkit.cli", "serve", model, "--port", str(port),
                             "--threads", str(threads), *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read()}")
    raise RuntimeError("server did not start in 120 s")


def mean_batch_size(url: str) -> float:
    import httpx

    text = httpx.get(url + "/metrics").text
    total = float(next(line.split()[-1] for line in text.splitlines() if line.startswith("rewardkit_batch_sequences_sum")))
    count = float(next(line.split()[-1] for line in text.splitlines() if line.startswith("rewardkit_batch_sequences_count")))
    return total / count if count else float("nan")


async def load(url: str, items: list[tuple[str, str]], clients: int, requests: int) -> dict:
    """`clients` concurrent loops over one keep-alive connection pool, one sequence per request.
    aiohttp, not httpx: on this machine httpx's client costs more CPU per request than the server."""
    import aiohttp

    latencies: list[float] = []
    next_index = 0

    async def client(http: aiohttp.ClientSession) -> None:
        nonlocal next_index
        while next_index < requests:
            prompt, response = items[next_index % len(items)]
            next_index += 1
            started = time.perf_counter()
            async with http.post(url + "/get_reward", json={"query": [prompt + response], "prompts": [prompt]}) as reply:
                reply.raise_for_status()
                await reply.read()
            latencies.append(time.perf_counter() - started)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients),
                                     timeout=aiohttp.ClientTimeout(total=300)) as http:
        await asyncio.gather(*[client(http) for _ in range(min(clients, 4))])  # warm-up
        latencies.clear()
        next_index = 0
        started = time.perf_counter()
        await asyncio.gather(*[client(http) for _ in range(clients)])
        wall = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {"requests": len(latencies), "seconds": round(wall, 3), "sequences_per_second": round(len(latencies) / wall, 2),
            "latency_ms": {"p50": round(float(np.percentile(ms, 50)), 1), "p95": round(float(np.percentile(ms, 95)), 1),
                           "p99": round(float(np.percentile(ms, 99)), 1)}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="rewardkit model directory (default: MiniLM with a fresh head)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the server and of offline scoring")
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "serve_load.json"))
    args = parser.parse_args()

    import torch

    import rewardkit as rk
    from rewardkit.model.machine import machine_info

    work = tempfile.mkdtemp(prefix="rewardkit-serve-bench-")
    model_dir = args.model or str(rk.RewardModel.build("minilm", max_length=256).save(Path(work) / "model"))
    items = sequences(args.requests)

    torch.set_num_threads(args.threads)
    model = rk.load_model(model_dir)
    rk.score(model, items[:64], batch_size=args.max_batch_size)  # warm-up
    started = time.perf_counter()
    rk.score(model, items, batch_size=args.max_batch_size)
    offline_wall = time.perf_counter() - started
    started = time.perf_counter()
    rk.score(model, items, batch_size=1)
    single_wall = time.perf_counter() - started
    offline = {"sequences": len(items), "seconds": round(offline_wall, 3),
               "sequences_per_second": round(len(items) / offline_wall, 2), "batch_size": args.max_batch_size,
               "batch_1_sequences_per_second": round(len(items) / single_wall, 2),
               # the most batching can give on this machine: the model alone, batch 32 vs batch 1, no HTTP
               "batching_ceiling": round(single_wall / offline_wall, 2)}
    print(f"offline: {offline['sequences_per_second']} sequences/s at batch {args.max_batch_size}, "
          f"{offline['batch_1_sequences_per_second']} at batch 1 (ceiling for batching: {offline['batching_ceiling']}x)")
    del model

    runs = {}
    for name, extra in (("batching", ["--max-wait-ms", str(args.max_wait_ms), "--max-batch-size", str(args.max_batch_size)]),
                        ("no_batching", ["--no-batching"])):
        port = free_port()
        proc = start_server(model_dir, port, args.threads, extra)
        try:
            url = f"http://127.0.0.1:{port}"
            result = asyncio.run(load(url, items, args.clients, args.requests))
            result["mean_batch_size"] = round(mean_batch_size(url), 2)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        runs[name] = result
        print(f"{name:<12} {result['sequences_per_second']:>8} seq/s  p50 {result['latency_ms']['p50']} ms  "
              f"p95 {result['latency_ms']['p95']} ms  p99 {result['latency_ms']['p99']} ms  mean batch {result['mean_batch_size']}")

    speedup = runs["batching"]["sequences_per_second"] / runs["no_batching"]["sequences_per_second"]
    of_offline = runs["batching"]["sequences_per_second"] / offline["sequences_per_second"]
    out = {"benchmark": "serve_load", "model": args.model or "all-MiniLM-L6-v2 (fresh head), max_length 256",
           "clients": args.clients, "requests": args.requests, "threads": args.threads,
           "machine": machine_info(),
           "offline": offline, **runs, "batching_speedup_vs_no_batching": round(speedup, 2),
           "batching_share_of_offline_throughput": round(of_offline, 3),
           "targets": {"speedup_at_least": 5.0, "share_of_offline_at_least": 0.7},
           "targets_met": {"speedup": speedup >= 5.0, "share_of_offline": of_offline >= 0.7}}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(out, indent=2))
    print(f"batching vs no batching: {speedup:.2f}x   batching vs offline: {of_offline:.1%}   saved {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
