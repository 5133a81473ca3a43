"""`rewardmodels eval processbench`: can a process reward model find the earliest wrong step?

ProcessBench rows hold a problem, its solution as a list of steps, and `label`: the 0-based index of the
earliest wrong step, or -1 when every step is correct. A PRM's prediction is the first step whose score falls
below a threshold t, or -1 when none does. A scorer that predicts the index itself (a generative verifier with
`predict_first_error(prompts, steps) -> list[int]`) is used as it is, with no threshold.

Per subset:
  acc_erroneous  exact matches of the index, over samples with label != -1
  acc_correct    share of label == -1 samples predicted as -1
  f1             their harmonic mean
and the mean of each over subsets. `--threshold` fixes t; `--tune-threshold-on SUBSET` picks the t that
maximises that subset's F1 and applies it to every subset (that subset's own F1 is then in-sample, and the
report says so). Results JSON, per-example JSONL and a markdown table are written atomically.

Step scores (or direct predictions) are journalled chunk by chunk in `scores_journal.jsonl`
(`rewardmodels.eval.journal`): a killed run resumes without re-scoring what is done, and a re-run with
another threshold scores nothing. A journal from another scorer, data or setting is refused unless
`--overwrite`. The metric itself is in `processbench_metrics`. ECE, Brier and AUROC of the step scores up to
the first error, and a reliability diagram (calibration.png), are reported too (`eval/calibration.py`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

from rewardmodels.cli_common import progress_bar
from rewardmodels.data_builders.schema import DataValidationError, RowError, located
from rewardmodels.errors import ROW, InputError, Location
from rewardmodels.eval import calibration
from rewardmodels.eval import processbench_metrics as metrics
from rewardmodels.eval.journal import Journal
from rewardmodels.eval.processbench_metrics import (
    candidate_thresholds,
    f1_curve,
    harmonic_mean,
    out_of_sample_line,
    predict_from_scores,
    subset_metrics,
    summarize,
    threshold_provenance,
    tune_threshold,
)
from rewardmodels.io import location_of, read_rows, write_json, write_jsonl
from rewardmodels.scorers.capabilities import PredictsFirstError, ReportsCompute, ScoresSteps

logger = logging.getLogger("rewardmodels")

HUB_ID = "Qwen/ProcessBench"
HUB_SUBSETS = ("gsm8k", "math", "olympiadbench", "omnimath")
JOURNAL_NAME = "scores_journal.jsonl"
FIX_HINT = "Fix the rows (official ProcessBench schema: problem, steps, label)."


# ---- data ----------------------------------------------------------------------------------------------


def subset_from_path(path: str | Path) -> str:
    """'processbench_gsm8k.json' -> 'gsm8k'; 'math.jsonl' -> 'math'."""
    name = Path(path).name
    for suffix in (".gz", ".jsonl", ".json", ".parquet"):
        name = name.removesuffix(suffix)
    return name.removeprefix("processbench_").removeprefix("processbench-")


def row_errors(row, i: int) -> list[RowError]:
    """Problems with row `i`: `problem` a string, `steps` a non-empty list of strings, `label` -1 or the
    index of a step."""
    if not isinstance(row, dict):
        return [RowError(i, "<row>", "wrong type", f"expected an object, got {type(row).__name__}")]
    errors = []
    if not isinstance(row.get("problem"), str):
        errors.append(
            RowError(
                i, "problem", "wrong type", f"expected a string, got {type(row.get('problem')).__name__}"
            )
        )
    steps = row.get("steps")
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
        errors.append(RowError(i, "steps", "wrong type", "expected a non-empty list of strings"))
        steps = None
    label = row.get("label")
    if isinstance(label, bool) or not isinstance(label, int):
        errors.append(RowError(i, "label", "wrong type", f"expected -1 or a step index, got {label!r}"))
    elif steps is not None and not -1 <= label < len(steps):
        errors.append(
            RowError(
                i, "label", "out of range", f"expected -1 or a step index below {len(steps)}, got {label}"
            )
        )
    return errors


def check_rows(rows: list[dict], source: str) -> None:
    """Every bad row of `rows`, reported together (the file's line or row, and the field), before any model
    work."""
    errors = [e for i, row in enumerate(rows) for e in located(row_errors(row, i), row, i)]
    if errors:
        raise DataValidationError(errors, source, hint=FIX_HINT)


def load_examples(
    datasets: Sequence[str] = (), hub_subsets: Sequence[str] = (), limit: int | None = None
) -> list[dict]:
    """ProcessBench rows from local files (the official schema; the subset comes from a `subset` field or the
    file name) and/or Hub splits, each with a `subset`; at most `limit` rows per subset, in file order."""
    examples: list[dict] = []
    sources: list[tuple[str, list[dict], str]] = [(p, read_rows(p), subset_from_path(p)) for p in datasets]
    for subset in hub_subsets:
        from datasets import load_dataset

        sources.append((f"{HUB_ID}:{subset}", load_dataset(HUB_ID, split=subset).to_list(), subset))
    for source, rows, default_subset in sources:
        check_rows(rows, source)
        taken: dict[str, int] = {}
        for i, row in enumerate(rows):
            subset = str(row.get("subset") or default_subset)
            if limit is not None and taken.get(subset, 0) >= limit:
                continue
            taken[subset] = taken.get(subset, 0) + 1
            examples.append(
                {
                    "id": str(row.get("id", f"{subset}-{i}")),
                    "subset": subset,
                    "problem": row["problem"],
                    "steps": list(row["steps"]),
                    "label": int(row["label"]),
                }
            )
    if not examples:
        raise InputError(
            None, None, None, "no ProcessBench rows: pass --dataset FILE and/or --hub [SUBSET ...]"
        )
    return examples


# ---- running a scorer ------------------------------------------------------------------------------------


def example_key(example: dict) -> tuple[str, str]:
    """An example's identity in the journal: (subset, id)."""
    return example["subset"], example["id"]


def _journal_record(example: dict, mode: str) -> dict:
    if mode == "direct":
        return {"id": example["id"], "subset": example["subset"], "prediction": example["prediction"]}
    scores = [None if math.isnan(s) else s for s in example["step_scores"]]  # JSON has no NaN
    return {"id": example["id"], "subset": example["subset"], "step_scores": scores}


def _restore(example: dict, record: dict, mode: str) -> None:
    if mode == "direct":
        example["prediction"] = None if record["prediction"] is None else int(record["prediction"])
    else:
        example["step_scores"] = [float("nan") if s is None else float(s) for s in record["step_scores"]]


def scoring_mode(scorer) -> str:
    """ "direct" for scorers that predict the earliest error themselves, "scores" for PRMs."""
    if isinstance(scorer, PredictsFirstError):
        return "direct"
    if isinstance(scorer, ScoresSteps):
        return "scores"
    raise TypeError(
        f"{type(scorer).__name__} has neither score_steps (a PRM) nor predict_first_error; "
        "ProcessBench needs one of them"
    )


def score_examples(
    scorer, examples: list[dict], batch_size: int = 16, chunk: int = 64, journal: Journal | None = None
) -> str:
    """Fill each example's `step_scores` (PRMs) or `prediction` (direct predictors); returns which it did.

    Examples are sorted by length and scored `chunk` at a time. With a journal, the examples it holds are
    filled from it, a chunk whose examples are all done is skipped, and each scored chunk is appended to it.
    """
    mode = scoring_mode(scorer)
    # Sorting by length keeps each chunk's padding small; results go back to their examples by reference.
    order = sorted(examples, key=lambda e: len(e["problem"]) + sum(len(s) for s in e["steps"]))
    done = journal.done if journal is not None else {}
    for e in examples:
        if example_key(e) in done:
            _restore(e, done[example_key(e)], mode)
    for start in progress_bar(range(0, len(order), chunk), desc="processbench", unit="chunk"):
        part = order[start : start + chunk]
        if all(example_key(e) in done for e in part):
            continue
        prompts, steps = [e["problem"] for e in part], [e["steps"] for e in part]
        if mode == "direct":
            for e, p in zip(part, scorer.predict_first_error(prompts, steps), strict=True):
                e["prediction"] = None if p is None else int(p)
        else:
            for e, s in zip(part, scorer.score_steps(prompts, steps, batch_size=batch_size), strict=True):
                e["step_scores"] = [float(x) for x in s]
        if journal is not None:
            journal.append(_journal_record(e, mode) for e in part)
    return mode


def evaluate(
    examples: list[dict], threshold: float = 0.5, tune_on: str | None = None, mode: str = "scores"
) -> dict:
    """Predictions and metrics for scored examples. With `tune_on`, the threshold is tuned on that subset."""
    info: dict = {"prediction": "first step with score < threshold, else -1"}
    if mode == "direct":
        if tune_on:
            raise ValueError(
                "--tune-threshold-on needs step scores; this scorer predicts the error index itself"
            )
        info = {"prediction": "the scorer's own predict_first_error", "threshold": None}
    else:
        if tune_on:
            tuning = [e for e in examples if e["subset"] == tune_on]
            if not tuning:
                known = sorted({e["subset"] for e in examples})
                raise ValueError(f"--tune-threshold-on {tune_on!r}: no such subset (have {known})")
            threshold, tuned_f1 = tune_threshold(
                [e["step_scores"] for e in tuning], [e["label"] for e in tuning]
            )
            info.update(
                {
                    "threshold_source": f"tuned on {tune_on}",
                    "tuned_on": tune_on,
                    "tuning_f1": tuned_f1,
                    "note": f"threshold chosen to maximise F1 on {tune_on} and applied to every subset; "
                    f"{tune_on}'s own F1 is in-sample",
                }
            )
        else:
            info["threshold_source"] = "fixed"
        info["threshold"] = threshold
        for e in examples:
            e["prediction"] = predict_from_scores(e["step_scores"], threshold)
    results = {**info, **summarize(examples)}
    # Undetermined predictions (an unscored step reached first), each counted as a miss (module docstring).
    results["undetermined_predictions"] = sum(1 for e in examples if e["prediction"] is None)
    results.update(calibration.processbench_calibration(examples, mode))  # steps up to the first error
    if tune_on:  # label every F1 in- or out-of-sample; the tuning subset's own under others' threshold
        results.update(threshold_provenance(examples, list(results["subsets"]), tune_on))
    if tune_on and len(results["subsets"]) > 1:
        others = [
            m["f1"] for name, m in results["subsets"].items() if name != tune_on and m["f1"] is not None
        ]
        results["average_f1_excluding_tuning_subset"] = sum(others) / len(others) if others else None
    return results


def markdown_report(results: dict, title: str) -> str:
    from rewardmodels.eval.report import markdown_table

    rows = [
        [name, m["n"], m["n_erroneous"], m["n_correct"], m["acc_erroneous"], m["acc_correct"], m["f1"]]
        for name, m in results["subsets"].items()
    ]
    avg = results["average"]
    rows.append(["**average**", "", "", "", avg["acc_erroneous"], avg["acc_correct"], avg["f1"]])
    table = markdown_table(
        ["subset", "n", "erroneous", "correct", "acc_erroneous", "acc_correct", "F1"],
        rows,
        percent_columns=(4, 5, 6),
        align_right=(1, 2, 3, 4, 5, 6),
    )
    if results.get("threshold") is None:
        how = "Prediction: the scorer's own earliest-error index."
    else:
        how = (
            f"Prediction: first step with score < {results['threshold']:.4g} ({results['threshold_source']})."
        )
    lines = [f"# ProcessBench: {title}", "", how]
    if results.get("note"):
        lines.append(f"Note: {results['note']}.")
    if results.get("limit"):
        lines.append(f"Only the first {results['limit']} rows of each subset were scored.")
    lines += ["Accuracies and F1 in percent.", "", table, ""]
    if out_of_sample_line(results):
        lines += [out_of_sample_line(results), ""]
    lines += metrics.solution_level_lines(results) + metrics.compute_line(results)
    return "\n".join(lines + calibration.markdown_lines(calibration.entries_of(results, "all steps")))


def write_outputs(results: dict, examples: list[dict], output_dir: str | Path, title: str) -> Path:
    out = Path(output_dir)
    write_json(out / "results.json", results)
    write_jsonl(
        out / "predictions.jsonl",
        (
            {
                "id": e["id"],
                "subset": e["subset"],
                "label": e["label"],
                "prediction": e["prediction"],
                "step_scores": [None if math.isnan(s) else s for s in e.get("step_scores", [])] or None,
                "correct": e["prediction"] == e["label"],
            }
            for e in examples
        ),
    )
    from rewardmodels.eval.report import write_text

    write_text(out / "results.md", markdown_report(results, title))
    calibration.write_diagram(out, calibration.entries_of(results, "all steps"), f"ProcessBench: {title}")
    return out


def attach_saved_scores(examples: list[dict], predictions_path: str | Path) -> None:
    """Step scores from an earlier run's predictions.jsonl, matched by id, so a threshold can be re-chosen
    without scoring again."""
    saved = {}
    for i, row in enumerate(read_rows(predictions_path)):
        if not isinstance(row, dict) or not isinstance(row.get("step_scores"), list):
            where = location_of(row, Location(str(predictions_path), i + 1, ROW))
            raise InputError.at(where, "step_scores", "no step scores to reuse")
        saved[(row["subset"], row["id"])] = [
            float("nan") if s is None else float(s) for s in row["step_scores"]
        ]
    for e in examples:
        scores = saved.get((e["subset"], e["id"]))
        if scores is None or len(scores) != len(e["steps"]):
            raise ValueError(
                f"{predictions_path}: no step scores for {e['subset']}/{e['id']} ({len(e['steps'])} steps)"
            )
        e["step_scores"] = scores


def run(
    scorer,
    examples: list[dict],
    output_dir: str | Path,
    threshold: float = 0.5,
    tune_on: str | None = None,
    batch_size: int = 16,
    title: str = "scorer",
    extra: dict | None = None,
    fingerprint: dict | None = None,
    overwrite: bool = False,
    chunk: int = 64,
) -> dict:
    """Score (unless `scorer` is None: the examples carry step scores already), evaluate and write outputs.

    Scores are journalled in `output_dir`, `chunk` examples at a time; `fingerprint` (scorer, data, options)
    must match the journal's before its scores are reused, and `overwrite` discards them.
    """
    mode = "scores"
    if scorer is not None:
        mode = scoring_mode(scorer)
        settings = {"mode": mode, "examples": [list(example_key(e)) for e in examples], **(fingerprint or {})}
        journal = Journal(
            Path(output_dir) / JOURNAL_NAME, settings, lambda r: (r["subset"], r["id"]), overwrite=overwrite
        )
        if len(journal):
            logger.info(
                "resuming: %d of %d examples already scored in %s", len(journal), len(examples), output_dir
            )
        score_examples(scorer, examples, batch_size, chunk, journal=journal)
    results = evaluate(examples, threshold, tune_on, mode)
    results = {"benchmark": "processbench", **(extra or {}), **results} | (extra or {})  # extra's fields win
    compute = scorer.compute_report() if isinstance(scorer, ReportsCompute) else None  # this run's examples
    results.update(metrics.solution_level_and_compute(examples, compute))
    unscored = sum(1 for e in examples for s in e.get("step_scores", []) if math.isnan(s))
    if unscored:  # steps beyond the scorer's max_length come back as NaN
        results["unscored_steps"] = unscored
    write_outputs(results, examples, output_dir, title)
    return results


def main(argv: list[str] | None = None) -> int:
    """`rewardmodels eval processbench`; the flags live in `processbench_cli`, which imports this module."""
    from rewardmodels.eval.processbench_cli import main as cli_main

    return cli_main(argv)


__all__ = [
    "DataValidationError", "HUB_ID", "HUB_SUBSETS", "JOURNAL_NAME", "attach_saved_scores",
    "candidate_thresholds", "check_rows", "evaluate", "example_key", "f1_curve", "harmonic_mean",
    "load_examples", "main", "markdown_report", "predict_from_scores", "row_errors", "run",
    "score_examples", "scoring_mode", "subset_from_path", "subset_metrics", "summarize", "tune_threshold",
    "write_outputs",
]  # fmt: skip
