"""What a scorer can do, as protocols checked with `isinstance`.

Evaluators and the server dispatch on these, never on `getattr` probes or on `kind` strings, so a new scorer
kind works everywhere as soon as it implements the methods. Every scorer implements `ScoresTexts`; the others
are optional, and each is a faster or richer path that a caller prefers when it is there:

- `ScoresTexts`: `score(prompts, responses)`, one float per response. Prompts and responses are plain
  strings or chat messages (lists of `{"role", "content"}`).
- `ScoresTokenIds`: `encode(prompts, responses)` gives token-id sequences in the scorer's own format
  (chat template, truncation); `score_ids(sequences)` scores them. Lets a caller tokenize once and
  deduplicate identical sequences.
- `EncodesRenderedText`: `encode_rendered(texts)` gives token-id sequences for texts already rendered in the
  scorer's format (an RL loop's decoded prompt + response, special tokens kept), cut as `encode` cuts, for
  `score_ids`. What a server needs to score OpenRLHF's pre-formatted `query` texts.
- `ScoresGroups`: `score_groups_ids(groups)` scores groups of encoded sequences that share a prompt, so the
  scorer can run the shared prompt once (tree packing).
- `ScoresSteps`: `score_steps(prompts, steps)` gives one score per step, NaN for a step it could not score
  (cut by max_length).
- `PredictsFirstError`: `predict_first_error(prompts, steps)` gives the index of the first wrong step, or
  -1 when it judges every step correct (a generative verifier reads this off its own verdicts).
- `ScoresAgainstReferences`: `score_with_references(prompts, responses, references)` scores each response
  against a reference answer (the `reference_probability` kind, RLPR); the server's /score then wants a
  `references` list beside prompts and responses.
- `NormalizesScores`: `normalize(scores)` standardises scores with the training run's reward statistics
  (unchanged when the manifest has none).
- `ReportsCompute`: `compute_report()` says what scoring has cost so far (a generative verifier: tokens
  generated, chains, forced verdicts), so evaluators report compute next to accuracy.

Attributes a scorer may declare, so callers read them without probing:

- `ReportsTruncation`: `last_truncated`, after each `encode`, says which of its sequences were cut.
- `RunsOnDevice`: `device`, where the scorer's forwards run (a torch.device or a string such as "cpu").
- `PrefersBatchSize`: `preferred_batch_size`, sequences per forward off CPU when the caller names none.
- `SplitsResponses`: `response_step_split`, where a step scorer cuts a whole response into steps (what its
  `score` does), so a caller can re-aggregate `score_steps` with another rule.
- `CarriesManifest`: `manifest`, the scorer directory's manifest as loaded (a stored `calibration` is read
  from it: `scorers.calibration`).
- `DeclaresScoreScale`: `score_scale`, what `score` returns: "logit" (a real-valued reward, a log-ratio) or
  "probability" (in [0, 1]); `rewardmodels calibrate` reads its logit off it.
- `DeclaresStepScoreScale`: `step_score_scale`, the same for each value of `score_steps`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class ScoresTexts(Protocol):
    kind: str

    def score(self, prompts: Sequence, responses: Sequence, batch_size: int = 16) -> list[float]: ...


@runtime_checkable
class ScoresTokenIds(Protocol):
    def encode(self, prompts: Sequence, responses: Sequence) -> list[list[int]]: ...

    def score_ids(self, sequences: list[list[int]], batch_size: int = 16) -> list[float]: ...


@runtime_checkable
class EncodesRenderedText(Protocol):
    def encode_rendered(self, texts: Sequence[str]) -> list[list[int]]: ...


@runtime_checkable
class ScoresGroups(Protocol):
    def encode(self, prompts: Sequence, responses: Sequence) -> list[list[int]]: ...

    def score_groups_ids(self, groups: list[list[list[int]]], batch_size: int = 16) -> list[list[float]]: ...


@runtime_checkable
class ScoresSteps(Protocol):
    def score_steps(
        self, prompts: Sequence, steps: Sequence[Sequence[str]], batch_size: int = 16
    ) -> list[list[float]]: ...


@runtime_checkable
class PredictsFirstError(Protocol):
    def predict_first_error(
        self, prompts: Sequence, steps: Sequence[Sequence[str]], batch_size: int = 16
    ) -> list[int]: ...


@runtime_checkable
class ScoresAgainstReferences(Protocol):
    def score_with_references(
        self, prompts: Sequence, responses: Sequence, references: Sequence, batch_size: int = 16
    ) -> list[float]: ...


@runtime_checkable
class NormalizesScores(Protocol):
    def normalize(self, scores: list[float]) -> list[float]: ...


@runtime_checkable
class ReportsTruncation(Protocol):
    last_truncated: list[bool]


@runtime_checkable
class RunsOnDevice(Protocol):
    device: Any


@runtime_checkable
class PrefersBatchSize(Protocol):
    preferred_batch_size: int


@runtime_checkable
class SplitsResponses(Protocol):
    response_step_split: str


@runtime_checkable
class ReportsCompute(Protocol):
    def compute_report(self) -> dict: ...


@runtime_checkable
class CarriesManifest(Protocol):
    manifest: dict


@runtime_checkable
class DeclaresScoreScale(Protocol):
    score_scale: str


@runtime_checkable
class DeclaresStepScoreScale(Protocol):
    step_score_scale: str


__all__ = [
    "ScoresTexts",
    "ScoresTokenIds",
    "EncodesRenderedText",
    "ScoresGroups",
    "ScoresSteps",
    "PredictsFirstError",
    "ScoresAgainstReferences",
    "NormalizesScores",
    "ReportsTruncation",
    "RunsOnDevice",
    "PrefersBatchSize",
    "SplitsResponses",
    "ReportsCompute",
    "CarriesManifest",
    "DeclaresScoreScale",
    "DeclaresStepScoreScale",
]
