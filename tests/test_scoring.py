"""The scorer in the places users put it: the score CLI and TRL's GRPO reward-function signature (the HTTP
server: tests/test_serve.py)."""

import json

import pytest

import rewardmodels
from rewardmodels.errors import InputError
from rewardmodels.io import read_rows, write_jsonl
from rewardmodels.score import main as score_main

PROMPTS = ["Compute 2 + 3. Work it out one step at a time.", "Compute 9 - 4. Work it out one step at a time."]
RESPONSES = ["2 + 3 = 5\nAnswer: 5", "9 - 4 = 1\nAnswer: 1"]


def test_score_is_order_and_batch_independent(tiny_scorer):
    scorer = rewardmodels.load_scorer(tiny_scorer)
    a = scorer.score(PROMPTS, RESPONSES, batch_size=1)
    b = scorer.score(PROMPTS[::-1], RESPONSES[::-1], batch_size=2)[::-1]
    assert a == pytest.approx(b, abs=1e-5)
    assert a[0] != a[1]


def test_score_cli_writes_rows_with_scores(tiny_scorer, tmp_path):
    src, out = tmp_path / "rows.jsonl", tmp_path / "scores.jsonl"
    write_jsonl(
        src,
        [
            {"prompt": p, "response": r, "id": i}
            for i, (p, r) in enumerate(zip(PROMPTS, RESPONSES, strict=True))
        ],
    )
    assert score_main([str(tiny_scorer), "--input", str(src), "--output", str(out), "--batch-size", "1"]) == 0
    rows = read_rows(out)
    expected = rewardmodels.load_scorer(tiny_scorer).score(PROMPTS, RESPONSES)
    assert [r["id"] for r in rows] == [0, 1]
    assert [r["score"] for r in rows] == pytest.approx(expected, abs=1e-5)


def test_score_cli_names_a_missing_field(tiny_scorer, tmp_path):
    src = tmp_path / "rows.jsonl"
    write_jsonl(src, [{"prompt": "p", "response": "r"}, {"prompt": "p", "answer": "r"}])
    with pytest.raises(InputError, match="line 2, field 'response': missing field"):
        score_main([str(tiny_scorer), "--input", str(src), "--output", str(tmp_path / "o.jsonl")])


def test_reward_func_matches_trl_grpo_signature(tiny_scorer):
    scorer = rewardmodels.load_scorer(tiny_scorer)
    reward_func = scorer.as_reward_func()
    assert reward_func.__name__.startswith("rm_")
    # conversational GRPO batches: prompts are message lists, completions are assistant message lists
    prompts = [[{"role": "user", "content": p}] for p in PROMPTS]
    completions = [[{"role": "assistant", "content": r}] for r in RESPONSES]
    got = reward_func(prompts=prompts, completions=completions, completion_ids=None, trainer_state=None)
    assert got == pytest.approx(scorer.score(PROMPTS, RESPONSES), abs=1e-5)
    normalized = scorer.as_reward_func(normalize=True)(prompts=PROMPTS, completions=RESPONSES)
    mean, std = scorer.manifest["reward_mean"], scorer.manifest["reward_std"]
    assert std > 0
    assert normalized == pytest.approx([(g - mean) / std for g in got], abs=1e-5)


def test_load_scorer_rejects_a_non_scorer_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a scorer directory"):
        rewardmodels.load_scorer(tmp_path)


def test_group_batches_biggest_first_and_never_splits_a_group():
    from rewardmodels.scorers.base import group_batches

    # tokens per group, sequences per group
    tokens = [10, 40, 30, 40, 5]
    members = [2, 2, 4, 2, 1]
    # order by tokens (ties by index): 1, 3, 2, 0, 4 -> [1, 3] (4 members), [2] (4), [0, 4] (3)
    assert group_batches(tokens, members, 4) == [[1, 3], [2], [0, 4]]
    # a group bigger than the batch size runs alone
    assert group_batches([9, 8], [5, 1], 4) == [[0], [1]]
    assert group_batches([], [], 4) == []


# ---- the scorer registry and capabilities ---------------------------------------------------------------------


def test_loading_a_bt_scorer_imports_no_other_kind(tiny_scorer):
    import os
    import subprocess
    import sys

    code = (
        "import sys, rewardmodels.scorers as s\n"
        "before = 'rewardmodels.scorers.sequence' in sys.modules\n"
        f"s.load_scorer({str(tiny_scorer)!r}, device='cpu')\n"
        "print(before, sorted(m for m in sys.modules if m.startswith('rewardmodels.scorers.')))\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    before, loaded = out.stdout.strip().split(" ", 1)
    assert before == "False"  # importing the package imports no scorer kind
    assert "rewardmodels.scorers.sequence" in loaded
    assert "rewardmodels.scorers.prm" not in loaded and "rewardmodels.scorers.dpo" not in loaded


def test_unknown_kind_lists_the_known_ones(tmp_path):
    (tmp_path / "reward_model.json").write_text(json.dumps({"kind": "oracle"}))
    with pytest.raises(
        ValueError,
        match=r"unknown scorer kind 'oracle'; known kinds: bt, dpo, generative, implicit_prm, prm, "
        r"reference_probability",
    ):
        rewardmodels.load_scorer(tmp_path)


def test_registry_names_importable_classes():
    from rewardmodels.scorers import SCORER_KINDS, SequenceScorer, scorer_class

    assert scorer_class("bt") is SequenceScorer
    assert set(SCORER_KINDS) == {"bt", "prm", "dpo", "generative", "implicit_prm", "reference_probability"}


def test_sequence_scorer_capabilities(tiny_scorer):
    from rewardmodels.scorers.capabilities import (
        NormalizesScores,
        ScoresGroups,
        ScoresSteps,
        ScoresTexts,
        ScoresTokenIds,
    )

    scorer = rewardmodels.load_scorer(tiny_scorer, device="cpu")
    assert isinstance(scorer, ScoresTexts) and isinstance(scorer, ScoresTokenIds)
    assert isinstance(scorer, ScoresGroups) and isinstance(scorer, NormalizesScores)
    assert not isinstance(scorer, ScoresSteps)
    # the group path gives the per-sequence path's scores
    groups = [scorer.encode(PROMPTS[:1] * 2, ["4", "5"]), scorer.encode(PROMPTS[1:], RESPONSES[1:])]
    flat = scorer.score_ids([s for g in groups for s in g])
    assert [x for g in scorer.score_groups_ids(groups) for x in g] == pytest.approx(flat, abs=1e-5)


def test_max_length_option_overrides_the_manifest(tiny_scorer):
    scorer = rewardmodels.load_scorer(tiny_scorer, device="cpu", max_length=8)
    assert scorer.max_length == 8 and scorer.manifest["max_length"] == 8
    assert [len(ids) for ids in scorer.encode(PROMPTS, RESPONSES)] == [8, 8]
    assert scorer.last_truncated == [True, True]
    with pytest.raises(TypeError, match="aggregation"):  # a PRM option means nothing to a BT scorer
        rewardmodels.load_scorer(tiny_scorer, device="cpu", aggregation="min")


def test_score_cli_normalizes_and_counts_truncation(tiny_scorer, tmp_path, capsys):
    src, out = tmp_path / "rows.jsonl", tmp_path / "scores.jsonl"
    write_jsonl(src, [{"prompt": p, "response": r} for p, r in zip(PROMPTS, RESPONSES, strict=True)])
    assert score_main([str(tiny_scorer), "--input", str(src), "--output", str(out), "--normalize"]) == 0
    scorer = rewardmodels.load_scorer(tiny_scorer)
    mean, std = scorer.manifest["reward_mean"], scorer.manifest["reward_std"]
    expected = [(s - mean) / std for s in scorer.score(PROMPTS, RESPONSES)]
    assert [r["score"] for r in read_rows(out)] == pytest.approx(expected, abs=1e-5)
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["truncated"] == 0
