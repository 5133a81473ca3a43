"""Running a scorer over prepared RewardBench examples: tokenize once, score length-sorted chunks, journal
each finished chunk, and write results, per-example records and reports.

Each example's responses go to the scorer as one group (`rewardmodels.scorers.groups`), so scorers that can
share the prompt between them do. Finished records are appended to `examples.jsonl` chunk by chunk
(`rewardmodels.eval.journal`), so a killed run picks up where it stopped; at the end the file is rewritten
in dataset order.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from rewardmodels.data_builders.schema import text_of
from rewardmodels.eval.calibration import DIAGRAM_NAME, pair_calibration, write_diagram
from rewardmodels.eval.journal import Journal
from rewardmodels.eval.rewardbench.data import Example, PreparedData
from rewardmodels.eval.rewardbench.official import best_of_n, summarize_v1, summarize_v2
from rewardmodels.io import write_json, write_jsonl
from rewardmodels.scorers.capabilities import ReportsCompute
from rewardmodels.scorers.groups import (
    default_batch_size,
    encode_groups,
    score_encoded_groups,
    score_text_groups,
    takes_token_ids,
)

logger = logging.getLogger("rewardmodels.eval.rewardbench")

RESULTS_NAME = "results.json"
EXAMPLES_NAME = "examples.jsonl"  # the journal while a run is going, the dataset-ordered records after it
MARKDOWN_NAME = "report.md"
CHART_NAME = "report.png"
STATE_NAME = ".rewardbench_run.json"  # the journal's settings fingerprint


@dataclass
class RunOutcome:
    results: dict
    records: list[dict]
    scored_examples: int  # scored in this call (not taken over from an earlier, interrupted run)
    seconds: float  # wall time of the scoring loop in this call
    paths: dict[str, Path]


def record_key(record: dict) -> tuple[str, str]:
    """A record's identity, as `Example.key`: one id may sit in two subsets; json keeps 1 and "1" apart."""
    return json.dumps(record["id"]), record["subset"]


def plan_chunks(lengths: list[int], sizes: list[int], chunk_sequences: int) -> list[list[int]]:
    """Example indices, longest first, cut into chunks of about `chunk_sequences` sequences.

    The plan depends only on the data and the scorer's tokenization, so a resumed run rebuilds exactly the
    chunks an uninterrupted run would have used; the batches, and hence the scores, come out the same.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    chunks, current, count = [], [], 0
    for i in order:
        if current and count + sizes[i] > chunk_sequences:
            chunks.append(current)
            current, count = [], 0
        current.append(i)
        count += sizes[i]
    if current:
        chunks.append(current)
    return chunks


def make_record(ex: Example, scores: list[float], version: int) -> dict:
    """v1: `correct` is chosen > rejected (a tie is wrong); v2: the best-of-4 credit, None for Ties."""
    chosen, rejected = scores[: ex.num_chosen], scores[ex.num_chosen :]
    if version == 1:
        return {
            "id": ex.id,
            "subset": ex.subset,
            "score_chosen": chosen[0],
            "score_rejected": rejected[0],
            "correct": chosen[0] > rejected[0],
        }
    # Ties gets its own subset-level formula; reward-bench leaves its per-prompt result empty too.
    credit = None if ex.subset.lower() == "ties" else best_of_n(scores)
    return {
        "id": ex.id,
        "subset": ex.subset,
        "score_chosen": chosen,
        "score_rejected": rejected,
        "correct": credit,
    }


def _count_nan_scores(records: list[dict]) -> int:
    def values(rec: dict) -> list:
        chosen, rejected = rec["score_chosen"], rec["score_rejected"]
        return (chosen if isinstance(chosen, list) else [chosen]) + (
            rejected if isinstance(rejected, list) else [rejected]
        )

    return sum(1 for r in records for v in values(r) if isinstance(v, float) and math.isnan(v))


def run_rewardbench(
    scorer,
    data: PreparedData,
    output_dir: str | os.PathLike,
    batch_size: int | None = None,
    chunk_sequences: int | None = None,
    run_info: dict | None = None,
    overwrite: bool = False,
    progress: bool = True,
    write_reports: bool = True,
) -> RunOutcome:
    """Score `data` with `scorer`, resuming from `output_dir` when an earlier run of the same setup stopped.

    `run_info` describes the run (model, dataset, settings) and goes into the results; its "fingerprint"
    entry must match an earlier run's before its per-example results are reused.
    """
    from tqdm.auto import tqdm

    batch_size = batch_size or default_batch_size(scorer)
    out = Path(output_dir)
    paths = {
        "results": out / RESULTS_NAME,
        "examples": out / EXAMPLES_NAME,
        "markdown": out / MARKDOWN_NAME,
        "chart": out / CHART_NAME,
        "calibration_chart": out / DIAGRAM_NAME,
    }
    run_info = dict(run_info or {})
    fingerprint = {
        "version": data.version,
        "examples": [list(e.key) for e in data.examples],
        **run_info.get("fingerprint", {}),
    }
    journal = Journal(paths["examples"], fingerprint, record_key, out / STATE_NAME, overwrite=overwrite)

    examples = data.examples
    prompts, groups = [e.prompt for e in examples], [e.responses for e in examples]
    if takes_token_ids(scorer):
        encoded = encode_groups(scorer, prompts, groups, progress)
        items, truncated = encoded.groups, encoded.truncated
        lengths = [max(len(s) for s in seqs) for seqs in items]
    else:
        items, truncated = None, None
        lengths = [max(len(text_of(e.prompt)) + len(text_of(r)) for r in e.responses) for e in examples]
    chunk_sequences = chunk_sequences or max(4 * batch_size, 32)
    chunks = plan_chunks(lengths, [len(e.responses) for e in examples], chunk_sequences)

    todo = sum(1 for e in examples if e.key not in journal)
    if todo < len(examples):
        logger.info(
            "resuming: %d of %d examples already scored in %s", len(examples) - todo, len(examples), out
        )
    bar = tqdm(total=todo, desc="rewardbench", unit="ex", disable=not progress, smoothing=0.1)
    scored = 0
    start = time.perf_counter()
    for chunk in chunks:
        if all(examples[i].key in journal for i in chunk):
            continue
        # A chunk is rescored whole, even when a torn write left part of it done, so its batches stay the
        # ones an uninterrupted run used.
        if items is not None:
            scores = score_encoded_groups(scorer, [items[i] for i in chunk], batch_size)
        else:
            scores = score_text_groups(
                scorer, [prompts[i] for i in chunk], [groups[i] for i in chunk], batch_size
            )
        fresh = sum(1 for i in chunk if examples[i].key not in journal)
        journal.append(make_record(examples[i], s, data.version) for i, s in zip(chunk, scores, strict=True))
        scored += fresh
        bar.update(fresh)
    bar.close()
    seconds = time.perf_counter() - start

    records = [journal.done[e.key] for e in examples]  # dataset order, whatever order chunks finished in
    summary = summarize_v1(records) if data.version == 1 else summarize_v2(records)
    results = {
        "benchmark": "rewardbench",
        "version": data.version,
        "accuracy": summary.pop("accuracy"),
        "num_prompts": summary.pop("num_prompts"),
        "model": run_info.get("model"),
        "ref_model": run_info.get("ref_model"),
        "tokenizer": run_info.get("tokenizer"),
        "chat_template": run_info.get("chat_template"),
        **summary,
        "data": {
            "dataset": run_info.get("dataset"),
            "split": run_info.get("split"),
            "rows": data.rows,
            "examples": len(examples),
            "malformed_dropped": sum(data.dropped.values()),
            "malformed_by_kind": dict(data.dropped),
            "empty_responses": data.empty_responses,
            "truncated_examples": sum(truncated) if truncated is not None else None,
            "max_length": run_info.get("max_length"),
            "nan_scores": _count_nan_scores(records),
            "notes": data.notes,
        },
        "scorer": run_info.get("scorer"),
        # ECE, Brier and AUROC of sigmoid(chosen - rejected), each pair in both orders (eval/calibration.py)
        "calibration": pair_calibration(records),
    }
    if isinstance(scorer, ReportsCompute):  # what scoring cost in this call, for compute/accuracy curves
        results["compute"] = scorer.compute_report()
    write_jsonl(paths["examples"], records)
    write_json(paths["results"], results)
    if write_reports:
        from rewardmodels.eval.report import write_text
        from rewardmodels.eval.rewardbench.reports import markdown_report, write_chart

        write_text(paths["markdown"], markdown_report(results))
        write_chart(paths["chart"], results)
        write_diagram(
            out, {"pairs": results["calibration"]}, f"RewardBench calibration: {results.get('model')}"
        )
    return RunOutcome(results, records, scored, seconds, paths)


__all__ = [
    "CHART_NAME",
    "EXAMPLES_NAME",
    "MARKDOWN_NAME",
    "RESULTS_NAME",
    "STATE_NAME",
    "RunOutcome",
    "default_batch_size",
    "make_record",
    "plan_chunks",
    "record_key",
    "run_rewardbench",
]
