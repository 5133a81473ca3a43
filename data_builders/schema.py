"""Canonical row schemas and their validation.

Validation runs when a dataset loads, before any tokenization or model work. Each bad row is reported with
its index and field; the run stops, or, with `drop_invalid=True`, the row is dropped and counted.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

MAX_ERRORS_SHOWN = 20


@dataclass
class RowError:
    index: int
    field: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"row {self.index}, field '{self.field}': {self.kind} ({self.detail})"


class DataValidationError(ValueError):
    def __init__(
        self,
        errors: list[RowError],
        source: str = "dataset",
        hint: str = "Fix the rows, or pass --invalid_rows drop to drop and count them.",
    ):
        self.errors = errors
        shown = "\n  ".join(str(e) for e in errors[:MAX_ERRORS_SHOWN])
        more = f"\n  ... and {len(errors) - MAX_ERRORS_SHOWN} more" if len(errors) > MAX_ERRORS_SHOWN else ""
        counts = ", ".join(f"{k}: {v}" for k, v in Counter(e.kind for e in errors).items())
        super().__init__(
            f"{source}: {len(errors)} invalid row(s) [{counts}]\n  {shown}{more}\n{hint}"
        )


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


def stepwise_row_errors(row: dict, index: int) -> list[RowError]:
    """`prompt`, `completions` (non-empty step strings) and `labels` (one per step; null = unlabelled step,
    kept as context but not trained on). A row needs at least one labelled step, or it teaches nothing."""
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


def validate_rows(
    rows: Sequence[dict],
    row_errors: Callable[[dict, int], list[RowError]],
    drop_invalid: bool = False,
    source: str = "dataset",
) -> tuple[list[dict], ValidationReport]:
    """Check every row; raise one error listing bad rows, or drop them and count why."""
    kept, errors = [], []
    dropped: Counter = Counter()
    for i, row in enumerate(rows):
        errs = row_errors(row, i)
        if errs:
            errors.extend(errs)
            dropped[errs[0].kind] += 1
        else:
            kept.append(row)
    if errors and not drop_invalid:
        raise DataValidationError(errors, source)
    if not kept:
        raise DataValidationError(errors or [RowError(-1, "<dataset>", "empty dataset", "no rows")], source)
    return kept, ValidationReport(total=len(rows), kept=len(kept), dropped=dropped)


def validate_preference_rows(rows: Sequence[dict], drop_invalid: bool = False, source: str = "dataset"):
    return validate_rows(rows, preference_row_errors, drop_invalid, source)
