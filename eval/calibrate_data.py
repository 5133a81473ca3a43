"""What `rewardmodels calibrate` reads: labelled rows in four formats, checked before any model work, split
into a fit part and a held-out part, and turned into (logit, label) points once scored.

Formats (`--format`, or found from the first row's fields):

  pairs         prompt, chosen, rejected (canonical preference rows; RewardBench v1 rows): target "pair"
  responses     prompt, completion (or response), label 0/1 (canonical outcome rows,
                data_builders/outcome.py): target "response"
  steps         prompt, completions (the steps), labels (one per step, 0/1, null = unlabelled and left
                out) (canonical stepwise rows): target "step"
  processbench  problem, steps, label (the first wrong step, -1 for none): target "step", with labels 1
                before the first error, 0 at it, later steps left out (as eval/calibration.py reads them)

Labels must be hard (a bool, 0 or 1): ECE counts each point as right or wrong. A soft label is refused with
its row and field, as is every other bad row, before the scorer loads.

Split: rows are grouped by prompt, so every row of a prompt lands on the same side; the prompts are shuffled
with `seed` (numpy's default_rng) and the first round(fit_fraction * prompts) form the fit part. A prompt
seen while fitting is never scored as held out.

Points (z is `scorers.calibration.as_logit` of a raw score s; a NaN score gives no point and is counted):

  pairs      d = z_chosen - z_rejected; the fit takes (d, 1) with b = 0; the metrics take both orders,
             (d, 1) and (-d, 0), as the evaluators do (eval/calibration.py says why)
  responses  (z, label)
  steps      (z_k, label_k) for every labelled step k
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np

from rewardmodels.data_builders.schema import (
    DataValidationError,
    RowError,
    located,
    outcome_row_errors,
    preference_row_errors,
    stepwise_row_errors,
)
from rewardmodels.errors import InputError
from rewardmodels.eval.processbench import row_errors as processbench_row_errors
from rewardmodels.io import rename_columns
from rewardmodels.scorers.calibration import as_logit

FORMATS = ("pairs", "responses", "steps", "processbench")
TARGET_OF = {"pairs": "pair", "responses": "response", "steps": "step", "processbench": "step"}
SOURCE_OF = {"pairs": "score", "responses": "score", "steps": "score_steps", "processbench": "score_steps"}
# The fields that tell a format, looked for in this order in the first row.
SIGNATURES = (
    ("pairs", ("chosen", "rejected")),
    ("steps", ("completions", "labels")),
    ("processbench", ("problem", "steps", "label")),
    ("responses", ("completion", "label")),
    ("responses", ("response", "label")),
)
HARD_LABEL = "calibration needs labels 0 or 1 (a bool, 0 or 1): ECE counts each point as right or wrong"


def detect_format(rows: Sequence, source: str) -> str:
    """The format whose fields the first row has (SIGNATURES); InputError naming the file when none fits."""
    first = rows[0] if rows else None
    if isinstance(first, dict):
        for name, fields in SIGNATURES:
            if all(f in first for f in fields):
                return name
    raise InputError(
        source,
        None,
        None,
        "cannot tell the format from the first row's fields",
        hint="Pass --format pairs (prompt, chosen, rejected), responses (prompt, completion, label), steps "
        "(prompt, completions, labels) or processbench (problem, steps, label).",
    )


def _hard(value) -> bool:
    return value is None or isinstance(value, bool) or value in (0, 1)


def response_row_errors(row, i: int) -> list[RowError]:
    """A canonical outcome row with a hard label."""
    errors = outcome_row_errors(row, i)
    if not errors and not _hard(row["label"]):
        errors.append(RowError(i, "label", "soft label", f"{row['label']!r}: {HARD_LABEL}"))
    return errors


def step_row_errors(row, i: int) -> list[RowError]:
    """A canonical stepwise row with hard step labels."""
    errors = stepwise_row_errors(row, i)
    if not errors:
        errors += [
            RowError(i, f"labels[{k}]", "soft label", f"{label!r}: {HARD_LABEL}")
            for k, label in enumerate(row["labels"])
            if not _hard(label)
        ]
    return errors


ROW_CHECKS = {
    "pairs": preference_row_errors,
    "responses": response_row_errors,
    "steps": step_row_errors,
    "processbench": processbench_row_errors,
}


def checked_rows(rows: list, fmt: str, source: str) -> list[dict]:
    """`rows` in canonical form for `fmt` (responses: a `response` field renamed `completion`), every bad row
    reported at once with its line and field (DataValidationError, an InputError)."""
    if not rows:
        raise InputError(source, None, None, "the dataset has no rows")
    if fmt == "responses" and isinstance(rows[0], dict) and "completion" not in rows[0]:
        rows = rename_columns(rows, {"response": "completion"})
    errors = [e for i, row in enumerate(rows) for e in located(ROW_CHECKS[fmt](row, i), row, i)]
    if errors:
        raise DataValidationError(errors, source, hint=f"Fix the rows ({fmt} format; see --format).")
    return rows


def prompt_of(row: dict, fmt: str):
    return row["problem"] if fmt == "processbench" else row["prompt"]


def step_labels(row: dict, fmt: str) -> list[int | None]:
    """Per step: 1, 0 or None (left out). ProcessBench: 1 before the first error, 0 at it, None after."""
    if fmt == "steps":
        return [None if label is None else int(label) for label in row["labels"]]
    first_error, n = row["label"], len(row["steps"])
    if first_error == -1:
        return [1] * n
    return [1] * first_error + [0] + [None] * (n - first_error - 1)


def split_rows(rows: Sequence[dict], fmt: str, fit_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(fit row indices, held-out row indices), by prompt (module docstring); each part in file order.
    InputError when either part would be empty."""
    keys = [json.dumps(prompt_of(r, fmt), sort_keys=True, ensure_ascii=False) for r in rows]
    prompts = list(dict.fromkeys(keys))
    order = np.random.default_rng(seed).permutation(len(prompts))
    n_fit = int(round(fit_fraction * len(prompts)))
    if not 0 < n_fit < len(prompts):
        raise InputError(
            None,
            None,
            None,
            f"{len(prompts)} distinct prompt(s) cannot be split {fit_fraction:g} / {1 - fit_fraction:g} "
            "into a non-empty fit part and a non-empty held-out part",
            hint="Use more rows (the split is by prompt) or another --fit-fraction.",
        )
    fit_prompts = {prompts[i] for i in order[:n_fit]}
    fit = [i for i, k in enumerate(keys) if k in fit_prompts]
    held = [i for i, k in enumerate(keys) if k not in fit_prompts]
    return fit, held


def points(
    fmt: str, rows: Sequence[dict], values: Sequence[Sequence[float]], score_scale: str
) -> tuple[list[float], list[int], int]:
    """(z, y, unscored) of scored rows (module docstring); `values[i]` is row i's raw scores: [chosen,
    rejected], [score] or the step scores. Pairs give one point (d, 1) each."""
    logits: list[float] = []
    labels: list[int] = []
    unscored = 0
    for row, scores in zip(rows, values, strict=True):
        z = [as_logit(float(s), score_scale) for s in scores]
        if fmt == "pairs":
            wanted = [(z[0] - z[1], 1)]
        elif fmt == "responses":
            wanted = [(z[0], int(row["label"]))]
        else:
            wanted = [(zk, yk) for zk, yk in zip(z, step_labels(row, fmt), strict=True) if yk is not None]
        for zk, yk in wanted:
            if not math.isfinite(zk):  # NaN: unscored; inf - inf is NaN too
                unscored += 1
            else:
                logits.append(zk)
                labels.append(yk)
    return logits, labels, unscored


__all__ = [
    "FORMATS",
    "SOURCE_OF",
    "TARGET_OF",
    "checked_rows",
    "detect_format",
    "points",
    "prompt_of",
    "split_rows",
    "step_labels",
]
