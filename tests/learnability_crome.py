"""The Crome case of the learnability tier (tests/test_learnability.py, issue 22): on a tiny random Llama, plain BT falls for a spurious
feature that the Crome augmentation, built by the rule oracle, teaches it to look past.

The task is the tier's planted-token preference task (`tests/planted.py`): the rejected answer is the chosen
one with one word replaced by the planted token, the only causal signal. Training pairs get the neutral
`filler` transform (a fixed opening and closing sentence) on the chosen side with probability CHOSEN_SHARE
(`crome_rules.spurious_pairs`), so filler predicts the label on ~90% of them. Test pairs have it on the
rejected side (flipped: only the token gives the right answer) or on the chosen side (unflipped: both agree).

  control  plain BT, STEPS steps: flipped accuracy far below unflipped, i.e. the test can see the shortcut
  claim    BT on the original pairs + Crome's causal pairs (the token put into the chosen answer, taken out
           of the rejected one) + its neutral ties (the oracle's restyles, through BT's tie loss), from
           `crome.augment` with `RuleOracle(planted_token_rules)`, the same steps and batch size:
           gap_closed = (acc_flipped_crome - acc_flipped_plain) / (acc_unflipped_plain - acc_flipped_plain)
           is at least 0.5

Filler is left out of Crome's own neutral transforms (as in benchmarks/method_works.py): a filler tie would
teach the invariance the test measures directly, instead of through the oracle's pairs. The irrelevant-query
ties are off: here the token decides under any prompt, so "equally (ir)relevant" does not hold.

Measured on the 2-core CPU (data seed 0, training seed 0): plain flipped 0.12, unflipped 0.97; Crome flipped
1.00, unflipped 1.00; gap closed 1.0. Over data and training seeds 0, 3, 5 and 7, plain flipped stayed at
or below 0.14 with unflipped at or above 0.97, and Crome flipped was 1.00 at 80 steps; at 60 steps one seed
(3) still sat at 0.0, so STEPS keeps that margin. A faster learning rate (1e-2) lets plain BT learn the token
within the budget and the control fails (flipped 0.99): the budget is what makes the shortcut visible.
"""

from __future__ import annotations

from rewardmodels.bt.config import BTConfig
from rewardmodels.bt.train import build_trainer
from rewardmodels.data_builders.crome import CromeSettings, augment
from rewardmodels.data_builders.crome_rules import RuleOracle, planted_token_rules, spurious_pairs
from rewardmodels.data_builders.spurious import FILLER_CLOSING, FILLER_OPENING
from rewardmodels.io import write_jsonl
from rewardmodels.sampling import SampleCache, Sampler, SamplingParams
from rewardmodels.tokenization import tokenize_pairs
from rewardmodels.training.arguments import DataArguments, ModelArguments, parse_layered
from tests import planted

TRAIN_ROWS, TEST_ROWS, CHOSEN_SHARE = 128, 200, 0.9
STEPS, BATCH, LEARNING_RATE, MAX_LENGTH = 80, 16, 3e-3, 256
CROME = CromeSettings(attributes_per_row=1, transforms=(), irrelevant_query=False)


def train_and_test(model_dir, train_file, out_dir, tests: dict[str, list[dict]]) -> tuple[dict, set]:
    """Accuracy on each test set after STEPS steps of full fine-tuning, and the metric names logged."""
    args = parse_layered(
        (ModelArguments, DataArguments, BTConfig),
        [
            "--model_name_or_path", str(model_dir), "--train_data", str(train_file), "--output_dir", str(out_dir),
            "--max_steps", str(STEPS), "--per_device_train_batch_size", str(BATCH),
            "--learning_rate", str(LEARNING_RATE), "--lr_scheduler_type", "constant", "--warmup_steps", "0",
            "--use_lora", "false", "--use_chat_template", "never", "--max_length", str(MAX_LENGTH),
            "--logging_steps", str(STEPS), "--save_strategy", "no", "--report_to", "none", "--seed", "0",
        ],
    )  # fmt: skip
    trainer = build_trainer(*args)
    planted.check_vocabulary(trainer.processing_class)  # the token is one token, as the task promises
    trainer.train()
    accuracy = {}
    for name, rows in tests.items():
        features, cut = tokenize_pairs(trainer.processing_class, rows, False, MAX_LENGTH)
        assert cut == 0
        accuracy[name] = trainer.evaluate(eval_dataset=features, metric_key_prefix="eval")["eval_accuracy"]
    return accuracy, {k for entry in trainer.state.log_history for k in entry}


def crome_runs(model_dir, root) -> dict:
    """The training pairs, the augmentation and its statistics, and the held-out accuracies of plain BT and of
    BT on the Crome-augmented pairs (`plain`, `crome`: {flipped, unflipped}), with the metric names each logged."""
    base = planted.preference_rows(planted.solutions(TRAIN_ROWS, seed=0))
    train = spurious_pairs(base, "filler", CHOSEN_SHARE, seed=0)
    held_out = planted.preference_rows(planted.solutions(TEST_ROWS, seed=1))
    tests = {
        "flipped": spurious_pairs(held_out, "filler", 0.0),
        "unflipped": spurious_pairs(held_out, "filler", 1.0),
    }
    oracle = RuleOracle(planted_token_rules(planted.PLANTED))
    sampler = Sampler(oracle, SampleCache(root / "oracle.sqlite"), SamplingParams(temperature=0.0))
    try:
        augmented, stats = augment(train, sampler, CROME)
    finally:
        sampler.cache.close()
    out = {"train": train, "augmented": augmented, "stats": stats}
    for name, rows in (("plain", train), ("crome", augmented)):
        file = root / f"{name}.jsonl"
        write_jsonl(file, rows)
        out[name], out[f"{name}_logged"] = train_and_test(model_dir, file, root / name, tests)
    print("crome learnability:", {k: out[k] for k in ("plain", "crome")})
    return out


def unfilled(text: str) -> str:
    """`text` without the filler transform's opening and closing sentences (the spurious cue)."""
    return text.replace(FILLER_OPENING, "").replace(FILLER_CLOSING, "")
