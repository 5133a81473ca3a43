"""Export reads the head from the training manifest: a causal-LM run (full or LoRA) becomes plain
`AutoModelForCausalLM` files that give the trained model's logits; manifests record the head they trained."""

import json

import pytest
import torch

from rewardmodels.export import export_scorer, manifest_head
from rewardmodels.modeling import HEAD_MODEL_CLASSES, LoraSettings, load_backbone, load_tokenizer
from rewardmodels.training.trainer_base import TRAINING_MANIFEST

IDS = torch.tensor([[5, 17, 42, 99, 3, 250], [7, 8, 9, 10, 11, 12]])


def write_training_dir(run, model, tokenizer, base_model: str) -> None:
    """A training output as the trainer leaves it: weights (or adapter), tokenizer, training manifest."""
    model.save_pretrained(run, safe_serialization=True)
    tokenizer.save_pretrained(run)
    manifest = {
        "kind": "dpo",
        "head": "causal_lm",
        "model_class": HEAD_MODEL_CLASSES["causal_lm"],
        "base_model": base_model,
        "max_length": 64,
        "train_data": [],
    }
    (run / TRAINING_MANIFEST).write_text(json.dumps(manifest))


@pytest.mark.parametrize("use_lora", [False, True])
def test_causal_lm_export_round_trip(tiny_llama, tmp_path, use_lora):
    from transformers import AutoModelForCausalLM

    tok = load_tokenizer(str(tiny_llama))
    lora = LoraSettings(r=4, alpha=8) if use_lora else None
    model = load_backbone(str(tiny_llama), "causal_lm", device="cpu", lora=lora).eval()
    torch.manual_seed(1)
    with torch.no_grad():  # stand-in for training: move every weight the run would train
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
        trained = model(input_ids=IDS).logits
        base = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()(input_ids=IDS).logits
    assert not torch.allclose(trained, base, atol=1e-3)  # the export below has something to carry
    run = tmp_path / "run"
    write_training_dir(run, model, tok, str(tiny_llama))

    out = export_scorer(run, tmp_path / "scorer")
    assert not (out / "adapter_config.json").exists() and list(out.glob("*.safetensors"))
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    exported = AutoModelForCausalLM.from_pretrained(out).eval()
    with torch.no_grad():
        torch.testing.assert_close(exported(input_ids=IDS).logits, trained, rtol=1e-5, atol=1e-5)
    manifest = json.loads((out / "reward_model.json").read_text())
    assert manifest["head"] == "causal_lm" and manifest["model_class"] == "AutoModelForCausalLM"


def test_manifest_without_a_head_exports_sequence_classification():
    assert manifest_head({"kind": "bt"}) == "seq_cls"
    assert manifest_head({"kind": "dpo", "head": "causal_lm"}) == "causal_lm"


def test_bt_manifest_records_its_head(tiny_scorer):
    manifest = json.loads((tiny_scorer / "reward_model.json").read_text())
    assert manifest["head"] == "seq_cls" and manifest["model_class"] == "AutoModelForSequenceClassification"
    config = json.loads((tiny_scorer / "config.json").read_text())
    assert config["architectures"] == ["LlamaForSequenceClassification"]
