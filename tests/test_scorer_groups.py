"""Group scoring (rewardmodels.scorers.groups): which scorer API is used, deduplication, truncation flags,
default batch sizes. Stub scorers record what they were asked, so each test checks the exact calls."""

from __future__ import annotations

import pytest
import torch

from rewardmodels.scorers import groups as g
from rewardmodels.scorers.capabilities import ReportsTruncation, ScoresGroups, ScoresTokenIds


class TextScorer:
    """Only `score`: the value of a response is its length; every call is recorded."""

    kind = "text"

    def __init__(self):
        self.calls: list[tuple[list, list]] = []

    def score(self, prompts, responses, batch_size=16):
        self.calls.append((list(prompts), list(responses)))
        return [float(len(p) + len(r)) for p, r in zip(prompts, responses, strict=True)]


class IdsScorer(TextScorer):
    """encode + score_ids: a sequence is the characters' code points; its score is their sum."""

    def __init__(self, max_length: int = 100):
        super().__init__()
        self.max_length = max_length
        self.scored: list[list[list[int]]] = []
        self.last_truncated: list[bool] = []

    def encode(self, prompts, responses):
        seqs = [[ord(c) for c in p + "|" + r] for p, r in zip(prompts, responses, strict=True)]
        self.last_truncated = [len(s) > self.max_length for s in seqs]
        return [s[-self.max_length :] for s in seqs]

    def score_ids(self, sequences, batch_size=16):
        self.scored.append([list(s) for s in sequences])
        return [float(sum(s)) for s in sequences]


class GroupScorer(IdsScorer):
    """Adds score_groups_ids, returning numpy-like scalars (0-d tensors) to check the float conversion."""

    def __init__(self, max_length: int = 100):
        super().__init__(max_length)
        self.groups_scored: list[list] = []

    def score_groups_ids(self, groups, batch_size=16):
        self.groups_scored.append(groups)
        return [[torch.tensor(float(sum(s))) for s in group] for group in groups]


PROMPTS = ["ab", "c", "ab"]
GROUPS = [["x", "yy"], ["x", "x", "zzz"], ["x", "yy"]]  # the third group repeats the first


def expected(prompts, groups) -> list[list[float]]:
    return [
        [float(sum(ord(c) for c in p + "|" + r)) for r in grp] for p, grp in zip(prompts, groups, strict=True)
    ]


def test_text_scorers_get_one_call_with_each_distinct_pair_once():
    scorer = TextScorer()
    got = g.score_response_groups(scorer, PROMPTS, GROUPS, batch_size=4)
    assert got == [[3.0, 4.0], [2.0, 2.0, 4.0], [3.0, 4.0]]
    assert scorer.calls == [(["ab", "ab", "c", "c"], ["x", "yy", "x", "zzz"])]


def test_token_id_scorers_score_each_distinct_sequence_once():
    scorer = IdsScorer()
    got = g.score_response_groups(scorer, PROMPTS, GROUPS)
    assert got == expected(PROMPTS, GROUPS)
    assert scorer.calls == [] and len(scorer.scored) == 1
    assert len(scorer.scored[0]) == 4  # ab|x, ab|yy, c|x, c|zzz


def test_group_scorers_are_preferred_and_get_each_distinct_group_once():
    scorer = GroupScorer()
    assert isinstance(scorer, ScoresGroups) and isinstance(scorer, ScoresTokenIds)
    got = g.score_response_groups(scorer, PROMPTS, GROUPS)
    assert got == expected(PROMPTS, GROUPS) and all(type(v) is float for grp in got for v in grp)
    assert scorer.scored == [] and scorer.calls == []
    (groups,) = scorer.groups_scored
    assert [len(grp) for grp in groups] == [
        2,
        3,
    ]  # the repeated group went in once, the repeated x in it stays


def test_sequences_with_equal_ids_but_another_response_start_are_not_merged():
    class Encoded(list):
        def __init__(self, ids, response_start):
            super().__init__(ids)
            self.response_start = response_start

    scorer = IdsScorer()
    got = g.score_encoded_groups(
        scorer, [[Encoded([1, 2, 3], 1), Encoded([1, 2, 3], 2), Encoded([1, 2, 3], 1)]]
    )
    assert got == [[6.0, 6.0, 6.0]] and len(scorer.scored[0]) == 2


def test_encode_reports_truncation_per_group():
    scorer = IdsScorer(max_length=4)
    enc = g.encode_groups(scorer, ["a", "abc"], [["b", "c"], ["d"]])
    assert enc.groups == [
        [[97, 124, 98], [97, 124, 99]],
        [[98, 99, 124, 100]],
    ]  # "abc|d" lost its first token
    assert enc.truncated == [False, True]

    class Silent(IdsScorer):  # encodes, but does not say what it cut
        def __init__(self):
            super().__init__()
            del self.last_truncated

    assert not isinstance(Silent(), ReportsTruncation)
    assert g.encode_groups(Silent(), ["a"], [["b"]]).truncated is None


def test_encoding_runs_in_bounded_steps(monkeypatch):
    monkeypatch.setattr(g, "ENCODE_STEP", 2)
    calls = []
    scorer = IdsScorer()
    encode = scorer.encode
    scorer.encode = lambda p, r: calls.append(len(p)) or encode(p, r)
    enc = g.encode_groups(scorer, ["p", "q"], [["a", "b", "c"], ["d", "e"]])
    assert calls == [2, 2, 1] and [len(grp) for grp in enc.groups] == [3, 2]


def test_non_numeric_scores_are_refused_with_a_hint():
    class TwoWay(TextScorer):
        def score(self, prompts, responses, batch_size=16):
            return [[0.1, 0.9] for _ in responses]

    with pytest.raises(TypeError, match="single output"):
        g.score_response_groups(TwoWay(), ["p"], [["a"]])

    class Short(TextScorer):
        def score(self, prompts, responses, batch_size=16):
            return [1.0]

    with pytest.raises(RuntimeError, match="1 scores for 2 sequences"):
        g.score_response_groups(Short(), ["p"], [["a", "b"]])


def test_default_batch_size_from_declared_device_and_preference():
    class OnDevice:
        def __init__(self, device, preferred=None):
            self.device = device
            if preferred is not None:
                self.preferred_batch_size = preferred

    assert g.default_batch_size(OnDevice(torch.device("cpu"), preferred=8)) == 1
    assert g.default_batch_size(OnDevice("cpu")) == 1
    assert g.default_batch_size(OnDevice(torch.device("cuda"), preferred=8)) == 8
    assert g.default_batch_size(OnDevice("cuda:1")) == 16
    assert g.default_batch_size(object()) == 16
