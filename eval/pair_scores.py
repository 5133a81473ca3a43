"""Preference pairs scored by one scorer, batched, with a resumable cache per scorer.

Each pair goes to the scorer as one group of two responses to its prompt (`rewardmodels.scorers.groups`: a
scorer that can share the prompt between them does). Finished scores are appended to a JSONL journal
(`rewardmodels.eval.journal`), one record per distinct pair, `{"key", "chosen", "rejected"}`, keyed by the
pair's `row_key`, a chunk at a time, so a killed run loses at most one chunk and a re-run scores only what
is missing, without loading the model at all when nothing is. The journal's fingerprint names the scorer's
path and its weight files' sizes and times: a retrained scorer in the same place is refused rather than
mixed with its predecessor's scores (`rescore` starts the cache afresh).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from rewardmodels.data_builders.curation import row_key
from rewardmodels.errors import InputError
from rewardmodels.eval.journal import Journal
from rewardmodels.scorers.groups import default_batch_size, score_response_groups

CHUNK_PAIRS = 128  # pairs per journal append: what a killed run can lose
WEIGHT_SUFFIXES = (".safetensors", ".json", ".bin")


def cache_name(label: str, path: str | Path) -> str:
    """A file name for one scorer's cache: its label made safe, plus a hash of its absolute path, so two
    scorers with the same folder name never share a cache."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_") or "scorer"
    digest = hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:8]
    return f"{safe}-{digest}"


def fingerprint_of(path: str | Path, **settings) -> dict:
    """What the cached scores depend on: the scorer's absolute path, the size and modification time of each
    weight and config file in it, and any scoring `settings` (max length, ...)."""
    path = Path(path).resolve()
    files = (
        sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))
        if path.is_dir()
        else []
    )
    stats = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]
    return {"scorer": str(path), "files": stats, **settings}


def score_pairs(
    load: Callable[[], object],
    rows: Sequence[dict],
    cache_path: str | Path,
    fingerprint: dict,
    *,
    batch_size: int | None = None,
    progress: bool = True,
    desc: str = "scoring pairs",
    rescore: bool = False,
) -> dict[str, tuple[float, float]]:
    """key -> (score of chosen, score of rejected) for every pair of `rows` (keys: `row_key`). `load()` gives
    the scorer, called only when some pair is not in the cache at `cache_path`."""
    try:
        journal = Journal(cache_path, fingerprint, key=lambda r: r["key"], overwrite=rescore)
    except ValueError as e:
        raise InputError(cache_path, None, None, str(e), hint="Pass --rescore to score again.") from None
    by_key: dict[str, dict] = {}
    for row in rows:
        by_key.setdefault(row_key(row), row)
    pending = [k for k in by_key if k not in journal]
    if pending:
        from tqdm.auto import tqdm

        scorer = load()
        size = batch_size or default_batch_size(scorer)
        with tqdm(total=len(pending), desc=desc, unit="pair", disable=not progress) as bar:
            for start in range(0, len(pending), CHUNK_PAIRS):
                keys = pending[start : start + CHUNK_PAIRS]
                prompts = [by_key[k]["prompt"] for k in keys]
                groups = [[by_key[k]["chosen"], by_key[k]["rejected"]] for k in keys]
                values = score_response_groups(scorer, prompts, groups, size)
                journal.append(
                    {"key": k, "chosen": v[0], "rejected": v[1]} for k, v in zip(keys, values, strict=True)
                )
                bar.update(len(keys))
    return {k: (float(journal.done[k]["chosen"]), float(journal.done[k]["rejected"])) for k in by_key}


def margins_of(scores: dict[str, tuple[float, float]], rows: Sequence[dict]) -> list[float]:
    """s(chosen) - s(rejected) for each row, in order."""
    out = []
    for row in rows:
        chosen, rejected = scores[row_key(row)]
        out.append(chosen - rejected)
    return out


__all__ = ["CHUNK_PAIRS", "cache_name", "fingerprint_of", "margins_of", "score_pairs"]
