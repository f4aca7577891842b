"""The server's Prometheus metrics, kept by prometheus-client in a registry of the app's own.

Every app gets its own CollectorRegistry (not the process-wide default), so that several apps in one
process (tests, a notebook) count separately and never clash over metric names.

rewardkit_requests_total{endpoint,status}    HTTP requests answered
rewardkit_request_seconds{endpoint}          request latency (histogram)
rewardkit_batch_sequences                    sequences per model call (histogram)
rewardkit_sequences_scored_total             sequences scored
rewardkit_queue_sequences                    sequences admitted and not yet scored
"""

from __future__ import annotations

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # the text format prometheus-client's generate_latest writes


class ServerMetrics:
    """What the middleware (requests) and the batcher (batches, queue depth) report, for GET /metrics."""

    def __init__(self):
        # imported here: prometheus-client comes with the serve extra, and the CLI imports this module for --help
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self._requests = Counter("rewardkit_requests", "HTTP requests by endpoint and status.",
                                 ["endpoint", "status"], registry=self.registry)
        self._latency = Histogram("rewardkit_request_seconds", "Request latency.", ["endpoint"],
                                  buckets=LATENCY_BUCKETS, registry=self.registry)
        self._batches = Histogram("rewardkit_batch_sequences", "Sequences per model batch.",
                                  buckets=BATCH_BUCKETS, registry=self.registry)
        self._sequences = Counter("rewardkit_sequences_scored", "Sequences scored.", registry=self.registry)
        self._queue = Gauge("rewardkit_queue_sequences", "Sequences admitted and not yet scored.", registry=self.registry)

    def request(self, endpoint: str, status: int, seconds: float) -> None:
        self._requests.labels(endpoint, str(status)).inc()
        self._latency.labels(endpoint).observe(seconds)

    def batch(self, size: int) -> None:
        self._batches.observe(size)
        self._sequences.inc(size)

    @property
    def queue_depth(self) -> int:
        return int(self.value("rewardkit_queue_sequences"))

    @queue_depth.setter
    def queue_depth(self, sequences: int) -> None:
        self._queue.set(sequences)

    @property
    def sequences(self) -> int:
        """Sequences scored so far."""
        return int(self.value("rewardkit_sequences_scored_total"))

    def value(self, name: str, **labels: str) -> float:
        """One sample's current value (e.g. "rewardkit_batch_sequences_sum"); 0 for one not seen yet."""
        return self.registry.get_sample_value(name, labels) or 0.0

    def render(self) -> bytes:
        """Every metric in the Prometheus text format (CONTENT_TYPE)."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
