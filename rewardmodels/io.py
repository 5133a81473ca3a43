"""File helpers: reading row files in any of the supported formats, and atomic writes."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from rewardmodels.errors import LINE, ROW, InputError, Location


class SourcedRow(dict):
    """A row (a plain dict to every caller) that remembers the file and line it was read from, so that a check
    made after validation, splitting or shuffling (pairs identical once tokenized) still names the line."""

    __slots__ = ("location",)

    def __init__(self, row: dict, location: Location):
        super().__init__(row)
        self.location = location


def location_of(row, default: Location) -> Location:
    return row.location if isinstance(row, SourcedRow) else default


def with_location(row, location: Location):
    """`row` carrying `location`; a row that is not a dict is left as it is (validation names it)."""
    return SourcedRow(row, location) if isinstance(row, dict) else row


def read_rows(path: str | os.PathLike) -> list[dict]:
    """Rows from .jsonl, .json (a list, or {"data": [...]}) or .parquet, optionally gzip-compressed.

    Each object comes back as a `SourcedRow` naming its line (JSONL) or 1-based row (JSON, parquet). A file
    that is missing, not UTF-8, or not valid JSON raises `InputError` with the file and line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, None, None, "no such file" if not path.exists() else "not a file")
    name = path.name.removesuffix(".gz")
    if name.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(path).to_pylist()
        except pa.ArrowInvalid as e:
            raise InputError(path, None, None, f"not a readable parquet file ({e})") from None
        return [with_location(row, Location(str(path), i, ROW)) for i, row in enumerate(rows, 1)]
    if not name.endswith((".jsonl", ".json")):
        raise InputError(
            path, None, None, "unsupported file type (use .jsonl, .json or .parquet, optionally .gz)"
        )
    data = _read_bytes(path)
    if name.endswith(".jsonl"):
        rows = []
        for lineno, raw in enumerate(data.split(b"\n"), 1):
            line = _decode(raw, path, lineno, bom=lineno == 1)
            if not line.strip():
                continue
            try:
                rows.append(with_location(json.loads(line), Location(str(path), lineno, LINE)))
            except json.JSONDecodeError as e:
                raise InputError(path, lineno, None, f"not valid JSON ({e.msg}, column {e.colno})") from None
        return rows
    text = _decode_whole(data, path)
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(path, e.lineno, None, f"not valid JSON ({e.msg}, column {e.colno})") from None
    if isinstance(parsed, dict) and isinstance(parsed.get("data"), list):
        parsed = parsed["data"]
    if not isinstance(parsed, list):
        raise InputError(path, None, None, 'expected a JSON list of rows (or {"data": [...]})')
    return [with_location(row, Location(str(path), i, ROW)) for i, row in enumerate(parsed, 1)]


def read_text(path: str | os.PathLike) -> str:
    """A UTF-8 text file's contents (a leading BOM dropped); `InputError` naming the file when it is missing,
    and the line of the first byte that is not UTF-8."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, None, None, "no such file" if not path.exists() else "not a file")
    return _decode_whole(_read_bytes(path), path)


def read_json_object(path: str | os.PathLike) -> dict:
    """A JSON file holding one object (a manifest); `InputError` naming the file and line if it is not."""
    path = Path(path)
    try:
        parsed = json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise InputError(path, e.lineno, None, f"not valid JSON ({e.msg}, column {e.colno})") from None
    if not isinstance(parsed, dict):
        raise InputError(path, None, None, f"expected a JSON object, got {type(parsed).__name__}")
    return parsed


def _read_bytes(path: Path) -> bytes:
    if not path.name.endswith(".gz"):
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (gzip.BadGzipFile, EOFError) as e:
        raise InputError(path, None, None, f"not a readable gzip file ({e})") from None


def _decode_whole(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise _not_utf8(path, data.count(b"\n", 0, e.start) + 1, e) from None


def _decode(raw: bytes, path: Path, lineno: int, bom: bool) -> str:
    try:
        return raw.decode("utf-8-sig" if bom else "utf-8")
    except UnicodeDecodeError as e:
        raise _not_utf8(path, lineno, e) from None


def _not_utf8(path: Path, lineno: int, e: UnicodeDecodeError) -> InputError:
    byte = e.object[e.start : e.start + 1]
    return InputError(path, lineno, None, f"not UTF-8 text (byte {byte!r}); re-save the file as UTF-8")


def rename_columns(rows: list[dict], column_map: dict[str, str] | None) -> list[dict]:
    """Rename source columns to canonical ones: {"question": "prompt"} renames question to prompt."""
    if not column_map:
        return rows
    renamed = []
    for row in rows:
        if isinstance(row, dict):
            new = {column_map.get(k, k): v for k, v in row.items()}
            row = SourcedRow(new, row.location) if isinstance(row, SourcedRow) else new
        renamed.append(row)
    return renamed


def umask_mode(full: int) -> int:
    """`full` (0o666 for a file, 0o777 for a directory) less the process umask: the mode a plain `open()` or
    `mkdir()` gives. The umask can only be read by setting it, so it is set back at once."""
    mask = os.umask(0o022)
    os.umask(mask)
    return full & ~mask


def publish(path: str | os.PathLike) -> None:
    """Give a private temporary (mkstemp's 0600, mkdtemp's 0700) the mode a plain open()/mkdir() would have,
    just before it is renamed into place, so other users (a server, an evaluator) can read the result."""
    os.chmod(path, umask_mode(0o777 if os.path.isdir(path) else 0o666))


def publish_tree(directory: str | os.PathLike) -> None:
    """`publish` a directory built privately (mkdtemp) and everything in it: transformers writes
    model.safetensors 0600 as well."""
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            publish(os.path.join(root, name))
    publish(directory)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it replaces `path` only if the block finishes.

    The temporary is private while it is written; the finished file gets the umask's usual mode."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        publish(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: str | os.PathLike, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> int:
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n
