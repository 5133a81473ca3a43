"""Implicit PRM training on a tiny Llama: what changes and what does not, the reference without a second copy
under LoRA, cached = recomputed reference log-probs, the cache never serving stale values, and export."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rewardmodels.implicit_prm.config import ImplicitPRMConfig
from rewardmodels.implicit_prm.train import build_trainer
from rewardmodels.training.arguments import DataArguments, ModelArguments, parse_layered
from tests.tiny import save_tiny_model


@pytest.fixture(scope="module")
def tiny_reference(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny-ref"), "llama", seed=1)


def make_trainer(model_dir, tmp_path, *extra: str):
    argv = [
        "--model_name_or_path", str(model_dir), "--train_data", "synthetic:n=8,seed=0", "--max_length", "128",
        "--output_dir", str(tmp_path / "run"), "--reference_cache_dir", str(tmp_path / "cache"),
        "--max_steps", "2", "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "4",
        "--learning_rate", "1e-2", "--save_strategy", "no", "--report_to", "none", "--seed", "0", *extra,
    ]  # fmt: skip
    return build_trainer(*parse_layered((ModelArguments, DataArguments, ImplicitPRMConfig), argv))


def params(module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in module.named_parameters()}


def first_batch(trainer):
    return trainer.data_collator([trainer.train_dataset[i] for i in range(4)])


def storages(obj) -> set[int]:
    """Data pointers of every parameter storage reachable from the trainer's modules."""
    found = set()
    for value in vars(obj).values():
        modules = [value] if isinstance(value, torch.nn.Module) else []
        if hasattr(value, "__dict__") and not isinstance(value, torch.nn.Module):
            modules += [v for v in vars(value).values() if isinstance(v, torch.nn.Module)]
        for m in modules:
            found |= {p.untyped_storage().data_ptr() for p in m.parameters()}
    return found


@pytest.mark.parametrize("objective", ["ce", "dpo"])
def test_full_training_changes_the_policy_and_not_its_separate_reference(
    tiny_llama, tiny_reference, tmp_path, objective
):
    trainer = make_trainer(tiny_llama, tmp_path, "--use_lora", "false", "--objective", objective,
                           "--reference", str(tiny_reference), "--reference_cache", "false")  # fmt: skip
    reference = trainer.reference.model
    assert trainer.reference.kind == "model" and reference is not None
    policy_before, reference_before = params(trainer.model), params(reference)
    trainer.train()
    changed = [
        n for n, p in trainer.model.named_parameters() if not torch.equal(p.detach().cpu(), policy_before[n])
    ]
    assert len(changed) == len(policy_before)  # every policy weight moved
    for name, p in reference.named_parameters():
        assert torch.equal(p.detach().cpu(), reference_before[name]), name
    assert not any(p.requires_grad for p in reference.parameters())


def test_lora_reference_is_the_adapter_disabled_base_with_no_second_copy(tiny_llama, tmp_path):
    from rewardmodels.causal.batches import batch_logprob_parts
    from rewardmodels.causal.logprobs import response_logprobs, sum_logprobs
    from rewardmodels.modeling import load_backbone

    trainer = make_trainer(tiny_llama, tmp_path, "--reference_cache", "false")
    assert trainer.reference.kind == "adapters" and trainer.reference.model is None
    # no second set of base weights: the trainer's modules hold exactly the policy's parameter storages
    assert storages(trainer) == {p.untyped_storage().data_ptr() for p in trainer.model.parameters()}
    base_before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_" not in n}
    lora_before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_" in n}
    trainer.train()
    now = dict(trainer.model.named_parameters())
    assert all(torch.equal(now[n].detach().cpu(), p) for n, p in base_before.items())
    assert sum(not torch.equal(now[n].detach().cpu(), p) for n, p in lora_before.items()) > 0
    # after training, the adapters-disabled pass equals the untouched base model loaded on its own
    parts = batch_logprob_parts(first_batch(trainer)).to(trainer.args.device)
    got = trainer.reference.logp_sums(parts)
    base = load_backbone(str(tiny_llama), "causal_lm", device="cpu").eval()
    with torch.no_grad():
        want = torch.stack([sum_logprobs(lp) for lp in response_logprobs(base, parts.to("cpu"))])
    torch.testing.assert_close(got.cpu(), want, rtol=0, atol=1e-5)
    with torch.no_grad():
        trained = torch.stack([sum_logprobs(lp) for lp in response_logprobs(trainer.model, parts)])
    assert (trained.cpu() - want).abs().max() > 1e-3  # the adapters do change the policy


@pytest.mark.parametrize("objective", ["ce", "dpo"])
def test_cached_and_recomputed_reference_give_the_same_loss(tiny_llama, tiny_reference, tmp_path, objective):
    # another model as the reference, so that rewards are not 0 (as they are for LoRA at initialisation)
    other = ("--objective", objective, "--use_lora", "false", "--reference", str(tiny_reference))
    cached = make_trainer(tiny_llama, tmp_path, *other)
    fresh = make_trainer(tiny_llama, tmp_path, *other, "--reference_cache", "false")
    with_ref, without_ref = first_batch(cached), first_batch(fresh)
    assert "reference_logps" in with_ref and "reference_logps" not in without_ref
    a = cached.compute_loss(cached.model, with_ref)
    b = fresh.compute_loss(fresh.model, without_ref)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert abs(a.item() - 0.693147) > 1e-3  # not the log 2 of zero rewards


def test_packed_tree_and_padded_batches_give_the_same_loss(tiny_llama, tiny_reference, tmp_path):
    other = ("--objective", "dpo", "--use_lora", "false", "--reference", str(tiny_reference))
    tree = make_trainer(tiny_llama, tmp_path, *other, "--reference_cache", "false")
    padded = make_trainer(tiny_llama, tmp_path, *other, "--reference_cache", "false", "--packing", "none")
    assert tree.data_collator.attention == "segments" and padded.data_collator.attention == "padded"
    batch = first_batch(tree)
    assert "packed_segments" in batch and batch["input_ids"].shape[0] == 1  # one row, prompts stored once
    torch.testing.assert_close(
        tree.compute_loss(tree.model, batch),
        padded.compute_loss(padded.model, first_batch(padded)),
        rtol=0,
        atol=1e-6,
    )


def test_the_reference_cache_is_keyed_by_data_reference_and_settings(tmp_path):
    from rewardmodels.causal.batches import ImplicitPRMCollator
    from rewardmodels.implicit_prm.ref_cache import ReferenceLogprobCache, attach_reference_logps
    from rewardmodels.implicit_prm.reference import Reference
    from rewardmodels.packing import PADDED

    class CountingReference(Reference):
        """Reference log-prob sums = -(number of response tokens) x (the fake reference's version)."""

        def __init__(self, version: float):
            self.kind, self.version, self.calls = "model", version, 0

        def logp_sums(self, batch):
            self.calls += 1
            return -self.version * torch.tensor(batch.counts, dtype=torch.float64)

    def features(last_token: int):
        return [
            {"sequences": [[1, 2, 3, 4, 5]], "response_starts": [2]},
            {"sequences": [[1, 2, 3, last_token]], "response_starts": [1]},
        ]

    collate = ImplicitPRMCollator(0, PADDED)
    settings = {"reference_fingerprint": "ref-v1", "max_length": 128, "use_chat_template": False}
    cache = ReferenceLogprobCache(tmp_path, settings)
    ref = CountingReference(1.0)
    rows = features(9)
    assert attach_reference_logps(rows, ref, collate, "cpu", cache) == {"computed": 2, "from_cache": 0}
    assert [f["reference_logps"] for f in rows] == [[-3.0], [-3.0]]
    # the same data and settings, a new process: everything from the file, the reference never runs
    again, ref2 = features(9), CountingReference(5.0)
    assert attach_reference_logps(again, ref2, collate, "cpu", ReferenceLogprobCache(tmp_path, settings)) == {
        "computed": 0, "from_cache": 2,
    }  # fmt: skip
    assert ref2.calls == 0 and [f["reference_logps"] for f in again] == [[-3.0], [-3.0]]
    # a changed row gets a new key: recomputed (by the v5 reference), never the stale v1 value
    changed = features(8)
    assert attach_reference_logps(changed, ref2, collate, "cpu", ReferenceLogprobCache(tmp_path, settings)) == {
        "computed": 1, "from_cache": 1,
    }  # fmt: skip
    assert [f["reference_logps"] for f in changed] == [[-3.0], [-15.0]]
    # another reference fingerprint, or other tokenization settings: another file, nothing reused
    for other in ({**settings, "reference_fingerprint": "ref-v2"}, {**settings, "max_length": 64}):
        other_cache = ReferenceLogprobCache(tmp_path, other)
        assert other_cache.path != cache.path and len(other_cache) == 0
        fresh = features(9)
        assert attach_reference_logps(fresh, ref2, collate, "cpu", other_cache)["computed"] == 2
        assert [f["reference_logps"] for f in fresh] == [[-15.0], [-15.0]]


def test_a_training_run_reuses_its_cache_and_export_scores_as_in_training(tiny_llama, tmp_path):
    from rewardmodels.causal.batches import batch_logprob_parts
    from rewardmodels.causal.fingerprints import model_fingerprint
    from rewardmodels.causal.logprobs import response_logprobs, sum_logprobs
    from rewardmodels.export import export_scorer
    from rewardmodels.scorers import load_scorer, read_manifest

    trainer = make_trainer(tiny_llama, tmp_path, "--step_separator", "\\n")
    assert all(len(f["reference_logps"]) == 1 for f in trainer.train_dataset)
    trainer.train()
    trainer.save_model(str(tmp_path / "run"))
    # the in-training reward of the first rows: policy sums from the trained model, reference from the cache
    batch = first_batch(trainer)
    parts = batch_logprob_parts(batch).to(trainer.args.device)
    with torch.no_grad():
        policy = torch.stack([sum_logprobs(lp) for lp in response_logprobs(trainer.model, parts)])
    in_training = (0.05 * (policy.cpu() - batch["reference_logps"])).tolist()
    assert max(abs(v) for v in in_training) > 1e-4  # two steps moved the adapters away from the base

    scorer_dir = export_scorer(tmp_path / "run", tmp_path / "scorer")
    manifest = read_manifest(scorer_dir)  # the config's defaults, written for the scorer
    assert (manifest["aggregation"], manifest["step_scores"]) == ("min", "sigmoid_q")
    # step rewards r_k (not the default sigmoid(q)), so that their min is what score() gives under min
    scorer = load_scorer(scorer_dir, device="cpu", aggregation="last", step_scores="reward")
    assert scorer.kind == "implicit_prm" and scorer.aggregation == "last" and scorer.beta == 0.05
    assert scorer.manifest["reference_fingerprint"] == model_fingerprint(str(tiny_llama))
    rows = [trainer.train_dataset[i] for i in range(4)]
    from_ids = scorer.score_ids([_encoded(f) for f in rows])
    assert from_ids == pytest.approx(in_training, abs=1e-5)
    # score_steps on the synthetic rows' own steps: their sum is q at the last step's end, never more than r
    from rewardmodels.data_builders.synthetic import outcome_rows

    row = outcome_rows(8, seed=0)[0]
    steps = row["completion"].split("\n")
    [step_scores] = scorer.score_steps([row["prompt"]], [steps])
    assert len(step_scores) == len(steps)
    # min over the same steps through score() (the manifest's aggregation) equals min of score_steps
    assert load_scorer(scorer_dir, device="cpu").score([row["prompt"]], [row["completion"]]) == pytest.approx(
        [min(step_scores)], abs=1e-6
    )
    # a second run on the same data and reference computes nothing: every value from the cache, whose file is
    # not even rewritten
    cache_file = Path(trainer.training_manifest["reference_cache"])
    written = cache_file.stat().st_mtime_ns
    again = make_trainer(tiny_llama, tmp_path)
    assert [f["reference_logps"] for f in again.train_dataset] == [
        f["reference_logps"] for f in trainer.train_dataset
    ]
    assert cache_file.stat().st_mtime_ns == written


def _encoded(feature: dict):
    from rewardmodels.causal.response_tokens import EncodedResponse

    return EncodedResponse(feature["sequences"][0], feature["response_starts"][0])
