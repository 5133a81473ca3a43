"""Chain rows as training data: what `train generative` reads. A spec is a chain-row file (the output of
`rewardmodels build verification-cots`, `data_builders/verification_cots.py`) or `templated:SPEC`, chains
written from the gold labels of the stepwise rows SPEC names at load time; every row is checked against the
verification format training uses, and refused or dropped and counted."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from rewardmodels.data_builders.schema import ValidationReport, validate_rows
from rewardmodels.data_builders.verification_cots import TEMPLATED_NOTE, templated
from rewardmodels.verification import VerificationFormat

logger = logging.getLogger("rewardmodels")


def chain_row_errors(fmt: VerificationFormat):
    """The check of one chain row (`chain_row`'s fields that SFT reads) written in format `fmt`."""
    from rewardmodels.data_builders.schema import RowError

    def check(row, index: int) -> list[RowError]:
        if not isinstance(row, dict):
            return [RowError(index, "<row>", "wrong type", f"expected an object, got {type(row).__name__}")]
        errors = []
        for name in ("problem", "chain"):
            if not isinstance(row.get(name), str) or not row[name].strip():
                errors.append(RowError(index, name, "missing or empty", "expected a non-empty string"))
        steps = row.get("steps")
        if not isinstance(steps, list) or not steps or not all(isinstance(x, str) for x in steps):
            errors.append(RowError(index, "steps", "wrong type", "expected a non-empty list of strings"))
        if row.get("format", fmt.name) != fmt.name:
            detail = f"written in format {row['format']!r}, training uses {fmt.name!r}"
            errors.append(RowError(index, "format", "other format", detail))
        return errors

    return check


def read_chain_rows(
    specs: Sequence[str], fmt: VerificationFormat, drop_invalid: bool = False, max_rows: int | None = None
) -> tuple[list[dict], ValidationReport]:
    """Chain rows for SFT and their validation report (rows read, kept, dropped by reason). A spec is a
    chain-row file (this builder's output), or `templated:SPEC`, templated chains (NOT the paper's recipe) of
    the stepwise rows SPEC names, written at load time so a recipe runs on a clean checkout:
    `templated:synthetic:n=500,seed=0`. A bad row is refused (an InputError naming its file, line and field)
    or, with `drop_invalid`, dropped and counted."""
    from rewardmodels.data_builders.sources import load_rows
    from rewardmodels.errors import InputError
    from rewardmodels.io import read_rows

    out, report = [], ValidationReport(total=0, kept=0)
    for spec in specs:
        if spec.startswith("templated:"):
            stepwise, part = load_rows(spec.removeprefix("templated:"), "stepwise", drop_invalid=drop_invalid)
            rows, _ = templated(stepwise[:max_rows] if max_rows else stepwise, fmt)
            logger.info("%s: %d templated chains (%s)", spec, len(rows), TEMPLATED_NOTE)
        elif spec.split(":", 1)[0] in ("synthetic", "prm800k", "prm800k_stepwise", "processbench", "hf"):
            raise InputError(spec, None, None, f"stepwise rows are not chains; use 'templated:{spec}' "
                             "or build chains with `rewardmodels build verification-cots`")  # fmt: skip
        else:
            rows, part = validate_rows(read_rows(spec), chain_row_errors(fmt), drop_invalid, source=spec)
            rows = rows[:max_rows] if max_rows else rows
            logger.info("%s: %s", spec, part)
        report.total, report.kept = report.total + part.total, report.kept + part.kept
        report.dropped.update(part.dropped)
        out.extend(rows)
    return out, report


def chain_source_counts(rows: Sequence[dict]) -> dict[str, int]:
    """How many chain rows came from each `source` ("unknown" for a row without one), in first-seen order."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.get("source", "unknown")] = counts.get(row.get("source", "unknown"), 0) + 1
    return counts


def load_chain_rows(
    specs: Sequence[str], fmt: VerificationFormat, drop_invalid: bool = False, max_rows: int | None = None
) -> tuple[list[dict], dict]:
    """Chain rows for SFT (`read_chain_rows`), and how many came from each source."""
    rows, _ = read_chain_rows(specs, fmt, drop_invalid, max_rows)
    return rows, chain_source_counts(rows)
