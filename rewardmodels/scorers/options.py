"""The options a scorer directory loads with: one frozen object from the caller to the kind's `from_directory`.

Four options mean the same thing to every kind, so they are fields: where the weights go (`device`), in what
precision (`dtype`), how many tokens a sequence may have (`max_length`, overriding the manifest's) and which
attention kernel runs (`attn_implementation`). Every other option belongs to one kind or a few: a PRM's
`aggregation`, an implicit PRM's `reference`, `ref_free`, `beta` and `step_scores`, a generative verifier's
`endpoint`, `endpoint_model`, `api_key_env`, `generation_batch_size` and sampling settings. Those sit in
`extra`, a read-only mapping, and each scorer class names the ones it takes in its `extra_options`.

Why a mapping rather than one field per option: the kinds take some twenty such options between them, and
most mean nothing to most kinds. As fields they would make every kind's options look valid for every other
kind, and adding a kind (one line in `SCORER_KINDS`) would mean editing this class as well. As a mapping
checked against the kind's own list (`checked_for`, which `load_scorer` runs before any weights load), a kind
keeps its options beside its code, and an option a kind does not take is refused, naming the option and the
kind, rather than silently ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from rewardmodels.errors import InputError


class UnknownScorerOptionError(InputError, TypeError):
    """A keyword the scorer kind does not take. An `InputError` (the command line reports it in one line with
    exit code 2, as for a `--scorer-option` typo) and a `TypeError` (what Python raises for an unexpected
    keyword argument, which library callers of `load_scorer` got before)."""


@dataclass(frozen=True)
class ScorerOptions:
    """How to load a scorer directory. `device`: "cpu", "cuda", "cuda:1" or a torch.device (None: cuda when
    available); `dtype`: a torch dtype or its name, or "auto" (None: bfloat16 on CUDA, float32 elsewhere);
    `max_length`: tokens per sequence (None: the manifest's); `attn_implementation`: "sdpa", "eager",
    "flash_attention_2", ... (None: the project's choice for the device). `extra`: the kind-specific options
    (module docstring), stored as a read-only copy."""

    device: Any = None
    dtype: Any = None
    max_length: int | None = None
    attn_implementation: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))

    @classmethod
    def from_keywords(cls, **keywords: Any) -> ScorerOptions:
        """The options `load_scorer(path, **keywords)` means: the four shared names become fields, every
        other keyword goes into `extra`."""
        shared = {f.name for f in fields(cls)} - {"extra"}
        return cls(
            **{k: v for k, v in keywords.items() if k in shared},
            extra={k: v for k, v in keywords.items() if k not in shared},
        )

    def model_keywords(self) -> dict[str, Any]:
        """The keywords a scorer's model loader (`scorers.base.load_for_scoring`) takes from these options."""
        return {"device": self.device, "dtype": self.dtype, "attn_implementation": self.attn_implementation}

    def checked_for(
        self, kind: str, accepted: Iterable[str], where: str | Path | None = None
    ) -> ScorerOptions:
        """These options, after checking that every extra is one the kind takes (`accepted`, the class's
        `extra_options`); otherwise `UnknownScorerOptionError` naming the unknown options and the kind, at
        `where` (the scorer's manifest, when known)."""
        accepted = tuple(accepted)
        unknown = sorted(set(self.extra) - set(accepted))
        if unknown:
            takes = ", ".join(accepted) if accepted else "no other"
            raise UnknownScorerOptionError(
                where,
                None,
                None,
                f"unknown {kind} scorer option(s) {', '.join(map(repr, unknown))}; the {kind} kind takes "
                f"{takes} besides device, dtype, max_length and attn_implementation",
            )
        return self


# The options of a caller that names none; frozen, so one instance serves as every default.
DEFAULT_OPTIONS = ScorerOptions()

__all__ = ["DEFAULT_OPTIONS", "ScorerOptions", "UnknownScorerOptionError"]
