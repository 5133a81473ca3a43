"""Preference builders: HH-RLHF transcripts, ShareGPT-style rows, and generic files or HF datasets."""

from __future__ import annotations

import re
from collections import Counter

from rewardmodels.errors import ROW, InputError, Location
from rewardmodels.io import location_of, read_rows, rename_columns, with_location

_HH_TURN = re.compile(r"\n\n(Human|Assistant): ")
_SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
}


def parse_hh_transcript(text: str) -> list[dict]:
    """Split '\\n\\nHuman: ...\\n\\nAssistant: ...' into chat messages."""
    if not text.startswith("\n\n"):
        text = "\n\n" + text.lstrip("\n")
    parts = _HH_TURN.split(text)
    # parts = [preamble, role, content, role, content, ...]
    messages = []
    for role, content in zip(parts[1::2], parts[2::2], strict=True):
        messages.append({"role": "user" if role == "Human" else "assistant", "content": content.strip()})
    return messages


def hh_rlhf_row(row: dict) -> tuple[dict | None, str | None]:
    """One HH-RLHF pair -> (canonical row, None) or (None, reason it was skipped)."""
    chosen, rejected = parse_hh_transcript(row["chosen"]), parse_hh_transcript(row["rejected"])
    if not chosen or not rejected or chosen[-1]["role"] != "assistant" or rejected[-1]["role"] != "assistant":
        return None, "last turn is not an assistant turn"
    if chosen[:-1] != rejected[:-1]:
        return None, "chosen and rejected histories differ"
    if not chosen[-1]["content"] or not rejected[-1]["content"]:
        return None, "empty final assistant turn"
    return {"prompt": chosen[:-1], "chosen": [chosen[-1]], "rejected": [rejected[-1]]}, None


def build_hh_rlhf(path: str) -> tuple[list[dict], Counter]:
    """HH-RLHF transcripts: the shared history becomes the prompt, the last Assistant turns the responses."""
    rows, skipped = [], Counter()
    for i, raw in enumerate(read_rows(path)):
        where = location_of(raw, Location(path, i + 1, ROW))
        for key in ("chosen", "rejected"):
            if not isinstance(raw.get(key), str):
                raise InputError.at(where, key, "expected a string (an HH-RLHF transcript)")
        row, reason = hh_rlhf_row(raw)
        if row is None:
            skipped[reason] += 1
        else:
            rows.append(with_location(row, where))
    return rows, skipped


def _sharegpt_message(turn: dict, where: Location, field: str) -> dict:
    role = _SHAREGPT_ROLES.get(turn.get("from", "")) if isinstance(turn, dict) else None
    if role is None or not isinstance(turn.get("value"), str):
        raise InputError.at(
            where,
            field,
            f"expected {{from, value}} with from in {sorted(_SHAREGPT_ROLES)}, got {turn!r:.120}",
        )
    return {"role": role, "content": turn["value"]}


def build_sharegpt(path: str) -> tuple[list[dict], Counter]:
    """ShareGPT preference rows: conversations[{from, value}], chosen{from, value}, rejected{from, value}."""
    rows = []
    for i, raw in enumerate(read_rows(path)):
        where = location_of(raw, Location(path, i + 1, ROW))
        for key in ("conversations", "chosen", "rejected"):
            if key not in raw:
                raise InputError.at(where, key, "missing field")
        if not isinstance(raw["conversations"], list):
            raise InputError.at(where, "conversations", "expected a list of {from, value} turns")
        prompt = [_sharegpt_message(t, where, "conversations") for t in raw["conversations"]]
        chosen = _sharegpt_message(raw["chosen"], where, "chosen")
        rejected = _sharegpt_message(raw["rejected"], where, "rejected")
        rows.append(with_location({"prompt": prompt, "chosen": [chosen], "rejected": [rejected]}, where))
    return rows, Counter()


def build_generic(
    path: str, column_map: dict[str, str] | None = None, split: str = "train"
) -> tuple[list[dict], Counter]:
    """Canonical rows from a jsonl/json/parquet file, a `save_to_disk` directory or an HF Hub dataset id."""
    from pathlib import Path

    p = Path(path)
    if p.is_file():
        rows = read_rows(p)
    elif p.is_dir():
        from datasets import load_from_disk

        rows = load_from_disk(str(p)).to_list()
    else:
        from datasets import load_dataset

        rows = load_dataset(path, split=split).to_list()
    return rename_columns(rows, column_map), Counter()
