"""Canonical row schemas and their validation.

Validation runs when a dataset loads, before any tokenization or model work. Each bad row is reported with
its file, 1-based line (JSONL) or row (JSON, parquet, in-memory lists) and field; the run stops, or, with
`drop_invalid=True`, the row is dropped and counted.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rewardmodels.errors import ROW, InputError, Location
from rewardmodels.io import location_of

MAX_ERRORS_SHOWN = 20
DROP_HINT = "Fix the rows, or pass --invalid_rows drop to drop and count them."
DATASET_FIELD = "<dataset>"  # the field of an error about the whole dataset (it is empty)


@dataclass
class RowError:
    """One problem in one row. `index` is the row's position in the sequence checked; `location` its file
    and 1-based line or row, set by `validate_rows` (or `located`, for checks that run their own loop).
    Without a location the message shows the 0-based `index`."""

    index: int
    field: str
    kind: str
    detail: str
    location: Location | None = None

    def where(self) -> str:
        if self.location is not None and self.location.line is not None:
            return f"{self.location.unit} {self.location.line}"
        return f"row {self.index}"

    def __str__(self) -> str:
        return f"{self.where()}, field '{self.field}': {self.kind} ({self.detail})"


class DataValidationError(InputError):
    """Every bad row of a dataset. `str()` lists up to MAX_ERRORS_SHOWN of them, one per line; the one-line
    form (what the command line prints) names the first with its file, line and field, and counts the rest."""

    def __init__(self, errors: list[RowError], source: str = "dataset", hint: str | None = DROP_HINT):
        self.errors = errors
        self.source = source
        first = errors[0]
        location = first.location
        if location is None:  # a RowError built without one names its 0-based index (see RowError)
            location = Location(None, first.index if first.index >= 0 else None, ROW)
        field_name = None if first.field == DATASET_FIELD else first.field
        super().__init__(
            location.file or source,
            location.line,
            field_name,
            f"{first.kind} ({first.detail})",
            unit=location.unit,
            hint=hint,
        )

    def describe(self) -> str:
        if len(self.errors) <= 1:
            return super().describe()
        return f"{super().describe()}; {self._summary()}"

    def _summary(self) -> str:
        rows = len({e.index for e in self.errors})
        counts = ", ".join(f"{k}: {v}" for k, v in Counter(e.kind for e in self.errors).items())
        return f"{len(self.errors)} problems in {rows} row(s) [{counts}]"

    def __str__(self) -> str:
        errors = self.errors
        if len(errors) == 1 and errors[0].field == DATASET_FIELD:
            return self.one_line()
        shown = "\n  ".join(str(e) for e in errors[:MAX_ERRORS_SHOWN])
        more = f"\n  ... and {len(errors) - MAX_ERRORS_SHOWN} more" if len(errors) > MAX_ERRORS_SHOWN else ""
        hint = f"\n{self.hint}" if self.hint else ""
        return f"{self.source}: {self._summary()}\n  {shown}{more}{hint}"


@dataclass
class ValidationReport:
    total: int
    kept: int
    dropped: Counter = field(default_factory=Counter)

    def __str__(self) -> str:
        if not self.dropped:
            return f"{self.total} rows, all valid"
        parts = ", ".join(f"{k}: {v}" for k, v in sorted(self.dropped.items()))
        return f"{self.total} rows, kept {self.kept}, dropped {self.total - self.kept} ({parts})"


def is_messages(value) -> bool:
    return (
        isinstance(value, list)
        and len(value) > 0
        and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in value
        )
    )


def text_of(value) -> str:
    """The text a response carries, for emptiness and identity checks."""
    if isinstance(value, str):
        return value
    return "\n".join(m["content"] for m in value)


def _check_text_or_messages(
    row: dict, index: int, name: str, errors: list[RowError], allow_empty: bool
) -> bool:
    if name not in row or row[name] is None:
        errors.append(RowError(index, name, "missing field", "required"))
        return False
    value = row[name]
    if not (isinstance(value, str) or is_messages(value)):
        errors.append(
            RowError(
                index,
                name,
                "wrong type",
                f"expected a string or a list of {{role, content}} messages, got {type(value).__name__}",
            )
        )
        return False
    if not allow_empty and not text_of(value).strip():
        errors.append(RowError(index, name, "empty response", "no text"))
        return False
    return True


def _check_number(row: dict, index: int, name: str, errors: list[RowError], lo=None, hi=None) -> None:
    value = row.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        errors.append(RowError(index, name, "wrong type", f"expected a finite number, got {value!r}"))
    elif (lo is not None and value < lo) or (hi is not None and value > hi):
        errors.append(RowError(index, name, "out of range", f"{value!r} not in [{lo}, {hi}]"))


def preference_row_errors(row: dict, index: int) -> list[RowError]:
    errors: list[RowError] = []
    if not isinstance(row, dict):
        return [RowError(index, "<row>", "wrong type", f"expected an object, got {type(row).__name__}")]
    _check_text_or_messages(row, index, "prompt", errors, allow_empty=True)
    ok_c = _check_text_or_messages(row, index, "chosen", errors, allow_empty=False)
    ok_r = _check_text_or_messages(row, index, "rejected", errors, allow_empty=False)
    if ok_c and ok_r and text_of(row["chosen"]).strip() == text_of(row["rejected"]).strip():
        errors.append(
            RowError(index, "rejected", "identical chosen and rejected", "the pair carries no preference")
        )
    _check_number(row, index, "margin", errors)
    if "tie" in row and row["tie"] is not None and not isinstance(row["tie"], bool):
        errors.append(RowError(index, "tie", "wrong type", f"expected a bool, got {row['tie']!r}"))
    return errors


def _step_label_error(value) -> str | None:
    """None when `value` is a valid step label: a bool, a number in [0, 1], or None (step left unlabelled)."""
    if value is None or isinstance(value, bool):
        return None
    if not isinstance(value, int | float) or not math.isfinite(value):
        return f"expected a bool, a number in [0, 1] or null, got {value!r}"
    if not 0.0 <= value <= 1.0:
        return f"{value!r} not in [0, 1]"
    return None


def stepwise_row_errors(row: dict, index: int, hard_labels: bool = False) -> list[RowError]:
    """`prompt`, `completions` (non-empty step strings) and `labels` (one per step; null = unlabelled step,
    kept as context but not trained on). A row needs at least one labelled step, or it teaches nothing.
    With `hard_labels` (PRM --label_mode hard) a label must be a bool or exactly 0 or 1."""
    errors: list[RowError] = []
    if not isinstance(row, dict):
        return [RowError(index, "<row>", "wrong type", f"expected an object, got {type(row).__name__}")]
    _check_text_or_messages(row, index, "prompt", errors, allow_empty=True)
    steps, labels = row.get("completions"), row.get("labels")
    if steps is None:
        errors.append(RowError(index, "completions", "missing field", "required"))
    elif not isinstance(steps, list) or not steps:
        errors.append(
            RowError(index, "completions", "wrong type", "expected a non-empty list of step strings")
        )
        steps = None
    else:
        for i, step in enumerate(steps):
            if not isinstance(step, str):
                errors.append(
                    RowError(
                        index,
                        f"completions[{i}]",
                        "wrong type",
                        f"expected a string, got {type(step).__name__}",
                    )
                )
            elif not step.strip():
                errors.append(RowError(index, f"completions[{i}]", "empty step", "no text"))
    if labels is None:
        errors.append(RowError(index, "labels", "missing field", "required"))
    elif not isinstance(labels, list):
        errors.append(
            RowError(index, "labels", "wrong type", f"expected a list, got {type(labels).__name__}")
        )
    else:
        if steps is not None and len(labels) != len(steps):
            errors.append(
                RowError(index, "labels", "length mismatch", f"{len(labels)} labels for {len(steps)} steps")
            )
        for i, label in enumerate(labels):
            problem = _step_label_error(label)
            if problem:
                errors.append(RowError(index, f"labels[{i}]", "bad label", problem))
            elif hard_labels and label is not None and not isinstance(label, bool) and label not in (0, 1):
                errors.append(
                    RowError(
                        index,
                        f"labels[{i}]",
                        "soft label",
                        f"{label!r} is not a hard label; train with --label_mode soft (and --loss_type bce) "
                        "for fractional labels",
                    )
                )
        if labels and all(label is None for label in labels):
            errors.append(RowError(index, "labels", "no labelled steps", "every label is null"))
    return errors


def outcome_row_errors(row: dict, index: int) -> list[RowError]:
    """`prompt`, `completion` (text or messages) and `label` (bool or a number in [0, 1])."""
    errors: list[RowError] = []
    if not isinstance(row, dict):
        return [RowError(index, "<row>", "wrong type", f"expected an object, got {type(row).__name__}")]
    _check_text_or_messages(row, index, "prompt", errors, allow_empty=True)
    _check_text_or_messages(row, index, "completion", errors, allow_empty=False)
    if row.get("label") is None:
        errors.append(RowError(index, "label", "missing field", "required"))
    else:
        problem = _step_label_error(row["label"])
        if problem:
            errors.append(RowError(index, "label", "bad label", problem))
    return errors


def scoring_row_errors(prompt_field: str = "prompt", response_field: str = "response"):
    """A row check for `rewardmodels score` input: a prompt and a response, each text or chat messages."""

    def check(row: dict, index: int) -> list[RowError]:
        if not isinstance(row, dict):
            return [RowError(index, "<row>", "wrong type", f"expected an object, got {type(row).__name__}")]
        errors: list[RowError] = []
        _check_text_or_messages(row, index, prompt_field, errors, allow_empty=True)
        _check_text_or_messages(row, index, response_field, errors, allow_empty=True)
        return errors

    return check


def row_location(row, index: int) -> Location:
    """Where `rows[index]` came from: its file and line or row (`io.read_rows`), else its 1-based position."""
    return location_of(row, Location(None, index + 1, ROW))


def located(errors: list[RowError], row, index: int) -> list[RowError]:
    """`errors` found in `rows[index]`, each given the row's `row_location` unless it has one."""
    for e in errors:
        e.location = e.location or row_location(row, index)
    return errors


def validate_rows(
    rows: Sequence[dict],
    row_errors: Callable[[dict, int], list[RowError]],
    drop_invalid: bool = False,
    source: str = "dataset",
    hint: str | None = DROP_HINT,
) -> tuple[list[dict], ValidationReport]:
    """Check every row; raise one error listing bad rows, or drop them and count why.

    A row read by `rewardmodels.io.read_rows` is named by its file and line; any other by its 1-based
    position. An empty `rows`, or nothing left after dropping, is an error too: there is nothing to use."""
    kept, errors = [], []
    dropped: Counter = Counter()
    for i, row in enumerate(rows):
        errs = located(row_errors(row, i), row, i)
        if errs:
            errors.extend(errs)
            dropped[errs[0].kind] += 1
        else:
            kept.append(row)
    if errors and not drop_invalid:
        raise DataValidationError(errors, source, hint)
    if not rows:
        raise DataValidationError([RowError(-1, DATASET_FIELD, "empty dataset", "no rows")], source, None)
    if not kept:
        raise DataValidationError(errors, source, "Every row was invalid and dropped: nothing is left.")
    return kept, ValidationReport(total=len(rows), kept=len(kept), dropped=dropped)


def validate_preference_rows(rows: Sequence[dict], drop_invalid: bool = False, source: str = "dataset"):
    return validate_rows(rows, preference_row_errors, drop_invalid, source)


def hard_label_stepwise_row_errors(row: dict, index: int) -> list[RowError]:
    return stepwise_row_errors(row, index, hard_labels=True)


def drop_identical_token_pairs(
    rows: Sequence[dict], features: list[dict], drop_invalid: bool, source: str = "pairs"
) -> tuple[list[dict], int]:
    """Pairs whose chosen and rejected token ids are the same after tokenization and truncation carry no
    preference (the loss is log 2 whatever the model does): refuse them, naming each row's file and line,
    or drop them. `features[i]` is `rows[i]` tokenized. Returns the kept features and how many were dropped."""
    kept, errors = [], []
    for i, (row, feature) in enumerate(zip(rows, features, strict=True)):
        if feature["chosen_ids"] != feature["rejected_ids"]:
            kept.append(feature)
            continue
        n = len(feature["prefix_ids"]) + len(feature["chosen_ids"])
        errors.append(
            RowError(
                i,
                "rejected",
                "identical after tokenization",
                f"chosen and rejected are the same {n} tokens once truncated",
                row_location(row, i),
            )
        )
    hint = "Raise --max_length, fix the rows, or pass --invalid_rows drop to drop and count them."
    if errors and not drop_invalid:
        raise DataValidationError(errors, source, hint)
    if errors and not kept:
        raise DataValidationError(errors, source, "Every pair was identical and dropped: nothing is left.")
    return kept, len(errors)
