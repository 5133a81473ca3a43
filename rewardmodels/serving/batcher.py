"""Dynamic batching across requests: one worker thread owns the model, and the requests that arrive within a
short window are scored together, up to a sequence budget and a token budget.

- `submit` puts a job (one request's sequences) on a bounded queue, counted in sequences; a job that would
  overflow it is refused with `QueueFull`, which the server answers with 503 and Retry-After.
- The worker takes the oldest job, then, until `window_s` has passed since, adds queued jobs of the same kind
  (which scorer call they need) while the batch stays within `max_batch_size` sequences and
  `rows x longest <= max_batch_tokens` (the padded size of one forward). A job that does not fit closes the
  batch and opens the next one: jobs are never split, and none waits behind a later one.
- Identical sequences in one batch are scored once (GRPO and OpenRLHF often send the same completion twice).
- The batch then runs as forwards planned by `plan_forwards` (one, unless a single job is bigger than the
  budgets). A job whose caller gave up (its future cancelled) before the worker reached it is skipped.
- An exception in the scorer fails the jobs of that batch, not the worker.
"""

from __future__ import annotations

import logging
import math
import pickle
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from rewardmodels.serving.metrics import ServerMetrics

logger = logging.getLogger("rewardmodels.serve")


class QueueFull(Exception):
    """The queue cannot take a job; retry after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class Job:
    kind: str  # which scorer call the items need; only jobs of one kind share a batch
    items: list  # one per sequence, as that call takes them
    costs: list[int]  # tokens per item (or an estimate), for the token budget
    future: Future = field(default_factory=Future)


def plan_forwards(costs: Sequence[int], max_rows: int, max_tokens: int) -> list[list[int]]:
    """Item indices grouped into forwards, longest first: each forward holds at most `max_rows` items and
    rows x (its longest cost) <= `max_tokens`; an item over the token budget alone gets a forward of its own."""
    order = sorted(range(len(costs)), key=lambda i: (-costs[i], i))
    forwards: list[list[int]] = []
    for i in order:
        if forwards:
            current = forwards[-1]
            longest = costs[current[0]]  # the first is the longest: order is descending
            if len(current) < max_rows and (len(current) + 1) * longest <= max_tokens:
                current.append(i)
                continue
        forwards.append([i])
    return forwards


def item_key(item) -> Hashable:
    """Identity of an item for deduplication: its pickled form, attributes of list subclasses included."""
    return pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)


class DynamicBatcher:
    def __init__(
        self,
        run: Callable[[str, list], list],
        *,
        max_batch_size: int = 16,
        max_batch_tokens: int = 16384,
        window_s: float = 0.005,
        max_queue: int = 1024,
        metrics: ServerMetrics | None = None,
        key: Callable[[object], Hashable] = item_key,
    ):
        if max_batch_size < 1 or max_batch_tokens < 1 or max_queue < 1 or window_s < 0:
            raise ValueError("batch size, token budget and queue must be >= 1, the window >= 0")
        self.run = run
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens
        self.window_s = window_s
        self.max_queue = max_queue
        self.metrics = metrics or ServerMetrics()
        self.key = key
        self._queue: deque[Job] = deque()
        self._queued = 0  # sequences waiting (not yet taken by the worker)
        self._running = 0  # sequences in the batch the worker is scoring
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="rewardmodels-model-worker", daemon=True)

    # -- the callers' side ----------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Stop taking jobs, let the running batch finish, fail the queued jobs."""
        with self._cond:
            self._closed = True
            pending = list(self._queue)
            self._queue.clear()
            self._queued = 0
            self._cond.notify_all()
        for job in pending:
            if job.future.set_running_or_notify_cancel():
                job.future.set_exception(QueueFull("the server is shutting down", retry_after=5))
        if self._thread.is_alive():
            self._thread.join(timeout)

    def submit(self, kind: str, items: list, costs: list[int]) -> Future:
        """Queue one request's items; its future gets one value per item, in order."""
        if len(items) != len(costs) or not items:
            raise ValueError(f"{len(items)} items and {len(costs)} costs; need the same non-zero number")
        job = Job(kind, list(items), [max(1, int(c)) for c in costs])
        with self._cond:
            if self._closed:
                raise QueueFull("the server is shutting down", retry_after=5)
            if self._queued + len(items) > self.max_queue:
                raise QueueFull(
                    f"the queue holds {self._queued} of at most {self.max_queue} sequences; retry later",
                    self.retry_after(),
                )
            self._queue.append(job)
            self._queued += len(items)
            self._cond.notify()
        return job.future

    def depth(self) -> dict:
        with self._cond:
            return {
                "queued_sequences": self._queued,
                "queued_requests": len(self._queue),
                "running_sequences": self._running,
                "max_queue": self.max_queue,
            }

    def retry_after(self) -> int:
        """Whole seconds (1 to 60) until the queue has room again: queued batches x mean forward time."""
        batches = math.ceil((self._queued + self._running) / self.max_batch_size)
        seconds = batches * (self.metrics.seconds_per_forward() + self.window_s)
        return int(min(60, max(1, math.ceil(seconds))))

    # -- the worker -----------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            batch = self._collect()
            if batch is None:
                return
            try:
                self._execute(batch)
            finally:
                with self._cond:
                    self._running = 0

    def _fits(self, job: Job, rows: int, longest: int) -> bool:
        rows, longest = rows + len(job.items), max(longest, *job.costs)
        return rows <= self.max_batch_size and rows * longest <= self.max_batch_tokens

    def _collect(self) -> list[Job] | None:
        """The next batch (the module docstring says which jobs join it); None once closed."""
        with self._cond:
            while not self._queue:
                if self._closed:
                    return None
                self._cond.wait()
            first = self._queue.popleft()
            batch, rows, longest = [first], len(first.items), max(first.costs)
            window_end = time.monotonic() + self.window_s
            while rows < self.max_batch_size and not self._closed:
                same_kind = [job for job in self._queue if job.kind == first.kind]
                if same_kind:
                    job = same_kind[0]
                    if not self._fits(job, rows, longest):
                        break  # the batch is full for the next job in line; it opens the next batch
                    self._queue.remove(job)
                    batch.append(job)
                    rows, longest = rows + len(job.items), max(longest, *job.costs)
                    continue
                remaining = window_end - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            taken = sum(len(job.items) for job in batch)
            self._queued -= taken
            self._running = taken
            return batch

    def _execute(self, batch: list[Job]) -> None:
        live = [job for job in batch if job.future.set_running_or_notify_cancel()]
        if not live:
            return
        kind = live[0].kind
        unique, costs, slots, index = [], [], [], {}
        for job in live:
            for item, cost in zip(job.items, job.costs, strict=True):
                key = self.key(item)
                if key not in index:
                    index[key] = len(unique)
                    unique.append(item)
                    costs.append(cost)
                slots.append(index[key])
        started = time.perf_counter()
        forwards = plan_forwards(costs, self.max_batch_size, self.max_batch_tokens)
        try:
            values: list = [None] * len(unique)
            for take in forwards:
                out = self.run(kind, [unique[i] for i in take])
                if len(out) != len(take):
                    raise RuntimeError(f"the scorer returned {len(out)} values for {len(take)} sequences")
                for i, value in zip(take, out, strict=True):
                    values[i] = value
        except Exception as e:  # the scorer failed: these requests get the error, the worker keeps serving
            logger.exception("scoring a batch of %d requests failed", len(live))
            for job in live:
                job.future.set_exception(e)
            return
        self.metrics.record_batch(len(live), [len(f) for f in forwards], len(slots) - len(unique),
                                  time.perf_counter() - started)  # fmt: skip
        at = 0
        for job in live:
            job.future.set_result([values[s] for s in slots[at : at + len(job.items)]])
            at += len(job.items)


__all__ = ["DynamicBatcher", "Job", "QueueFull", "item_key", "plan_forwards"]
