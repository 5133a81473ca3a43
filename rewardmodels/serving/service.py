"""The scorer behind the server: checked requests become batcher jobs, job results become replies.

Which scorer call a request needs is read off the scorer's capabilities, never its kind:

  /get_reward query        EncodesRenderedText + ScoresTokenIds: the texts are tokenized as they are
                           (`encode_rendered`), then `score_ids`
  /get_reward, /score      ScoresTokenIds: `encode` here, `score_ids` on the worker (so identical sequences
    with prompts+responses  of different requests are scored once); otherwise `score` on the worker, or the
                           steps re-aggregated with the server's --aggregation (`reward_funcs.raw_scores`)
  /score_steps             ScoresSteps: `score_steps` on the worker
  /score with references   ScoresAgainstReferences: `score_with_references` on the worker, a reference answer
                           per sample in the body's `references` (such a scorer answers nothing else)

Tokenizing happens in the request's own thread under one lock (the scorer keeps per-call truncation state),
never on the model worker and never in two threads at once; the model runs only on the worker. Rewards
then pass through `reward_funcs.finish_scores` (normalize or calibrate, then clip), as an in-process reward
function's do, and NaN (nothing scorable) is sent as null.

Calibration (`scorers.calibration`) is applied when the replies are made, never on the worker, so requests
that share a forward may differ in it: `--calibrated` (`RewardOptions.calibrated`) calibrates /get_reward and
/score; a /score body may set `"calibrated": true or false` for itself. /score_steps calibrates its step
scores (and aggregates the calibrated steps) when the server is calibrated and the fit is a step fit, and
says so in `"calibrated"`.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from dataclasses import dataclass, field, replace

from rewardmodels.scorers.capabilities import (
    EncodesRenderedText,
    ReportsTruncation,
    ScoresAgainstReferences,
    ScoresSteps,
    ScoresTokenIds,
)
from rewardmodels.scorers.reward_funcs import RewardOptions, finish_scores, raw_scores, scorer_calibration
from rewardmodels.serving.batcher import DynamicBatcher, QueueFull, plan_forwards
from rewardmodels.serving.metrics import ServerMetrics
from rewardmodels.serving.requests import (
    Limits,
    RequestError,
    get_reward_form,
    parse_calibrated,
    parse_pairs,
    parse_references,
    parse_steps,
    parse_texts,
)
from rewardmodels.steps import aggregate

CHARS_PER_TOKEN = 4  # the token-budget estimate for texts the server does not tokenize itself
OPENRLHF_SCORES = ("rewards", "sigmoid")


@dataclass(frozen=True)
class ServerSettings:
    max_batch_size: int = 16  # sequences per forward
    max_batch_tokens: int = 16384  # rows x longest sequence per forward
    batch_window_s: float = 0.005  # how long the worker waits for more requests before a forward
    max_queue: int = 1024  # sequences waiting; beyond it: 503 + Retry-After
    request_timeout_s: float = 60.0  # from arrival to answer; beyond it: 504
    max_body_bytes: int = 8 * 2**20  # beyond it: 413
    limits: Limits = field(default_factory=Limits)
    refuse_overlong: bool = False  # 400 for a text over the scorer's max_length instead of cutting it
    options: RewardOptions = field(default_factory=RewardOptions)  # normalize / clip / aggregation
    openrlhf_scores: str = "rewards"  # OpenRLHF's `scores`: the rewards, or sigmoid(reward) in (0, 1)
    token: str | None = None  # bearer token; None: no authentication

    def check(self) -> None:
        if self.limits.max_items > self.max_queue:
            raise ValueError(
                f"--max-request-items {self.limits.max_items} exceeds --max-queue {self.max_queue}: "
                "such a request could never be queued"
            )
        if self.openrlhf_scores not in OPENRLHF_SCORES:
            raise ValueError(
                f"openrlhf_scores must be one of {OPENRLHF_SCORES}, got {self.openrlhf_scores!r}"
            )
        if self.request_timeout_s <= 0 or self.max_body_bytes < 1:
            raise ValueError("the request timeout and the body cap must be positive")
        if self.options.calibrated and self.openrlhf_scores == "sigmoid":
            raise ValueError(
                "--calibrated rewards are already probabilities; --openrlhf-scores sigmoid would squash "
                "them twice (leave it at 'rewards')"
            )


@dataclass
class Prepared:
    """What one request asks of the worker."""

    kind: str  # "ids", "pairs", "steps" or "references"
    items: list
    costs: list[int]
    truncated: list[bool] | None = None  # per item, when the scorer reports it
    options: RewardOptions | None = None  # this request's reward options, where it overrides the server's


def text_cost(value) -> int:
    """Estimated tokens of a string, chat messages or a list of steps (characters / CHARS_PER_TOKEN)."""
    if isinstance(value, str):
        return len(value) // CHARS_PER_TOKEN + 1
    if isinstance(value, dict):
        return text_cost(value.get("content", ""))
    return sum(text_cost(v) for v in value) + 1


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def nan_to_none(values) -> list:
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values]


class ScoringService:
    def __init__(self, scorer, settings: ServerSettings, metrics: ServerMetrics | None = None):
        settings.check()
        settings.options.check(scorer)
        self.scorer = scorer
        self.settings = settings
        self.metrics = metrics or ServerMetrics()
        self.encode_lock = threading.Lock()
        self.batcher = DynamicBatcher(
            self.run,
            max_batch_size=settings.max_batch_size,
            max_batch_tokens=settings.max_batch_tokens,
            window_s=settings.batch_window_s,
            max_queue=settings.max_queue,
            metrics=self.metrics,
        )

    def start(self) -> None:
        self.batcher.start()

    def close(self) -> None:
        self.batcher.close()

    # -- preparing a request (its own thread) ---------------------------------------------------------------
    def _encoded(self, encode, field_name: str, *args) -> Prepared:
        with self.encode_lock:
            ids = encode(*args)
            flags = list(self.scorer.last_truncated) if isinstance(self.scorer, ReportsTruncation) else None
        if flags is not None and any(flags):
            if self.settings.refuse_overlong:
                first = flags.index(True)
                raise RequestError(
                    400,
                    f"{field_name}[{first}] is longer than the scorer's max_length; this server refuses "
                    "over-long texts (started with --on-overlong refuse)",
                )
            self.metrics.record_truncated(sum(flags))
        return Prepared("ids", ids, [len(s) for s in ids], flags)

    def prepare_texts(self, texts: list[str]) -> Prepared:
        if not (isinstance(self.scorer, EncodesRenderedText) and isinstance(self.scorer, ScoresTokenIds)):
            # A PRM reads its head at step separators inside the response, which a pre-formatted text hides.
            raise RequestError(
                400,
                f"this {self.scorer.kind} scorer cannot score pre-formatted 'query' texts; send "
                "{'prompts': [...], 'responses': [...]} so that it can find the response (and its steps)",
            )
        return self._encoded(self.scorer.encode_rendered, "query", texts)

    def prepare_pairs(self, prompts: list, responses: list) -> Prepared:
        if isinstance(self.scorer, ScoresAgainstReferences):
            raise RequestError(
                400,
                f"this {self.scorer.kind} scorer scores each response against a reference answer; POST /score "
                "with {'prompts': [...], 'responses': [...], 'references': [...]}",
            )
        if isinstance(self.scorer, ScoresTokenIds) and self.settings.options.aggregation is None:
            return self._encoded(self.scorer.encode, "responses", prompts, responses)
        items = list(zip(prompts, responses, strict=True))
        return Prepared("pairs", items, [text_cost(p) + text_cost(r) for p, r in items])

    def prepare_references(self, body: dict) -> Prepared:
        """/score for a scorer that needs a reference answer per sample: (prompt, response, reference) items,
        each costing two sequences (with and without the response's reasoning)."""
        prompts, responses = parse_pairs(body, self.settings.limits)
        references = parse_references(body, self.settings.limits, len(prompts))
        items = list(zip(prompts, responses, references, strict=True))
        costs = [2 * (text_cost(p) + text_cost(r) + text_cost(ref)) for p, r, ref in items]
        return Prepared("references", items, costs)

    def prepare_steps(self, prompts: list, steps: list[list[str]]) -> Prepared:
        if not isinstance(self.scorer, ScoresSteps):
            raise RequestError(
                400, f"this {self.scorer.kind} scorer gives no step scores; POST /score instead"
            )
        items = list(zip(prompts, steps, strict=True))
        return Prepared("steps", items, [text_cost(p) + text_cost(s) for p, s in items])

    def prepare(self, endpoint: str, body: dict) -> tuple[str, Prepared, str | None]:
        """(reply form, work, aggregation of /score_steps); RequestError for a bad body."""
        limits = self.settings.limits
        if endpoint == "get_reward":
            if get_reward_form(body) == "query":
                return "openrlhf", self.prepare_texts(parse_texts(body, limits)), None
            return "openrlhf", self.prepare_pairs(*parse_pairs(body, limits)), None
        if endpoint == "score":
            options = self.request_options(parse_calibrated(body))
            if isinstance(self.scorer, ScoresAgainstReferences):
                prepared = self.prepare_references(body)
            else:
                prepared = self.prepare_pairs(*parse_pairs(body, limits))
            prepared.options = options
            return "score", prepared, None
        if endpoint == "score_steps":
            prompts, steps, aggregation = parse_steps(body, limits)
            return "steps", self.prepare_steps(prompts, steps), aggregation
        raise RequestError(404, f"unknown endpoint {endpoint!r}")

    def request_options(self, calibrated: bool | None) -> RewardOptions | None:
        """The server's reward options with a request's own `calibrated`, checked; None: the server's."""
        if calibrated is None or calibrated == self.settings.options.calibrated:
            return None
        options = replace(self.settings.options, calibrated=calibrated)
        try:
            options.check(self.scorer)
        except ValueError as e:
            raise RequestError(400, str(e)) from None
        return options

    def steps_calibration(self):
        """The fit /score_steps applies: the stored step fit when the server is calibrated, else None."""
        if not self.settings.options.calibrated:
            return None
        calibration = scorer_calibration(self.scorer)
        return calibration if calibration.source == "score_steps" else None

    # -- the model worker -----------------------------------------------------------------------------------
    def run(self, kind: str, items: list) -> list:
        """One forward's worth of items (called on the worker thread only)."""
        n = len(items)
        if kind == "ids":
            return self.scorer.score_ids(items, batch_size=n)
        if kind == "references":  # two sequences per item: with and without the response's reasoning
            prompts, responses, references = (list(column) for column in zip(*items, strict=True))
            return self.scorer.score_with_references(prompts, responses, references, batch_size=2 * n)
        prompts, rest = [p for p, _ in items], [r for _, r in items]
        if kind == "pairs":
            options = RewardOptions(aggregation=self.settings.options.aggregation, batch_size=n)
            return raw_scores(self.scorer, prompts, rest, options)
        if kind == "steps":
            return self.scorer.score_steps(prompts, rest, batch_size=n)
        raise ValueError(f"unknown job kind {kind!r}")

    # -- replies --------------------------------------------------------------------------------------------
    def reply(self, form: str, prepared: Prepared, values: list, aggregation: str | None) -> dict:
        if form == "steps":
            calibration = self.steps_calibration()
            if calibration is not None:
                values = [calibration.probabilities(v) for v in values]
            body = {"step_scores": [nan_to_none(v) for v in values]}
            if aggregation is not None:
                body["scores"] = nan_to_none([aggregate(v, aggregation) for v in values])
            if self.settings.options.calibrated:
                body["calibrated"] = calibration is not None
            return body
        options = prepared.options or self.settings.options
        rewards = nan_to_none(finish_scores(self.scorer, values, options))
        if form == "score":
            body = {"scores": rewards}
            if prepared.truncated is not None:
                body["truncated"] = prepared.truncated
            return body
        scores = rewards
        if self.settings.openrlhf_scores == "sigmoid":
            scores = [None if r is None else sigmoid(r) for r in rewards]
        extra = {"reward": rewards}
        if prepared.truncated is not None:
            extra["truncated"] = [int(t) for t in prepared.truncated]
        return {"rewards": rewards, "scores": scores, "extra_logs": extra}

    def answer_now(self, endpoint: str, body: dict) -> dict:
        """The reply to one body, scored in the calling thread without the queue (tests, custom loops)."""
        form, prepared, aggregation = self.prepare(endpoint, body)
        values: list = [None] * len(prepared.items)
        for take in plan_forwards(
            prepared.costs, self.settings.max_batch_size, self.settings.max_batch_tokens
        ):
            out = self.run(prepared.kind, [prepared.items[i] for i in take])
            for i, v in zip(take, out, strict=True):
                values[i] = v
        return self.reply(form, prepared, values, aggregation)

    async def answer(self, endpoint: str, body: dict, deadline: float) -> dict:
        """The reply to one body through the batcher; `deadline` is a time.monotonic() instant."""
        if self.batcher.depth()["queued_sequences"] >= self.batcher.max_queue:
            raise self.queue_full(QueueFull("the queue is full; retry later", self.batcher.retry_after()))
        form, prepared, aggregation = await asyncio.to_thread(self.prepare, endpoint, body)
        try:
            future = self.batcher.submit(prepared.kind, prepared.items, prepared.costs)
        except QueueFull as e:
            raise self.queue_full(e) from None
        remaining = deadline - time.monotonic()
        try:
            values = await asyncio.wait_for(asyncio.wrap_future(future), max(remaining, 0.001))
        except asyncio.TimeoutError:
            raise RequestError(
                504,
                f"not scored within the server's {self.settings.request_timeout_s:g} s request timeout; "
                "the server is overloaded, retry later",
            ) from None
        except QueueFull as e:  # the server began shutting down while the request waited
            raise self.queue_full(e) from None
        return self.reply(form, prepared, values, aggregation)

    @staticmethod
    def queue_full(e: QueueFull) -> RequestError:
        return RequestError(503, str(e), {"Retry-After": str(e.retry_after)})


__all__ = ["OPENRLHF_SCORES", "Prepared", "ScoringService", "ServerSettings", "text_cost"]
