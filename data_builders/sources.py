"""Turn a data spec from a recipe or the command line into validated canonical rows.

A spec is one of:
  synthetic[:n=2000,seed=0]        the embedded default task (data_builders.synthetic); task=a|b|c picks a
                                   rung of its difficulty ladder: synthetic:n=200,seed=1,task=a
  hh_rlhf:PATH                     HH-RLHF transcripts (.jsonl[.gz])
  sharegpt:PATH                    ShareGPT-style preference rows
  prm800k:PATH[?opts]              official PRM800K .jsonl -> stepwise rows (data_builders.stepwise)
  prm800k_stepwise:PATH[?opts]     PRM800K "stepwise-critic" parquet, reassembled into solutions
  math_shepherd:PATH[?opts]        Math-Shepherd input/label rows with the 'ки' step tag
  processbench:PATH[?opts]         ProcessBench rows, earliest-error index -> step labels
  prm800k_outcome:PATH             official PRM800K .jsonl -> outcome rows (data_builders.outcome)
  prm800k_stepwise_outcome:PATH[?gold=FILE,partial=true]    the stepwise parquet -> outcome rows
  prm800k_stepwise_pairs:PATH[?gold=FILE]                    the stepwise parquet -> preference pairs
  prm800k_pairs:PATH[?exclude=FILE,gold=FILE,per_problem=N,chosen=full|matched]  the stepwise parquet ->
                                   same-prefix pairs (data_builders/prm800k_pairs.py)
  PATH                             canonical rows in .jsonl/.json/.parquet or a save_to_disk directory
  hf:DATASET_ID[:SPLIT]            a Hugging Face Hub dataset in canonical form

A training spec may end in mixing options, SPEC|eval=N,rows=N,weight=W,name=NAME (data_builders/mixing.py).
"""

from __future__ import annotations

from collections import Counter

from rewardmodels.data_builders import outcome, preference, prm800k_pairs, stepwise, synthetic
from rewardmodels.data_builders.schema import (
    ValidationReport,
    hard_label_stepwise_row_errors,
    outcome_row_errors,
    preference_row_errors,
    stepwise_row_errors,
    validate_rows,
)

# Builders of raw formats, by spec prefix and the schema they produce.
RAW_BUILDERS = {
    "hh_rlhf": ("preference", preference.build_hh_rlhf),
    "sharegpt": ("preference", preference.build_sharegpt),
    # Stepwise sources take options after '?': prm800k:PATH?neutral=negative,alternatives=false
    "prm800k": ("stepwise", stepwise.from_spec(stepwise.build_prm800k)),
    "prm800k_stepwise": ("stepwise", stepwise.from_spec(stepwise.build_prm800k_stepwise)),
    "math_shepherd": ("stepwise", stepwise.from_spec(stepwise.build_math_shepherd)),
    "processbench": ("stepwise", stepwise.from_spec(stepwise.build_processbench)),
    # Outcome rows and pairs for implicit PRMs (data_builders/outcome.py), e.g. ...?gold=math500.jsonl
    "prm800k_outcome": ("outcome", stepwise.from_spec(outcome.build_prm800k_outcome)),
    "prm800k_stepwise_outcome": ("outcome", stepwise.from_spec(outcome.build_prm800k_stepwise_outcome)),
    "prm800k_stepwise_pairs": ("preference", stepwise.from_spec(outcome.build_prm800k_stepwise_pairs)),
    "prm800k_pairs": ("preference", stepwise.from_spec(prm800k_pairs.build_prm800k_pairs)),
}

SYNTHETIC_ROWS = {
    "preference": synthetic.preference_rows,
    "stepwise": synthetic.stepwise_rows,
    "outcome": synthetic.outcome_rows,
}

ROW_CHECKS = {
    "preference": preference_row_errors,
    "stepwise": stepwise_row_errors,
    "outcome": outcome_row_errors,
}
# The checks with --label_mode hard: a fractional label is refused (or dropped) with the other bad rows.
HARD_LABEL_ROW_CHECKS = {**ROW_CHECKS, "stepwise": hard_label_stepwise_row_errors}


def _parse_options(text: str) -> dict[str, int | float | str]:
    """`key=value,...` of a `synthetic:` spec: numbers as int (float when written with a '.'), and `task` as
    a string, one of the ladder's rungs (synthetic.TASKS), checked here so a typo names the spec."""
    options: dict[str, int | float | str] = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if key == "task":
            if value not in synthetic.TASKS:
                raise ValueError(
                    f"synthetic:{text}: unknown task {value!r}; the ladder has {', '.join(synthetic.TASKS)}"
                )
            options[key] = value
        else:
            options[key] = float(value) if "." in value else int(value)
    return options


def read_source(
    spec: str, schema: str, column_map: dict[str, str] | None = None
) -> tuple[list[dict], Counter]:
    """Rows of `schema` from one spec, before validation, plus counts of rows a raw builder skipped."""
    prefix, _, rest = spec.partition(":")
    if prefix == "synthetic":
        if schema not in SYNTHETIC_ROWS:
            raise ValueError(f"the synthetic task has no '{schema}' rows")
        return SYNTHETIC_ROWS[schema](**{"n": 2000, **_parse_options(rest)}), Counter()
    if prefix in RAW_BUILDERS and rest:
        produces, build = RAW_BUILDERS[prefix]
        if produces != schema:
            raise ValueError(f"'{prefix}:' builds {produces} rows, but this trainer needs {schema} rows")
        return build(rest)
    if prefix == "hf" and rest:
        dataset_id, _, split = rest.partition(":")
        return preference.build_generic(dataset_id, column_map, split or "train")
    return preference.build_generic(spec, column_map)


def load_rows(
    specs: list[str] | str,
    schema: str,
    column_map: dict[str, str] | None = None,
    drop_invalid: bool = False,
    max_rows: int | None = None,
    hard_labels: bool = False,
) -> tuple[list[dict], ValidationReport]:
    """Read, concatenate and validate every spec; errors name the file, its 1-based line or row, and the
    field. With `hard_labels`, stepwise labels must be bools or exactly 0/1 (PRM --label_mode hard)."""
    specs = [specs] if isinstance(specs, str) else list(specs)
    checks = HARD_LABEL_ROW_CHECKS if hard_labels else ROW_CHECKS
    all_rows, report = [], ValidationReport(total=0, kept=0)
    for spec in specs:
        rows, skipped = read_source(spec, schema, column_map)
        if max_rows is not None:
            rows = rows[:max_rows]
        kept, part = validate_rows(rows, checks[schema], drop_invalid=drop_invalid, source=spec)
        all_rows.extend(kept)
        report.total += part.total + sum(skipped.values())
        report.kept += part.kept
        report.dropped.update(part.dropped)
        report.dropped.update(skipped)
    return all_rows, report
