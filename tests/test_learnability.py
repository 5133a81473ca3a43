"""The learnability tier (issue 22): each method learns a task whose only signal is one planted token.

Data come from tests/planted.py: random filler "steps", a bad response holding the token " bad", a good one
not. A tiny random Llama (tests/tiny.py) trains through the method's real `rewardmodels train <method>` entry
(`main`), for a fixed number of steps with fixed seeds, on rows written to a JSONL file; the run is exported
(`rewardmodels.export.export_scorer`) and scored through `rewardmodels.load_scorer` on held-out rows from
another generator seed, with the project's own metrics (ProcessBench's first-error F1 from
`eval/processbench_metrics.py`). A tiny model can learn one token, so a miss means broken plumbing: label
placement, masks, signs, the reference model, verdict parsing.

Every method has a control: the same run with the planted token replaced by an ordinary filler word in
training and held-out rows alike (labels kept), so that nothing in the rows tells good from bad. It must stay
at chance, which shows the threshold is not reachable through position, length or the evaluation itself.
(Shuffled labels were tried first and dropped: a model that can learn the token learns whatever direction the
shuffle's noise leaves, so its held-out accuracy landed anywhere from 0.0 to 0.9 with the seed.)

Two tests break a method on purpose, without touching library code, and show that its threshold fails: PRM
step labels shifted one step late (a wrapping collator), and the implicit PRM's reward sign flipped (the
trainer's `implicit_rewards` negated).

Measured when the thresholds were set (this tiny model, these seeds) are in each test's docstring.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

import rewardmodels
from rewardmodels.eval import step_baselines
from rewardmodels.eval.processbench_metrics import predict_from_scores
from rewardmodels.export import export_scorer
from rewardmodels.io import write_jsonl
from tests import learnability_crome as crome_case
from tests import planted
from tests.tiny import build_tokenizer

TRAIN_SEED, HELD_OUT_SEED = 0, 1
HELD_OUT = 200
CHANCE = (0.35, 0.65)  # accuracy band of a model without the signal: 0.5 +- 4 binomial sd at 200 rows


@pytest.fixture(scope="module", autouse=True)
def planted_token_is_one_token():
    planted.check_vocabulary(build_tokenizer())


def write_rows(path: Path, rows: list[dict]) -> str:
    write_jsonl(path, rows)
    return str(path)


def train(method: str, model_dir: Path, data: str, out: Path, steps: int, lr: float, *flags: str) -> Path:
    """`rewardmodels train <method>` through its `main`: full fine-tuning, batches of 16, no checkpoints;
    `flags` come last, so they override these."""
    main = importlib.import_module(f"rewardmodels.{method}.train").main
    code = main([
        "--model_name_or_path", str(model_dir), "--train_data", data, "--output_dir", str(out),
        "--max_steps", str(steps), "--learning_rate", str(lr), "--per_device_train_batch_size", "16",
        "--use_lora", "false", "--seed", str(TRAIN_SEED), "--save_strategy", "no", "--report_to", "none",
        "--logging_steps", "50", "--max_length", "256", *flags,
    ])  # fmt: skip
    assert code == 0
    return out


def scorer(run: Path, **options):
    return rewardmodels.load_scorer(export_scorer(run, run.parent / "scorer"), device="cpu", **options)


def first_error_f1(step_scores: list[list[float]], rows: list[dict]) -> dict:
    """ProcessBench's metric at the scorer's own threshold 0.5: the first step below it is the prediction."""
    return step_baselines.first_error_f1(rows, [predict_from_scores(s, 0.5) for s in step_scores])


# ---- BT -------------------------------------------------------------------------------------------------


def bt_accuracy(model_dir: Path, tmp_path: Path, plant: bool) -> float:
    rows = planted.preference_rows(planted.solutions(256, TRAIN_SEED), plant)
    run = train("bt", model_dir, write_rows(tmp_path / "train.jsonl", rows), tmp_path / "run", 32, 3e-3)
    held = planted.preference_rows(planted.solutions(HELD_OUT, HELD_OUT_SEED), plant)
    rm = scorer(run)
    prompts = [r["prompt"] for r in held]
    chosen = rm.score(prompts, [r["chosen"] for r in held])
    rejected = rm.score(prompts, [r["rejected"] for r in held])
    return sum(c > r for c, r in zip(chosen, rejected, strict=True)) / len(held)


def test_bt_learns_that_the_planted_token_loses(tiny_llama, tmp_path):
    """Pairs differ in one word, the rejected side's being the planted token: the reward read at the last
    token (tree-packed pairs in training, one sequence at a time in the exported scorer) must rank every
    held-out pair. Measured: 1.000."""
    accuracy = bt_accuracy(tiny_llama, tmp_path, plant=True)
    print(f"learnability bt planted: held-out pair accuracy {accuracy:.3f}")
    assert accuracy >= 0.9


def test_bt_control_without_the_token_stays_at_chance(tiny_llama, tmp_path):
    """The same pairs with an ordinary word where the token was: the rejected side is no worse, so pair
    accuracy must stay near 0.5. Measured: 0.535 (0.49-0.56 over five training seeds)."""
    accuracy = bt_accuracy(tiny_llama, tmp_path, plant=False)
    print(f"learnability bt control: held-out pair accuracy {accuracy:.3f}")
    assert CHANCE[0] <= accuracy <= CHANCE[1]


# ---- step PRM -------------------------------------------------------------------------------------------


class ShiftedStepLabels:
    """A deliberately broken collator: every solution's step labels moved one step late (step k gets step
    k-1's label, the first step True), the off-by-one a separator bug would cause."""

    def __init__(self, collator):
        self.collator = collator

    def __call__(self, features: list[dict]) -> dict:
        batch = self.collator(features)
        labels, rows = batch["step_labels"], batch["step_sequence"]
        shifted = labels.clone()
        for row in rows.unique():
            at = (rows == row).nonzero().flatten()
            shifted[at[1:]] = labels[at[:-1]]
            shifted[at[0]] = 1.0
        return {**batch, "step_labels": shifted}


def prm_first_error(model_dir: Path, tmp_path: Path, plant: bool) -> tuple[dict, float]:
    """(first-error metrics of the exported PRM on held-out rows, the position-only ceiling on them)."""
    rows = planted.stepwise_rows(planted.solutions(256, TRAIN_SEED), plant)
    run = train("prm", model_dir, write_rows(tmp_path / "train.jsonl", rows), tmp_path / "run", 96, 3e-3)
    held = planted.stepwise_rows(planted.solutions(HELD_OUT, HELD_OUT_SEED), plant)
    probs = scorer(run).score_steps([r["prompt"] for r in held], [r["completions"] for r in held])
    return first_error_f1(probs, held), planted.position_only_f1(held)


def test_prm_finds_the_first_planted_step(tiny_llama, tmp_path):
    """Step labels True before the planted step and False from it on, read at each step's separator
    (packed batches in training, padded in the scorer): the first step below 0.5 must be the planted one.
    Measured: F1 1.000 (acc_erroneous 1.000, acc_correct 1.000)."""
    metrics, ceiling = prm_first_error(tiny_llama, tmp_path, plant=True)
    print(
        f"learnability prm planted: first-error F1 {metrics['f1']:.3f} {metrics}, position-only {ceiling:.3f}"
    )
    assert metrics["f1"] >= 0.8


def test_prm_control_without_the_token_is_no_better_than_position(tiny_llama, tmp_path):
    """The same labels on text without the token: all a PRM can learn is where errors tend to sit, so its F1
    must stay near the best any step-count-only predictor reaches on these rows (`position_only_f1`).
    Measured: F1 0.287, ceiling 0.286."""
    metrics, ceiling = prm_first_error(tiny_llama, tmp_path, plant=False)
    print(
        f"learnability prm control: first-error F1 {metrics['f1']:.3f} {metrics}, position-only {ceiling:.3f}"
    )
    assert metrics["f1"] <= ceiling + 0.1


def test_prm_with_labels_shifted_one_step_fails(tiny_llama, tmp_path, monkeypatch):
    """The tier catches a label-placement bug: with every step label one step late, the PRM flags the step
    after the planted one, and the F1 threshold of the real test fails. Measured: F1 0.077 (acc_erroneous
    0.04), against 1.000 unbroken."""
    from rewardmodels.prm import train as prm_train

    real = prm_train.step_collator
    monkeypatch.setattr(prm_train, "step_collator", lambda *a, **k: ShiftedStepLabels(real(*a, **k)))
    metrics, _ = prm_first_error(tiny_llama, tmp_path, plant=True)
    print(f"learnability prm broken (labels shifted): first-error F1 {metrics['f1']:.3f} {metrics}")
    assert metrics["f1"] < 0.5


# ---- implicit PRM ---------------------------------------------------------------------------------------


def implicit_prm(model_dir: Path, tmp_path: Path, plant: bool) -> tuple[float, float]:
    """(held-out outcome accuracy, share of held-out wrong solutions whose lowest step reward is the planted
    step) of an implicit PRM trained with CE on outcome labels only, against the base model as reference."""
    sols = planted.solutions(2048, TRAIN_SEED)
    data = write_rows(tmp_path / "train.jsonl", planted.outcome_rows(sols, plant))
    run = train("implicit_prm", model_dir, data, tmp_path / "run", 96, 1e-2,
                "--objective", "ce", "--beta", "0.2", "--reference_cache_dir", str(tmp_path / "cache"))  # fmt: skip
    # Explicit readings: score = r(y) = q_T (its sign is the trainer's accuracy), score_steps = r_k.
    prm = scorer(run, aggregation="last", step_scores="reward")
    held_sols = planted.solutions(HELD_OUT, HELD_OUT_SEED)
    held = planted.outcome_rows(held_sols, plant)
    rewards = prm.score([r["prompt"] for r in held], [r["completion"] for r in held])
    accuracy = sum((r > 0) == (row["label"] == 1) for r, row in zip(rewards, held, strict=True)) / len(held)
    wrong = [s for i, s in enumerate(held_sols) if planted.is_planted(i)]
    steps = prm.score_steps([s.prompt for s in wrong], [list(s.edited(plant)) for s in wrong])
    lowest = [min(range(len(r)), key=r.__getitem__) for r in steps]
    hits = sum(k == s.planted_at for k, s in zip(lowest, wrong, strict=True)) / len(wrong)
    return accuracy, hits


def test_implicit_prm_learns_outcomes_and_puts_the_lowest_step_reward_on_the_planted_step(
    tiny_llama, tmp_path
):
    """From outcome labels only, r = beta * log pi/pi_ref must separate held-out solutions by sign, and the
    step holding the token must get the lowest step reward r_k: credit assignment without step labels.
    beta is 0.2: at the paper's 0.05 this tiny model spreads the penalty over every token after the planted
    one, and the next step was often the lowest. Measured: accuracy 0.990, lowest at the planted step in
    1.000 of wrong solutions."""
    accuracy, hits = implicit_prm(tiny_llama, tmp_path, plant=True)
    print(
        f"learnability implicit-prm planted: outcome accuracy {accuracy:.3f}, lowest step planted {hits:.3f}"
    )
    assert accuracy >= 0.9 and hits >= 0.8


def test_implicit_prm_control_without_the_token_stays_at_chance(tiny_llama, tmp_path):
    """The same outcome labels on text without the token: outcome accuracy must stay near 0.5.
    Measured: 0.465."""
    accuracy, hits = implicit_prm(tiny_llama, tmp_path, plant=False)
    print(
        f"learnability implicit-prm control: outcome accuracy {accuracy:.3f}, lowest step at the edit {hits:.3f}"
    )
    assert CHANCE[0] <= accuracy <= CHANCE[1]


def test_implicit_prm_with_the_reward_sign_flipped_fails(tiny_llama, tmp_path, monkeypatch):
    """The tier catches a sign bug: training on -r (the trainer's `implicit_rewards` negated, the scorer left
    as it is) teaches the opposite, and both thresholds of the real test fail. Measured: accuracy 0.085,
    lowest 0.000, against 0.990 and 1.000 unbroken."""
    from rewardmodels.implicit_prm import trainer as implicit_trainer

    real = implicit_trainer.implicit_rewards
    monkeypatch.setattr(implicit_trainer, "implicit_rewards", lambda *a, **k: -real(*a, **k))
    accuracy, hits = implicit_prm(tiny_llama, tmp_path, plant=True)
    print(
        f"learnability implicit-prm broken (sign flipped): outcome accuracy {accuracy:.3f}, lowest {hits:.3f}"
    )
    assert accuracy < 0.5 and hits < 0.5


# ---- generative verifier --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def short_format(tmp_path_factory) -> str:
    """ThinkPRM's format with a short user message and one-word templated critiques, so that a chain fits
    the tiny model's budget; verdicts ("\\boxed{correct}") and the decision ("Is the solution correct?
    Yes/No") are ThinkPRM's."""
    from rewardmodels.verification import load_format

    data = {
        **load_format().to_dict(), "name": "planted", "user_message": "{problem}\n{solution}",
        "templated_critique": "ok.", "templated_error": "wrong.", "templated_after_error": "after.",
    }  # fmt: skip
    path = tmp_path_factory.mktemp("format") / "planted.json"
    path.write_text(json.dumps(data))
    return str(path)


# The verifier must match "Step i:" in its own chain to the i-th step of the prompt. The 2-layer, 32-wide
# model learned that lookup within 300 steps for every seed tried only on 2-3 steps of 2-4 words; on the
# default 3-4 steps of 3-5 words it needed 600 steps (35 s) and still missed some seeds.
SHORT_SOLUTIONS = {"n_steps": (2, 3), "n_words": (2, 4)}


def generative(model_dir: Path, tmp_path: Path, fmt: str, plant: bool) -> tuple[float, dict]:
    """(held-out verdict accuracy of P(yes) >= 0.5, first-error metrics of the chains' step verdicts) of a
    verifier trained by SFT on templated chains of stepwise rows, scored greedily."""
    rows = planted.stepwise_rows(planted.solutions(1024, TRAIN_SEED, **SHORT_SOLUTIONS), plant)
    data = "templated:" + write_rows(tmp_path / "train.jsonl", rows)
    run = train("generative", model_dir, data, tmp_path / "run", 300, 1e-2, "--verification_format", fmt,
                "--max_length", "512")  # fmt: skip
    # 100 held-out rows: every one costs a generated chain of up to 160 tokens.
    held = planted.stepwise_rows(planted.solutions(HELD_OUT // 2, HELD_OUT_SEED, **SHORT_SOLUTIONS), plant)
    verifier = scorer(run, temperature=0.0, max_new_tokens=160, parallel=1, rounds=1)
    prompts, steps = [r["prompt"] for r in held], [r["completions"] for r in held]
    p_yes = verifier.score_solutions(prompts, steps)
    correct = [all(r["labels"]) for r in held]
    accuracy = sum((p >= 0.5) == c for p, c in zip(p_yes, correct, strict=True)) / len(held)
    # The chains are sampled once: score_steps reads the same (cached) greedy chains again.
    return accuracy, first_error_f1(verifier.score_steps(prompts, steps), held)


def test_generative_verifier_says_no_to_planted_solutions(tiny_llama, tmp_path, short_format):
    """SFT on chains that call the planted step incorrect; the exported verifier writes its own chain and
    is scored by P(Yes) after the appended decision question. Held-out verdict accuracy must be high, and
    the chains' step verdicts must find the planted step. Measured: verdict accuracy 1.000, first-error
    F1 0.969."""
    accuracy, metrics = generative(tiny_llama, tmp_path, short_format, plant=True)
    print(
        f"learnability generative planted: verdict accuracy {accuracy:.3f}, first-error F1 {metrics['f1']:.3f} {metrics}"
    )
    assert accuracy >= 0.9 and metrics["f1"] >= 0.8


def test_generative_control_without_the_token_stays_at_chance(tiny_llama, tmp_path, short_format):
    """The same chains on text without the token: verdict accuracy must stay near 0.5. Measured: 0.500."""
    accuracy, metrics = generative(tiny_llama, tmp_path, short_format, plant=False)
    print(
        f"learnability generative control: verdict accuracy {accuracy:.3f}, first-error F1 {metrics['f1']:.3f}"
    )
    assert CHANCE[0] <= accuracy <= CHANCE[1]


# ---- Crome ----------------------------------------------------------------------------------------------
# The task, the rule oracle and the budget are in tests/learnability_crome.py.


@pytest.fixture(scope="module")
def runs(tiny_llama, tmp_path_factory) -> dict:
    return crome_case.crome_runs(tiny_llama, tmp_path_factory.mktemp("crome-learnability"))


def test_the_augmentation_is_what_the_rules_say(runs):
    train, augmented = runs["train"], runs["augmented"]
    assert sum(r["spurious_side"] == "chosen" for r in train) / len(train) == pytest.approx(
        crome_case.CHOSEN_SHARE, abs=0.06
    )
    assert runs["stats"]["emitted"] == {
        "original": crome_case.TRAIN_ROWS,
        "causal": 2 * crome_case.TRAIN_ROWS,
        "neutral": crome_case.TRAIN_ROWS,
    }
    token = planted.PLANTED
    for pair in augmented:
        chosen, rejected = pair["chosen"].split(), pair["rejected"].split()
        if pair["tie"]:  # the oracle's restyle: the same words, the token where it was
            assert [w for w in rejected if w != "-"] == chosen
        else:  # original and causal pairs: the token on the rejected side only, one word swapped for it
            assert token in rejected and token not in chosen, pair
            # Either both sides carry the filler (the token may then replace one of its words) or the
            # answers match in length once it is taken off.
            same_length = len(chosen) == len(rejected)
            assert same_length or len(crome_case.unfilled(pair["chosen"]).split()) == len(
                crome_case.unfilled(pair["rejected"]).split()
            ), pair


def test_plain_bt_falls_for_the_spurious_transform(runs):
    """The control: plain BT on pairs where filler sits on the chosen side 90% of the time must fall for it
    (flipped test pairs far below unflipped); without it, a passing Crome test would prove nothing.
    Measured: flipped 0.055, unflipped 0.950."""
    plain = runs["plain"]
    assert plain["unflipped"] >= 0.9, plain
    assert plain["unflipped"] - plain["flipped"] >= 0.5, plain


def test_crome_closes_at_least_half_of_the_gap(runs):
    """The same steps on the original pairs plus the rule oracle's causal pairs and neutral ties: at least
    half of plain BT's flipped-unflipped gap is closed. Measured: flipped 1.000, unflipped 1.000 (gap closed
    1.0)."""
    plain, crome = runs["plain"], runs["crome"]
    gap_closed = (crome["flipped"] - plain["flipped"]) / (plain["unflipped"] - plain["flipped"])
    assert gap_closed >= 0.5, (plain, crome)
    assert crome["unflipped"] >= 0.9, crome  # robustness did not cost the easy case
    assert "pairs/tie/loss" in runs["crome_logged"] and "pairs/tie/loss" not in runs["plain_logged"]
