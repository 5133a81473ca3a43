"""RewardBench data: loading rows (file, save_to_disk folder or Hub), renaming columns, and validating every
row before any model work. Bad rows are reported as the builders' `RowError`s (the file's 1-based line or
row, and the field) in one `DataValidationError`, or dropped and counted with `--drop-malformed`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewardmodels.data_builders.schema import (
    DataValidationError,
    RowError,
    is_messages,
    located,
    row_location,
    text_of,
)
from rewardmodels.errors import InputError, Location
from rewardmodels.eval.rewardbench.official import parse_ties_id
from rewardmodels.io import read_rows, rename_columns

V1_DATASET = "allenai/reward-bench"
V2_DATASET = "allenai/reward-bench-2"
DEFAULT_SPLITS = {V1_DATASET: "filtered", V2_DATASET: "test"}
# What to do about bad rows, in this command's flags (the builders' default names theirs).
FIX_HINT = "Fix the rows (or map columns with --column-map), or pass --drop-malformed to drop and count them."
# The name this evaluator's bad-data error had before it was the builders' one; kept for callers.
RewardBenchDataError = DataValidationError


def data_error(errors: list[RowError], source: str) -> DataValidationError:
    return DataValidationError(errors, source, hint=FIX_HINT)


@dataclass
class Example:
    index: int  # position in the loaded dataset, so errors and output order refer to the user's rows
    id: Any
    subset: str
    prompt: Any
    responses: list  # chosen response(s) first, then rejected
    num_chosen: int

    @property
    def key(self) -> tuple[str, str]:
        # One id can sit in two subsets (3692 in v1), so results are keyed on both. json.dumps keeps 1 and
        # "1" apart.
        return json.dumps(self.id), self.subset


def parse_column_map(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    try:
        mapping = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(
            None, None, None, f'--column-map must be a JSON object, e.g. \'{{"question": "prompt"}}\': {e}'
        ) from None
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
    ):
        raise InputError(
            None, None, None, "--column-map must be a JSON object of source -> canonical column names"
        )
    return mapping


def apply_column_map(rows: list[dict], column_map: dict[str, str] | None, source: str) -> list[dict]:
    """Rename columns; a rename onto a column the row already has is an error naming the row."""
    if not column_map:
        return rows
    seen = set()
    errors = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            continue
        seen.update(k for k in column_map if k in row)
        for src, dst in column_map.items():
            if src in row and dst in row and dst not in column_map:
                clash = RowError(
                    i, dst, "column clash", f"--column-map renames {src!r} onto existing {dst!r}"
                )
                errors += located([clash], row, i)
    unused = [k for k in column_map if k not in seen]
    if unused and rows:
        errors.append(RowError(-1, ",".join(unused), "unknown column", "named in --column-map but in no row"))
    if errors:
        raise data_error(errors, source)
    return rename_columns(list(rows), column_map)  # renamed rows keep their file and line


def load_rows(dataset: str, split: str | None = None) -> list[dict]:
    """A local .jsonl/.json/.parquet file (optionally .gz), a save_to_disk folder, or a Hub dataset id."""
    path = Path(dataset)
    if path.is_file():
        return read_rows(path)
    if path.is_dir():
        from datasets import DatasetDict, load_from_disk

        ds = load_from_disk(str(path))
        if isinstance(ds, DatasetDict):
            if split is None and len(ds) != 1:
                raise InputError(dataset, None, None, f"holds splits {list(ds)}; choose one with --split")
            ds = ds[split or next(iter(ds))]
        return ds.to_list()
    from datasets import load_dataset

    ds = load_dataset(dataset, split=split or DEFAULT_SPLITS.get(dataset, "train"))
    return ds.to_list()


def _is_text(value) -> bool:
    return isinstance(value, str) or is_messages(value)


def detect_version(rows: Sequence[dict], dataset: str = "") -> int:
    """2 for reward-bench-2 (chosen/rejected are lists of response strings), else 1."""
    if dataset == V2_DATASET:
        return 2
    for row in rows:
        if isinstance(row, dict) and "chosen" in row:
            value = row["chosen"]
            return 2 if isinstance(value, list) and value and all(isinstance(v, str) for v in value) else 1
    return 1


def row_errors(row, i: int, version: int, has_ids: bool, has_subsets: bool) -> list[RowError]:
    """Every problem with row `i`: prompt, chosen and rejected present and of the version's types (v1: text
    or chat messages; v2: non-empty lists of strings), `subset` and `id` when the data has those columns,
    and for v2 a consistent `num_correct` and Ties ids of the form ref:N / tied:N."""
    if not isinstance(row, dict):
        return [RowError(i, "<row>", "wrong type", f"expected an object, got {type(row).__name__}")]
    errors = []
    if "prompt" not in row or row["prompt"] is None:
        errors.append(RowError(i, "prompt", "missing field", "required"))
    elif not (isinstance(row["prompt"], str) or is_messages(row["prompt"])):
        errors.append(
            RowError(
                i,
                "prompt",
                "wrong type",
                f"expected a string or chat messages, got {type(row['prompt']).__name__}",
            )
        )
    for name in ("chosen", "rejected"):
        value = row.get(name)
        if value is None:
            errors.append(RowError(i, name, "missing field", "required"))
        elif version == 1 and not _is_text(value):
            errors.append(
                RowError(
                    i, name, "wrong type", f"expected a string or chat messages, got {type(value).__name__}"
                )
            )
        elif version == 2 and not (
            isinstance(value, list) and value and all(isinstance(v, str) for v in value)
        ):
            errors.append(
                RowError(i, name, "wrong type", "v2 rows need a non-empty list of response strings")
            )
    if has_subsets and not (isinstance(row.get("subset"), str) and row["subset"]):
        errors.append(
            RowError(
                i,
                "subset",
                "missing field" if row.get("subset") is None else "wrong type",
                "a non-empty string is required",
            )
        )
    if has_ids:
        rid = row.get("id")
        if rid is None or isinstance(rid, bool) or not isinstance(rid, int | str):
            errors.append(
                RowError(
                    i, "id", "missing field" if rid is None else "wrong type", "an int or string is required"
                )
            )
    if version == 2 and not errors:
        nc = row.get("num_correct")
        if nc is not None and nc != len(row["chosen"]):
            errors.append(
                RowError(
                    i,
                    "num_correct",
                    "inconsistent",
                    f"{nc!r} but the row has {len(row['chosen'])} chosen responses",
                )
            )
        if str(row.get("subset", "")).lower() == "ties":
            try:
                kind, _ = parse_ties_id(row.get("id"))
                if kind not in ("ref", "tied"):
                    raise ValueError
            except ValueError:
                errors.append(
                    RowError(i, "id", "bad Ties id", f"expected 'ref:N' or 'tied:N', got {row.get('id')!r}")
                )
    return errors


@dataclass
class PreparedData:
    examples: list[Example]
    version: int
    rows: int
    dropped: Counter = field(default_factory=Counter)
    empty_responses: int = 0
    notes: list[str] = field(default_factory=list)


def prepare_examples(
    rows: Sequence[dict],
    version: int,
    subsets: Sequence[str] | None = None,
    drop_malformed: bool = False,
    source: str = "dataset",
) -> PreparedData:
    """Validate every row (before any model work), then keep the selected subsets."""
    dicts = [r for r in rows if isinstance(r, dict)]
    has_ids = any("id" in r for r in dicts)
    has_subsets = any("subset" in r for r in dicts)
    notes = []
    if not has_ids:
        notes.append("the data has no `id` column; row numbers are used as ids")
    if not has_subsets:
        notes.append("the data has no `subset` column; every row is scored as subset 'all'")
    errors: list[RowError] = []
    dropped: Counter = Counter()
    keep: list[Example] = []
    first_row: dict[tuple[str, str], Location] = {}
    for i, row in enumerate(rows):
        errs = located(row_errors(row, i, version, has_ids, has_subsets), row, i)
        if not errs:
            ex = Example(
                index=i,
                id=row["id"] if has_ids else i,
                subset=row["subset"] if has_subsets else "all",
                prompt=row["prompt"],
                responses=(list(row["chosen"]) + list(row["rejected"]))
                if version == 2
                else [row["chosen"], row["rejected"]],
                num_chosen=len(row["chosen"]) if version == 2 else 1,
            )
            if ex.key in first_row:
                first = first_row[ex.key]
                detail = f"id {ex.id!r} in subset {ex.subset!r} repeats {first.unit} {first.line}"
                errs = located([RowError(i, "id", "duplicate id", detail)], row, i)
            else:
                first_row[ex.key] = row_location(row, i)
                keep.append(ex)
        if errs:
            errors.extend(errs)
            dropped[errs[0].kind] += 1
    if errors and not drop_malformed:
        raise data_error(errors, source)
    if subsets:
        available = sorted({e.subset for e in keep})
        unknown = [s for s in subsets if s not in available]
        if unknown:
            raise InputError(
                None,
                None,
                None,
                f"--subsets: {', '.join(unknown)} not in the data; it has: {', '.join(available)}",
            )
        wanted = set(subsets)
        keep = [e for e in keep if e.subset in wanted]
    if not keep:
        raise data_error(errors or [RowError(-1, "<dataset>", "empty dataset", "no rows to score")], source)
    empty = sum(1 for e in keep if any(not text_of(r).strip() for r in e.responses))
    return PreparedData(keep, version, len(rows), dropped, empty, notes)
