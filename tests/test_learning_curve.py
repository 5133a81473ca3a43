"""`rewardmodels report curve`: the fit recovers known parameters; on a tiny BT run with every checkpoint
saved, the accuracies equal the exported scorers', compute follows the parameter count, scores are cached
per checkpoint, and the step-0 model is rebuilt exactly."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rewardmodels.eval.curve_fit import fit_curve, saturating_curve

TRUE = {"r0": 0.5, "a": 0.82, "c_mid": 3.0e15, "b": 1.3}


def test_the_fit_recovers_known_parameters():
    compute = np.logspace(13, 18, 11)
    values = saturating_curve(compute, TRUE["r0"], TRUE["a"], TRUE["c_mid"], TRUE["b"])
    # by hand at C = C_mid: R = R0 + (A - R0) / 2 = 0.5 + 0.32 / 2 = 0.66
    assert float(saturating_curve(3.0e15, **TRUE)) == pytest.approx(0.66)
    for r0 in (None, 0.5):  # R0 fitted, and fixed to the step-0 value
        fit = fit_curve(compute, values, r0=r0)
        assert fit.a == pytest.approx(TRUE["a"], abs=1e-3)
        assert fit.b == pytest.approx(TRUE["b"], abs=1e-3)
        assert fit.r0 == pytest.approx(TRUE["r0"], abs=1e-3)
        assert math.log(fit.c_mid) == pytest.approx(math.log(TRUE["c_mid"]), abs=1e-3)
        assert fit.converged and fit.dof == 11 - (4 if r0 is None else 3)


def test_the_fit_errors_match_the_spread_of_refits():
    # 60 noisy copies of the same curve: the standard deviation of the fitted A across them should be close to
    # the mean standard error the Jacobian gives (within 40%: 60 samples estimate a spread to about 10%)
    compute = np.logspace(13, 18, 12)
    clean = saturating_curve(compute, **TRUE)
    rng = np.random.default_rng(0)
    fits = [fit_curve(compute, clean + rng.normal(0, 0.01, compute.size), r0=0.5) for _ in range(60)]
    spread = np.std([f.a for f in fits])
    assert np.mean([f.a_err for f in fits]) == pytest.approx(spread, rel=0.4)
    # three points, three parameters: no degree of freedom left, so no error
    short = fit_curve(compute[[2, 6, 10]], clean[[2, 6, 10]], r0=0.5)
    assert short.dof == 0 and math.isnan(short.a_err)
    with pytest.raises(ValueError, match="at least 4 points"):
        fit_curve(compute[:3], clean[:3])


def train_tiny(tiny_llama, out, learning_rate="1e-2", steps="3"):
    from rewardmodels.bt.train import main as train_main

    train_main([
        "--model_name_or_path", str(tiny_llama), "--output_dir", str(out),
        "--train_data", "synthetic:n=40,seed=0|eval=6,name=a", "synthetic:n=40,seed=1|eval=6,name=b",
        "--max_steps", steps, "--save_steps", "1", "--per_device_train_batch_size", "4",
        "--max_length", "128", "--learning_rate", learning_rate, "--use_chat_template", "always",
    ])  # fmt: skip
    return out


@pytest.fixture(scope="module")
def tiny_run(tiny_llama, tmp_path_factory):
    return train_tiny(tiny_llama, tmp_path_factory.mktemp("curve") / "run")


def test_a_bt_run_keeps_what_the_curve_needs(tiny_run):
    held = [json.loads(line) for line in (tiny_run / "held_out.jsonl").read_text().splitlines()]
    assert [r["source"] for r in held] == ["a"] * 6 + ["b"] * 6
    tokens = [json.loads((tiny_run / f"checkpoint-{k}" / "trainer_state.json").read_text())["num_input_tokens_seen"]
              for k in (1, 2, 3)]  # fmt: skip
    assert 0 < tokens[0] < tokens[1] < tokens[2]
    assert json.loads((tiny_run / "rewardmodels_training.json").read_text())["seed"] == 42


def test_parameter_counts_match_the_trained_model(tiny_run, tiny_llama):
    from rewardmodels.eval.run_checkpoints import parameter_counts
    from rewardmodels.modeling import LoraSettings, load_backbone

    counts = parameter_counts(tiny_run / "checkpoint-1")
    # the other path: the model as training builds it, counting what requires a gradient
    model = load_backbone(str(tiny_llama), "seq_cls", num_labels=1, lora=LoraSettings(16, 32, 0.0, [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))  # fmt: skip
    embedding = model.get_input_embeddings().weight.numel()
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    # peft keeps the head's original beside its trained copy; the original is not computed with, so one copy
    head = model.base_model.model.score.modules_to_save["default"].weight.numel()
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad) - embedding - head
    assert (counts.trainable, counts.frozen, counts.embedding) == (trained, frozen, embedding)
    assert counts.flops_per_token == 4 * frozen + 6 * trained


def test_the_curve_scores_every_checkpoint_and_resumes_from_its_cache(tiny_run, tmp_path, monkeypatch):
    from rewardmodels import load_scorer
    from rewardmodels.eval import learning_curve, run_checkpoints
    from rewardmodels.export import export_scorer

    out = tmp_path / "curve"
    assert learning_curve.main([str(tiny_run), "--output-dir", str(out), "--no-progress"]) == 0
    result = json.loads((out / "curve.json").read_text())
    # checkpoint-3 is the final step as well: three points, not four
    assert [(p["name"], p["step"]) for p in result["points"]] == [
        ("checkpoint-1", 1),
        ("checkpoint-2", 2),
        ("checkpoint-3", 3),
    ]
    flops = result["parameters"]["flops_per_token"]
    for point in result["points"]:
        assert point["compute"] == point["tokens"] * flops
    # checkpoint-2's accuracies, the other way: exported, loaded as any scorer, its pairs scored
    scorer = load_scorer(export_scorer(tiny_run / "checkpoint-2", tmp_path / "scorer2"))
    held = [json.loads(line) for line in (tiny_run / "held_out.jsonl").read_text().splitlines()]
    right = {"a": [], "b": []}
    for row in held:
        chosen, rejected = scorer.score([row["prompt"]] * 2, [row["chosen"], row["rejected"]])
        right[row["source"]].append(chosen > rejected)
    point = result["points"][1]
    assert point["by_source"] == {k: sum(v) / len(v) for k, v in right.items()}
    assert point["accuracy"] == sum(right["a"] + right["b"]) / 12
    assert result["initial"] is not None and result["r0"] == "measured at step 0"
    assert (out / "curve.png").stat().st_size > 0

    # a second run loads no model at all: every score comes from the cache
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded although every score was cached")

    monkeypatch.setattr(run_checkpoints, "load_point_scorer", refuse)
    monkeypatch.setattr(learning_curve, "load_point_scorer", refuse)
    monkeypatch.setattr(learning_curve, "load_initial_scorer", refuse)
    assert learning_curve.main([str(tiny_run), "--output-dir", str(out), "--no-progress"]) == 0
    again = json.loads((out / "curve.json").read_text())
    assert again["points"] == result["points"] and again["initial"] == result["initial"]


def test_the_step_zero_model_is_rebuilt_exactly(tiny_llama, tmp_path):
    from rewardmodels.eval.run_checkpoints import load_initial_scorer, load_point_scorer

    # learning rate 0: checkpoint-1 still holds the model as training initialised it
    run = train_tiny(tiny_llama, tmp_path / "frozen", learning_rate="0.0", steps="1")
    prompts, responses = ["Compute 2 + 3."] * 2, ["2 + 3 = 5\nAnswer: 5", "2 + 3 = 6\nAnswer: 6"]
    initial = load_initial_scorer(run / "checkpoint-1").score(prompts, responses)
    trained = load_point_scorer(run / "checkpoint-1").score(prompts, responses)
    assert initial == pytest.approx(trained, abs=1e-5)
    assert initial[0] != pytest.approx(initial[1], abs=1e-6)  # a real head, not a constant


def test_curve_input_errors(tiny_run, tmp_path):
    from rewardmodels.cli import main as cli_main

    assert cli_main(["report", "curve", str(tmp_path / "missing")]) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "p", "chosen": "same", "rejected": "same"}) + "\n")
    assert (
        cli_main(
            ["report", "curve", str(tiny_run), "--dataset", str(bad), "--output-dir", str(tmp_path / "o")]
        )
        == 2
    )
    assert not (tmp_path / "o" / "scores").exists()  # refused before any scoring


def test_runs_without_token_counts_take_tokens_per_step(tiny_run, tmp_path, capsys):
    import shutil

    from rewardmodels.cli import main as cli_main

    run = tmp_path / "old-run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("curve"))
    for state in run.rglob("trainer_state.json"):  # a run from before tokens were counted
        data = json.loads(state.read_text())
        data.pop("num_input_tokens_seen", None)
        state.write_text(json.dumps(data))
    out = tmp_path / "curve"
    assert cli_main(["report", "curve", str(run), "--output-dir", str(out), "--r0", "fit"]) == 2
    assert "no token count recorded for checkpoint-1, checkpoint-2, checkpoint-3" in capsys.readouterr().err
    argv = ["report", "curve", str(run), "--output-dir", str(out), "--r0", "fit", "--tokens-per-step", "100"]
    assert cli_main([*argv, "--no-progress"]) == 0
    result = json.loads((out / "curve.json").read_text())
    assert [p["tokens"] for p in result["points"]] == [100, 200, 300]
    assert not any(p["tokens_recorded"] for p in result["points"])
    # R0 fitted leaves 4 parameters for 3 points: no fit, said so rather than a made-up curve
    assert result["r0"] == "fitted" and "at least 4 points" in result["fit"]["error"]
    assert "no fit: fitting 4 parameters needs at least 4 points" in capsys.readouterr().out
