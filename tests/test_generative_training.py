"""SFT of a generative verifier: the completion-only batch (checked on literal positions and targets), the
loss against a hand computation from the full logits (prompt tokens never count; padded and packed agree),
and a tiny end-to-end run that changes the weights, writes the manifest and exports a scorer directory that
plain AutoModelForCausalLM loads."""

from __future__ import annotations

import json

import pytest
import torch

from rewardmodels.causal.batches import CompletionCollator
from rewardmodels.generative.data import chain_features, chain_texts, encode_chain
from rewardmodels.generative.trainer import GenerativeSFTTrainer
from rewardmodels.verification import load_format

FMT = load_format()


def test_the_collator_targets_exactly_the_completion_tokens():
    features = [
        {"input_ids": [10, 11, 12, 13, 14], "completion_start": 3},
        {"input_ids": [20, 21, 22], "completion_start": 1},
    ]
    padded = CompletionCollator(pad_token_id=0, packing="none")(features)
    assert padded["input_ids"].tolist() == [[10, 11, 12, 13, 14], [20, 21, 22, 0, 0]]
    # row 0: positions 2, 3 predict 13, 14; row 1 (offset 5): positions 0, 1 predict 21, 22
    assert padded["lm_positions"].tolist() == [2, 3, 5, 6]
    assert padded["lm_targets"].tolist() == [13, 14, 21, 22]
    packed = CompletionCollator(pad_token_id=0, packing="packed", attention="mask")(features)
    assert packed["lm_targets"].tolist() == [13, 14, 21, 22]
    flat = packed["input_ids"].reshape(-1)
    assert [flat[p + 1].item() for p in packed["lm_positions"].tolist()] == [13, 14, 21, 22]


def test_encoded_chain_splits_at_the_completion(tiny_tokenizer):
    row = {
        "problem": "What is 2 + 3?",
        "steps": ["2 + 3 = 6"],
        "chain": "\nStep 1: no. The step is \\boxed{incorrect}",
    }
    prompt, completion = chain_texts(tiny_tokenizer, FMT, row)
    assert prompt.endswith("<|im_start|>assistant\nLet's verify step by step:")
    assert completion == row["chain"] + "<|im_end|>"
    ids, start = encode_chain(tiny_tokenizer, prompt, completion)
    assert tiny_tokenizer.decode(ids[start:]) == completion and tiny_tokenizer.decode(ids[:start]) == prompt
    features, report = chain_features(tiny_tokenizer, FMT, [row], max_length=len(ids))
    assert features == [{"input_ids": ids, "completion_start": start}] and report.too_long == 0
    assert chain_features(tiny_tokenizer, FMT, [row], max_length=len(ids) - 1)[1].too_long == 1


@pytest.mark.parametrize("packing", ["none", "packed"])
def test_the_loss_is_the_mean_nll_of_completion_tokens_only(tiny_llama, packing):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    features = [
        {"input_ids": [5, 40, 41, 42, 43, 44, 45], "completion_start": 4},
        {"input_ids": [5, 50, 51, 52], "completion_start": 2},
    ]
    batch = CompletionCollator(0, packing, "segments")(features)
    trainer = GenerativeSFTTrainer.__new__(GenerativeSFTTrainer)  # compute_loss only: no Trainer set-up
    trainer.record = lambda metrics: None
    with torch.no_grad():
        loss = trainer.compute_loss(model, batch)
        terms = []
        for f in features:
            ids = torch.tensor([f["input_ids"]])
            logp = model(ids).logits[0].double().log_softmax(-1)
            terms += [
                logp[t - 1, f["input_ids"][t]] for t in range(f["completion_start"], len(f["input_ids"]))
            ]
    assert len(terms) == 5  # 3 + 2 completion tokens; the 4 + 2 prompt tokens are never targets
    assert loss.item() == pytest.approx(-torch.stack(terms).mean().item(), abs=1e-5)


@pytest.fixture(scope="module")
def short_format(tmp_path_factory):
    """A swapped template with a short user message, so the tiny model's 512 positions hold a chain."""
    data = {**FMT.to_dict(), "name": "short", "user_message": "Check: {problem}\n{solution}"}
    path = tmp_path_factory.mktemp("format") / "short.json"
    path.write_text(json.dumps(data))
    return path


def test_sft_changes_the_weights_and_exports_a_causal_lm_scorer(tiny_llama, short_format, tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from rewardmodels.export import export_scorer
    from rewardmodels.generative.train import main as train_main
    from rewardmodels.scorers import load_scorer
    from rewardmodels.scorers.generative import GenerativeScorer

    run = tmp_path / "run"
    code = train_main([
        "--model_name_or_path", str(tiny_llama), "--train_data", "templated:synthetic:n=8,seed=0",
        "--verification_format", str(short_format), "--output_dir", str(run), "--max_steps", "2",
        "--per_device_train_batch_size", "4", "--learning_rate", "1e-2", "--use_lora", "false",
        "--save_strategy", "no", "--max_length", "512", "--verifier_max_new_tokens", "5",
    ])  # fmt: skip
    assert code == 0
    before, after = load_file(tiny_llama / "model.safetensors"), load_file(run / "model.safetensors")
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) > len(before) // 2
    manifest = json.loads((run / "rewardmodels_training.json").read_text())
    assert manifest["kind"] == "generative" and manifest["head"] == "causal_lm"
    assert manifest["verification_format"]["name"] == "short" and manifest["chain_sources"] == {
        "templated": 8
    }
    assert manifest["verifier"]["max_new_tokens"] == 5
    out = export_scorer(run, tmp_path / "scorer")
    plain = AutoModelForCausalLM.from_pretrained(out)
    assert torch.equal(plain.state_dict()["lm_head.weight"], after["lm_head.weight"])
    scorer = load_scorer(out, device="cpu")
    assert isinstance(scorer, GenerativeScorer) and scorer.fmt.user_message.startswith("Check:")
    (value,) = scorer.score(["What is 1 + 2?"], ["1 + 2 = 3"])
    assert 0.0 <= value <= 1.0 and scorer.compute_report()["max_new_tokens"] == 5


def test_stepwise_specs_are_not_taken_for_chains(tiny_llama, tmp_path):
    from rewardmodels.errors import InputError
    from rewardmodels.generative.train import main as train_main

    with pytest.raises(InputError, match="templated:synthetic:n=4"):
        train_main(["--model_name_or_path", str(tiny_llama), "--train_data", "synthetic:n=4",
                    "--output_dir", str(tmp_path / "x")])  # fmt: skip


def chain_file(path, n: int, bad_line: int | None = None):
    """`n` valid chain rows (format "short", like `short_format`) and, at 1-based `bad_line`, one without
    its chain."""
    rows = [
        {
            "problem": f"What is {i} + 1?",
            "steps": [f"{i} + 1 = {i + 1}"],
            "chain": f"\nStep 1: {i} + 1 is {i + 1}. The step is \\boxed{{correct}}",
            "source": "written",
        }
        for i in range(n)
    ]
    if bad_line is not None:
        rows.insert(bad_line - 1, {"problem": "What is 9 + 1?", "steps": ["9 + 1 = 10"], "source": "written"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def generative_argv(tiny_llama, short_format, out, *extra: str) -> list[str]:
    return [
        "--model_name_or_path", str(tiny_llama), "--verification_format", str(short_format),
        "--output_dir", str(out), "--max_steps", "1", "--per_device_train_batch_size", "4",
        "--per_device_eval_batch_size", "8", "--learning_rate", "1e-2", "--use_lora", "false",
        "--save_strategy", "no", "--eval_strategy", "no", "--report_to", "none", "--max_length", "512",
        *extra,
    ]  # fmt: skip


def test_generative_training_mixes_sources_and_evaluates_each(tiny_llama, short_format, tmp_path):
    """Two sources through the shared data path: 2 held-out chains each (`eval=2`), a bad row dropped and
    counted, and the final held-out loss per source beside the pooled one."""
    from rewardmodels.generative.config import GenerativeConfig
    from rewardmodels.generative.train import build_trainer
    from rewardmodels.training.arguments import DataArguments, ModelArguments, parse_layered
    from rewardmodels.training.run import final_eval, train_and_save

    written = chain_file(tmp_path / "chains.jsonl", 6, bad_line=4)
    argv = generative_argv(
        tiny_llama, short_format, tmp_path / "run", "--invalid_rows", "drop", "--train_data",
        f"{written}|eval=2,name=written", "templated:synthetic:n=6,seed=0|eval=2,name=templated",
    )  # fmt: skip
    model_args, data_args, args = parse_layered((ModelArguments, DataArguments, GenerativeConfig), argv)
    trainer = build_trainer(model_args, data_args, args)
    held_out = trainer.held_out_by_source
    assert {name: len(features) for name, features in held_out.items()} == {"written": 2, "templated": 2}
    assert len(trainer.train_dataset) == 4 + 4  # 6 valid rows a source, 2 of each held out
    train_and_save(trainer, args, finalize=final_eval)
    manifest = json.loads((tmp_path / "run" / "rewardmodels_training.json").read_text())
    assert manifest["dropped_rows"] == {"missing or empty": 1}
    assert manifest["chain_sources"] == {"written": 6, "templated": 6}
    assert (manifest["packing"], manifest["attention"]) == ("packed", "segments")
    by_source = manifest["final_eval_by_source"]
    assert set(by_source) == {"written", "templated"}
    # Each evaluation is one batch, so its loss is the mean NLL over its chains' completion tokens, and the
    # pooled loss is the per-source losses weighted by those token counts.
    tokens = {
        name: sum(len(f["input_ids"]) - f["completion_start"] for f in held_out[name]) for name in held_out
    }
    pooled = sum(by_source[n][f"eval_{n}_loss"] * tokens[n] for n in tokens) / sum(tokens.values())
    assert manifest["final_eval"]["eval_loss"] == pytest.approx(pooled, rel=1e-5)
    assert by_source["written"]["eval_written_loss"] != pytest.approx(
        by_source["templated"]["eval_templated_loss"]
    )


def test_a_bad_chain_row_is_an_input_error_naming_it(tiny_llama, short_format, tmp_path):
    from rewardmodels.errors import InputError
    from rewardmodels.generative.train import main as train_main

    written = chain_file(tmp_path / "chains.jsonl", 6, bad_line=4)
    argv = generative_argv(tiny_llama, short_format, tmp_path / "run", "--train_data", str(written))
    with pytest.raises(InputError, match="line 4, field 'chain': missing or empty") as info:
        train_main(argv)
    assert (info.value.location.file, info.value.location.line) == (str(written), 4)
    assert not (tmp_path / "run").exists()  # refused before the model loaded or anything was written
