"""RewardBench through real (tiny, random) models: --model, --scorer and load_scorer agree; DPO scoring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rewardmodels.errors import InputError
from rewardmodels.eval import rewardbench as rb
from rewardmodels.io import write_json

PROMPTS = [
    "what is the answer to the question",
    "hello world, please answer",
    "why is the sky blue? please answer the question with a good answer",
    "how good is a bad answer",
    "what was the question",
    "is yes a good answer",
]
RESPONSES = [
    ("the answer is yes", "no"),
    ("hello", "hello world hello world hello world"),
    ("a good answer is a good answer", "bad"),
    ("it is good", "it is bad and the question was bad and the answer was bad and so on"),
    ("the question was what", "what"),
    ("yes", "no it is not"),
]
SUBSETS = ["alpacaeval-easy", "hep-go", "donotanswer", "llmbar-natural", "hep-go", "alpacaeval-easy"]


@pytest.fixture(scope="module")
def fixture_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rbdata") / "rb.jsonl"
    rows = [
        {"prompt": p, "chosen": c, "rejected": r, "subset": s, "id": 100 + i}
        for i, (p, (c, r), s) in enumerate(zip(PROMPTS, RESPONSES, SUBSETS, strict=True))
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def tiny_scorer_dir(tiny_llama, tmp_path_factory) -> Path:
    """A BT scorer directory as `rewardmodels export` lays it out, around a tiny random Llama."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_llama, num_labels=1)
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    model.config.pad_token_id = tokenizer.pad_token_id
    out = tmp_path_factory.mktemp("tiny-scorer")
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    write_json(
        out / "reward_model.json",
        {"kind": "bt", "base_model": "tiny", "max_length": 64, "use_chat_template": True},
    )
    return out


@pytest.fixture(scope="module")
def tiny_llama_other(tmp_path_factory) -> Path:
    from tests.tiny import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("tiny-llama-seed1"), "llama", seed=1)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_model_scorer_and_load_scorer_give_identical_scores(tiny_scorer_dir, fixture_file, tmp_path):
    import rewardmodels

    common = ["--dataset", str(fixture_file), "--no-progress", "--batch-size", "4", "--max-length", "64"]
    assert rb.main(["--scorer", str(tiny_scorer_dir), "--output-dir", str(tmp_path / "s"), *common]) == 0
    assert rb.main(["--model", str(tiny_scorer_dir), "--output-dir", str(tmp_path / "m"), *common]) == 0
    via_scorer = read_jsonl(tmp_path / "s" / rb.EXAMPLES_NAME)
    via_model = read_jsonl(tmp_path / "m" / rb.EXAMPLES_NAME)
    assert via_scorer == via_model

    direct = rewardmodels.load_scorer(tiny_scorer_dir)
    chosen = direct.score(PROMPTS, [c for c, _ in RESPONSES])
    rejected = direct.score(PROMPTS, [r for _, r in RESPONSES])
    # load_scorer().score batches the texts differently (chosen and rejected apart), and float32 matmuls over
    # differently padded batches agree only to rounding, so this path is compared to 1e-6.
    assert [x["score_chosen"] for x in via_scorer] == pytest.approx(chosen, rel=1e-6, abs=1e-6)
    assert [x["score_rejected"] for x in via_scorer] == pytest.approx(rejected, rel=1e-6, abs=1e-6)
    assert [x["correct"] for x in via_scorer] == [c > r for c, r in zip(chosen, rejected, strict=True)]
    assert len(set(chosen + rejected)) == len(chosen + rejected)  # a real, non-constant scorer

    res = json.loads((tmp_path / "s" / rb.RESULTS_NAME).read_text())
    for name in (rb.MARKDOWN_NAME, rb.CHART_NAME):
        assert (tmp_path / "s" / name).stat().st_size > 0
    hep = [c > r for c, r, s in zip(chosen, rejected, SUBSETS, strict=True) if s == "hep-go"]
    assert res["extra_results"]["hep-go"] == sum(hep) / len(hep)


def test_truncated_rows_are_counted(tiny_scorer_dir, fixture_file, tmp_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_scorer_dir)
    limit = 40

    def n_tokens(p, r):
        msgs = [{"role": "user", "content": p}, {"role": "assistant", "content": r}]
        return len(tok.apply_chat_template(msgs, tokenize=True, return_dict=False))

    expected = sum(
        1 for p, (c, r) in zip(PROMPTS, RESPONSES, strict=True) if max(n_tokens(p, c), n_tokens(p, r)) > limit
    )
    assert 0 < expected < len(PROMPTS)
    rb.main(
        [
            "--scorer",
            str(tiny_scorer_dir),
            "--dataset",
            str(fixture_file),
            "--max-length",
            str(limit),
            "--output-dir",
            str(tmp_path),
            "--no-progress",
        ]
    )
    res = json.loads((tmp_path / rb.RESULTS_NAME).read_text())
    assert res["data"]["truncated_examples"] == expected and res["data"]["max_length"] == limit


# ---------------------------------------------------------------------------------------------------------
# DPO implicit scoring
# ---------------------------------------------------------------------------------------------------------
def manual_logps(model_dir: Path, prompt: str, response: str) -> torch.Tensor:
    """Per-token log-probs of the response under a causal LM, one sequence, no padding, no batching."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    user = [{"role": "user", "content": prompt}]
    head = tok.apply_chat_template(user, tokenize=True, add_generation_prompt=True, return_dict=False)
    full = tok.apply_chat_template(
        user + [{"role": "assistant", "content": response}], tokenize=True, return_dict=False
    )
    assert full[: len(head)] == head
    ids = torch.tensor([full])
    with torch.no_grad():
        logp = model(ids).logits[0, :-1].log_softmax(-1).gather(-1, ids[0, 1:, None]).squeeze(-1)
    return logp[len(head) - 1 :]


def test_dpo_reward_is_beta_times_summed_log_ratio(tiny_llama, tiny_llama_other):
    from rewardmodels.scorers.dpo import DPOScorer

    scorer = DPOScorer.from_pretrained(
        str(tiny_llama), str(tiny_llama_other), device="cpu", dtype="float32", beta=0.5
    )
    responses = [c for c, _ in RESPONSES]
    got = scorer.score(PROMPTS, responses, batch_size=4)  # padded batches of mixed lengths
    want = [
        0.5 * float(manual_logps(tiny_llama, p, r).sum() - manual_logps(tiny_llama_other, p, r).sum())
        for p, r in zip(PROMPTS, responses, strict=True)
    ]
    assert got == pytest.approx(want, rel=1e-4, abs=1e-4)
    assert all(abs(g) > 1e-3 for g in got)


@pytest.mark.parametrize("mode", ["sum", "avg", "norm"])
def test_dpo_reference_free_variants(tiny_llama, mode):
    from rewardmodels.scorers.dpo import DPOScorer

    scorer = DPOScorer.from_pretrained(str(tiny_llama), None, device="cpu", dtype="float32", ref_free=mode)
    got = scorer.score(PROMPTS[:3], [c for c, _ in RESPONSES[:3]], batch_size=2)
    want = []
    for p, (c, _) in zip(PROMPTS[:3], RESPONSES[:3], strict=True):
        lp = manual_logps(tiny_llama, p, c)
        want.append({"sum": lp.sum(), "avg": lp.mean(), "norm": -lp.norm(p=2)}[mode].item())
    assert got == pytest.approx(want, rel=1e-4, abs=1e-4)


def test_dpo_plain_text_response_tokens(tiny_llama):
    from rewardmodels.scorers.dpo import DPOScorer

    scorer = DPOScorer.from_pretrained(
        str(tiny_llama), None, device="cpu", ref_free="sum", use_chat_template=False
    )
    (enc,) = scorer.encode(["what is the answer"], ["the answer is yes"])
    tail = scorer.tokenizer.decode(enc[enc.response_start :])
    assert tail.strip().startswith("the answer is yes") and tail.endswith(scorer.tokenizer.eos_token)
    assert "what is the answer" not in tail


def test_dpo_same_policy_and_reference_ties_everything(tiny_llama, fixture_file, tmp_path):
    rb.main(
        [
            "--model",
            str(tiny_llama),
            "--ref-model",
            str(tiny_llama),
            "--dataset",
            str(fixture_file),
            "--output-dir",
            str(tmp_path),
            "--no-progress",
        ]
    )
    res = json.loads((tmp_path / rb.RESULTS_NAME).read_text())
    lines = read_jsonl(tmp_path / rb.EXAMPLES_NAME)
    assert all(x["score_chosen"] == 0.0 and x["score_rejected"] == 0.0 for x in lines)
    assert res["accuracy"] == 0.0  # every pair is a tie, and a tie is wrong
    assert res["ref_model"] == str(tiny_llama) and res["scorer"]["mode"] == "dpo"


def test_dpo_cli_matches_direct_scorer(tiny_llama, tiny_llama_other, fixture_file, tmp_path):
    from rewardmodels.scorers.dpo import DPOScorer

    rb.main(
        [
            "--model",
            str(tiny_llama),
            "--ref-model",
            str(tiny_llama_other),
            "--beta",
            "2",
            "--dataset",
            str(fixture_file),
            "--output-dir",
            str(tmp_path),
            "--no-progress",
        ]
    )
    lines = read_jsonl(tmp_path / rb.EXAMPLES_NAME)
    scorer = DPOScorer.from_pretrained(str(tiny_llama), str(tiny_llama_other), beta=2.0)
    direct = scorer.score(PROMPTS, [c for c, _ in RESPONSES])
    assert [x["score_chosen"] for x in lines] == pytest.approx(direct, rel=1e-5, abs=1e-5)


# ---------------------------------------------------------------------------------------------------------
# Shared-prompt group scoring (SequenceScorer.score_groups_ids) and resume through a real model
# ---------------------------------------------------------------------------------------------------------
def example_groups(scorer) -> list[list]:
    """Pairs, a v2-sized group with a repeated response, and a group of one, encoded by `scorer`."""
    groups = [scorer.encode([p, p], [c, r]) for p, (c, r) in zip(PROMPTS, RESPONSES, strict=True)]
    groups.append(scorer.encode([PROMPTS[0]] * 4, ["yes", "no", "yes", "the answer is no"]))
    groups.append(scorer.encode([PROMPTS[1]], ["alone"]))
    return groups


def assert_group_scores_equal_independent_ones(scorer, groups) -> list[float]:
    flat = scorer.score_ids([s for g in groups for s in g], batch_size=1)
    for batch_size in (1, 3, 16):
        got = scorer.score_groups_ids(groups, batch_size=batch_size)
        assert [len(g) for g in got] == [len(g) for g in groups]
        assert [v for g in got for v in g] == pytest.approx(flat, rel=1e-5, abs=1e-5)
    # identical responses inside a group must get identical scores
    assert got[-2][0] == pytest.approx(got[-2][2], abs=1e-6)
    assert len({round(v, 4) for v in flat}) > len(flat) // 2  # real, varied scores, not a constant
    return flat


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_group_scoring_matches_independent_sequences(tiny_scorer_dir, attn):
    from rewardmodels.scorers import load_scorer

    scorer = load_scorer(tiny_scorer_dir, device="cpu", dtype="float32", attn_implementation=attn)
    assert_group_scores_equal_independent_ones(scorer, example_groups(scorer))


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("ref_free", [None, "avg", "norm"])
def test_dpo_group_scoring_matches_independent_sequences(tiny_llama, tiny_llama_other, attn, ref_free):
    from rewardmodels.scorers.dpo import DPOScorer

    scorer = DPOScorer.from_pretrained(
        str(tiny_llama),
        None if ref_free else str(tiny_llama_other),
        device="cpu",
        dtype="float32",
        beta=0.5,
        ref_free=ref_free,
        attn_implementation=attn,
    )
    groups = example_groups(scorer)
    # "hello" / "hello world ...": the token prefix runs past the prompt into both responses
    assert groups[1][0][: groups[1][0].response_start + 1] == groups[1][1][: groups[1][1].response_start + 1]
    assert_group_scores_equal_independent_ones(scorer, groups)


class _Killed(Exception):
    pass


class KilledAfter:
    """Delegates to a real scorer and dies on its n-th group call, as a killed process would."""

    def __init__(self, scorer, calls: int):
        self.inner, self.calls = scorer, calls
        self.encode, self.device = scorer.encode, scorer.device

    def score_groups_ids(self, groups, batch_size=16):
        self.calls -= 1
        if self.calls == 0:
            raise _Killed
        return self.inner.score_groups_ids(groups, batch_size)


def test_resume_with_a_real_model_gives_byte_identical_files(tiny_scorer_dir, fixture_file, tmp_path):
    from rewardmodels.scorers import load_scorer

    scorer = load_scorer(tiny_scorer_dir)
    data = rb.prepare_examples(rb.load_rows(str(fixture_file)), 1)
    rb.run_rewardbench(scorer, data, tmp_path / "full", chunk_sequences=4, progress=False)
    with pytest.raises(_Killed):
        rb.run_rewardbench(KilledAfter(scorer, 2), data, tmp_path / "cut", chunk_sequences=4, progress=False)
    assert len((tmp_path / "cut" / rb.EXAMPLES_NAME).read_text().splitlines()) == 2
    out = rb.run_rewardbench(scorer, data, tmp_path / "cut", chunk_sequences=4, progress=False)
    assert out.scored_examples == len(PROMPTS) - 2
    for name in (rb.RESULTS_NAME, rb.EXAMPLES_NAME):
        assert (tmp_path / "cut" / name).read_bytes() == (tmp_path / "full" / name).read_bytes()


def test_model_without_a_single_reward_output_is_refused(tiny_llama, fixture_file, tmp_path):
    with pytest.raises(InputError, match="2-way classification head"):
        rb.main(
            [
                "--model",
                str(tiny_llama),
                "--dataset",
                str(fixture_file),
                "--output-dir",
                str(tmp_path),
                "--no-progress",
            ]
        )


def test_cpu_default_scores_one_example_per_forward_with_the_same_scores(
    tiny_scorer_dir, fixture_file, tmp_path
):
    import rewardmodels

    scorer = rewardmodels.load_scorer(tiny_scorer_dir, device="cpu")
    assert rb.default_batch_size(scorer) == 1
    scorer.device = torch.device("cuda")  # only read, never used: nothing runs after this line
    assert rb.default_batch_size(scorer) == 16
    assert rb.default_batch_size(object()) == 16  # a scorer that does not say where it runs

    common = ["--dataset", str(fixture_file), "--no-progress", "--max-length", "64"]
    assert rb.main(["--scorer", str(tiny_scorer_dir), "--output-dir", str(tmp_path / "d"), *common]) == 0
    big = ["--batch-size", "16", "--output-dir", str(tmp_path / "b")]
    assert rb.main(["--scorer", str(tiny_scorer_dir), *big, *common]) == 0
    default, batched = (
        read_jsonl(tmp_path / "d" / rb.EXAMPLES_NAME),
        read_jsonl(tmp_path / "b" / rb.EXAMPLES_NAME),
    )
    for key in ("score_chosen", "score_rejected"):
        assert [x[key] for x in default] == pytest.approx([x[key] for x in batched], rel=1e-5, abs=1e-5)
    assert [x["correct"] for x in default] == [x["correct"] for x in batched]


# ---------------------------------------------------------------------------------------------------------
# DPO scorer directories: load_scorer builds the same scorer as from_pretrained
# ---------------------------------------------------------------------------------------------------------
def dpo_directory(root: Path, policy: Path, manifest: dict, reference: Path | None = None) -> Path:
    import shutil

    shutil.copytree(policy, root)
    if reference is not None:
        shutil.copytree(reference, root / "reference")  # the manifest names it relative to the directory
    write_json(root / "reward_model.json", {"kind": "dpo", **manifest})
    return root


def test_dpo_scorer_directory_with_a_reference(tiny_llama, tiny_llama_other, tmp_path):
    from rewardmodels.scorers import load_scorer
    from rewardmodels.scorers.dpo import DPOScorer

    manifest = {"reference": "reference", "beta": 0.5, "max_length": 40}
    path = dpo_directory(tmp_path / "dpo", tiny_llama, manifest, tiny_llama_other)
    scorer = load_scorer(path, device="cpu")
    assert isinstance(scorer, DPOScorer) and scorer.max_length == 40 and scorer.beta == 0.5
    direct = DPOScorer.from_pretrained(
        str(tiny_llama), str(tiny_llama_other), device="cpu", beta=0.5, max_length=40
    )
    responses = [c for c, _ in RESPONSES]
    got = scorer.score(PROMPTS, responses)
    assert got == direct.score(PROMPTS, responses)  # same models, same batches: identical floats
    assert all(abs(g) > 1e-3 for g in got)
    assert scorer.last_truncated == direct.last_truncated and any(scorer.last_truncated)
    assert load_scorer(path, device="cpu", max_length=64).max_length == 64  # the caller's max_length wins


def test_dpo_scorer_directory_reference_free(tiny_llama, tmp_path):
    from rewardmodels.scorers import load_scorer
    from rewardmodels.scorers.dpo import DPOScorer

    path = dpo_directory(tmp_path / "dpo-free", tiny_llama, {"ref_free": "avg"})
    scorer = load_scorer(path, device="cpu", attn_implementation="eager")
    direct = DPOScorer.from_pretrained(str(tiny_llama), None, device="cpu", ref_free="avg")
    got = scorer.score(PROMPTS[:3], [c for c, _ in RESPONSES[:3]])
    assert got == pytest.approx(direct.score(PROMPTS[:3], [c for c, _ in RESPONSES[:3]]), rel=1e-6, abs=1e-6)
    with pytest.raises(ValueError, match="reference-free mode"):
        load_scorer(dpo_directory(tmp_path / "dpo-none", tiny_llama, {}), device="cpu")
