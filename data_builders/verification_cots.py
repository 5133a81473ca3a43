"""Verification chains for fine-tuning a generative verifier (ThinkPRM's data recipe, docs/generative.md), from
stepwise rows with gold step labels (PRM800K, ProcessBench, the synthetic task, any `stepwise` spec).

Teacher mode (the paper's; mukhal/ThinkPRM dataset/prm_dataset.py, LongThoughtCritiqueDataset). A row's labels
are fixed as ThinkPRM fixes them (`verification.fix_step_labels`; --no-fix-labels keeps them), its verifier
prompt goes to a teacher (`rewardmodels.sampling`: a local model, or a server with --endpoint) `--chains` times,
and each chain, normalised and parsed, is kept only when it passes, in order (the first failure is counted):

  1 malformed    a verdict for every step up to and including the first wrong one, and for all or none of
                 the later ones (ThinkPRM keeps chains that stop at the first error); none for a missing step
  2 disagreeing  every verdict matches the label up to and including the first wrong step (unknown labels
                 unchecked); --check-decision also drops a chain whose own decision is wrong (not ThinkPRM's)
  3 too_long     at most --max-chain-tokens tokens (ThinkPRM: 4,096), counted with --tokenizer
  4 balance      down-sampled (seeded) so neither outcome has more than --balance-ratio times the other's
                 chains (nothing dropped when one outcome has none: `balanced: false`)

A kept chain is cut after its last verdict and closed with the gold decision (`verification.close_chain`), at
most --max-per-row a row. Teacher samples are cached, so an interrupted run resumes and a rerun samples nothing.
The format is --format, else ThinkPRM's rule on --tokenizer (`reference_format`), written to OUTPUT.format.json
for `train generative --verification_format`. Templated mode (NOT the paper's; smoke runs): chains written from
the fixed gold labels (`verification.templated_chain`), every row `"source": "templated"`. Statistics go to
--stats (default OUTPUT.stats.json).
"""

from __future__ import annotations

import argparse
import logging
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

from rewardmodels.cli_common import progress_bar, run_command, setup_logging
from rewardmodels.verification import (
    VerificationFormat,
    chain_body,
    close_chain,
    cut_after_last_verdict,
    first_wrong_step,
    fix_step_labels,
    load_format,
    normalise_chain,
    parse_chain,
    templated_chain,
    verdicts_agree,
    verifier_prompt,
)

logger = logging.getLogger("rewardmodels")
MODES = ("teacher", "templated")
TEMPLATED_NOTE = (
    "templated chains: written from the gold labels, not sampled from a teacher (not ThinkPRM's recipe)"
)


@dataclass
class YieldStats:
    mode: str
    rows: int = 0
    labels_fixed: int = 0
    sampled: int = 0
    malformed: int = 0
    disagreeing: int = 0
    too_long: int = 0
    over_row_limit: int = 0
    stopped_at_first_error: int = 0
    skipped_unlabelled_rows: int = 0
    kept_before_balance: int = 0
    dropped_for_balance: int = 0
    kept: int = 0
    balance: dict = field(default_factory=dict)
    note: str = ""

    def as_dict(self) -> dict:
        out = asdict(self)
        out["pass_rate_filters_1_2"] = (
            (self.sampled - self.malformed - self.disagreeing) / self.sampled if self.sampled else None
        )
        out["yield"] = self.kept / self.sampled if self.sampled else None
        return out


def well_formed(verdicts: Sequence[bool | None], labels: Sequence) -> bool:
    """Filter 1's verdict count (ThinkPRM, prm_dataset.py:528: as many verdicts as labels up to the first error,
    or as steps): a verdict for every step up to and including the first wrong one, and for all or none of
    the steps after it."""
    wrong = first_wrong_step(labels)
    checked = len(labels) if wrong < 0 else wrong + 1
    after = [v is None for v in verdicts[checked:]]
    return all(v is not None for v in verdicts[:checked]) and (all(after) or not any(after))


def judge_chain(
    fmt: VerificationFormat,
    text: str,
    labels: Sequence,
    count_tokens: Callable[[str], int],
    max_chain_tokens: int,
    check_decision: bool = False,
) -> tuple[str | None, str]:
    """(the filter a teacher chain fails, or None when it is kept; the chain as it would be written), judged
    against `labels` as they are (`synthesize` fixes them first)."""
    text = normalise_chain(fmt, text)
    parsed = parse_chain(fmt, text, len(labels))
    if not well_formed(parsed.verdicts, labels) or parsed.extra_steps:
        return "malformed", text
    correct = first_wrong_step(labels) < 0
    decided = check_decision and parsed.decision not in (None, correct)
    if not verdicts_agree(parsed.verdicts, labels) or decided:
        return "disagreeing", text
    chain = close_chain(fmt, cut_after_last_verdict(fmt, chain_body(fmt, text)[0]), correct)
    if count_tokens(chain) > max_chain_tokens:
        return "too_long", chain
    return None, chain


def chain_row(
    row: dict, index: int, chain: str, fmt: VerificationFormat, source: str, generator: str, labels=None
) -> dict:
    """A training row: the problem, steps, the labels the chain was judged against (`labels`, default the
    row's; the row's own go to `gold_labels` when they differ), the chain (the text after the chain opener)
    and where it came from."""
    labels = list(row["labels"] if labels is None else labels)
    out = {
        "id": str(row.get("id", index)),
        "problem": _problem(row),
        "steps": list(row["completions"]),
        "labels": labels,
        "chain": chain,
        "solution_correct": first_wrong_step(labels) < 0,
        "source": source,
        "generator": generator,
        "format": fmt.name,
    }
    return out if labels == list(row["labels"]) else {**out, "gold_labels": list(row["labels"])}


def judged_labels(row: dict, fix_labels: bool, stats: YieldStats) -> list:
    """The row's labels, fixed as ThinkPRM fixes them when `fix_labels` (counted when that changes them)."""
    labels = fix_step_labels(row["labels"]) if fix_labels else list(row["labels"])
    stats.labels_fixed += labels != list(row["labels"])
    return labels


def balance(rows: list[dict], ratio: float | None, seed: int = 0) -> tuple[list[dict], int, dict]:
    """Rows down-sampled so neither outcome has more than ceil(ratio * the other's count), in their order;
    unchanged when ratio is None or one outcome is missing. Returns (rows, how many dropped, the balance)."""
    by = {True: [i for i, r in enumerate(rows) if r["solution_correct"]]}
    by[False] = [i for i, r in enumerate(rows) if not r["solution_correct"]]
    keep = set(range(len(rows)))
    if ratio is not None and by[True] and by[False]:
        small, large = sorted((by[True], by[False]), key=len)
        cap = math.ceil(ratio * len(small))
        if len(large) > cap:
            keep -= set(random.Random(seed).sample(large, len(large) - cap))
    kept = [r for i, r in enumerate(rows) if i in keep]
    counts = {"correct": sum(r["solution_correct"] for r in kept)}
    counts["incorrect"] = len(kept) - counts["correct"]
    counts["balanced"] = bool(counts["correct"] and counts["incorrect"])
    return kept, len(rows) - len(kept), counts


def synthesize(
    rows: Sequence[dict],
    sampler,
    fmt: VerificationFormat,
    chains: int,
    count_tokens: Callable[[str], int],
    max_chain_tokens: int = 4096,
    max_per_row: int | None = None,
    batch_rows: int = 8,
    fix_labels: bool = True,
    check_decision: bool = False,
) -> tuple[list[dict], YieldStats]:
    """Teacher chains for stepwise rows, their labels fixed (`fix_labels`), filtered by 1-3 (balancing is
    `balance`)."""
    stats = YieldStats("teacher", rows=len(rows))
    out: list[dict] = []
    for start in progress_bar(range(0, len(rows), batch_rows), desc="verification chains", unit="batch"):
        part = list(rows[start : start + batch_rows])
        prompts = [verifier_prompt(fmt, _problem(r), r["completions"]) for r in part]
        samples = sampler.complete_many([(p, chains) for p in prompts])  # one cached batch per part
        for offset, (row, texts) in enumerate(zip(part, samples, strict=True)):
            kept_here, labels = 0, judged_labels(row, fix_labels, stats)
            for text in texts:
                stats.sampled += 1
                failed, chain = judge_chain(fmt, text, labels, count_tokens, max_chain_tokens, check_decision)
                if failed:
                    setattr(stats, failed, getattr(stats, failed) + 1)
                elif max_per_row is not None and kept_here >= max_per_row:
                    stats.over_row_limit += 1
                else:
                    kept_here += 1
                    stats.stopped_at_first_error += None in parse_chain(fmt, chain, len(labels)).verdicts
                    fingerprint = sampler.generator.fingerprint
                    out.append(chain_row(row, start + offset, chain, fmt, "teacher", fingerprint, labels))
    stats.kept_before_balance = len(out)
    return out, stats


def templated(
    rows: Sequence[dict], fmt: VerificationFormat, count_tokens: Callable[[str], int] | None = None,
    max_chain_tokens: int = 4096, fix_labels: bool = True,
) -> tuple[list[dict], YieldStats]:  # fmt: skip
    """Templated chains from gold labels, fixed as in teacher mode (module docstring: not the paper's)."""
    stats = YieldStats("templated", rows=len(rows), note=TEMPLATED_NOTE)
    out = []
    for i, row in enumerate(rows):
        labels = judged_labels(row, fix_labels, stats)
        wrong = first_wrong_step(labels)
        if any(label is None for label in labels[: len(labels) if wrong < 0 else wrong + 1]):
            stats.skipped_unlabelled_rows += 1
            continue
        chain = templated_chain(fmt, labels)
        stats.sampled += 1
        if count_tokens is not None and count_tokens(chain) > max_chain_tokens:
            stats.too_long += 1
            continue
        out.append(chain_row(row, i, chain, fmt, "templated", "templated", labels))
    stats.kept_before_balance = len(out)
    return out, stats


def finish(rows: list[dict], stats: YieldStats, ratio: float | None, seed: int) -> list[dict]:
    """Filter 4 and the final counts."""
    rows, stats.dropped_for_balance, stats.balance = balance(rows, ratio, seed)
    stats.kept = len(rows)
    return rows


def _problem(row: dict) -> str:
    """The problem text of a stepwise row (a chat prompt: its last message)."""
    prompt = row["prompt"]
    return prompt if isinstance(prompt, str) else prompt[-1]["content"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The builder's flags, for `rewardmodels build verification-cots` and its own parser alike."""
    from rewardmodels.sampling import add_sampling_arguments

    parser.add_argument(
        "--rows", nargs="+", required=True,
        help="Stepwise data specs with gold step labels, e.g. 'prm800k_stepwise:FILE.parquet?sample=8' or "
        "'synthetic:n=100,seed=0' (the forms `rewardmodels train prm --train_data` takes).",
    )  # fmt: skip
    parser.add_argument("--output", "-o", required=True, help="Chain rows (JSONL) to write, atomically.")
    parser.add_argument("--stats", default=None, help="Yield statistics JSON (default: OUTPUT.stats.json).")
    parser.add_argument("--mode", choices=MODES, default="teacher",
                        help="teacher: sample and filter (ThinkPRM's recipe); templated: chains written from "
                        "the gold labels, for smoke runs only.")  # fmt: skip
    parser.add_argument("--format", default=None, help="Verification format: a template file or name (default: "
                        "ThinkPRM's rule on --tokenizer, module docstring).")  # fmt: skip
    parser.add_argument("--chains", type=int, default=4, help="Teacher chains sampled per row (ThinkPRM: 4).")
    parser.add_argument("--max-chain-tokens", type=int, default=4096, help="Filter 3: longest chain kept.")
    parser.add_argument("--max-per-row", type=int, default=None, help="Keep at most this many chains a row.")
    parser.add_argument("--balance-ratio", type=float, default=1.0,
                        help="Filter 4: neither outcome keeps more than this times the other's chains; 0 "
                        "turns balancing off.")  # fmt: skip
    parser.add_argument("--balance-seed", type=int, default=0, help="Seed of the balancing draw.")
    parser.add_argument("--batch-rows", type=int, default=8, help="Rows whose chains are sampled per call.")
    parser.add_argument("--tokenizer", default=None,
                        help="The trained verifier's tokenizer: counts chain tokens, picks the default format "
                        "(default: the local teacher's, or smollm2-135m with --endpoint).")  # fmt: skip
    parser.add_argument("--no-fix-labels", action="store_true", help="Judge against the labels as given.")
    parser.add_argument("--check-decision", action="store_true",
                        help="Filter 2 also checks the teacher's decision (not ThinkPRM's rule).")  # fmt: skip
    parser.add_argument("--invalid-rows", choices=["error", "drop"], default="error", help="Bad input rows.")
    add_sampling_arguments(parser, "Tokens per teacher chain.")


def run(args: argparse.Namespace) -> int:
    """Build the chains the `add_arguments` flags describe, and write rows, statistics and the format."""
    setup_logging()
    from rewardmodels.data_builders.sources import load_rows
    from rewardmodels.io import write_json, write_jsonl
    from rewardmodels.modeling import load_tokenizer
    from rewardmodels.sampling import open_sampler

    rows, report = load_rows(args.rows, "stepwise", drop_invalid=args.invalid_rows == "drop")
    logger.info("stepwise rows: %s", report)
    sampler = open_sampler(args) if args.mode == "teacher" else None
    try:
        tokenizer = (
            None if sampler is None or args.tokenizer else getattr(sampler.generator, "tokenizer", None)
        )
        if tokenizer is None:
            default = args.generator if sampler is None else "smollm2-135m"
            tokenizer = load_tokenizer(args.tokenizer or default, distinct_pad=False)
        fmt = load_format(args.format) if args.format else reference_format(tokenizer)
        count, fix = _counter(tokenizer), not args.no_fix_labels
        if sampler is None:
            chains, stats = templated(rows, fmt, count, args.max_chain_tokens, fix)
        else:
            chains, stats = synthesize(rows, sampler, fmt, args.chains, count, args.max_chain_tokens,
                                       args.max_per_row, args.batch_rows, fix, args.check_decision)  # fmt: skip
    finally:
        if sampler is not None:
            sampler.cache.close()
    note = "" if sampler is None else f"; teacher: {sampler.generated} generated, {sampler.hits} cached"
    chains = finish(chains, stats, args.balance_ratio or None, args.balance_seed)
    write_jsonl(args.output, chains)
    stats_path = args.stats or f"{args.output}.stats.json"
    write_json(stats_path, {**stats.as_dict(), "rows_spec": list(args.rows), "format": fmt.name})
    write_json(f"{args.output}.format.json", fmt.to_dict())
    print(
        f"verification-cots ({args.mode}, format {fmt.name}): {stats.rows} rows ({stats.labels_fixed} labels "
        f"fixed), {stats.sampled} chains, {stats.malformed} malformed, {stats.disagreeing} disagreeing, "
        f"{stats.too_long} too long, {stats.kept} kept ({stats.balance}){note}; wrote {args.output}, "
        f"{stats_path} and {args.output}.format.json"
    )
    return 0


def reference_format(tokenizer) -> VerificationFormat:
    """ThinkPRM's choice (prm_dataset.py:481-484: wrap the chain when '<think>' is in the vocabulary) for the
    verifier's tokenizer: `thinkprm_think`, less its opening tag when the chat template's generation prompt
    already ends with it; else `thinkprm`."""
    if "<think>" not in tokenizer.get_vocab():
        return load_format()
    fmt, chat = load_format("thinkprm_think"), [{"role": "user", "content": "x"}]
    opens = getattr(tokenizer, "chat_template", None) and tokenizer.apply_chat_template(
        chat, tokenize=False, add_generation_prompt=True
    ).rstrip().endswith(fmt.think_open.strip())
    return replace(fmt, name="thinkprm_think_close", think_open="") if opens else fmt


def _counter(tokenizer) -> Callable[[str], int]:
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])


def main(argv: list[str] | None = None) -> int:
    """`python -m rewardmodels.data_builders.verification_cots`: `rewardmodels build verification-cots`."""
    import sys

    from rewardmodels.data_builders.cli import main as build_main

    return build_main(["verification-cots", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(run_command("build verification-cots", main, None))
