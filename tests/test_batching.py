"""One collator decision for every method (`training.batching.collator_for` on `packing.choice`'s
vocabulary): the decision for each request and kernel, the collator each method gets, implicit-PRM pairs
packed without a tree (new with the shared decision) giving the log-probs of padded and tree rows, and old
manifests read in the new vocabulary, through export too."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from rewardmodels.errors import InputError
from rewardmodels.packing import PADDED, decide_packing, manifest_batching, scoring_runs_trees

PAIRS = [{"prefix_ids": [11, 12, 13], "chosen_ids": [14, 15], "rejected_ids": [16]}]
UNSHARED_PAIRS = [{"prefix_ids": [], "chosen_ids": [14, 15], "rejected_ids": [16]}]
# Two DPO rows: prompt tokens 5 6 7 shared by chosen and rejected, responses from token 3 on.
GROUPS = [
    {"sequences": [[5, 6, 7, 40, 41, 42], [5, 6, 7, 50, 51]], "response_starts": [3, 3]},
    {"sequences": [[5, 8, 60, 61], [5, 8, 70, 71, 72]], "response_starts": [2, 2]},
]
OUTCOMES = [{"sequences": [[5, 6, 7, 40]], "response_starts": [3], "label": 1.0}]


@pytest.mark.parametrize(
    ("requested", "impl", "pairs", "shared", "mode", "attention"),
    [
        ("auto", "sdpa", True, True, "tree", "segments"),
        ("auto", "eager", True, True, "tree", "mask"),
        ("auto", "sdpa", True, False, "packed", "segments"),  # nothing shared: a tree saves nothing
        ("tree", "flash_attention_2", True, True, "packed", "varlen"),  # varlen cannot express a tree
        ("auto", "flex_attention", True, True, "tree", "flex"),
        ("auto", "sdpa", False, False, "packed", "segments"),  # single sequences
        ("packed", "sdpa", True, True, "packed", "segments"),
        ("none", "flash_attention_2", True, True, "none", PADDED),
    ],
)
def test_the_decision_for_each_request_and_kernel(requested, impl, pairs, shared, mode, attention):
    decision = decide_packing(requested, impl, pairs, shared)
    assert (decision.mode, decision.attention) == (mode, attention)


def test_a_request_outside_the_vocabulary_or_a_tree_of_single_sequences_is_refused():
    with pytest.raises(InputError, match="--packing must be one of auto, tree, packed, none, got 'fast'"):
        decide_packing("fast", "sdpa", True, True)
    with pytest.raises(InputError, match="--packing tree needs pairs"):
        decide_packing("tree", "sdpa", False, False)


def test_configs_take_tree_only_where_rows_are_pairs():
    from rewardmodels.implicit_prm.config import ImplicitPRMConfig

    assert ImplicitPRMConfig(objective="dpo", packing="tree").packing == "tree"
    assert ImplicitPRMConfig(objective="ce", packing="packed").packing == "packed"
    with pytest.raises(InputError, match="--packing must be one of auto, packed, none, got 'tree'"):
        ImplicitPRMConfig(objective="ce", packing="tree")


@pytest.fixture(scope="module")
def causal_lm(tiny_llama):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_llama).eval()  # sdpa: the segments kernel


def test_each_method_gets_its_collator_for_the_decision(causal_lm, tiny_tokenizer):
    from rewardmodels.causal.batches import CompletionCollator, ImplicitPRMCollator
    from rewardmodels.collators import PaddedPairCollator, PaddedStepCollator
    from rewardmodels.packing import PackedPairCollator, PackedSequenceCollator
    from rewardmodels.training.batching import collator_for

    def choose(kind, packing, features=()):
        return collator_for(
            kind, packing, causal_lm, tiny_tokenizer, features, token_budget=64, max_length=64
        )

    bt = choose("bt", "auto", PAIRS)
    assert (bt.mode, type(bt.collator), bt.collator.tree, bt.collator.token_budget) == (
        "tree", PackedPairCollator, True, 64,
    )  # fmt: skip
    assert choose("bt", "auto", UNSHARED_PAIRS).collator.tree is False
    assert isinstance(choose("bt", "none", PAIRS).collator, PaddedPairCollator)
    prm = choose("prm", "auto")
    assert prm.mode == "packed" and isinstance(prm.collator, PackedSequenceCollator)
    assert prm.collator.positions_key == "step_positions"
    assert isinstance(choose("prm", "none").collator, PaddedStepCollator)
    generative = choose("generative", "packed")
    assert generative.collator == CompletionCollator(tiny_tokenizer.pad_token_id, "packed", "segments", 64)
    assert choose("generative", "none").collator.packing == "none"
    dpo, ce = choose("implicit_prm", "auto", GROUPS), choose("implicit_prm", "auto", OUTCOMES)
    assert (dpo.mode, dpo.collator.tree, ce.mode) == ("tree", True, "packed")
    padded = choose("implicit_prm", "none", GROUPS)
    assert padded.collator == ImplicitPRMCollator(tiny_tokenizer.pad_token_id, PADDED, None, tree=False)
    manifest: dict = {}
    dpo.record(manifest)
    assert manifest == {"packing": "tree", "attention": "segments"}
    with pytest.raises(ValueError, match="must be at least --max_length"):
        collator_for("prm", "packed", causal_lm, tiny_tokenizer, token_budget=32, max_length=64)
    assert (
        collator_for("prm", "none", causal_lm, tiny_tokenizer, token_budget=32, max_length=64).mode == "none"
    )
    with pytest.raises(ValueError, match="no batching for method 'crome'"):
        collator_for("crome", "auto", causal_lm, tiny_tokenizer)


def test_implicit_pairs_packed_without_a_tree_give_the_padded_and_tree_log_probs(causal_lm, tiny_tokenizer):
    from rewardmodels.causal.batches import batch_logprob_parts
    from rewardmodels.causal.logprobs import response_logprobs, sum_logprobs
    from rewardmodels.training.batching import collator_for

    sums, tokens = {}, {}
    for packing in ("tree", "packed", "none"):
        batch = collator_for("implicit_prm", packing, causal_lm, tiny_tokenizer, GROUPS).collator(GROUPS)
        with torch.no_grad():
            logps = response_logprobs(causal_lm, batch_logprob_parts(batch))
        sums[packing] = torch.stack([sum_logprobs(lp) for lp in logps])
        tokens[packing] = int(batch["input_ids"].numel())
    torch.testing.assert_close(sums["packed"], sums["none"], rtol=0, atol=1e-5)
    torch.testing.assert_close(sums["tree"], sums["none"], rtol=0, atol=1e-5)
    # Response tokens per slot: 6 - 3, 5 - 3, 4 - 2, 5 - 2. Packed: 6 + 5 + 4 + 5 = 20 tokens in one row; the
    # tree stores each pair's shared prompt (3 and 2 tokens) once: 20 - 3 - 2 = 15.
    assert [int(c) for c in batch["logprob_counts"]] == [3, 2, 2, 3]
    assert (tokens["packed"], tokens["tree"]) == (20, 15)


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        ({"packing": "tree", "attention": "segments"}, ("tree", "segments")),  # the vocabulary itself
        ({"kind": "bt", "packing": "tree"}, ("tree", None)),  # BT before `attention` was recorded
        ({"kind": "prm", "packing": "none"}, ("none", PADDED)),  # padded rows have one attention
        ({"kind": "implicit_prm", "objective": "dpo", "packing": "segments"}, ("tree", "segments")),
        ({"kind": "implicit_prm", "objective": "dpo", "packing": "varlen"}, ("packed", "varlen")),
        ({"kind": "implicit_prm", "objective": "ce", "packing": "mask"}, ("packed", "mask")),
        ({"kind": "implicit_prm", "objective": "ce", "packing": "padded"}, ("none", PADDED)),
        ({"kind": "bt"}, (None, None)),  # written before packing existed
    ],
)
def test_old_manifests_read_in_the_new_vocabulary(manifest, expected):
    assert manifest_batching(manifest) == expected


def test_an_unknown_packing_in_a_manifest_is_an_input_error():
    with pytest.raises(InputError, match="field 'packing': unknown packing 'fast'"):
        manifest_batching({"packing": "fast"})


def test_export_writes_an_old_manifests_batching_in_the_new_vocabulary(tiny_scorer, tmp_path):
    from rewardmodels.export import export_scorer
    from rewardmodels.scorers import load_scorer
    from rewardmodels.training.trainer_base import TRAINING_MANIFEST

    run = shutil.copytree(tiny_scorer.parent / "run", tmp_path / "run")
    written = json.loads((run / TRAINING_MANIFEST).read_text())
    assert (written["packing"], written["attention"]) == ("tree", "segments")  # as this version trains
    old = {k: v for k, v in written.items() if k != "attention"} | {"packing": "padded"}
    (run / TRAINING_MANIFEST).write_text(json.dumps(old))
    out = export_scorer(run, tmp_path / "scorer")
    exported = json.loads((out / "reward_model.json").read_text())
    assert (exported["packing"], exported["attention"]) == ("none", PADDED)
    (old_score,) = load_scorer(out, device="cpu").score(["What is 1 + 2?"], ["3"])
    (score,) = load_scorer(tiny_scorer, device="cpu").score(["What is 1 + 2?"], ["3"])
    assert old_score == pytest.approx(score, abs=1e-6)  # the same weights, loaded the same way


@pytest.mark.parametrize(
    "attention, exact, trees",
    [
        ("segments", True, True),  # the segmented kernel: a tree scores exactly as its sequences
        ("segments", False, True),
        ("mask", False, True),  # a dense tree mask: equal up to rounding, enough for a head's logit
        ("mask", True, False),  # ... not for the long log-prob sums of DPO / implicit PRM scores
        ("varlen", False, False),  # flash-attention varlen cannot express a tree
        ("flex", False, False),
    ],
)
def test_scoring_runs_trees_only_where_a_tree_scores_as_its_sequences(attention, exact, trees):
    assert scoring_runs_trees(attention, exact) is trees
