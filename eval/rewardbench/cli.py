"""`rewardmodels eval rewardbench`: RewardBench v1 and v2 for any scorer, on CPU or GPU, resumable.

    rewardmodels eval rewardbench --scorer DIR                      # any scorer directory (load_scorer)
    rewardmodels eval rewardbench --model HF_ID_OR_DIR              # any sequence-classification RM
    rewardmodels eval rewardbench --model POLICY --ref-model REF    # DPO implicit reward (log-ratio x beta)
    rewardmodels eval rewardbench --model POLICY --ref-free avg     # reference-free DPO variants: sum|avg|norm
    rewardmodels eval rewardbench --baseline length                 # the shorter answer wins (no model)
    rewardmodels eval rewardbench --baseline logprob [--model LM]   # = --model LM --ref-free avg

Every text is tokenized once and each example's responses are scored as one group, through the best API
the scorer has (groups of token ids, token ids, or texts), so new scorer kinds work here without changes.

Scoring follows the official reward-bench code (allenai/reward-bench):
- v1: a pair is right only when chosen scores strictly above rejected (a tie is wrong). Sections weight each
  subset by the official EXAMPLE_COUNTS (math-prm counts as 984 rows). The overall score is the mean of
  the sections; the prior preference sets, when present, join it at half a section's weight.
- v2: best-of-4. The chosen response earns 1/k when it shares the top score with k-1 others, 0 when any
  rejected response beats it. The Ties subset has its own weighted formula. The overall score is the mean
  of the six subsets.

Per-example results are appended and fsynced chunk by chunk, so a killed run picks up where it stopped.
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path
from typing import Any

from rewardmodels.cli_common import (
    ArgumentParser,
    add_output_dir_argument,
    add_progress_argument,
    add_scorer_arguments,
    run_command,
    scorer_keywords,
    setup_logging,
    usage_error,
)
from rewardmodels.errors import InputError
from rewardmodels.eval.rewardbench.data import (
    V1_DATASET,
    V2_DATASET,
    apply_column_map,
    detect_version,
    load_rows,
    parse_column_map,
    prepare_examples,
)
from rewardmodels.eval.rewardbench.reports import markdown_report
from rewardmodels.eval.rewardbench.runner import run_rewardbench
from rewardmodels.scorers.groups import default_batch_size

logger = logging.getLogger("rewardmodels.eval.rewardbench")

BASELINE_CHOICES = ("length", "logprob")
LOGPROB_BASELINE_MODEL = "smollm2-135m"  # the untrained base model of the project's recipes


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text.strip("/")).strip("_") or "model"


def build_scorer(args) -> tuple[Any, dict]:
    """The scorer the flags ask for, and a description of it for the results and the resume fingerprint."""
    template = {"auto": None, "always": True, "never": False}[args.chat_template]
    if args.baseline == "length":
        from rewardmodels.scorers.baselines import LengthBaseline

        scorer = LengthBaseline()
        desc = {"mode": "baseline", "baseline": "length"}
        name = "baseline-length"
    elif args.scorer:
        from rewardmodels.scorers import ScorerOptions, load_scorer, read_manifest

        options = ScorerOptions.from_keywords(**scorer_keywords(args))
        scorer = load_scorer(args.scorer, options=options)
        kind = read_manifest(args.scorer).get("kind")
        desc = {"mode": "scorer_dir", "path": str(Path(args.scorer).resolve()), "kind": kind}
        if options.extra:  # another aggregation is another scoring: its results are not resumed
            desc["scorer_options"] = dict(options.extra)
        name = str(args.scorer)
    elif args.ref_model or args.ref_free:
        from rewardmodels.scorers.dpo import DPOScorer

        scorer = DPOScorer.from_pretrained(
            args.model,
            args.ref_model,
            device=args.device,
            dtype=args.dtype,
            beta=args.beta,
            ref_free=None if args.ref_model else args.ref_free,
            max_length=args.max_length or 4096,
            use_chat_template=template,
            trust_remote_code=args.trust_remote_code,
            attn_implementation=args.attn_implementation,
        )
        desc = {
            "mode": "dpo",
            "policy": args.model,
            "reference": args.ref_model,
            "beta": args.beta,
            "ref_free": scorer.ref_free,
        }
        name = args.model
        if args.baseline == "logprob":  # resolve_baseline turned it into --model M --ref-free avg
            desc["baseline"] = "logprob"
            name = "baseline-logprob"
    else:
        from rewardmodels.scorers.sequence import SequenceScorer

        scorer = SequenceScorer.from_hf_model(
            args.model,
            device=args.device,
            dtype=args.dtype,
            max_length=args.max_length or 4096,
            use_chat_template=template,
            trust_remote_code=args.trust_remote_code,
            attn_implementation=args.attn_implementation,
        )
        labels = scorer.model.config.num_labels
        if labels != 1:
            raise InputError(
                None,
                None,
                None,
                f"{args.model} has a {labels}-way classification head, not a single reward output. A plain "
                "causal LM gets a fresh random head here: train and export a scorer first, or score it as a "
                "DPO policy with --ref-model / --ref-free",
            )
        desc = {"mode": "hf_model", "model": args.model}
        name = args.model
    settings = input_settings(scorer)
    desc.update(
        kind=scorer.kind,
        max_length=settings["max_length"],
        use_chat_template=settings["use_chat_template"],
        dtype=args.dtype or "auto",  # None and "auto" load alike, and share results
    )
    return scorer, {"name": name, **desc}


def input_settings(scorer) -> dict:
    """How the scorer formats its input (max length, chat template, tokenizer), for the results and the
    resume fingerprint. These describe the run, they select no code path; a kind without them records None."""
    tokenizer = getattr(scorer, "tokenizer", None)
    return {
        "max_length": getattr(scorer, "max_length", None),
        "use_chat_template": getattr(scorer, "use_chat_template", None),
        "tokenizer": getattr(tokenizer, "name_or_path", None),
    }


def resolve_baseline(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Check the scorer-choosing flags together, and turn `--baseline logprob` into the reference-free DPO
    flags it stands for (`--model M --ref-free avg`, M defaulting to smollm2-135m), so it runs the one
    log-prob path there is. A combination that means two scorers is a usage error (`parser.error`)."""
    if args.baseline is None:
        if not (args.scorer or args.model):
            parser.error("one of --scorer, --model or --baseline is required")
        return
    if args.scorer:
        parser.error("--baseline scores with no scorer directory; drop --scorer")
    if args.ref_model or args.ref_free:
        parser.error("--baseline takes no --ref-model/--ref-free (logprob is --ref-free avg); drop them")
    if args.baseline == "length":
        if args.model:
            parser.error("--baseline length loads no model; drop --model")
        return
    args.model = args.model or LOGPROB_BASELINE_MODEL
    args.ref_free = "avg"


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="rewardmodels eval rewardbench", description=__doc__)
    # Not required as a group: --baseline stands in for both, and the logprob baseline takes --model
    # (resolve_baseline checks the combinations).
    who = p.add_mutually_exclusive_group()
    who.add_argument("--scorer", help="A scorer directory written by `rewardmodels export` (any kind).")
    who.add_argument(
        "--model",
        help="HF id, local dir, .gguf or 'smollm2-135m': a sequence-classification "
        "reward model, or the DPO policy with --ref-model / --ref-free.",
    )
    p.add_argument(
        "--baseline",
        choices=BASELINE_CHOICES,
        help="Score with a trivial baseline instead of a reward model. length: minus the response's length "
        "in characters (the shorter answer wins; equal lengths tie, and a tie is wrong); no model loads. "
        "logprob: the mean per-token log-prob of the response under the causal LM --model (default "
        f"{LOGPROB_BASELINE_MODEL}), exactly --model M --ref-free avg. A flag beside --scorer/--model "
        "rather than a third choice among them because the logprob baseline takes --model. Results are "
        "named baseline-<name>.",
    )
    p.add_argument("--ref-model", help="Reference causal LM: turns on DPO implicit scoring of --model.")
    p.add_argument(
        "--ref-free",
        choices=["sum", "avg", "norm"],
        help="DPO without a reference: summed, mean or -L2-norm of the policy's response log-probs.",
    )
    p.add_argument("--beta", type=float, default=1.0, help="DPO scale on the implicit reward (default 1.0).")
    p.add_argument(
        "--dataset",
        default=V1_DATASET,
        help=f"Hub id ({V1_DATASET}, {V2_DATASET}) or a local "
        ".jsonl/.json/.parquet file or save_to_disk folder (default: %(default)s).",
    )
    p.add_argument("--split", help="Hub split (default: filtered for v1, test for v2).")
    p.add_argument(
        "--version", choices=["auto", "1", "2"], default="auto", help="Benchmark version (default: detect)."
    )
    p.add_argument("--column-map", help='JSON renaming source columns, e.g. \'{"question": "prompt"}\'.')
    p.add_argument("--subsets", help="Comma-separated subsets to score (the report marks the run partial).")
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="Sequences per forward (default: one example at a time on CPU, where that is fastest; 16 on GPU, "
        "8 for DPO).",
    )
    add_output_dir_argument(
        p,
        "Where results go (default: results/rewardbench/<model>, results/rewardbench/baseline-<name> for "
        "--baseline).",
    )
    p.add_argument(
        "--chat-template",
        choices=["auto", "always", "never"],
        default="auto",
        help="For --model: use the tokenizer's chat template (auto: when it has one).",
    )
    p.add_argument(
        "--drop-malformed", action="store_true", help="Drop and count malformed rows instead of stopping."
    )
    p.add_argument(
        "--overwrite", action="store_true", help="Discard earlier per-example results in --output-dir."
    )
    p.add_argument("--trust-remote-code", action="store_true", help="Allow model code from the Hub to run.")
    add_progress_argument(p)
    add_scorer_arguments(
        p,
        "Token limit per sequence; longer ones keep their end and are counted as truncated (default: the "
        "scorer's own, 4096 for --model). --device, --dtype, --max-length and --attn-implementation apply to "
        "--model as well; --scorer-option to --scorer only.",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    resolve_baseline(parser, args)
    setup_logging()
    if (args.ref_model or args.ref_free) and not args.model:
        raise usage_error("--ref-model and --ref-free need --model (the DPO policy)")
    if args.ref_model and args.ref_free:
        raise usage_error("--ref-free is for DPO without a reference; drop it or --ref-model")
    if args.scorer_option and not args.scorer:
        raise usage_error("--scorer-option sets options of a scorer directory's kind; it needs --scorer")

    # Data first: every malformed row is reported before a model is loaded.
    column_map = parse_column_map(args.column_map)
    rows = apply_column_map(load_rows(args.dataset, args.split), column_map, args.dataset)
    version = detect_version(rows, args.dataset) if args.version == "auto" else int(args.version)
    subsets = [s.strip() for s in args.subsets.split(",") if s.strip()] if args.subsets else None
    data = prepare_examples(rows, version, subsets, args.drop_malformed, source=args.dataset)
    if data.dropped:
        logger.warning("dropped %d malformed rows: %s", sum(data.dropped.values()), dict(data.dropped))
    if data.empty_responses:
        logger.warning("%d rows have an empty response (scored as they are)", data.empty_responses)

    scorer, desc = build_scorer(args)
    batch_size = args.batch_size or default_batch_size(scorer)
    output_dir = Path(args.output_dir or Path("results") / "rewardbench" / _slug(desc["name"]))
    settings = input_settings(scorer)
    run_info = {
        "model": desc["name"],
        "ref_model": args.ref_model,
        "tokenizer": settings["tokenizer"],
        "chat_template": "tokenizer" if settings["use_chat_template"] else None,
        "dataset": args.dataset,
        "split": args.split,
        "max_length": settings["max_length"],
        "scorer": desc,
        "fingerprint": {
            "dataset": args.dataset,
            "split": args.split,
            "column_map": column_map,
            "scorer": desc,
        },
    }
    outcome = run_rewardbench(
        scorer,
        data,
        output_dir,
        batch_size=batch_size,
        run_info=run_info,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    r = outcome.results
    rate = outcome.scored_examples / outcome.seconds if outcome.seconds > 0 else float("nan")
    print(markdown_report(r))
    print(
        f"scored {outcome.scored_examples} examples in {outcome.seconds:.1f}s ({rate:.2f} ex/s); "
        f"{len(outcome.records) - outcome.scored_examples} taken from an earlier run"
    )
    for kind, path in outcome.paths.items():
        if path.exists():
            print(f"{kind}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_command("eval rewardbench", main, None))
