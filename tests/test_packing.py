"""Packing is exact: padded, packed and tree-packed batches give the same rewards, losses and gradients.

Layouts are checked against hand-written tensors; exactness against the padded collator on tiny random Llama
and Qwen2 models, with sdpa and eager attention, on pairs with a truncated prefix, an empty prefix, a
continuation that alone exceeds max_length, and margins. GPU paths (flash-attention varlen, flex BlockMask)
are tested at the boundary that runs on CPU: the arguments built and the dispatch chosen.
"""

from __future__ import annotations

import types
import warnings

import pytest
import torch

from rewardmodels.collators import PaddedPairCollator, PaddedSequenceCollator
from rewardmodels.losses import bradley_terry_loss
from rewardmodels.modeling import attn_implementation_of, load_backbone, rewards_at
from rewardmodels.packing import (
    SEGMENTED_SDPA,
    PackedPairCollator,
    PackedSequenceCollator,
    allowed_attention,
    first_fit_decreasing,
    flex_block_mask,
    group_blocks,
    packed_attention_kwargs,
    packed_step_collator,
    packing_attention_for,
    tree_mask_mod,
    varlen_kwargs,
)
from rewardmodels.tokenization import tokenize_pair

TOL = 1e-5


# ---------------------------------------------------------------- layouts, by hand


def test_tree_layout_by_hand():
    features = [
        {"prefix_ids": [11, 12], "chosen_ids": [13], "rejected_ids": [14, 15]},
        {"prefix_ids": [], "chosen_ids": [16, 17], "rejected_ids": [18]},
    ]
    batch = PackedPairCollator(pad_token_id=0, attention="segments")(features)
    assert batch["input_ids"].tolist() == [[11, 12, 13, 14, 15, 16, 17, 18]]
    # Both branches continue from the prefix length (2); the second pair has no prefix.
    assert batch["position_ids"].tolist() == [[0, 1, 2, 2, 3, 0, 1, 0]]
    # chosen of pair 0, chosen of pair 1, rejected of pair 0, rejected of pair 1
    assert batch["reward_positions"].tolist() == [2, 6, 4, 7]
    # Attention blocks: (row, query span, key span a, key span b).
    assert batch["packed_segments"].tolist() == [
        [0, 0, 3, 0, 3, 0, 0],  # prefix + chosen, causal
        [0, 3, 5, 0, 2, 3, 5],  # rejected sees the prefix and itself
        [0, 5, 7, 5, 7, 0, 0],
        [0, 7, 8, 5, 5, 7, 8],  # empty prefix: itself only
    ]
    assert "attention_mask" not in batch
    expected = torch.tensor(
        [
            [1, 0, 0, 0, 0, 0, 0, 0],
            [1, 1, 0, 0, 0, 0, 0, 0],
            [1, 1, 1, 0, 0, 0, 0, 0],  # chosen sees the prefix and itself
            [1, 1, 0, 1, 0, 0, 0, 0],  # rejected sees the prefix, not chosen
            [1, 1, 0, 1, 1, 0, 0, 0],
            [0, 0, 0, 0, 0, 1, 0, 0],  # the next pair sees nothing of the first
            [0, 0, 0, 0, 0, 1, 1, 0],
            [0, 0, 0, 0, 0, 0, 0, 1],
        ],
        dtype=torch.bool,
    )
    dense = allowed_attention(batch["packed_doc_ids"], batch["packed_branch_ids"])
    assert dense.shape == (1, 1, 8, 8)
    assert torch.equal(dense[0, 0], expected)
    # The dense-mask form of the same batch keeps rows as wide as the longest unit (5): two rows.
    masked = PackedPairCollator(pad_token_id=0, attention="mask")(features)
    assert masked["input_ids"].tolist() == [[11, 12, 13, 14, 15], [16, 17, 18, 0, 0]]
    assert torch.equal(masked["attention_mask"][0, 0], expected[:5, :5])
    assert masked["reward_positions"].tolist() == [2, 5 + 1, 4, 5 + 2]


def test_plain_packing_restarts_positions_and_pads_rows_to_attend_to_themselves():
    features = [
        {"prefix_ids": [11, 12], "chosen_ids": [13], "rejected_ids": [14, 15]},
    ]
    batch = PackedPairCollator(pad_token_id=0, token_budget=4, tree=False)(features)
    # prefix+chosen (3 tokens) and prefix+rejected (4 tokens) do not fit one row of 4: two rows, longest first.
    assert batch["input_ids"].tolist() == [[11, 12, 14, 15], [11, 12, 13, 0]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3], [0, 1, 2, 0]]
    assert batch["reward_positions"].tolist() == [4 + 2, 3]
    mask = batch["attention_mask"][:, 0]
    assert mask[1, 3].tolist() == [False, False, False, True]  # the pad token sees only itself


def test_tree_that_exceeds_the_budget_is_split_into_two_sequences():
    features = [{"prefix_ids": [1, 2, 3], "chosen_ids": [4, 5], "rejected_ids": [6]}]
    batch = PackedPairCollator(pad_token_id=0, token_budget=5, tree=True)(features)
    assert sorted(batch["input_ids"].tolist()) == [[1, 2, 3, 4, 5], [1, 2, 3, 6, 0]]


def test_group_blocks_trades_padding_against_calls():
    sizes = [(10, 10), (100, 100), (10, 10)]
    # A cheap call: the long block alone, the two short ones together (no padding at all).
    assert group_blocks(sizes, call_cost=1) == [[1], [0, 2]]
    # A very expensive call: everything in one padded group.
    assert group_blocks(sizes, call_cost=10**9) == [[1, 0, 2]]


def test_first_fit_decreasing_by_hand():
    assert first_fit_decreasing([5, 3, 4, 2, 1], budget=7) == [[0, 3], [2, 1], [4]]


def test_unit_longer_than_budget_is_an_error_naming_the_feature():
    collator = PackedSequenceCollator(pad_token_id=0, token_budget=3)
    with pytest.raises(ValueError, match="feature 1: a packed unit of 4 tokens exceeds token_budget=3"):
        collator([{"input_ids": [1, 2]}, {"input_ids": [1, 2, 3, 4]}])


def test_reward_position_outside_the_sequence_is_an_error():
    collator = packed_step_collator(pad_token_id=0)
    with pytest.raises(ValueError, match=r"feature 0: reward position\(s\) \[3\] outside a sequence of 3"):
        collator([{"input_ids": [1, 2, 3], "step_positions": [1, 3], "step_labels": [1.0, 0.0]}])


def test_flex_mask_mod_is_the_same_rule_as_the_dense_mask():
    features = [
        {"prefix_ids": [1, 2, 3], "chosen_ids": [4, 5], "rejected_ids": [6]},
        {"prefix_ids": [], "chosen_ids": [7], "rejected_ids": [8, 9]},
        {"prefix_ids": [1], "chosen_ids": [2, 3, 4, 5, 6, 7], "rejected_ids": [8]},
    ]
    batch = PackedPairCollator(pad_token_id=0, token_budget=10)(features)
    doc, branch = batch["packed_doc_ids"], batch["packed_branch_ids"]
    rows, length = doc.shape
    mod = tree_mask_mod(doc, branch)
    q = torch.arange(length)[:, None]
    kv = torch.arange(length)[None, :]
    for b in range(rows):
        dense = mod(torch.tensor(b), torch.tensor(0), q, kv)
        assert torch.equal(dense, allowed_attention(doc, branch)[b, 0])


# ---------------------------------------------------------------- exactness on tiny models


def _pairs(tokenizer) -> list[dict]:
    """Pairs covering: a shared prefix, a prefix cut by truncation, an empty prefix, a continuation that alone
    exceeds max_length, different lengths; with margins on some rows."""
    long_prompt = " ".join(["the question was how good is the answer"] * 6)
    rows = [
        {"prompt": "hello what is good", "chosen": "yes good", "rejected": "no bad answer please"},
        {"prompt": long_prompt, "chosen": "a good answer", "rejected": "bad"},  # prefix cut from the left
        {"prompt": "", "chosen": "what a world", "rejected": "hello there assistant"},
        {"prompt": "why", "chosen": "good " * 30, "rejected": "bad"},  # continuation alone too long
        {"prompt": "how is the world", "chosen": "the world is good", "rejected": "the world is bad"},
    ]
    out, truncated = [], 0
    for i, row in enumerate(rows):
        pair = tokenize_pair(tokenizer, row, use_chat_template=False, max_length=24)
        truncated += pair.truncated
        out.append(pair.as_features(margin=0.5 * i if i % 2 else None))
    # The fixture must really contain what it claims to.
    assert truncated >= 2
    assert any(len(f["prefix_ids"]) == 0 for f in out)
    assert any(len(f["prefix_ids"]) > 0 for f in out)
    assert out[3]["prefix_ids"] == [] and len(out[3]["chosen_ids"]) == 24
    return out


def _loss_and_grads(model, batch):
    model.zero_grad()
    rewards = rewards_at(model, batch).squeeze(-1)
    chosen, rejected = rewards.chunk(2)
    loss = bradley_terry_loss(chosen, rejected, batch.get("margin"))
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return rewards.detach(), loss.detach(), grads


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def tiny_path(request):
    return request.getfixturevalue(f"tiny_{request.param}")


@pytest.mark.parametrize(
    ("attn", "attention", "budget"),
    [("sdpa", "segments", None), ("sdpa", "segments", 48), ("sdpa", "mask", None), ("eager", "mask", 48)],
)
def test_padded_packed_and_tree_give_the_same_rewards_loss_and_gradients(
    tiny_path, tiny_tokenizer, attn, attention, budget
):
    torch.manual_seed(0)
    model = load_backbone(str(tiny_path), "seq_cls", tokenizer=tiny_tokenizer, attn_implementation=attn)
    features = _pairs(tiny_tokenizer)
    pad = tiny_tokenizer.pad_token_id
    padded = PaddedPairCollator(pad)(features)
    packed = PackedPairCollator(pad, token_budget=budget, attention=attention, tree=False)(features)
    tree = PackedPairCollator(pad, token_budget=budget, attention=attention, tree=True)(features)
    # The tree stores each prefix once: strictly fewer real tokens than plain packing.
    assert int((tree["packed_doc_ids"] >= 0).sum()) < int((packed["packed_doc_ids"] >= 0).sum())
    if budget or attention == "mask":
        assert packed["input_ids"].shape[0] > 1  # several rows, with padding between them
    else:
        assert (
            packed["input_ids"].shape[0] == 1 and (packed["packed_doc_ids"] >= 0).all()
        )  # no padding at all
    ref_rewards, ref_loss, ref_grads = _loss_and_grads(model, padded)
    assert ref_rewards.abs().max() > 1e-3  # a non-trivial head, so equality means something
    for batch in (packed, tree):
        rewards, loss, grads = _loss_and_grads(model, batch)
        torch.testing.assert_close(rewards, ref_rewards, atol=TOL, rtol=0)
        torch.testing.assert_close(loss, ref_loss, atol=TOL, rtol=0)
        assert grads.keys() == ref_grads.keys()
        for name, grad in grads.items():
            torch.testing.assert_close(grad, ref_grads[name], atol=TOL, rtol=1e-4, msg=name)
    if attention == "segments":
        assert attn_implementation_of(model) == SEGMENTED_SDPA  # the kernel really ran
        # ... and it still scores padded batches like sdpa.
        torch.testing.assert_close(_loss_and_grads(model, padded)[0], ref_rewards, atol=0, rtol=0)


def test_gradient_checkpointing_is_exact_with_tree_packing(tiny_llama, tiny_tokenizer):
    features = _pairs(tiny_tokenizer)
    pad = tiny_tokenizer.pad_token_id
    model = load_backbone(str(tiny_llama), "seq_cls", tokenizer=tiny_tokenizer)
    ref = _loss_and_grads(model, PaddedPairCollator(pad)(features))
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    got = _loss_and_grads(model, PackedPairCollator(pad, attention="segments")(features))
    torch.testing.assert_close(got[0], ref[0], atol=TOL, rtol=0)
    for name, grad in got[2].items():
        torch.testing.assert_close(grad, ref[2][name], atol=TOL, rtol=1e-4, msg=name)


def test_lora_model_is_exact_with_tree_packing(tiny_qwen2, tiny_tokenizer):
    from rewardmodels.modeling import LoraSettings

    features = _pairs(tiny_tokenizer)
    pad = tiny_tokenizer.pad_token_id
    model = load_backbone(
        str(tiny_qwen2), "seq_cls", tokenizer=tiny_tokenizer, lora=LoraSettings(r=4, alpha=8)
    )
    ref = _loss_and_grads(model, PaddedPairCollator(pad)(features))
    got = _loss_and_grads(model, PackedPairCollator(pad, attention="segments")(features))
    torch.testing.assert_close(got[1], ref[1], atol=TOL, rtol=0)
    assert any("lora" in n for n in got[2])
    for name, grad in got[2].items():
        torch.testing.assert_close(grad, ref[2][name], atol=TOL, rtol=1e-4, msg=name)


def test_bf16_autocast_runs_packed_masks_and_stays_close(tiny_llama, tiny_tokenizer):
    features = _pairs(tiny_tokenizer)
    pad = tiny_tokenizer.pad_token_id
    for attn, attention in (("sdpa", "segments"), ("sdpa", "mask"), ("eager", "mask")):
        model = load_backbone(str(tiny_llama), "seq_cls", tokenizer=tiny_tokenizer, attn_implementation=attn)
        with torch.no_grad():
            exact = rewards_at(model, PaddedPairCollator(pad)(features)).squeeze(-1)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                batch = PackedPairCollator(pad, attention=attention)(features)
                packed = rewards_at(model, batch).squeeze(-1)
        assert torch.isfinite(packed).all()
        # bf16 keeps ~3 significant digits; rewards here are O(0.1-1).
        torch.testing.assert_close(packed.float(), exact, atol=3e-2, rtol=3e-2)


def test_position_ids_without_the_block_mask_leak_across_sequences(tiny_llama, tiny_tokenizer):
    """Why the explicit mask exists: packed rows with position_ids and a plain 2D mask (or none, for a tree)
    attend across sequence boundaries and give different rewards."""
    features = _pairs(tiny_tokenizer)
    pad = tiny_tokenizer.pad_token_id
    model = load_backbone(str(tiny_llama), "seq_cls", tokenizer=tiny_tokenizer)
    with torch.no_grad():
        ref = rewards_at(model, PaddedPairCollator(pad)(features))
        plain = PackedPairCollator(pad, token_budget=None, tree=False)(features)
        tree = PackedPairCollator(pad, token_budget=None, tree=True)(features)
        exact_plain = rewards_at(model, plain)
        # A 2D all-ones mask: transformers no longer looks for boundaries in position_ids.
        leaky = dict(plain, attention_mask=torch.ones_like(plain["input_ids"]))
        leaky.pop("packed_doc_ids")
        # No mask: transformers splits at position resets, which cuts a rejected branch off its prefix.
        no_mask_tree = {k: v for k, v in tree.items() if k not in ("attention_mask", "packed_doc_ids")}
        torch.testing.assert_close(exact_plain, ref, atol=TOL, rtol=0)
        assert (rewards_at(model, leaky) - ref).abs().max() > 1e-3
        assert (rewards_at(model, no_mask_tree) - ref).abs().max() > 1e-3


def test_packed_sequences_match_padded_sequences(tiny_qwen2, tiny_tokenizer):
    model = load_backbone(str(tiny_qwen2), "seq_cls", tokenizer=tiny_tokenizer)
    seqs = [
        {"input_ids": tiny_tokenizer(t)["input_ids"]} for t in ("hello world", "a", "what is the answer yes")
    ]
    pad = tiny_tokenizer.pad_token_id
    with torch.no_grad():
        ref = rewards_at(model, PaddedSequenceCollator(pad)(seqs))
        for attention in ("mask", "segments"):
            got = rewards_at(model, PackedSequenceCollator(pad, attention=attention)(seqs))
            torch.testing.assert_close(got, ref, atol=TOL, rtol=0)


def test_packed_step_collator_is_a_drop_in_for_the_padded_step_collator(tiny_llama, tiny_tokenizer):
    from rewardmodels.collators import PaddedStepCollator

    model = load_backbone(str(tiny_llama), "seq_cls", tokenizer=tiny_tokenizer)
    features = []
    for text, positions, labels in (
        ("step one is good step two is bad", [2, 5, 7], [1.0, 1.0, 0.0]),
        ("hello world", [1], [0.0]),
        ("the answer is yes please", [0, 3], [1.0, 0.5]),
    ):
        ids = tiny_tokenizer(text)["input_ids"]
        assert max(positions) < len(ids)
        features.append({"input_ids": ids, "step_positions": positions, "step_labels": labels})
    pad = tiny_tokenizer.pad_token_id
    padded = PaddedStepCollator(pad)(features)
    for attention in ("mask", "segments"):
        packed = packed_step_collator(pad, attention=attention)(features)
        # mask: rows as wide as the longest solution, the two short ones share the second row
        assert packed["input_ids"].shape[0] == (2 if attention == "mask" else 1)
        assert torch.equal(packed["step_labels"], padded["step_labels"])
        assert torch.equal(packed["step_sequence"], padded["step_sequence"])
        with torch.no_grad():
            torch.testing.assert_close(rewards_at(model, packed), rewards_at(model, padded), atol=TOL, rtol=0)


# ---------------------------------------------------------------- dispatch and GPU-path arguments


def test_attention_mode_for_each_implementation():
    assert packing_attention_for("sdpa") == "segments"
    assert packing_attention_for(SEGMENTED_SDPA) == "segments"
    assert packing_attention_for("eager") == "mask"
    assert packing_attention_for(None) == "segments"
    assert packing_attention_for("flash_attention_2") == "varlen"
    assert packing_attention_for("flash_attention_3") == "varlen"
    assert packing_attention_for("flex_attention") == "flex"


def test_varlen_batch_matches_transformers_own_cu_seqlens():
    from transformers.modeling_flash_attention_utils import prepare_fa_kwargs_from_position_ids

    features = [
        {"prefix_ids": [1, 2, 3], "chosen_ids": [4, 5], "rejected_ids": [6]},
        {"prefix_ids": [], "chosen_ids": [7], "rejected_ids": [8, 9]},
    ]
    batch = PackedPairCollator(pad_token_id=0, token_budget=4, attention="varlen", tree=True)(features)
    # (the budget does not apply to varlen: one row, whatever its length)
    assert "attention_mask" not in batch
    assert batch["input_ids"].shape == (1, 5 + 4 + 1 + 2)  # one row, no padding, even over the budget
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 4, 0, 1, 2, 3, 0, 0, 1]]
    assert batch["cu_seq_lens_q"].tolist() == [0, 5, 9, 10, 12]
    assert batch["cu_seq_lens_q"].dtype == torch.int32
    assert batch["max_length_q"] == batch["max_length_k"] == 5
    (cu_q, cu_k), (max_q, max_k) = prepare_fa_kwargs_from_position_ids(batch["position_ids"])
    assert cu_q.tolist() == batch["cu_seq_lens_q"].tolist() == cu_k.tolist()
    assert int(max_q) == batch["max_length_q"]
    assert varlen_kwargs([3, 1])["cu_seq_lens_k"].tolist() == [0, 3, 4]


class _FakeModel(torch.nn.Module):
    """Stands in for a model whose kernel is not available on CPU: only its config is read."""

    def __init__(self, impl: str):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.config = types.SimpleNamespace(_attn_implementation=impl)


def test_model_side_dispatch_of_packed_batches():
    features = [{"prefix_ids": [1, 2], "chosen_ids": [3], "rejected_ids": [4, 5]}]
    mask_batch = PackedPairCollator(pad_token_id=0)(features)
    # sdpa: the boolean mask goes through untouched.
    assert packed_attention_kwargs(_FakeModel("sdpa"), mask_batch) == {}
    # eager: additive float mask, 0 where allowed and the dtype minimum elsewhere.
    eager = packed_attention_kwargs(_FakeModel("eager"), mask_batch)["attention_mask"]
    assert eager.dtype == torch.float32
    assert torch.equal(eager == 0, mask_batch["attention_mask"])
    assert eager.min() == torch.finfo(torch.float32).min
    # flash: refuses a dense mask, and forwards cu_seqlens from a varlen batch.
    with pytest.raises(ValueError, match="cannot run with attn_implementation=flash_attention_2"):
        packed_attention_kwargs(_FakeModel("flash_attention_2"), mask_batch)
    varlen = PackedPairCollator(pad_token_id=0, attention="varlen")(features)
    kwargs = packed_attention_kwargs(_FakeModel("flash_attention_2"), varlen)
    assert kwargs["cu_seq_lens_q"].tolist() == [0, 3, 7]  # prefix+chosen, prefix+rejected
    assert kwargs["max_length_k"] == 4
    # a layout without a mask cannot run on sdpa.
    with pytest.raises(ValueError, match="needs one"):
        packed_attention_kwargs(_FakeModel("sdpa"), varlen)
    # a segment plan needs sdpa
    segments = PackedPairCollator(pad_token_id=0, attention="segments")(features)
    with pytest.raises(ValueError, match="needs sdpa attention, the model uses eager"):
        packed_attention_kwargs(_FakeModel("eager"), segments)
    assert (
        packed_attention_kwargs(_FakeModel(SEGMENTED_SDPA), segments)["packed_segments"]
        is segments["packed_segments"]
    )
    # padded batches are left alone whatever the kernel.
    padded = PaddedPairCollator(0)(features)
    assert packed_attention_kwargs(_FakeModel("flash_attention_2"), padded) == {}


def test_flex_batch_builds_a_block_mask_when_flex_is_available():
    flex = pytest.importorskip("torch.nn.attention.flex_attention")
    features = [{"prefix_ids": [1, 2], "chosen_ids": [3], "rejected_ids": [4, 5]}]
    batch = PackedPairCollator(pad_token_id=0, attention="flex")(features)
    assert "attention_mask" not in batch
    block = packed_attention_kwargs(_FakeModel("flex_attention"), batch)["attention_mask"]
    assert isinstance(block, flex.BlockMask)
    assert block.shape[-2:] == (5, 5) or block.seq_lengths == (5, 5)


def test_flex_mask_mod_gives_the_padded_tree_attention():
    """Eager (uncompiled) flex_attention with our BlockMask against sdpa with the dense tree mask, on a packed
    row of two trees: the mask_mod must allow exactly what `allowed_attention` allows."""
    from torch.nn.attention.flex_attention import flex_attention

    features = [
        {"prefix_ids": [1, 2, 3], "chosen_ids": [4, 5], "rejected_ids": [6]},
        {"prefix_ids": [7], "chosen_ids": [8, 9, 10], "rejected_ids": [11, 12]},
    ]
    batch = PackedPairCollator(pad_token_id=0, attention="flex")(features)
    doc, branch = batch["packed_doc_ids"], batch["packed_branch_ids"]
    length = doc.shape[1]
    torch.manual_seed(0)
    q, k, v = (torch.randn(doc.shape[0], 2, length, 8) for _ in range(3))
    dense = torch.nn.functional.scaled_dot_product_attention(
        q, k, v, attn_mask=allowed_attention(doc, branch)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # flex warns that it runs uncompiled; exact, which is what we test
        got = flex_attention(q, k, v, block_mask=flex_block_mask(doc, branch))
    torch.testing.assert_close(got, dense, atol=1e-6, rtol=0)


def test_flex_attention_is_refused_on_cpu(tiny_llama, tiny_tokenizer):
    with pytest.raises(ValueError, match="flex_attention' is refused on CPU"):
        load_backbone(
            str(tiny_llama),
            "seq_cls",
            tokenizer=tiny_tokenizer,
            attn_implementation="flex_attention",
            device="cpu",
        )


# ---------------------------------------------------------------- the BT trainer's choice


def _bt_args(model_dir, out_dir, *extra):
    from rewardmodels.bt.config import BTConfig
    from rewardmodels.training.arguments import DataArguments, ModelArguments, parse_layered

    return parse_layered(
        (ModelArguments, DataArguments, BTConfig),
        [
            "--model_name_or_path", str(model_dir),
            "--train_data", "synthetic:n=16,seed=0",
            "--output_dir", str(out_dir),
            "--max_steps", "2",
            "--per_device_train_batch_size", "4",
            "--learning_rate", "1e-2",
            "--use_lora", "false",
            "--save_strategy", "no",
            "--report_to", "none",
            "--max_length", "64",
            "--use_chat_template", "always",
            *extra,
        ],
    )  # fmt: skip


def test_bt_trainer_defaults_to_tree_packing_and_trains_like_padded(tiny_llama, tmp_path):
    from rewardmodels.bt.train import build_trainer

    weights = {}
    for mode in ("auto", "packed", "none"):
        # Plain SGD keeps the update linear in the gradient; Adam's g / sqrt(v) would magnify float noise in
        # near-zero gradients into 1e-5-sized weight differences after two steps.
        args = _bt_args(
            tiny_llama, tmp_path / mode, "--packing", mode, "--optim", "sgd", "--learning_rate", "0.5"
        )
        trainer = build_trainer(*args)
        initial = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
        expected = {"auto": PackedPairCollator, "packed": PackedPairCollator, "none": PaddedPairCollator}
        assert isinstance(trainer.data_collator, expected[mode])
        if mode == "auto":
            assert trainer.data_collator.tree and trainer.training_manifest["packing"] == "tree"
            assert trainer.data_collator.attention == "segments"
        if mode == "packed":
            assert not trainer.data_collator.tree
        trainer.train()
        weights[mode] = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    for mode in ("auto", "packed"):
        for name, value in weights[mode].items():
            torch.testing.assert_close(value, weights["none"][name], atol=1e-6, rtol=0, msg=name)
    # The comparison is meaningful: training moved the weights far more than the tolerance.
    moved = max((weights["none"][n] - initial[n]).abs().max().item() for n in initial)
    assert moved > 1e-3


def test_bt_trainer_uses_plain_packing_without_shared_prefixes(tiny_llama, tmp_path):
    import json

    from rewardmodels.bt.train import build_trainer

    data = tmp_path / "pairs.jsonl"
    rows = [{"prompt": "", "chosen": f"yes good {i}", "rejected": f"no bad {i}"} for i in range(8)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = _bt_args(tiny_llama, tmp_path / "out", "--train_data", str(data), "--use_chat_template", "never")
    trainer = build_trainer(*args)
    assert isinstance(trainer.data_collator, PackedPairCollator)
    assert not trainer.data_collator.tree
    assert trainer.training_manifest["packing"] == "packed"


def test_segmented_kernel_is_exact_with_many_block_groups(tiny_qwen2, tiny_tokenizer, monkeypatch):
    """With a near-free call cost every differently sized block gets its own padded group: the gather and
    scatter across many groups must still give the padded result."""
    import rewardmodels.packing.kernels as packing

    monkeypatch.setattr(packing, "_CALL_COST", 1)
    features = _pairs(tiny_tokenizer)
    pad = tiny_tokenizer.pad_token_id
    model = load_backbone(str(tiny_qwen2), "seq_cls", tokenizer=tiny_tokenizer)
    batch = PackedPairCollator(pad, attention="segments")(features)
    groups, source = packing._block_groups(batch["packed_segments"], batch["input_ids"].shape[1])
    assert len(groups) > 3
    # One row, no padding: every token's output comes from its own slot, none from the zero row.
    zero_row = sum(g.q_index.numel() for g in groups)
    assert len(set(source.tolist())) == len(source) and source.max() < zero_row
    ref = _loss_and_grads(model, PaddedPairCollator(pad)(features))
    got = _loss_and_grads(model, batch)
    torch.testing.assert_close(got[0], ref[0], atol=TOL, rtol=0)
    for name, grad in got[2].items():
        torch.testing.assert_close(grad, ref[2][name], atol=TOL, rtol=1e-4, msg=name)
