"""The implicit scorer through the evaluators' command lines (ProcessBench, best-of-N, RewardBench), with no
kind-specific code in them; `--scorer-option`; ProcessBench's threshold chosen on other subsets, and stored in
the scorer's manifest for later runs."""

from __future__ import annotations

import json

import pytest

from rewardmodels.cli_common import scorer_options
from rewardmodels.errors import InputError
from rewardmodels.eval import processbench as pb
from rewardmodels.eval.processbench_metrics import threshold_from_other_subsets, threshold_provenance
from tests.test_implicit_prm import write_scorer_dir
from tests.tiny import save_tiny_model


@pytest.fixture(scope="module")
def implicit_scorer(tiny_llama, tmp_path_factory):
    from rewardmodels.causal.fingerprints import model_fingerprint

    root = tmp_path_factory.mktemp("implicit-scorer")
    reference = save_tiny_model(root / "ref", "llama", seed=1)
    return write_scorer_dir(root, tiny_llama, str(reference), model_fingerprint(str(reference)))


def test_scorer_options_parse_json_or_text():
    assert scorer_options(["aggregation=min", "max_length=64", "flag=true", "x=null"]) == {
        "aggregation": "min", "max_length": 64, "flag": True, "x": None,
    }  # fmt: skip
    assert scorer_options(None) == {} and scorer_options(["sep=a=b"]) == {"sep": "a=b"}
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        scorer_options(["aggregation"])


def example(subset, i, label, scores):
    return {"subset": subset, "id": str(i), "label": label, "step_scores": scores}


def test_threshold_from_other_subsets_by_hand():
    examples = [
        # alpha: the best threshold on alpha alone is in (0.3, 0.6]
        example("alpha", 0, 1, [0.9, 0.3]),
        example("alpha", 1, -1, [0.8, 0.6]),
        # beta: errors fall below 0.2 only; a threshold from alpha (0.45) flags beta's correct solution
        example("beta", 0, 0, [0.1, 0.9]),
        example("beta", 1, -1, [0.4, 0.9]),
    ]
    other = threshold_from_other_subsets(examples, "beta")
    assert other["chosen_on"] == ["alpha"] and 0.3 < other["threshold"] <= 0.6
    # beta under alpha's threshold: the error at step 0 is found (0.1), the correct one is flagged (0.4)
    assert other["acc_erroneous"] == 1.0 and other["acc_correct"] == 0.0 and other["f1"] == 0.0
    assert threshold_from_other_subsets(examples[:2], "alpha") is None
    provenance = threshold_provenance(examples, ["alpha", "beta"], "beta")
    assert provenance["threshold_from"]["beta"].startswith("in-sample")
    assert provenance["threshold_from"]["alpha"].startswith("out-of-sample")
    # evaluate() puts it next to the in-sample figure: beta's own tuned F1 is 1.0, from alpha's 0.0
    results = pb.evaluate([dict(e) for e in examples], tune_on="beta")
    assert results["subsets"]["beta"]["f1"] == 1.0
    assert results["tuning_subset_with_threshold_from_other_subsets"]["f1"] == 0.0
    alone = pb.evaluate([dict(e) for e in examples[:2]], tune_on="alpha")
    assert alone["tuning_subset_with_threshold_from_other_subsets"].startswith("none: no subset besides")
    assert "in-sample only" in pb.markdown_report(alone, "x")


def processbench_rows(n: int, offset: int = 0) -> list[dict]:
    steps = ["3 + 4 = 7", "7 - 2 = 5", "Answer: 5"]
    return [
        {
            "id": f"p{offset + i}",
            "problem": f"Compute 3 + 4 - 2 ({offset + i}).",
            "steps": steps[: 2 + i % 2],
            "label": -1 if i % 2 else 1,
        }  # fmt: skip
        for i in range(n)
    ]


def test_processbench_cli_takes_the_implicit_scorer_and_its_options(implicit_scorer, tmp_path, capsys):
    from rewardmodels.eval.processbench_cli import main

    for name, offset in (("half_a", 0), ("half_b", 10)):
        (tmp_path / f"{name}.json").write_text(json.dumps(processbench_rows(4, offset)))
    argv = ["--scorer", str(implicit_scorer), "--dataset", str(tmp_path / "half_a.json"),
            str(tmp_path / "half_b.json"), "--device", "cpu", "--tune-threshold-on", "half_a"]  # fmt: skip
    reward = ["--scorer-option", "step_scores=reward"]
    assert main([*argv, "--output-dir", str(tmp_path / "rewards"), *reward]) == 0
    assert main([*argv, "--output-dir", str(tmp_path / "q")]) == 0  # sigmoid(q_k): the default reading
    rewards = [json.loads(x) for x in (tmp_path / "rewards" / "predictions.jsonl").read_text().splitlines()]
    values = [json.loads(x) for x in (tmp_path / "q" / "predictions.jsonl").read_text().splitlines()]
    assert any(s < 0 for r in rewards for s in r["step_scores"])  # step rewards are signed log-ratios
    assert all(0 < s < 1 for r in values for s in r["step_scores"])  # sigmoid(q) are probabilities
    results = json.loads((tmp_path / "q" / "results.json").read_text())
    assert results["threshold_from"] == {
        "half_a": "in-sample (threshold tuned on it)", "half_b": "out-of-sample (threshold tuned on half_a)",
    }  # fmt: skip
    assert results["tuning_subset_with_threshold_from_other_subsets"]["chosen_on"] == ["half_b"]
    assert (
        "chosen on the other subsets (half_b), out-of-sample" in (tmp_path / "q" / "results.md").read_text()
    )
    # the options are part of the journal's settings: the same output dir with other options is refused
    with pytest.raises(ValueError, match="overwrite"):
        main([*argv, "--output-dir", str(tmp_path / "q"), *reward])


def test_best_of_n_and_rewardbench_take_the_implicit_scorer(implicit_scorer, tmp_path):
    from rewardmodels.eval.best_of_n import main as bon_main
    from rewardmodels.eval.rewardbench import main as rb_main
    from rewardmodels.scorers import load_scorer

    candidates = tmp_path / "candidates.jsonl"
    rows = [{"id": "q1", "problem": "What is 2 + 3?", "answer": "5",
             "candidates": ["2 + 3 = 5\nSo \\boxed{5}", "2 + 3 = 6\nSo \\boxed{6}"]}]  # fmt: skip
    candidates.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for aggregation in ("min", "last"):
        out = tmp_path / f"bon-{aggregation}"
        argv = ["--scorer", str(implicit_scorer), "--candidates", str(candidates), "--device", "cpu",
                "--output-dir", str(out), "--scorer-option", f"aggregation={aggregation}"]  # fmt: skip
        assert bon_main(argv) == 0
        [scored] = [json.loads(x) for x in (out / "per_problem.jsonl").read_text().splitlines()]
        scorer = load_scorer(implicit_scorer, device="cpu", aggregation=aggregation)
        want = scorer.score([rows[0]["problem"]] * 2, rows[0]["candidates"])
        assert scored["scores"] == pytest.approx(want, abs=1e-6)
    data = tmp_path / "rb.jsonl"
    pairs = [{"prompt": "What is 2 + 3?", "chosen": "5", "rejected": "6", "subset": "math-prm", "id": 1},
             {"prompt": "Say hi.", "chosen": "Hi!", "rejected": "No.", "subset": "alpacaeval-easy", "id": 2}]  # fmt: skip
    data.write_text("".join(json.dumps(r) + "\n" for r in pairs))
    out = tmp_path / "rb"
    argv = ["--scorer", str(implicit_scorer), "--dataset", str(data), "--output-dir", str(out), "--device", "cpu",
            "--no-progress"]  # fmt: skip
    assert rb_main(argv) == 0
    assert json.loads((out / "results.json").read_text())["num_prompts"] == 2
    scored = [json.loads(x) for x in (out / "examples.jsonl").read_text().splitlines()]
    scorer = load_scorer(implicit_scorer, device="cpu")  # the manifest's aggregation (min)
    want = scorer.score([pairs[0]["prompt"]] * 2, [pairs[0]["chosen"], pairs[0]["rejected"]])
    assert [scored[0]["score_chosen"], scored[0]["score_rejected"]] == pytest.approx(want, abs=1e-6)


def test_a_threshold_tuned_out_of_sample_is_stored_in_the_manifest_and_used_later(
    implicit_scorer, tmp_path, capsys
):
    import shutil

    from rewardmodels.eval.processbench_cli import main
    from rewardmodels.eval.processbench_metrics import predict_from_scores
    from rewardmodels.scorers import read_manifest

    scorer = tmp_path / "scorer"  # a copy: the stored threshold must not leak into the shared fixture
    shutil.copytree(implicit_scorer, scorer)
    before = read_manifest(scorer)
    for name, offset in (("half_a", 0), ("half_b", 10)):
        (tmp_path / f"{name}.json").write_text(json.dumps(processbench_rows(4, offset)))
    a, b = str(tmp_path / "half_a.json"), str(tmp_path / "half_b.json")
    common = ["--scorer", str(scorer), "--device", "cpu"]
    assert main([*common, "--dataset", a, b, "--tune-threshold-on", "half_a", "--store-threshold",
                 "--output-dir", str(tmp_path / "tune")]) == 0  # fmt: skip
    tuned = json.loads((tmp_path / "tune" / "results.json").read_text())
    manifest = read_manifest(scorer)
    record = manifest.pop("processbench_threshold")
    assert manifest == before  # nothing else in the manifest changed
    assert record == {
        "value": tuned["threshold"], "tuned_on": "half_a", "tuning_f1": tuned["tuning_f1"], "tuning_rows": 4,
        "step_scores": None, "scorer_options": {}, "max_length": None, "rule": record["rule"],
    }  # fmt: skip
    assert "stored threshold" in capsys.readouterr().out
    # a later run on the other half, with neither --threshold nor --tune-threshold-on, uses it
    assert main([*common, "--dataset", b, "--output-dir", str(tmp_path / "later")]) == 0
    later = json.loads((tmp_path / "later" / "results.json").read_text())
    assert later["threshold"] == record["value"]
    assert later["threshold_source"] == "scorer manifest (tuned on half_a)"
    assert later["threshold_from"] == {
        "half_b": "out-of-sample (threshold from the scorer manifest, tuned on half_a)"
    }
    assert later["stored_threshold"] == record
    assert "(scorer manifest (tuned on half_a))" in (tmp_path / "later" / "results.md").read_text()
    # the predictions are the first step below the stored t, as in the tuning run's half_b
    rows = [json.loads(x) for x in (tmp_path / "later" / "predictions.jsonl").read_text().splitlines()]
    assert [r["prediction"] for r in rows] == [
        predict_from_scores(r["step_scores"], record["value"]) for r in rows
    ]
    assert later["subsets"]["half_b"] == tuned["subsets"]["half_b"]
    # --threshold still wins; another step reading is refused rather than thresholded at a foreign t
    assert (
        main([*common, "--dataset", b, "--threshold", "0.25", "--output-dir", str(tmp_path / "fixed")]) == 0
    )
    fixed = json.loads((tmp_path / "fixed" / "results.json").read_text())
    assert (fixed["threshold"], fixed["threshold_source"]) == (
        0.25,
        "fixed",
    ) and "stored_threshold" not in fixed
    with pytest.raises(ValueError, match="tuned with scorer options"):
        main(
            [
                *common,
                "--dataset",
                b,
                "--scorer-option",
                "step_scores=reward",
                "--output-dir",
                str(tmp_path / "r"),
            ]
        )
    with pytest.raises(InputError, match="--store-threshold needs --scorer and --tune-threshold-on"):
        main([*common, "--dataset", b, "--store-threshold", "--output-dir", str(tmp_path / "s")])


def test_threshold_records_by_hand():
    from rewardmodels.eval import processbench_threshold as pt

    results = {"threshold": 0.4765, "tuned_on": "gsm8k_a", "tuning_f1": 0.278,
               "subsets": {"gsm8k_a": {"n": 200}, "gsm8k_b": {"n": 200}}}  # fmt: skip
    options = {"aggregation": "last", "step_scores": "sigmoid_q", "ref_free": True}
    record = pt.threshold_record(results, {"step_scores": "reward"}, options, 512)
    assert record["value"] == 0.4765 and record["tuning_rows"] == 200 and record["max_length"] == 512
    # the option wins over the manifest's reading; aggregation never changes step scores, so it is left out
    assert record["step_scores"] == "sigmoid_q"
    assert record["scorer_options"] == {"ref_free": True, "step_scores": "sigmoid_q"}
    assert pt.resolve_threshold(None, None, record, {"ref_free": True, "step_scores": "sigmoid_q",
                                                     "aggregation": "min"}) == (
        0.4765, "scorer manifest (tuned on gsm8k_a)", "gsm8k_a")  # fmt: skip
    assert pt.resolve_threshold(0.3, None, record, {}) == (0.3, "fixed", None)
    assert pt.resolve_threshold(None, "gsm8k_b", record, {}) == (0.5, "fixed", None)  # tuned later
    assert pt.resolve_threshold(None, None, None, {}) == (0.5, "fixed", None)
    with pytest.raises(ValueError, match="--threshold or --tune-threshold-on"):
        pt.resolve_threshold(None, None, record, {"step_scores": "sigmoid_q"})
    labels = pt.stored_provenance(record, ["gsm8k_a", "gsm8k_b"])["threshold_from"]
    assert labels["gsm8k_a"].startswith("in-sample") and labels["gsm8k_b"].startswith("out-of-sample")
    with pytest.raises(ValueError, match="only a threshold tuned"):
        pt.threshold_record({"threshold": 0.5, "subsets": {}}, {}, {}, None)
