"""Scorers: trained reward models loaded from a scorer directory, ready for eval and RL loops.

`load_scorer(path, ...)` reads `reward_model.json` and builds the class its `kind` names in `SCORER_KINDS`,
through that class's `from_directory`. Classes are imported only when their kind is loaded, so loading a BT
scorer never imports the PRM or DPO modules (nor their dependencies). What a scorer can do beyond
`score(prompts, responses)` is told by the protocols in `rewardmodels.scorers.capabilities`.

The loading path is one for every kind: the caller's keywords (or a `ScorerOptions` it built, as the
commands do) become one frozen `ScorerOptions`; the kind-specific options in it are checked against the
class's `extra_options` (an option the kind does not take is refused before any weights load); then
`cls.from_directory(path, manifest, options)` loads the model.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from rewardmodels.errors import InputError, MissingInputError
from rewardmodels.io import read_json_object
from rewardmodels.scorers.base import MANIFEST_NAME, Scorer
from rewardmodels.scorers.capabilities import ScoresTexts
from rewardmodels.scorers.options import ScorerOptions, UnknownScorerOptionError

# The manifest's `kind` -> "module:Class". A new kind adds one line here and nothing else.
SCORER_KINDS: dict[str, str] = {
    "bt": "rewardmodels.scorers.sequence:SequenceScorer",
    "prm": "rewardmodels.scorers.prm:PRMScorer",
    "dpo": "rewardmodels.scorers.dpo:DPOScorer",
    "generative": "rewardmodels.scorers.generative:GenerativeScorer",
    "implicit_prm": "rewardmodels.scorers.implicit_prm:ImplicitPRMScorer",
    "reference_probability": "rewardmodels.scorers.reference_probability:ReferenceProbabilityScorer",
}
# Names this package re-exports lazily, for `from rewardmodels.scorers import SequenceScorer`.
_LAZY_CLASSES = {target.rsplit(":", 1)[1]: target for target in SCORER_KINDS.values()}


def scorer_class(kind: str) -> type:
    """The class registered for `kind`, imported now."""
    if kind not in SCORER_KINDS:
        raise ValueError(f"unknown scorer kind {kind!r}; known kinds: {', '.join(sorted(SCORER_KINDS))}")
    module_name, class_name = SCORER_KINDS[kind].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def read_manifest(path: str | Path) -> dict:
    manifest_path = Path(path) / MANIFEST_NAME
    if not manifest_path.is_file():
        missing = not Path(path).exists()
        raise MissingInputError(
            path,
            None,
            None,
            "no such directory" if missing else f"not a scorer directory (no {MANIFEST_NAME})",
            hint="Create one with `rewardmodels export`, or evaluate a plain HF reward model with --model.",
        )
    return read_json_object(manifest_path)  # InputError naming the file and line if it is corrupt


def load_scorer(
    path: str | Path,
    device: str | None = None,
    dtype: str | None = None,
    max_length: int | None = None,
    *,
    options: ScorerOptions | None = None,
    **keywords,
) -> ScoresTexts:
    """Load a scorer directory written by `rewardmodels export`, with `options`, or with the options the
    keywords name (`ScorerOptions.from_keywords`: device, dtype, max_length, attn_implementation, and the
    kind's own, such as aggregation=...); not both.

    A directory the user can fix (missing, a corrupt manifest, an unknown kind, pickled weights) or an option
    its kind does not take raises `InputError`, so every command that loads a scorer reports it in one line
    with exit code 2."""
    if options is None:
        options = ScorerOptions.from_keywords(device=device, dtype=dtype, max_length=max_length, **keywords)
    elif device is not None or dtype is not None or max_length is not None or keywords:
        raise TypeError("load_scorer takes options=ScorerOptions(...) or keyword options, not both")
    manifest = read_manifest(path)
    kind = manifest.get("kind")
    try:
        cls = scorer_class(kind)
    except ValueError as e:
        raise InputError(Path(path) / MANIFEST_NAME, None, "kind", str(e)) from None
    options.checked_for(kind, getattr(cls, "extra_options", ()), where=Path(path) / MANIFEST_NAME)
    return cls.from_directory(path, manifest, options)


def __getattr__(name: str):
    if name in _LAZY_CLASSES:
        module_name, class_name = _LAZY_CLASSES[name].split(":")
        return getattr(importlib.import_module(module_name), class_name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MANIFEST_NAME",
    "SCORER_KINDS",
    "Scorer",
    "ScorerOptions",
    "UnknownScorerOptionError",
    "load_scorer",
    "read_manifest",
    "scorer_class",
]
