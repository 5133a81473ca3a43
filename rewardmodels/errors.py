"""One error type for bad input: which file, which line (or row), which field, and what is wrong.

Every loader and command raises `InputError` for input a user can fix (a data file, a scorer directory's
manifest, a row's field), and the `rewardmodels` command prints it as one line and exits with code 2, where
any other exception is a bug and keeps its traceback. Lines and rows count from 1, as editors, `sed -n Np`
and JSON parsers do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# A text file read line by line (JSONL) has lines; a JSON list, a parquet file or a dataset has rows.
LINE, ROW = "line", "row"


@dataclass(frozen=True)
class Location:
    """Where a value came from: `file, line 3` (or `row 3`); any part may be unknown."""

    file: str | None = None
    line: int | None = None
    unit: str = LINE

    def __str__(self) -> str:
        parts = [self.file] if self.file else []
        if self.line is not None:
            parts.append(f"{self.unit} {self.line}")
        return ", ".join(parts)


class InputError(ValueError):
    """Bad input, in one line: `FILE, line N, field 'F': REASON`, each part there when known.

    A ValueError, so code that caught the ValueErrors loaders raised before keeps working. `hint` says what
    to do about it and ends the one-line form.
    """

    def __init__(
        self,
        file: str | os.PathLike | None,
        line: int | None,
        field: str | None,
        reason: str,
        *,
        unit: str = LINE,
        hint: str | None = None,
    ):
        self.location = Location(None if file is None else str(file), line, unit)
        self.field = field
        self.reason = reason
        self.hint = hint
        super().__init__(self.one_line())

    @classmethod
    def at(cls, location: Location, field: str | None, reason: str, hint: str | None = None) -> InputError:
        return cls(location.file, location.line, field, reason, unit=location.unit, hint=hint)

    @property
    def file(self) -> str | None:
        return self.location.file

    @property
    def line(self) -> int | None:
        return self.location.line

    def where(self) -> str:
        parts = [str(self.location)] if str(self.location) else []
        if self.field:
            parts.append(f"field '{self.field}'")
        return ", ".join(parts)

    def describe(self) -> str:
        """Where and what, without the hint."""
        where = self.where()
        return f"{where}: {self.reason}" if where else self.reason

    def one_line(self) -> str:
        """The message the command line prints: no newlines, whatever the reason text held."""
        text = self.describe() + (f". {self.hint}" if self.hint else "")
        return " ".join(text.split())


class MissingInputError(InputError, FileNotFoundError):
    """Bad input that is a missing file or directory (a scorer directory without its manifest); still a
    FileNotFoundError, for code that catches one."""


class OutputExistsError(InputError, FileExistsError):
    """An output that exists and may not be replaced without being asked to; still a FileExistsError."""
