"""One run of `benchmarks/method_works.py` per method: train through the method's own `rewardmodels train
<method>` entry point (in this process, the recipe plus flags), export, and measure with `method_works_eval`.

Each `run_<method>(settings)` returns the lines to print (metric, value, baseline, control) and the details
for the JSON record. Generator seeds: training problems `seed`, held-out problems `seed + HELD_OUT` (another
generator seed, so no held-out problem was trained on), threshold-tuning problems `seed + TUNING`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import method_works_eval as ev
from rewardmodels.eval.step_baselines import gold_first_errors

logger = logging.getLogger("rewardmodels")

REPO = Path(__file__).resolve().parent.parent
HELD_OUT, TUNING = 1000, 2000
PERCENT_KEYS = ("acc_erroneous", "acc_correct", "f1")
RECIPES = {
    "bt": "recipes/bt/smollm2_synthetic.yaml",
    "prm": "recipes/prm/smollm2_synthetic.yaml",
    "implicit-prm": "recipes/implicit_prm/smollm2_synthetic_ce.yaml",
    "generative": "recipes/generative/smollm2_synthetic_templated.yaml",
    "crome": "recipes/bt/smollm2_synthetic_crome.yaml",
}


@dataclass
class Settings:
    """Everything one run depends on (recorded in the JSON); None leaves the recipe's value."""

    method: str
    task: str
    seed: int
    workdir: Path
    model: str | None = None
    train_rows: int = 1000
    test_rows: int = 200
    tune_rows: int = 200
    steps: int = 40
    max_length: int | None = None
    batch_size: int = 16
    max_new_tokens: int = 160
    temperature: float = 0.0
    parallel_temperature: float = 0.6
    parallel: int = 4
    parallel_rows: int | None = None
    control_rows: int | None = None
    step_scores: str | None = None
    transform: str = "filler"
    chosen_share: float = 0.9
    crome_transforms: list[str] | None = None
    extra_flags: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds of each training (+ export), by name

    def spec(self, n: int, offset: int = 0) -> str:
        return f"synthetic:n={n},seed={self.seed + offset},task={self.task}"

    def rows(self, schema: str, n: int, offset: int = 0) -> list[dict]:
        from rewardmodels.data_builders.sources import load_rows

        return load_rows(self.spec(n, offset), schema)[0]


@dataclass
class Line:
    metric: str
    value: float
    baseline: float
    control: float


# ---- training and export ----------------------------------------------------------------------------------


def train(s: Settings, name: str, train_data: str, eval_data: str | None, recipe: str | None = None) -> dict:
    """`rewardmodels train <method>` with the recipe and these overrides, into workdir/name; then export to
    workdir/name-scorer. Returns the training manifest (its `final_eval` when the run had held-out data)."""
    from rewardmodels.cli import main as cli_main
    from rewardmodels.export import export_scorer
    from rewardmodels.io import read_json_object
    from rewardmodels.training.trainer_base import TRAINING_MANIFEST

    method = "bt" if s.method == "crome" else s.method
    out = s.workdir / name
    argv = ["train", method, "--config", str(REPO / (recipe or RECIPES[s.method]))]
    argv += ["--train_data", train_data, "--seed", str(s.seed), "--output_dir", str(out)]
    argv += ["--max_steps", str(s.steps), "--logging_steps", str(max(1, s.steps // 4))]
    argv += [
        "--save_strategy",
        "no",
        "--eval_strategy",
        "no",
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
    ]
    if eval_data:
        argv += ["--eval_data", eval_data]
    if s.model:
        argv += ["--model_name_or_path", s.model]
    if s.max_length:
        argv += ["--max_length", str(s.max_length)]
    if s.method == "implicit-prm":
        argv += ["--reference_cache_dir", str(s.workdir / "reference-cache")]
    argv += s.extra_flags
    logger.info("method_works: rewardmodels %s", " ".join(argv))
    start = time.perf_counter()
    rc = cli_main(argv)
    if rc:
        raise SystemExit(f"rewardmodels {' '.join(argv[:2])} failed with exit code {rc}")
    export_scorer(out, s.workdir / f"{name}-scorer", overwrite=True)
    s.timings[f"train_and_export_{name}"] = round(time.perf_counter() - start, 1)
    return read_json_object(out / TRAINING_MANIFEST)


def scorer_dir(s: Settings, name: str = "run") -> Path:
    return s.workdir / f"{name}-scorer"


def trainer_eval(manifest: dict) -> dict:
    """The trainer's own held-out figures (`final_eval`) and the settings the run trained with."""
    final = {k: v for k, v in (manifest.get("final_eval") or {}).items() if isinstance(v, int | float)}
    return {
        "final_eval": final,
        "max_length": manifest.get("max_length"),
        "train_data": manifest.get("train_data"),
    }


def step_baselines(train_rows: list[dict], test_rows: list[dict], seed: int) -> dict:
    """All-correct, random, length and position-prior first-error figures (`eval.step_baselines`), F1 and
    accuracies in percent like ours."""
    from rewardmodels.eval.step_baselines import baseline_table

    table = baseline_table(train_rows, test_rows, seed)
    return {
        name: {k: ev.percent(v) if k in PERCENT_KEYS else v for k, v in m.items()}
        for name, m in table.items()
    }


def control_slice(s: Settings, rows: list[dict]) -> list[dict]:
    return rows[: s.control_rows] if s.control_rows else rows


# ---- the methods ------------------------------------------------------------------------------------------


def run_bt(s: Settings) -> tuple[list[Line], dict]:
    from rewardmodels.scorers import load_scorer

    manifest = train(s, "run", s.spec(s.train_rows), s.spec(s.test_rows, HELD_OUT))
    test = s.rows("preference", s.test_rows, HELD_OUT)
    accuracy = ev.pair_accuracy(ev.pair_scores(load_scorer(scorer_dir(s)), test, s.batch_size))
    control = ev.untrained_head_scorer(scorer_dir(s), manifest, s.seed)
    control_accuracy = ev.pair_accuracy(ev.pair_scores(control, control_slice(s, test), s.batch_size))
    length = ev.length_rule_accuracy(test)
    details = {
        "n_test": len(test),
        "trainer": trainer_eval(manifest),
        "length_rule_accuracy": length,
    }
    return [Line("pair_accuracy", accuracy, length, control_accuracy)], details


def run_prm(s: Settings) -> tuple[list[Line], dict]:
    from rewardmodels.scorers import load_scorer

    manifest = train(s, "run", s.spec(s.train_rows), s.spec(s.test_rows, HELD_OUT))
    test = s.rows("stepwise", s.test_rows, HELD_OUT)
    labels = gold_first_errors(test)
    prompts, steps = [r["prompt"] for r in test], [r["completions"] for r in test]
    trained = ev.f1_at(load_scorer(scorer_dir(s)).score_steps(prompts, steps, s.batch_size), labels, 0.5)
    control_rows = control_slice(s, test)
    control_scorer = ev.untrained_head_scorer(scorer_dir(s), manifest, s.seed)
    control_scores = control_scorer.score_steps(
        [r["prompt"] for r in control_rows], [r["completions"] for r in control_rows], s.batch_size
    )
    control = ev.f1_at(control_scores, gold_first_errors(control_rows), 0.5)
    baselines = step_baselines(s.rows("stepwise", s.train_rows), test, s.seed)
    details = {"n_test": len(test), "trained": trained, "control": control, "baselines": baselines,
               "trainer": trainer_eval(manifest)}  # fmt: skip
    return [Line("first_error_f1", trained["f1"], baselines["position_prior"]["f1"], control["f1"])], details


def run_implicit_prm(s: Settings) -> tuple[list[Line], dict]:
    from rewardmodels.scorers import load_scorer

    manifest = train(s, "run", s.spec(s.train_rows), s.spec(s.test_rows, HELD_OUT))
    # Outcome rows are these stepwise rows joined, so one read gives r(y) and the step scores of each.
    test = s.rows("stepwise", s.test_rows, HELD_OUT)
    tune = s.rows("stepwise", s.tune_rows, TUNING)
    c_test = control_slice(s, test)
    labels, tune_labels, c_labels = map(gold_first_errors, (test, tune, c_test))
    # aggregation "last": score() is r(y) = q_T, whose sign is ImplicitPRMTrainer's outcome prediction
    trained = load_scorer(scorer_dir(s), aggregation="last")
    reading = s.step_scores or trained.step_scores
    got, check = ev.implicit_readings(trained, test, s.batch_size)
    got_tune, _ = ev.implicit_readings(trained, tune, s.batch_size, check=0)
    del trained
    base = ev.reference_free_base_scorer(manifest)
    control, _ = ev.implicit_readings(base, c_test, s.batch_size, check=0)
    control_tune, _ = ev.implicit_readings(base, tune, s.batch_size, check=0)
    del base
    accuracy = ev.outcome_accuracy(got["outcome"], [y == -1 for y in labels])
    c_threshold = ev.accuracy_threshold(control_tune["outcome"], [y == -1 for y in tune_labels])
    c_accuracy = ev.outcome_accuracy(control["outcome"], [y == -1 for y in c_labels], c_threshold)
    # Both step readings, each with its own threshold tuned on the tuning split; `reading` is printed.
    f1 = {
        name: {
            "trained": ev.f1_tuned(got_tune[name], tune_labels, got[name], labels),
            "control": ev.f1_tuned(control_tune[name], tune_labels, control[name], c_labels),
        }
        for name in ("sigmoid_q", "reward")
    }
    baselines = step_baselines(s.rows("stepwise", s.train_rows), test, s.seed)
    majority = ev.majority_rate([y == -1 for y in labels])
    details = {
        "n_test": len(test), "n_tune": len(tune), "n_control": len(c_test), "step_scores": reading,
        "first_error": f1, "control_outcome_threshold": c_threshold, "baselines": baselines,
        "majority_label_rate": majority, "one_pass_check": check, "trainer": trainer_eval(manifest),
    }  # fmt: skip
    return [
        Line("outcome_accuracy", accuracy, majority, c_accuracy),
        Line("first_error_f1", f1[reading]["trained"]["f1"], baselines["position_prior"]["f1"],
             f1[reading]["control"]["f1"]),
    ], details  # fmt: skip


def run_generative(s: Settings) -> tuple[list[Line], dict]:
    from rewardmodels.scorers import load_scorer

    manifest = train(s, "run", "templated:" + s.spec(s.train_rows), None)
    test = s.rows("stepwise", s.test_rows, HELD_OUT)
    labels = gold_first_errors(test)
    cache = str(s.workdir / "chains.sqlite")

    def verifier(k: int, temperature: float):
        return load_scorer(scorer_dir(s), parallel=k, max_new_tokens=s.max_new_tokens, temperature=temperature,
                           sample_cache=cache)  # fmt: skip

    main = ev.verifier_figures(verifier(1, s.temperature), test, s.batch_size)
    # K sampled chains of a solution are its samples 0..K-1 in the shared cache, so K=1's chain is K's first.
    subset = test[: s.parallel_rows] if s.parallel_rows else test  # K chains cost K times one
    one = ev.verifier_figures(verifier(1, s.parallel_temperature), subset, s.batch_size)
    many = ev.verifier_figures(verifier(s.parallel, s.parallel_temperature), subset, s.batch_size)
    control_scorer = ev.untrained_verifier(manifest, str(s.workdir / "control-chains.sqlite"), parallel=1,
                                           max_new_tokens=s.max_new_tokens, temperature=s.temperature)  # fmt: skip
    control = ev.verifier_figures(control_scorer, control_slice(s, test), s.batch_size)
    baselines = step_baselines(s.rows("stepwise", s.train_rows), test, s.seed)
    majority = ev.majority_rate([y == -1 for y in labels])
    details = {"n_test": len(test), "n_parallel": len(subset), "n_control": len(control["p_yes"]),
               "main": main, "sampled_k1": one, f"sampled_k{s.parallel}": many, "control": control,
               "baselines": baselines, "majority_label_rate": majority, "trainer": trainer_eval(manifest)}  # fmt: skip
    return [
        Line("verdict_accuracy", main["verdict_accuracy"], majority, control["verdict_accuracy"]),
        Line("first_error_f1", main["f1"], baselines["position_prior"]["f1"], control["f1"]),
        Line(f"k{s.parallel}_minus_k1", many["verdict_accuracy"] - one["verdict_accuracy"],
             one["verdict_accuracy"], many["verdict_accuracy"]),
    ], details  # fmt: skip


def run_crome(s: Settings) -> tuple[list[Line], dict]:
    from rewardmodels.data_builders.crome import CromeSettings, augment
    from rewardmodels.data_builders.crome_rules import RuleOracle, arithmetic_answer_rules, spurious_pairs
    from rewardmodels.data_builders.spurious import TRANSFORMS
    from rewardmodels.io import write_jsonl
    from rewardmodels.sampling import SampleCache, Sampler, SamplingParams
    from rewardmodels.scorers import load_scorer

    if s.task != "a":
        raise SystemExit("crome: the rule oracle has rules for task a (answer slips) only")
    train_rows = spurious_pairs(s.rows("preference", s.train_rows), s.transform, s.chosen_share, s.seed)
    test = s.rows("preference", s.test_rows, HELD_OUT)
    tests = {"flipped": spurious_pairs(test, s.transform, 0.0, s.seed),
             "unflipped": spurious_pairs(test, s.transform, 1.0, s.seed)}  # fmt: skip
    # The tested transform is left out of Crome's own neutral transforms: a tie built from it would teach the
    # invariance the test measures directly, instead of through the oracle's causal and neutral pairs.
    transforms = tuple(s.crome_transforms or [t for t in TRANSFORMS if t != s.transform])
    oracle = RuleOracle(arithmetic_answer_rules())
    sampler = Sampler(oracle, SampleCache(":memory:"), SamplingParams(temperature=0.0))
    augmented, stats = augment(train_rows, sampler, CromeSettings(transforms=transforms))
    accuracy, manifests = {}, {}
    for name, rows in (("plain", train_rows), ("crome", augmented)):
        path = s.workdir / f"{name}-pairs.jsonl"
        write_jsonl(path, rows)
        manifests[name] = train(s, name, str(path), None)
        scorer = load_scorer(scorer_dir(s, name))
        for split, pairs in tests.items():
            accuracy[f"{name}_{split}"] = ev.pair_accuracy(ev.pair_scores(scorer, pairs, s.batch_size))
        del scorer
    gap = accuracy["plain_unflipped"] - accuracy["plain_flipped"]
    closed = (accuracy["crome_flipped"] - accuracy["plain_flipped"]) / gap if gap > 0 else math.nan
    crome_gap = accuracy["crome_unflipped"] - accuracy["crome_flipped"]
    details = {"accuracies": accuracy, "gap_plain": gap, "gap_crome": crome_gap,
               "gap_shrink": (gap - crome_gap) / gap if gap > 0 else math.nan,
               "n_train": {"plain": len(train_rows), "crome": len(augmented)}, "n_test": len(test),
               "crome_transforms": list(transforms), "augment_summary": stats,
               "trainer": {name: trainer_eval(m) for name, m in manifests.items()}}  # fmt: skip
    return [Line("gap_closed", closed, accuracy["plain_flipped"], accuracy["plain_unflipped"])], details


RUNS = {
    "bt": run_bt,
    "prm": run_prm,
    "implicit-prm": run_implicit_prm,
    "generative": run_generative,
    "crome": run_crome,
}


def run(s: Settings, keep: bool = False) -> tuple[list[Line], dict]:
    """The method's run in a fresh workdir, removed afterwards unless `keep` (each export is a full model)."""
    if s.workdir.exists():
        shutil.rmtree(s.workdir)
    s.workdir.mkdir(parents=True)
    try:
        # Trainers print their logs to stdout; keep it for the result lines only.
        with contextlib.redirect_stdout(sys.stderr):
            lines, details = RUNS[s.method](s)
        return lines, {**details, "timings_s": s.timings}
    finally:
        if not keep:
            shutil.rmtree(s.workdir, ignore_errors=True)
