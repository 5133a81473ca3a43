"""One step vocabulary (issue 24): one aggregation registry whose subsets each step-score kind supports, and
one splitter behind both the step texts and the step end offsets."""

from __future__ import annotations

import itertools

import pytest

from rewardmodels.steps import (
    AGGREGATIONS,
    PROBABILITY_AGGREGATIONS,
    REWARD_AGGREGATIONS,
    aggregate,
    aggregate_steps,
    check_aggregation,
    split_points,
    split_response,
    step_spans,
)


def test_the_registry_is_the_union_of_what_each_kind_supports():
    assert set(PROBABILITY_AGGREGATIONS) | set(REWARD_AGGREGATIONS) == set(AGGREGATIONS)
    assert all(AGGREGATIONS[name] for name in AGGREGATIONS)  # every name is described


def test_each_kind_refuses_the_names_of_the_other():
    with pytest.raises(ValueError, match=r"aggregation must be one of \('min', 'prod', 'last', 'mean'\)"):
        aggregate([0.5], "sum")
    with pytest.raises(ValueError, match=r"aggregation must be one of \('min', 'min_q', 'last', 'sum'\)"):
        aggregate_steps([0.5], 0.5, "prod")
    check_aggregation("min", PROBABILITY_AGGREGATIONS)
    check_aggregation("min_q", REWARD_AGGREGATIONS)


def _old_split_response(response: str, split: str) -> list[str]:
    steps = [s.strip() for s in response.split(split)]
    return [s for s in steps if s] or [response]


@pytest.mark.parametrize("split", ["\n\n", "\n", "X", "aX", " \n"])
def test_texts_and_end_offsets_come_from_the_same_steps(split):
    for n in range(7):
        for chars in itertools.product("a \nX", repeat=n):
            text = "".join(chars)
            spans = step_spans(text, split)
            steps, ends = split_response(text, split), split_points(text, split)
            assert steps == _old_split_response(text, split), text
            assert len(ends) == max(1, len(spans)) and ends[-1] == len(text)
            # each step's text lies inside the piece that ends at its end offset
            starts = [0, *ends[:-1]]
            for step, start, end in zip(steps if spans else [], starts, ends, strict=False):
                assert step in text[start:end]


def test_an_empty_split_is_refused():
    with pytest.raises(ValueError, match="non-empty"):
        split_response("a", "")
    with pytest.raises(ValueError, match="non-empty"):
        split_points("a", "")
