"""One options object for every scorer kind: `ScorerOptions`, built from `load_scorer`'s keywords or by the
caller, checked against the kind's `extra_options` before any weights load."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

import rewardmodels
from rewardmodels.errors import InputError
from rewardmodels.scorers import (
    SCORER_KINDS,
    ScorerOptions,
    UnknownScorerOptionError,
    load_scorer,
    scorer_class,
)

PROMPTS = ["What is 2 + 2?", "Name a colour."]
RESPONSES = ["4", "Blue."]


def manifest_only(tmp_path: Path, kind: str) -> Path:
    """A scorer directory with a manifest of `kind` and no weights: loading it fails at the weights, so an
    option refused first shows the check runs before any model loads."""
    scorer = tmp_path / kind
    scorer.mkdir()
    (scorer / "reward_model.json").write_text(json.dumps({"kind": kind, "max_length": 64}))
    return scorer


def test_keywords_split_into_the_shared_fields_and_the_kind_extras():
    options = ScorerOptions.from_keywords(device="cpu", max_length=32, aggregation="min", beta=0.5)
    assert options == ScorerOptions(device="cpu", max_length=32, extra={"aggregation": "min", "beta": 0.5})
    assert options.model_keywords() == {"device": "cpu", "dtype": None, "attn_implementation": None}
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.device = "cuda"
    with pytest.raises(TypeError):  # the extras are a read-only copy
        options.extra["aggregation"] = "last"
    given = {"aggregation": "min"}
    copied = ScorerOptions(extra=given)
    given["aggregation"] = "last"
    assert copied.extra == {"aggregation": "min"}


@pytest.mark.parametrize(
    ("kind", "option"),
    [("bt", "aggregation"), ("dpo", "aggregation"), ("prm", "endpoint"), ("implicit_prm", "parallel")],
)
def test_an_option_the_kind_does_not_take_is_refused_before_loading(kind, option, tmp_path):
    scorer = manifest_only(tmp_path, kind)
    with pytest.raises(UnknownScorerOptionError) as info:
        load_scorer(scorer, device="cpu", **{option: "x"})
    error = info.value
    assert isinstance(error, InputError) and isinstance(error, TypeError)
    assert error.file == str(scorer / "reward_model.json")
    taken = scorer_class(kind).extra_options
    takes = ", ".join(taken) if taken else "no other"
    assert error.reason == (
        f"unknown {kind} scorer option(s) '{option}'; the {kind} kind takes {takes} besides device, dtype, "
        "max_length and attn_implementation"
    )


def test_an_option_the_kind_takes_passes_the_check(tmp_path):
    """The PRM takes `aggregation`: loading goes on to the weights, which this directory lacks."""
    scorer = manifest_only(tmp_path, "prm")
    with pytest.raises(InputError, match="no .safetensors weights") as info:
        load_scorer(scorer, device="cpu", aggregation="last")
    assert not isinstance(info.value, UnknownScorerOptionError)


def test_every_registered_kind_names_its_extra_options():
    for kind in SCORER_KINDS:
        taken = scorer_class(kind).extra_options
        assert isinstance(taken, tuple) and all(isinstance(name, str) for name in taken), kind
        assert not {"device", "dtype", "max_length", "attn_implementation"} & set(taken), kind


def test_options_object_and_keywords_load_the_same_scorer(tiny_scorer):
    by_keywords = rewardmodels.load_scorer(tiny_scorer, device="cpu", max_length=8)
    by_object = load_scorer(tiny_scorer, options=ScorerOptions(device="cpu", max_length=8))
    assert by_object.max_length == by_keywords.max_length == 8
    assert by_object.score(PROMPTS, RESPONSES) == pytest.approx(
        by_keywords.score(PROMPTS, RESPONSES), abs=1e-6
    )
    with pytest.raises(TypeError, match="not both"):
        load_scorer(tiny_scorer, device="cpu", options=ScorerOptions(device="cpu"))
