"""Prometheus metrics of the server, in the text exposition format (no client library needed)."""

from __future__ import annotations

import threading
from collections import defaultdict

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Histogram:
    def __init__(self, buckets: tuple):
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.total += 1
        self.sum += value
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        sep = "," if labels else ""
        out = [f'{name}_bucket{{{labels}{sep}le="{b}"}} {c}' for b, c in zip(self.buckets, self.counts, strict=True)]
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.total}')
        suffix = f"{{{labels}}}" if labels else ""
        return out + [f"{name}_sum{suffix} {self.sum}", f"{name}_count{suffix} {self.total}"]


class ServerMetrics:
    def __init__(self):
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.latency: dict[str, Histogram] = defaultdict(lambda: Histogram(LATENCY_BUCKETS))
        self.batch_sizes = Histogram(BATCH_BUCKETS)
        self.sequences = 0
        self.queue_depth = 0

    def request(self, endpoint: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(endpoint, status)] += 1
            self.latency[endpoint].observe(seconds)

    def batch(self, size: int) -> None:
        with self._lock:
            self.batch_sizes.observe(size)
            self.sequences += size

    def render(self) -> str:
        with self._lock:
            lines = ["# HELP rewardkit_requests_total HTTP requests by endpoint and status.",
                     "# TYPE rewardkit_requests_total counter"]
            lines += [f'rewardkit_requests_total{{endpoint="{e}",status="{s}"}} {n}' for (e, s), n in sorted(self.requests.items())]
            lines += ["# HELP rewardkit_request_seconds Request latency.", "# TYPE rewardkit_request_seconds histogram"]
            for endpoint, histogram in sorted(self.latency.items()):
                lines += histogram.lines("rewardkit_request_seconds", f'endpoint="{endpoint}"')
            lines += ["# HELP rewardkit_batch_sequences Sequences per model batch.", "# TYPE rewardkit_batch_sequences histogram"]
            lines += self.batch_sizes.lines("rewardkit_batch_sequences")
            lines += ["# HELP rewardkit_sequences_scored_total Sequences scored.", "# TYPE rewardkit_sequences_scored_total counter",
                      f"rewardkit_sequences_scored_total {self.sequences}",
                      "# HELP rewardkit_queue_sequences Sequences admitted and not yet scored.",
                      "# TYPE rewardkit_queue_sequences gauge", f"rewardkit_queue_sequences {self.queue_depth}"]
            return "\n".join(lines) + "\n"
