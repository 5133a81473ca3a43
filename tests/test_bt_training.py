"""BT training end to end on tiny random Llama and Qwen2 models: parameters move, loss stays finite,
checkpoints resume exactly, non-finite losses stop the run, and exported scorers score like the trainer."""

import json
import math
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rewardmodels.bt.config import BTConfig
from rewardmodels.bt.train import build_trainer
from rewardmodels.bt.train import main as train_main
from rewardmodels.export import export_scorer
from rewardmodels.modeling import rewards_at
from rewardmodels.training.arguments import DataArguments, ModelArguments, parse_layered
from rewardmodels.training.trainer_base import NonFiniteLossError
from tests.trainer_checks import PoisonHeadAt, assert_resume_reproduces, trainable_snapshot


def parse(model_dir: Path, out_dir: Path, *extra: str):
    return parse_layered(
        (ModelArguments, DataArguments, BTConfig),
        [
            "--model_name_or_path",
            str(model_dir),
            "--train_data",
            "synthetic:n=48,seed=0",
            "--output_dir",
            str(out_dir),
            "--max_steps",
            "3",
            "--per_device_train_batch_size",
            "4",
            "--learning_rate",
            "1e-2",
            "--logging_steps",
            "1",
            "--save_strategy",
            "no",
            "--max_length",
            "128",
            *extra,
        ],
    )


@pytest.mark.parametrize("arch", ["tiny_llama", "tiny_qwen2"])
@pytest.mark.parametrize("use_lora", [True, False])
def test_every_trainable_parameter_changes(arch, use_lora, request, tmp_path):
    model_dir = request.getfixturevalue(arch)
    trainer = build_trainer(*parse(model_dir, tmp_path, "--use_lora", str(use_lora)))
    before = trainable_snapshot(trainer.model)
    if use_lora:
        names = set(before)
        assert any("lora_A" in n for n in names) and any("lora_B" in n for n in names)
        assert any("score" in n for n in names), "the reward head must be trained with the adapter"
        assert not any("embed_tokens" in n for n in names)
    trainer.train()
    after = trainable_snapshot(trainer.model)
    unchanged = [n for n in before if torch.equal(before[n], after[n])]
    assert not unchanged, f"parameters that did not change: {unchanged}"
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)


def test_cli_trains_logs_metrics_and_saves_head_with_adapter(tiny_llama, tmp_path):
    out = tmp_path / "run"
    rc = train_main(
        [
            "--model_name_or_path",
            str(tiny_llama),
            "--train_data",
            "synthetic:n=32,seed=0",
            "--eval_data",
            "synthetic:n=8,seed=1",
            "--output_dir",
            str(out),
            "--max_steps",
            "2",
            "--per_device_train_batch_size",
            "4",
            "--logging_steps",
            "1",
            "--save_steps",
            "1",
            "--max_length",
            "128",
        ]
    )
    assert rc == 0
    from safetensors.torch import load_file

    adapter = load_file(out / "adapter_model.safetensors")
    assert any("score" in k for k in adapter), "the trained head must be saved with the adapter"
    state = json.loads((out / "trainer_state.json").read_text())
    logged = {k for h in state["log_history"] for k in h}
    assert {"loss", "accuracy", "margin", "rewards/chosen", "rewards/rejected"} <= logged
    manifest = json.loads((out / "rewardmodels_training.json").read_text())
    assert manifest["kind"] == "bt" and manifest["final_eval"]["eval_accuracy"] >= 0
    assert math.isfinite(manifest["reward_mean"]) and manifest["reward_std"] > 0
    assert (out / "checkpoint-1").is_dir() and (out / "checkpoint-2").is_dir()


def test_resume_reproduces_an_uninterrupted_run(tiny_llama, tmp_path):
    extra = ("--max_steps", "6", "--save_strategy", "steps", "--save_steps", "3")
    assert_resume_reproduces(
        lambda out: build_trainer(*parse(tiny_llama, out, *extra)), tmp_path, cut=3, total=6
    )


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tiny_llama, tmp_path):
    trainer = build_trainer(
        *parse(tiny_llama, tmp_path, "--max_steps", "5", "--save_strategy", "steps", "--save_steps", "1")
    )
    trainer.add_callback(PoisonHeadAt(3))
    with pytest.raises(NonFiniteLossError, match=r"step 3.*checkpoint-2"):
        trainer.train()
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    from safetensors.torch import load_file

    weights = load_file(tmp_path / "checkpoint-2" / "adapter_model.safetensors")
    assert all(torch.isfinite(w).all() for w in weights.values())


@pytest.mark.parametrize("use_lora", [True, False])
def test_export_round_trip_plain_automodel_equals_load_scorer(tiny_qwen2, tmp_path, use_lora):
    import rewardmodels
    from rewardmodels.data_builders import synthetic

    trainer = build_trainer(
        *parse(tiny_qwen2, tmp_path / "run", "--use_lora", str(use_lora), "--use_chat_template", "always")
    )
    trainer.train()
    trainer.save_model(str(tmp_path / "run"))
    scorer_dir = export_scorer(tmp_path / "run", tmp_path / "scorer")
    manifest = json.loads((scorer_dir / "reward_model.json").read_text())
    assert manifest["kind"] == "bt" and manifest["use_chat_template"] is True
    assert list(scorer_dir.glob("*.safetensors")) and not list(scorer_dir.glob("*.bin"))

    rows = synthetic.preference_rows(6, seed=5)
    prompts, responses = [r["prompt"] for r in rows], [r["rejected"] for r in rows]
    ours = rewardmodels.load_scorer(scorer_dir).score(prompts, responses, batch_size=4)

    plain = AutoModelForSequenceClassification.from_pretrained(scorer_dir).eval()
    tok = AutoTokenizer.from_pretrained(scorer_dir)
    texts = [
        tok.apply_chat_template(
            [{"role": "user", "content": p}, {"role": "assistant", "content": r}], tokenize=False
        )
        for p, r in zip(prompts, responses, strict=True)
    ]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        reference = plain(**enc).logits.squeeze(-1).tolist()
    assert ours == pytest.approx(reference, abs=1e-5)

    # and the trained (unmerged) model gives the same rewards as the exported one
    from rewardmodels.collators import PaddedSequenceCollator

    batch = PaddedSequenceCollator(tok.pad_token_id)(
        [{"input_ids": ids} for ids in enc["input_ids"].tolist()]
    )
    batch["attention_mask"] = enc["attention_mask"]
    batch["reward_positions"] = torch.tensor(
        [i * enc["input_ids"].shape[1] + int(m.sum()) - 1 for i, m in enumerate(enc["attention_mask"])]
    )
    trainer.model.eval()
    with torch.no_grad():
        trained = rewards_at(trainer.model, batch).squeeze(-1).tolist()
    assert trained == pytest.approx(reference, abs=1e-5)


def _log1p_exp(x: float) -> float:
    """-log sigmoid(-x) = log(1 + e^x), written out so the expected losses do not reuse rewardmodels.losses."""
    return math.log1p(math.exp(x))


def test_tie_and_preference_pairs_in_one_batch_loss_and_metrics_by_hand(tiny_llama, tmp_path):
    rows = [
        {"prompt": "what is good", "chosen": "yes good", "rejected": "no bad", "margin": 0.25},
        {
            "prompt": "which is better",
            "chosen": "this one",
            "rejected": "that one",
            "tie": True,
            "margin": 9.0,
        },
        {"prompt": "say hello", "chosen": "hello there", "rejected": "go away", "tie": False},
        {"prompt": "say hi", "chosen": "hi", "rejected": "hey", "tie": True},
    ]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    weight = 0.5
    args = parse(
        tiny_llama,
        tmp_path / "out",
        "--train_data",
        str(data),
        "--tie_loss_weight",
        str(weight),
        "--use_lora",
        "false",
        "--max_steps",
        "2",
        "--per_device_train_batch_size",
        "4",
    )
    trainer = build_trainer(*args)
    batch = trainer.data_collator(list(trainer.train_dataset))
    assert batch["tie"].tolist() == [False, True, False, True]
    assert batch["margin"].tolist() == [0.25, 9.0, 0.0, 0.0]
    model = trainer.model
    model.train()
    with torch.no_grad():
        rewards = rewards_at(model, batch).squeeze(-1).tolist()
        loss = trainer.compute_loss(model, batch).item()
    chosen, rejected = rewards[:4], rewards[4:]
    diffs = [c - r for c, r in zip(chosen, rejected, strict=True)]
    preference = [_log1p_exp(-(diffs[0] - 0.25)), _log1p_exp(-diffs[2])]
    ties = [0.5 * (_log1p_exp(-d) + _log1p_exp(d)) for d in (diffs[1], diffs[3])]
    assert min(abs(d) for d in diffs) > 1e-4  # distinct rewards, so every term below is non-trivial
    assert loss == pytest.approx((sum(preference) + weight * sum(ties)) / 4, rel=1e-5)

    trainer.log({"loss": loss})
    logged = trainer.state.log_history[-1]
    assert logged["pairs/preference/loss"] == pytest.approx(sum(preference) / 2, rel=1e-5)
    assert logged["pairs/tie/loss"] == pytest.approx(sum(ties) / 2, rel=1e-5)  # unweighted
    assert logged["pairs/tie/abs_margin"] == pytest.approx((abs(diffs[1]) + abs(diffs[3])) / 2, rel=1e-5)
    hits = [float(diffs[0] > 0), float(diffs[2] > 0)]  # ties are not counted in accuracy
    assert logged["accuracy"] == pytest.approx(sum(hits) / 2)
    assert logged["pairs/preference/accuracy"] == pytest.approx(sum(hits) / 2)
    assert logged["margin"] == pytest.approx((diffs[0] + diffs[2]) / 2, rel=1e-5)
    assert logged["rewards/chosen"] == pytest.approx(sum(chosen) / 4, rel=1e-5)

    trainer.train()
    history = trainer.state.log_history
    assert all(math.isfinite(h["loss"]) for h in history if "loss" in h)
    assert any("pairs/tie/loss" in h and "pairs/preference/loss" in h for h in history[1:])


def test_preference_only_batches_log_no_tie_metrics(tiny_llama, tmp_path):
    trainer = build_trainer(*parse(tiny_llama, tmp_path, "--max_steps", "1"))
    trainer.train()
    logged = {k for h in trainer.state.log_history for k in h}
    assert {"pairs/preference/loss", "pairs/preference/accuracy"} <= logged
    assert not any(k.startswith("pairs/tie/") for k in logged)
