"""A resumable journal of finished evaluation records, shared by RewardBench, ProcessBench and best-of-N.

The journal is an append-only JSONL file: one finished record per line, each identified by a key the
evaluator derives from it (the example's identity, e.g. `(id, subset)`). Records are appended and fsynced
one chunk at a time, so a killed run loses at most the chunk it was scoring. On open:

- a torn last line (the process died mid-write: no final newline) is cut off the file;
- a line that is complete but not a record is an error naming the line, never skipped silently;
- the settings fingerprint (scorer, dataset, options: whatever changes the records) is stored beside the
  journal; a journal written under another fingerprint is refused unless `overwrite`, which starts afresh.

An evaluator skips every key already in `done`, scores the rest, and `append`s each finished chunk.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path

from rewardmodels.io import write_json


def settings_path_for(path: str | os.PathLike) -> Path:
    """Where a journal's fingerprint lives when the evaluator names no other place: `.NAME.settings.json`."""
    path = Path(path)
    return path.with_name(f".{path.name}.settings.json")


def _normalised(fingerprint: dict) -> dict:
    # Compare as JSON would store it: tuples become lists, keys strings, so a re-run compares equal.
    return json.loads(json.dumps(fingerprint, sort_keys=True))


class Journal:
    """The finished records of one evaluation, read back from `path` and appended to it.

    `key(record)` gives a record's identity; `done` maps identity to record (a later line for the same key
    replaces an earlier one). `settings_path` defaults to `settings_path_for(path)`.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fingerprint: dict,
        key: Callable[[dict], Hashable],
        settings_path: str | os.PathLike | None = None,
        overwrite: bool = False,
    ):
        self.path = Path(path)
        self.settings_path = Path(settings_path) if settings_path is not None else settings_path_for(path)
        self.key = key
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if overwrite:
            self.path.unlink(missing_ok=True)
            self.settings_path.unlink(missing_ok=True)
        wanted = _normalised(fingerprint)
        if self.settings_path.exists():
            if _normalised(json.loads(self.settings_path.read_text(encoding="utf-8"))) != wanted:
                raise ValueError(
                    f"{self.path.parent} holds results of a different evaluation (model, data or settings "
                    "differ); use another --output-dir, or --overwrite to discard them"
                )
        elif self.path.exists():
            raise ValueError(f"{self.path} exists but was not written by this tool; use --overwrite")
        else:
            write_json(self.settings_path, wanted)
        self.done: dict[Hashable, dict] = self._read()

    def _read(self) -> dict[Hashable, dict]:
        done: dict[Hashable, dict] = {}
        if not self.path.exists():
            return done
        raw = self.path.read_bytes()
        end = raw.rfind(b"\n") + 1  # every complete line ends with a newline; anything after is a torn write
        if end < len(raw):
            with open(self.path, "r+b") as f:
                f.truncate(end)
        for n, line in enumerate(raw[:end].split(b"\n")[:-1], 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                done[self.key(record)] = record
            except (ValueError, KeyError, TypeError):
                raise ValueError(
                    f"{self.path}: line {n} is corrupt; delete the file or pass --overwrite"
                ) from None
        return done

    def __contains__(self, key: Hashable) -> bool:
        return key in self.done

    def __len__(self) -> int:
        return len(self.done)

    def append(self, records: Iterable[dict]) -> None:
        """Add finished records: written, flushed and fsynced before this returns, then marked done."""
        records = list(records)
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        for record in records:
            self.done[self.key(record)] = record


__all__ = ["Journal", "settings_path_for"]
