"""The scorer in the places users put it: the score CLI, TRL's GRPO reward-function signature, the HTTP server."""

import json
import threading
import urllib.error
import urllib.request

import pytest

import rewardmodels
from rewardmodels.io import read_rows, write_jsonl
from rewardmodels.score import main as score_main
from rewardmodels.serve import make_server

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
    write_jsonl(src, [{"prompt": p, "response": r, "id": i} for i, (p, r) in enumerate(zip(PROMPTS, RESPONSES, strict=True))])
    assert score_main([str(tiny_scorer), "--input", str(src), "--output", str(out), "--batch-size", "1"]) == 0
    rows = read_rows(out)
    expected = rewardmodels.load_scorer(tiny_scorer).score(PROMPTS, RESPONSES)
    assert [r["id"] for r in rows] == [0, 1]
    assert [r["score"] for r in rows] == pytest.approx(expected, abs=1e-5)


def test_score_cli_names_a_missing_field(tiny_scorer, tmp_path):
    src = tmp_path / "rows.jsonl"
    write_jsonl(src, [{"prompt": "p", "response": "r"}, {"prompt": "p", "answer": "r"}])
    with pytest.raises(SystemExit, match="row 1 has no field 'response'"):
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


def _post(url: str, body: dict):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_http_server_speaks_openrlhf_remote_rm(tiny_scorer):
    scorer = rewardmodels.load_scorer(tiny_scorer)
    server = make_server(scorer, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        # OpenRLHF sends whole formatted texts in "query"
        texts = [scorer.tokenizer.decode(ids) for ids in scorer.encode(PROMPTS, RESPONSES)]
        body = _post(f"{base}/get_reward", {"query": texts})
        assert body["rewards"] == pytest.approx(scorer.score(PROMPTS, RESPONSES), abs=1e-4)
        assert body["scores"] == body["rewards"]
        body = _post(f"{base}/get_reward", {"prompts": PROMPTS, "responses": RESPONSES})
        assert body["rewards"] == pytest.approx(scorer.score(PROMPTS, RESPONSES), abs=1e-5)
        with pytest.raises(urllib.error.HTTPError) as info:
            _post(f"{base}/get_reward", {"query": "not a list"})
        assert info.value.code == 400
    finally:
        server.shutdown()
        server.server_close()


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
