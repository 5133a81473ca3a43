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
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from rewardmodels.cli_common import ArgumentParser, HelpFormatter, setup_logging
from rewardmodels.io import read_rows, write_json, write_jsonl

logger = logging.getLogger("rewardmodels")

HUB_ID = "Qwen/ProcessBench"
HUB_SUBSETS = ("gsm8k", "math", "olympiadbench", "omnimath")


# ---- data ---------------------------------------------------------------------------------------------------


def subset_from_path(path: str | Path) -> str:
    """'processbench_gsm8k.json' -> 'gsm8k'; 'math.jsonl' -> 'math'."""
    name = Path(path).name
    for suffix in (".gz", ".jsonl", ".json", ".parquet"):
        name = name.removesuffix(suffix)
    return name.removeprefix("processbench_").removeprefix("processbench-")


def check_rows(rows: list[dict], source: str) -> None:
    for i, row in enumerate(rows):
        steps = row.get("steps")
        if not isinstance(row.get("problem"), str):
            raise ValueError(f"{source}: row {i}, field 'problem': expected a string")
        if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
            raise ValueError(f"{source}: row {i}, field 'steps': expected a non-empty list of strings")
        label = row.get("label")
        if isinstance(label, bool) or not isinstance(label, int) or not -1 <= label < len(steps):
            raise ValueError(
                f"{source}: row {i}, field 'label': expected -1 or a step index below {len(steps)}, got {label!r}"
            )


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
        raise ValueError("no ProcessBench rows: pass --dataset FILE and/or --hub [SUBSET ...]")
    return examples


# ---- metric -------------------------------------------------------------------------------------------------


def predict_from_scores(scores: Sequence[float], threshold: float) -> int:
    """The first step scored below `threshold`, or -1. Unscored steps (NaN) never count as errors."""
    for i, s in enumerate(scores):
        if s is not None and not math.isnan(s) and s < threshold:
            return i
    return -1


def subset_metrics(labels: Sequence[int], predictions: Sequence[int]) -> dict:
    """acc_erroneous, acc_correct and F1 for one subset (fractions in [0, 1]; None when undefined)."""
    err = [p == y for y, p in zip(labels, predictions, strict=True) if y != -1]
    cor = [p == -1 for y, p in zip(labels, predictions, strict=True) if y == -1]
    acc_err = sum(err) / len(err) if err else None
    acc_cor = sum(cor) / len(cor) if cor else None
    return {
        "n": len(labels),
        "n_erroneous": len(err),
        "n_correct": len(cor),
        "acc_erroneous": acc_err,
        "acc_correct": acc_cor,
        "f1": harmonic_mean(acc_err, acc_cor),
    }


def harmonic_mean(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def _prefix_minima(scores: Sequence[float]) -> np.ndarray:
    # pred(t) = first i with s_i < t = first i with min(s_0..s_i) < t; NaN (unscored) never flags a step.
    values = np.array([np.inf if s is None or math.isnan(s) else s for s in scores], dtype=np.float64)
    return np.minimum.accumulate(values)


def f1_curve(step_scores: Sequence[Sequence[float]], labels: Sequence[int], thresholds: np.ndarray):
    """acc_erroneous, acc_correct and F1 at every threshold at once.

    An erroneous sample (label L) is right exactly when t lies in (m_L, m_{L-1}], with m the prefix minima of
    its scores (m_{-1} = +inf); a correct sample is right exactly when t <= m_last.
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    err_hits = np.zeros_like(thresholds)
    cor_hits = np.zeros_like(thresholds)
    n_err = n_cor = 0
    for scores, label in zip(step_scores, labels, strict=True):
        m = _prefix_minima(scores)
        if label == -1:
            n_cor += 1
            cor_hits += thresholds <= m[-1]
        else:
            n_err += 1
            upper = m[label - 1] if label > 0 else np.inf
            err_hits += (thresholds > m[label]) & (thresholds <= upper)
    acc_err = err_hits / n_err if n_err else np.full_like(thresholds, np.nan)
    acc_cor = cor_hits / n_cor if n_cor else np.full_like(thresholds, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(acc_err + acc_cor > 0, 2 * acc_err * acc_cor / (acc_err + acc_cor), 0.0)
    return acc_err, acc_cor, f1


def candidate_thresholds(step_scores: Sequence[Sequence[float]]) -> np.ndarray:
    """One threshold inside every interval on which predictions stay the same: F1 only changes where t
    crosses a step score, so the lowest score, the midpoints between neighbouring scores, and one value above
    the highest cover every distinct outcome."""
    values = np.unique(
        [s for scores in step_scores for s in scores if s is not None and not math.isnan(s)]
    ).astype(np.float64)
    if values.size == 0:
        return np.array([0.5])
    top = values[-1] + max(1e-6, (1.0 - values[-1]) / 2)
    return np.concatenate([values[:1], (values[1:] + values[:-1]) / 2, [top]])


def tune_threshold(step_scores: Sequence[Sequence[float]], labels: Sequence[int]) -> tuple[float, float]:
    """The threshold with the highest F1 (ties: the one closest to 0.5), and that F1."""
    thresholds = candidate_thresholds(step_scores)
    _, _, f1 = f1_curve(step_scores, labels, thresholds)
    best = np.flatnonzero(f1 == f1.max())
    pick = best[np.argmin(np.abs(thresholds[best] - 0.5))]
    return float(thresholds[pick]), float(f1[pick])


def summarize(examples: list[dict]) -> dict:
    """Per-subset metrics and their means over subsets, from examples that carry `label` and `prediction`."""
    subsets: dict[str, dict] = {}
    for name in dict.fromkeys(e["subset"] for e in examples):
        rows = [e for e in examples if e["subset"] == name]
        subsets[name] = subset_metrics([e["label"] for e in rows], [e["prediction"] for e in rows])
    average = {}
    for key in ("acc_erroneous", "acc_correct", "f1"):
        values = [m[key] for m in subsets.values() if m[key] is not None]
        average[key] = sum(values) / len(values) if values else None
    return {"subsets": subsets, "average": average}


# ---- running a scorer ---------------------------------------------------------------------------------------


def score_examples(scorer, examples: list[dict], batch_size: int = 16, chunk: int = 64) -> str:
    """Fill each example's `step_scores` (PRMs) or `prediction` (direct predictors); returns which it did."""
    direct = callable(getattr(scorer, "predict_first_error", None))
    if not direct and not callable(getattr(scorer, "score_steps", None)):
        raise TypeError(
            f"{type(scorer).__name__} has neither score_steps (a PRM) nor predict_first_error; "
            "ProcessBench needs one of them"
        )
    # Sorting by length keeps each chunk's padding small; results go back to their examples by reference.
    order = sorted(examples, key=lambda e: len(e["problem"]) + sum(len(s) for s in e["steps"]))
    for start in tqdm(range(0, len(order), chunk), desc="processbench", unit="chunk"):
        part = order[start : start + chunk]
        prompts, steps = [e["problem"] for e in part], [e["steps"] for e in part]
        if direct:
            for e, p in zip(part, scorer.predict_first_error(prompts, steps), strict=True):
                e["prediction"] = int(p)
        else:
            for e, s in zip(part, scorer.score_steps(prompts, steps, batch_size=batch_size), strict=True):
                e["step_scores"] = [float(x) for x in s]
    return "direct" if direct else "scores"


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
    return "\n".join(lines)


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
    return out


def attach_saved_scores(examples: list[dict], predictions_path: str | Path) -> None:
    """Step scores from an earlier run's predictions.jsonl, matched by id, so a threshold can be re-chosen
    without scoring again."""
    saved = {}
    for i, row in enumerate(read_rows(predictions_path)):
        if not isinstance(row.get("step_scores"), list):
            raise ValueError(f"{predictions_path}: row {i}, field 'step_scores': no step scores to reuse")
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
) -> dict:
    mode = "scores" if scorer is None else score_examples(scorer, examples, batch_size)
    results = evaluate(examples, threshold, tune_on, mode)
    results = {"benchmark": "processbench", **(extra or {}), **results}
    if getattr(scorer, "unscored_steps", 0):
        results["unscored_steps"] = scorer.unscored_steps
    write_outputs(results, examples, output_dir, title)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="rewardmodels eval processbench",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--scorer", default=None, help="Scorer directory written by `rewardmodels export`.")
    parser.add_argument(
        "--reuse-scores",
        default=None,
        metavar="PREDICTIONS_JSONL",
        help="Take step scores from an earlier run's predictions.jsonl instead of scoring (e.g. to tune t).",
    )
    parser.add_argument(
        "--dataset", nargs="+", default=[], help="Local ProcessBench files (official schema, .json/.jsonl)."
    )
    parser.add_argument(
        "--hub",
        nargs="*",
        default=None,
        metavar="SUBSET",
        help=f"Load subsets of {HUB_ID} from the Hub (all of {', '.join(HUB_SUBSETS)} when none are named).",
    )
    parser.add_argument("--threshold", type=float, default=0.5, help="t: a step scored below t is an error.")
    parser.add_argument(
        "--tune-threshold-on",
        default=None,
        metavar="SUBSET",
        help="Pick t to maximise this subset's F1 and apply it to all subsets (reported as such).",
    )
    parser.add_argument("--limit", type=int, default=None, help="Score only the first N rows of each subset.")
    parser.add_argument(
        "--output-dir", default=None, help="Where to write results (default: results/processbench/<scorer>)."
    )
    parser.add_argument("--batch-size", type=int, default=16, help="Solutions per forward pass.")
    parser.add_argument("--device", default=None, help="cuda, cpu, ... (default: cuda when available).")
    parser.add_argument(
        "--dtype", default=None, help="float32, bfloat16, ... (default: bf16 on CUDA, fp32 on CPU)."
    )
    parser.add_argument("--max-length", type=int, default=None, help="Override the scorer's max_length.")
    args = parser.parse_args(argv)
    setup_logging()

    if bool(args.scorer) == bool(args.reuse_scores):
        parser.error("give exactly one of --scorer and --reuse-scores")
    hub = list(HUB_SUBSETS) if args.hub == [] else (args.hub or [])
    examples = load_examples(args.dataset, hub, args.limit)
    if args.reuse_scores:
        attach_saved_scores(examples, args.reuse_scores)
        scorer, name = None, Path(args.reuse_scores).resolve().parent.name
    else:
        from rewardmodels.scorers import load_scorer

        kwargs = {"max_length": args.max_length} if args.max_length else {}
        scorer = load_scorer(args.scorer, device=args.device, dtype=args.dtype, **kwargs)
        name = Path(args.scorer).resolve().name
    output_dir = args.output_dir or Path("results") / "processbench" / name
    extra = {
        "scorer": str(args.scorer or args.reuse_scores),
        "datasets": list(args.dataset),
        "hub_subsets": hub,
    }
    if args.reuse_scores:
        extra["scores_reused_from"] = str(args.reuse_scores)
    if args.limit:
        extra["limit"] = args.limit
    results = run(
        scorer, examples, output_dir, args.threshold, args.tune_threshold_on, args.batch_size, name, extra
    )
    for subset, m in results["subsets"].items():
        print(
            f"{subset}: acc_erroneous={_pct(m['acc_erroneous'])} acc_correct={_pct(m['acc_correct'])} "
            f"F1={_pct(m['f1'])} (n={m['n']})"
        )
    print(f"average F1={_pct(results['average']['f1'])}; written to {output_dir}")
    return 0


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"
