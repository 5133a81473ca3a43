"""Opt-in (RM_SMOKE=1): the PRM path end to end on SmolLM2-135M and ../shared/data, kept short for CPU:
PRM800K stepwise rows -> 2 training steps -> export -> ProcessBench on 10 GSM8K rows; and the MC labeller on
one MATH-500 problem, twice, the second run entirely from the cache."""

import json

import pytest

from tests.conftest import REPO, shared_data, smoke_enabled

pytestmark = pytest.mark.smoke


def test_prm800k_train_export_processbench(tmp_path):
    smoke_enabled()
    train = shared_data("prm800k_phase1_stepwise_train.parquet")
    bench = shared_data("processbench_gsm8k.json")
    from rewardmodels.cli import main as cli

    run, scorer = tmp_path / "run", tmp_path / "scorer"
    rc = cli([
        "train", "prm", "--config", str(REPO / "recipes/prm/smollm2_prm800k.yaml"), "--max_steps", "2",
        "--train_data", f"prm800k_stepwise:{train}?sample=64,seed=0", "--eval_data", f"prm800k_stepwise:{train}?sample=8,seed=1",
        "--max_length", "256", "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "1",
        "--output_dir", str(run), "--report_to", "none",
    ])  # fmt: skip
    assert rc == 0
    assert cli(["export", str(run), "-o", str(scorer)]) == 0
    # 5 erroneous and 5 correct rows, so that both accuracies (and F1) are defined
    rows = json.loads(bench.read_text())
    rows = [r for r in rows if r["label"] != -1][:5] + [r for r in rows if r["label"] == -1][:5]
    data = tmp_path / "processbench_gsm8k.json"
    data.write_text(json.dumps(rows))
    out = tmp_path / "pb"
    assert (
        cli(
            [
                "eval",
                "processbench",
                "--scorer",
                str(scorer),
                "--dataset",
                str(data),
                "--output-dir",
                str(out),
            ]
        )
        == 0
    )
    results = json.loads((out / "results.json").read_text())
    sub = results["subsets"]["gsm8k"]
    assert (sub["n"], sub["n_erroneous"], sub["n_correct"]) == (10, 5, 5) and results["average"][
        "f1"
    ] is not None


def test_mc_labeller_reuses_its_cache(tmp_path, capsys):
    smoke_enabled()
    problems = shared_data("math500.jsonl")
    from rewardmodels.data_builders.mc_labeller import main as label

    args = ["--problems", str(problems), "--limit", "1", "--rollouts", "2", "--max-new-tokens", "32", "--max-steps", "3",
            "--cache", str(tmp_path / "c.sqlite")]  # fmt: skip
    assert label([*args, "--output", str(tmp_path / "a.jsonl")]) == 0
    capsys.readouterr()
    assert label([*args, "--output", str(tmp_path / "b.jsonl")]) == 0
    assert "samples: 0 generated" in capsys.readouterr().out
    assert (tmp_path / "a.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()
