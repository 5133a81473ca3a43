"""What `GET /metrics` reports: requests by endpoint and status, forwards and their sizes, the queue, and
latency percentiles over the most recent requests. Thread-safe: handlers record from the event loop, the
model worker from its own thread.

`percentile` is the nearest-rank definition, shared with the load benchmark:
  P_q(x_1..x_n) = x_(k) of the sorted values, k = ceil(q / 100 * n), 1 <= k <= n; NaN for no values.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, deque
from collections.abc import Sequence

LATENCY_WINDOW = 4096  # requests the percentiles are taken over
PERCENTILES = (50, 90, 99)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (module docstring); q in [0, 100]."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    if not values:
        return math.nan
    ordered = sorted(values)
    k = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[k - 1]


class ServerMetrics:
    def __init__(self, window: int = LATENCY_WINDOW):
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, int]] = Counter()  # (endpoint, status) -> count
        self.latencies: deque[float] = deque(maxlen=window)  # seconds, answered requests of any status
        self.forward_sizes: Counter[int] = Counter()  # sequences in one forward -> forwards
        self.batch_requests: Counter[int] = Counter()  # requests merged into one worker batch -> batches
        self.sequences = 0  # sequences scored (after deduplication: what the model ran)
        self.duplicates = 0  # sequences answered from another identical one in the same batch
        self.truncated = 0  # texts cut to the scorer's max_length
        self.forward_seconds = 0.0

    def record_request(self, endpoint: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(endpoint, status)] += 1
            self.latencies.append(seconds)

    def record_batch(
        self, requests: int, forward_sizes: Sequence[int], duplicates: int, seconds: float
    ) -> None:
        with self._lock:
            self.batch_requests[requests] += 1
            for size in forward_sizes:
                self.forward_sizes[size] += 1
            self.sequences += sum(forward_sizes)
            self.duplicates += duplicates
            self.forward_seconds += seconds

    def record_truncated(self, count: int) -> None:
        with self._lock:
            self.truncated += count

    def seconds_per_forward(self) -> float:
        """Mean model time of one forward so far (0 before the first)."""
        with self._lock:
            forwards = sum(self.forward_sizes.values())
            return self.forward_seconds / forwards if forwards else 0.0

    def snapshot(self, queue: dict) -> dict:
        with self._lock:
            by_endpoint: dict[str, dict[str, int]] = {}
            for (endpoint, status), n in sorted(self.requests.items()):
                by_endpoint.setdefault(endpoint, {})[str(status)] = n
            latencies = list(self.latencies)
            forwards = sum(self.forward_sizes.values())
            batches = sum(self.batch_requests.values())
            return {
                "requests": by_endpoint,
                "requests_total": sum(self.requests.values()),
                "queue": queue,
                "sequences_scored": self.sequences,
                "duplicate_sequences": self.duplicates,
                "truncated_texts": self.truncated,
                "forwards": forwards,
                "forward_size_mean": self.sequences / forwards if forwards else None,
                "forward_sizes": {str(k): v for k, v in sorted(self.forward_sizes.items())},
                "requests_per_batch_mean": (
                    sum(k * v for k, v in self.batch_requests.items()) / batches if batches else None
                ),
                "latency_seconds": {
                    "window": len(latencies),
                    **{f"p{q}": finite_or_none(percentile(latencies, q)) for q in PERCENTILES},
                },
            }


def finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


__all__ = ["PERCENTILES", "ServerMetrics", "percentile"]
