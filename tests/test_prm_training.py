"""PRM training on tiny random models: losses against hand values, parameters move, resume is exact, NaN stops
the run, and an exported scorer gives the training model's step probabilities (special-token separator under
LoRA, string separator with full fine-tuning)."""

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import rewardmodels
from rewardmodels.collators import PaddedStepCollator
from rewardmodels.data_builders import synthetic
from rewardmodels.errors import InputError
from rewardmodels.export import export_scorer
from rewardmodels.modeling import rewards_at
from rewardmodels.prm import train as prm_train
from rewardmodels.prm import trainer as prm_trainer
from rewardmodels.prm.config import PRMConfig
from rewardmodels.prm.train import build_trainer, check_hard_labels
from rewardmodels.prm.trainer import PRMTrainer
from rewardmodels.steps import aggregate, step_probabilities
from rewardmodels.tokenization import separator_ids, tokenize_steps
from rewardmodels.training.arguments import DataArguments, ModelArguments, parse_layered
from rewardmodels.training.run import train_and_save
from rewardmodels.training.trainer_base import NonFiniteLossError
from tests.trainer_checks import PoisonHeadAt, assert_resume_reproduces, trainable_snapshot

LN3 = math.log(3.0)


def parse(model_dir: Path, out_dir: Path, *extra: str):
    return parse_layered(
        (ModelArguments, DataArguments, PRMConfig),
        [
            "--model_name_or_path", str(model_dir),
            "--train_data", "synthetic:n=32,seed=0",
            "--output_dir", str(out_dir),
            "--max_steps", "2",
            "--per_device_train_batch_size", "4",
            "--learning_rate", "1e-2",
            "--logging_steps", "1",
            "--save_strategy", "no",
            "--max_length", "128",
            "--lora_r", "4",
            "--report_to", "none",
            *extra,
        ],
    )  # fmt: skip


# ---- losses and metrics against hand values -------------------------------------------------------------------


def run_compute_loss(monkeypatch, loss_type, logits, labels, sequence):
    monkeypatch.setattr(prm_trainer, "rewards_at", lambda model, inputs: logits)
    recorded = {}
    stub = SimpleNamespace(args=SimpleNamespace(loss_type=loss_type), record_totals=recorded.update)
    inputs = {"step_labels": torch.tensor(labels), "step_sequence": torch.tensor(sequence)}
    loss = PRMTrainer.compute_loss(stub, None, inputs)
    return loss.item(), {k: total.item() / count.item() for k, (total, count) in recorded.items() if count}


def test_hard_labels_two_way_cross_entropy(monkeypatch):
    logits = torch.tensor([[0.0, 0.0], [0.0, LN3], [LN3, 0.0]])
    loss, m = run_compute_loss(monkeypatch, "ce", logits, [1.0, 0.0, 1.0], [0, 1, 1])
    # -log 0.5, -log 0.25, -log 0.25
    assert loss == pytest.approx((math.log(2) + 2 * math.log(4)) / 3, abs=1e-6)
    # P(correct) = 0.5, 0.75, 0.25 against labels 1, 0, 1: only the first is right
    assert m["step_accuracy"] == pytest.approx(1 / 3)
    # solution 0: no error predicted, none labelled; solution 1: predicted at step 1, labelled at step 0
    assert m["first_error_accuracy"] == pytest.approx(0.5)
    assert m["first_error/acc_correct"] == 1.0 and m["first_error/acc_error"] == 0.0


def test_hard_labels_binary_cross_entropy(monkeypatch):
    loss, _ = run_compute_loss(monkeypatch, "bce", torch.tensor([[0.0], [LN3]]), [1.0, 0.0], [0, 0])
    assert loss == pytest.approx((math.log(2) + math.log(4)) / 2, abs=1e-6)


def test_soft_labels_binary_cross_entropy(monkeypatch):
    loss, m = run_compute_loss(
        monkeypatch, "bce", torch.tensor([[0.0], [LN3], [-LN3]]), [0.5, 1.0, 0.25], [0, 0, 0]
    )
    row2 = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert loss == pytest.approx((math.log(2) + -math.log(0.75) + row2) / 3, abs=1e-6)
    assert m["step_abs_error"] == pytest.approx(0.25 / 3, abs=1e-6)
    assert m["step_accuracy"] == pytest.approx(1.0)


def test_step_probabilities_and_aggregation():
    assert step_probabilities(torch.tensor([[0.0, LN3]])).tolist() == pytest.approx([0.75])
    assert step_probabilities(torch.tensor([[LN3]])).tolist() == pytest.approx([0.75])
    probs = [0.9, 0.5, float("nan"), 0.8]
    assert aggregate(probs, "min") == 0.5
    assert aggregate(probs, "prod") == pytest.approx(0.36)
    assert aggregate(probs, "last") == 0.8
    assert aggregate(probs, "mean") == pytest.approx(2.2 / 3)
    assert math.isnan(aggregate([float("nan")], "min"))


def test_config_choices(tmp_path):
    _, _, args = parse(Path("m"), tmp_path, "--label_mode", "soft")
    assert args.loss_type == "bce" and args.num_labels == 1
    _, _, args = parse(Path("m"), tmp_path, "--step_separator", "\\n\\n")
    assert args.step_separator == "\n\n" and args.loss_type == "ce" and args.num_labels == 2
    with pytest.raises(ValueError, match="soft labels need --loss_type bce"):
        parse(Path("m"), tmp_path, "--label_mode", "soft", "--loss_type", "ce")
    with pytest.raises(ValueError, match="aggregation"):
        parse(Path("m"), tmp_path, "--aggregation", "max")


def test_hard_label_check_names_row_and_field():
    check_hard_labels([{"labels": [True, 1, 0.0, None]}], "training")
    with pytest.raises(ValueError, match=r"training row 1, field 'labels\[1\]'.*--label_mode soft"):
        check_hard_labels([{"labels": [True]}, {"labels": [1, 0.5]}], "training")


# ---- training -------------------------------------------------------------------------------------------------

SPECIAL = ("--separator_token", "--step_separator", "<|step|>")
STRING_SOFT = ("--use_lora", "false", "--step_separator", "\\n", "--label_mode", "soft")


def soft_rows(path: Path) -> str:
    """Synthetic stepwise rows with fractional labels, as an MC labeller would write them."""
    rows = synthetic.stepwise_rows(32, seed=0)
    for r in rows:
        r["labels"] = [0.8 if x else 0.2 for x in r["labels"]]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.mark.parametrize("setup", ["special_token_lora", "string_full_soft"])
def test_training_changes_every_trainable_parameter(tiny_llama, tmp_path, setup):
    if setup == "special_token_lora":
        trainer = build_trainer(*parse(tiny_llama, tmp_path, *SPECIAL))
    else:
        trainer = build_trainer(
            *parse(tiny_llama, tmp_path, *STRING_SOFT, "--train_data", soft_rows(tmp_path / "s.jsonl"))
        )
    before = trainable_snapshot(trainer.model)
    if setup == "special_token_lora":
        assert any("trainable_tokens_delta" in n for n in before), "the added separator row must be trainable"
        assert any("score" in n for n in before) and any("lora_A" in n for n in before)
        assert not any("embed_tokens.weight" in n for n in before)
    trainer.train()
    after = trainable_snapshot(trainer.model)
    unchanged = [n for n in before if torch.equal(before[n], after[n])]
    assert not unchanged, f"parameters that did not change: {unchanged}"
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_and_padded_batches_train_the_same_model(tiny_llama, tmp_path, attn):
    runs = {}
    for packing in ("packed", "none"):
        extra = ("--packing", packing, "--attn_implementation", attn, "--eval_data", "synthetic:n=8,seed=1")
        trainer = build_trainer(*parse(tiny_llama, tmp_path / packing, *SPECIAL, *extra))
        assert isinstance(trainer.data_collator, PaddedStepCollator) == (packing == "none")
        trainer.train()
        metrics = trainer.evaluate()
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
        runs[packing] = losses, metrics, trainable_snapshot(trainer.model)
    (l_packed, m_packed, p_packed), (l_padded, m_padded, p_padded) = runs["packed"], runs["none"]
    assert len(l_packed) == 2 and l_packed == pytest.approx(l_padded, rel=1e-5, abs=1e-6)
    assert m_packed["eval_loss"] == pytest.approx(m_padded["eval_loss"], rel=1e-5, abs=1e-6)
    assert m_packed["eval_step_accuracy"] == m_padded["eval_step_accuracy"]
    for name, value in p_packed.items():
        torch.testing.assert_close(value, p_padded[name], rtol=1e-4, atol=1e-5, msg=name)


def test_held_out_step_metrics_are_pooled_over_uneven_batches(tiny_llama, tmp_path):
    """Five held-out solutions in batches of 4 and 1 give the same step and first-error metrics as one batch
    of 5: each is a pooled count over steps or solutions, not a mean of batch means (which would weigh the
    last solution as much as the other four together)."""
    extra = ("--packing", "none", "--eval_data", "synthetic:n=5,seed=3", "--max_steps", "1")
    trainer = build_trainer(*parse(tiny_llama, tmp_path, *SPECIAL, *extra))
    trainer.train()
    metrics = {}
    for batch in (4, 5):
        trainer.args.per_device_eval_batch_size = batch
        metrics[batch] = trainer.evaluate()
    names = ["eval_step_accuracy", "eval_step_abs_error", "eval_first_error_accuracy", "eval_first_error_f1"]
    for name in names:
        assert metrics[4][name] == pytest.approx(metrics[5][name], abs=1e-6), name
    errors, correct = metrics[5]["eval_first_error/acc_error"], metrics[5]["eval_first_error/acc_correct"]
    expected_f1 = 0.0 if errors + correct == 0 else 2 * errors * correct / (errors + correct)
    assert metrics[5]["eval_first_error_f1"] == pytest.approx(expected_f1)
    # The old mean of the two batch means differs here, so this test tells the two rules apart.
    trainer.args.per_device_eval_batch_size = 4
    parts = [trainer.evaluate(eval_dataset=trainer.eval_dataset[i:j]) for i, j in ((0, 4), (4, 5))]
    mean_of_means = sum(p["eval_step_abs_error"] for p in parts) / 2
    assert mean_of_means != pytest.approx(metrics[5]["eval_step_abs_error"], abs=1e-4)


def test_packing_token_budget_below_max_length_is_refused(tiny_llama, tmp_path):
    with pytest.raises(ValueError, match="packing_token_budget"):
        build_trainer(*parse(tiny_llama, tmp_path, "--packing_token_budget", "64"))


@pytest.fixture(scope="module", params=["special_token_lora", "string_full_soft"])
def exported(request, tiny_llama, tmp_path_factory):
    """A PRM trained through the CLI entry point, its trainer-side model, and its exported scorer directory."""
    tmp = tmp_path_factory.mktemp(request.param)
    extra = (
        SPECIAL
        if request.param == "special_token_lora"
        else (*STRING_SOFT, "--train_data", soft_rows(tmp / "s.jsonl"))
    )
    argv = [
        "--model_name_or_path", str(tiny_llama), "--output_dir", str(tmp / "run"), "--max_steps", "2",
        "--per_device_train_batch_size", "4", "--learning_rate", "1e-2", "--logging_steps", "1",
        "--save_steps", "1", "--max_length", "128", "--lora_r", "4", "--report_to", "none",
        "--train_data", "synthetic:n=32,seed=0", "--eval_data", "synthetic:n=8,seed=1",
        "--eval_strategy", "steps", "--eval_steps", "1", "--aggregation", "prod", *extra,
    ]  # fmt: skip
    # What `rewardmodels train prm` runs (prm.train.main), keeping the trainer to compare against.
    model_args, data_args, args = parse_layered((ModelArguments, DataArguments, PRMConfig), argv)
    trainer = build_trainer(model_args, data_args, args)
    train_and_save(trainer, args, finalize=prm_train._final_eval)
    scorer_dir = export_scorer(tmp / "run", tmp / "scorer")
    return request.param, tmp / "run", scorer_dir, trainer


def test_cli_run_logs_metrics_and_writes_the_manifest(exported):
    setup, run, _, _ = exported
    state = json.loads((run / "trainer_state.json").read_text())
    logged = {k for h in state["log_history"] for k in h}
    assert {"loss", "step_accuracy", "first_error_accuracy", "eval_loss", "eval_step_accuracy"} <= logged
    manifest = json.loads((run / "rewardmodels_training.json").read_text())
    assert manifest["kind"] == "prm" and manifest["aggregation"] == "prod"
    assert math.isfinite(manifest["final_eval"]["eval_loss"])
    # the evaluation transformers runs at the last step is reused, not repeated
    evals = [h for h in state["log_history"] if "eval_loss" in h]
    assert [h["step"] for h in evals] == [1, 2]
    assert manifest["final_eval"]["eval_loss"] == evals[-1]["eval_loss"]
    if setup == "special_token_lora":
        assert manifest["step_separator"] == "<|step|>" and manifest["separator_token_added"]
        assert manifest["num_labels"] == 2 and len(manifest["separator_ids"]) == 1
        assert manifest["response_step_split"] == "\n\n"
    else:
        assert (
            manifest["step_separator"] == "\n"
            and manifest["num_labels"] == 1
            and manifest["label_mode"] == "soft"
        )
    assert (run / "checkpoint-1").is_dir() and (run / "checkpoint-2").is_dir()


def test_exported_scorer_matches_the_training_model(exported):
    setup, run, scorer_dir, trainer = exported
    rows = synthetic.stepwise_rows(5, seed=7)
    prompts, steps = [r["prompt"] for r in rows], [r["completions"] for r in rows]
    scorer = rewardmodels.load_scorer(scorer_dir, device="cpu")
    got = scorer.score_steps(prompts, steps, batch_size=2)
    assert [len(g) for g in got] == [len(s) for s in steps]

    # The model in memory at the end of training (LoRA unmerged, separator row in the adapter), same features.
    tok, model = trainer.processing_class, trainer.model.eval()
    manifest = json.loads((run / "rewardmodels_training.json").read_text())
    sep = separator_ids(tok, manifest["step_separator"])
    assert sep == manifest["separator_ids"]
    feats = [
        tokenize_steps(tok, p, s, None, sep, False, 128).as_features()
        for p, s in zip(prompts, steps, strict=True)
    ]
    with torch.no_grad():
        expected = step_probabilities(rewards_at(model, PaddedStepCollator(tok.pad_token_id)(feats))).tolist()
    flat = [x for g in got for x in g]
    assert flat == pytest.approx(expected, abs=1e-5)
    # score() splits a whole response on the manifest's split and aggregates with its rule (prod here)
    split = manifest["response_step_split"]
    scores = scorer.score(prompts, [split.join(s) for s in steps])
    assert scores == pytest.approx([math.prod(g) for g in got], abs=1e-5)


def test_reward_server_scores_prompts_and_refuses_formatted_queries(exported):
    from rewardmodels.serve import score_request

    scorer = rewardmodels.load_scorer(exported[2], device="cpu")
    prompts, responses = ["Compute 2 + 3."], ["2 + 3 = 5\n\nThe answer is 5."]
    body = score_request(scorer, {"prompts": prompts, "responses": responses})
    assert body["rewards"] == scorer.score(prompts, responses)
    with pytest.raises(ValueError, match="cannot score pre-formatted 'query'"):
        score_request(scorer, {"query": ["Compute 2 + 3. 2 + 3 = 5"]})


def test_exported_prm_records_its_head_and_says_what_it_can_do(exported, tmp_path):
    from rewardmodels.score import main as score_main
    from rewardmodels.scorers.capabilities import (
        NormalizesScores,
        ScoresGroups,
        ScoresSteps,
        ScoresTexts,
        ScoresTokenIds,
    )

    _, run, scorer_dir, trainer = exported
    manifest = json.loads((scorer_dir / "reward_model.json").read_text())
    assert manifest["head"] == "token_cls" and manifest["model_class"] == "AutoModelForSequenceClassification"
    config = json.loads((scorer_dir / "config.json").read_text())
    assert config["architectures"] == ["LlamaForSequenceClassification"]
    if manifest["lora"]:  # the adapter was trained with the token-classification task type
        assert json.loads((run / "adapter_config.json").read_text())["task_type"] == "TOKEN_CLS"
    scorer = rewardmodels.load_scorer(scorer_dir, device="cpu", aggregation="last", max_length=64)
    assert isinstance(scorer, ScoresTexts) and isinstance(scorer, ScoresSteps)
    assert not isinstance(scorer, ScoresTokenIds) and not isinstance(scorer, ScoresGroups)
    assert not isinstance(scorer, NormalizesScores)
    assert scorer.aggregation == "last" and scorer.max_length == 64
    src = tmp_path / "rows.jsonl"
    src.write_text(json.dumps({"prompt": "Compute 2 + 3.", "response": "2 + 3 = 5"}) + "\n")
    with pytest.raises(InputError, match="--normalize: this prm scorer has no reward statistics"):
        score_main(
            [str(scorer_dir), "--input", str(src), "--output", str(tmp_path / "o.jsonl"), "--normalize"]
        )


def test_processbench_cli_on_an_exported_scorer(exported, tmp_path):
    from rewardmodels.eval.processbench import main as pb_main

    rows = synthetic.stepwise_rows(12, seed=11)
    data = [
        {"id": f"s-{i}", "generator": "synthetic", "problem": r["prompt"], "steps": r["completions"],
         "final_answer_correct": r["first_error"] == -1, "label": r["first_error"]}
        for i, r in enumerate(rows)
    ]  # fmt: skip
    path = tmp_path / "processbench_synth.json"
    path.write_text(json.dumps(data))
    out = tmp_path / "pb"
    assert (
        pb_main(
            ["--scorer", str(exported[2]), "--dataset", str(path), "--output-dir", str(out), "--limit", "10"]
        )
        == 0
    )
    results = json.loads((out / "results.json").read_text())
    sub = results["subsets"]["synth"]
    assert sub["n"] == 10 and sub["n_erroneous"] + sub["n_correct"] == 10
    preds = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 10 and all(
        len(p["step_scores"]) == len(data[int(p["id"][2:])]["steps"]) for p in preds
    )
    # the reported accuracies follow from the written predictions
    err = [p["prediction"] == p["label"] for p in preds if p["label"] != -1]
    assert sub["acc_erroneous"] == pytest.approx(sum(err) / len(err))
    assert "| synth |" in (out / "results.md").read_text()


def test_best_of_n_cli_on_an_exported_scorer(exported, tmp_path):
    from rewardmodels.eval.best_of_n import main as bon_main

    rows = [
        {"id": "q1", "problem": "Compute 2 + 3.", "answer": "5", "candidates": ["2 + 3 = 5\n\\boxed{5}", "2 + 3 = 6\n\\boxed{6}"]},
        {"id": "q2", "problem": "Compute 4 - 1.", "answer": "3", "candidates": ["4 - 1 = 2\n\\boxed{2}", "4 - 1 = 3\n\\boxed{3}"]},
    ]  # fmt: skip
    path = tmp_path / "cands.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "bon"
    assert bon_main(["--scorer", str(exported[2]), "--candidates", str(path), "--output-dir", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    per = [json.loads(x) for x in (out / "per_problem.jsonl").read_text().splitlines()]
    # one right and one wrong candidate per problem: the oracle and random choice follow from that alone
    assert results["pass_at_n"] == 1.0 and results["random"] == 0.5 and results["weights"] == "raw"
    # top-1 follows from the scorer's own scores, written per problem
    right = [p["correct"][max(range(2), key=lambda i: (p["scores"][i], -i))] for p in per]
    assert results["top1"] == sum(right) / 2


# ---- checkpoints: resume and the non-finite-loss guard -----------------------------------------------------------


def test_resume_reproduces_an_uninterrupted_run(tiny_llama, tmp_path):
    extra = (*SPECIAL, "--max_steps", "4", "--save_strategy", "steps", "--save_steps", "2")
    assert_resume_reproduces(
        lambda out: build_trainer(*parse(tiny_llama, out, *extra)), tmp_path, cut=2, total=4
    )


def test_nan_loss_stops_before_the_optimizer_step(tiny_llama, tmp_path):
    trainer = build_trainer(
        *parse(tiny_llama, tmp_path, "--max_steps", "3", "--save_strategy", "steps", "--save_steps", "1")
    )
    trainer.add_callback(PoisonHeadAt(2))
    with pytest.raises(NonFiniteLossError, match=r"step 2.*checkpoint-1"):
        trainer.train()
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-1"]


def test_last_step_only_trains_on_final_steps_and_evaluates_every_step(tiny_llama, tmp_path):
    trainer = build_trainer(
        *parse(tiny_llama, tmp_path, "--train_on_last_step_only", "--eval_data", "synthetic:n=4,seed=1")
    )
    assert all(len(f["step_positions"]) == 1 for f in trainer.train_dataset)
    rows = synthetic.stepwise_rows(4, seed=1)
    assert [len(f["step_positions"]) for f in trainer.eval_dataset] == [len(r["completions"]) for r in rows]
    expected_last = [float(r["labels"][-1]) for r in synthetic.stepwise_rows(32, seed=0)]
    assert [f["step_labels"][0] for f in trainer.train_dataset] == expected_last


@pytest.mark.parametrize(
    "argv",
    [["train", "prm", "--help"], ["eval", "processbench", "--help"], ["eval", "best-of-n", "--help"]],
)
def test_cli_routes_the_prm_commands(argv, capsys):
    from rewardmodels.cli import main as cli_main

    with pytest.raises(SystemExit) as e:
        cli_main(argv)
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage: rewardmodels " + " ".join(argv[:2]) in out
