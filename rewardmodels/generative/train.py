"""`rewardmodels train generative`: SFT of a ThinkPRM-style generative verifier on verification chains.

Data: chain rows from `rewardmodels build verification-cots` (teacher chains kept by ThinkPRM's filters), or
`templated:SPEC` for chains written from the gold labels of stepwise rows (smoke runs only: not the paper's
recipe). The data path is every method's: mixing options per source (`SPEC|eval=N,rows=N,weight=W,name=NAME`),
the held-out split per source (--eval_fraction, `eval=N`, or --eval_data), and --invalid_rows (a bad chain
row refused with its file, line and field, or dropped and counted in the manifest's `dropped_rows`). The loss
covers the chain tokens only (completion-only). The held-out metric is that same loss, the mean negative
log-likelihood of the held-out chains' tokens (`eval_loss`, and `eval_<source>_loss` for each source in
`final_eval_by_source` when there are several): verdict accuracy would need a generated chain per row.

The training manifest records the verification format and the verifier's scoring defaults, so
`rewardmodels export` writes a scorer directory of kind `generative` (plain `AutoModelForCausalLM` files) that
prompts and parses as trained.
"""

from __future__ import annotations

import logging

from rewardmodels.errors import InputError
from rewardmodels.generative.config import GenerativeConfig
from rewardmodels.generative.data import chain_features
from rewardmodels.generative.trainer import GenerativeSFTTrainer
from rewardmodels.training.arguments import DataArguments, ModelArguments
from rewardmodels.training.batching import run_collator
from rewardmodels.training.causal_lm import CAUSAL_LM_HEAD, load_causal_lm, load_causal_tokenizer
from rewardmodels.training.run import (
    RowReader,
    base_manifest,
    final_eval,
    held_out_features,
    load_train_eval_data,
    run_method,
    trainer_inputs,
)

logger = logging.getLogger("rewardmodels")


def chain_reader(fmt) -> RowReader:
    """The shared data path's reader of chain rows in verification format `fmt`."""
    from rewardmodels.data_builders.chain_rows import read_chain_rows

    def read(specs: list[str], drop: bool, max_rows: int | None):
        return read_chain_rows(specs, fmt, drop, max_rows)

    return read


def build_trainer(model_args: ModelArguments, data_args: DataArguments, args: GenerativeConfig):
    from rewardmodels.data_builders.chain_rows import chain_source_counts
    from rewardmodels.verification import load_format

    fmt = load_format(args.verification_format)
    data = load_train_eval_data(data_args, args.seed, chain_reader(fmt))
    # The `source` field of the chains drawn from the training specs (held-out ones included).
    sources = chain_source_counts(data.train + ([] if data_args.eval_data else data.held_out))
    tokenizer = load_causal_tokenizer(model_args)  # the vocabulary as saved
    train_set, report = chain_features(tokenizer, fmt, data.train, data_args.max_length)
    logger.info("training chains: %s; sources %s", report, sources)
    if not train_set:
        raise InputError(
            ", ".join(data_args.train_data),
            None,
            None,
            f"no training chain fits in max_length={data_args.max_length} tokens",
            hint="Raise --max_length, or give shorter chains.",
        )

    def held_out_chains(name: str, rows: list[dict]) -> list[dict]:
        features, eval_report = chain_features(tokenizer, fmt, rows, data_args.max_length)
        logger.info("held-out chains from %s: %s", name, eval_report)
        return features

    eval_set, held_out = held_out_features(data, held_out_chains)
    model = load_causal_lm(model_args, tokenizer, args.seed)
    manifest = base_manifest(
        "generative", model_args, data_args, True, head=CAUSAL_LM_HEAD, dropped_rows=data.dropped
    )
    manifest.update(
        {
            "verification_format": fmt.to_dict(),
            "verifier": args.verifier_defaults(),
            "chain_sources": sources,
            "chain_tokenization": vars(report),
        }
    )
    collator = run_collator("generative", args, data_args, model, tokenizer, manifest, train_set)
    inputs = trainer_inputs(args, model, tokenizer, collator, manifest, train_set, eval_set, held_out)
    return GenerativeSFTTrainer(**inputs)


def main(argv: list[str] | None = None) -> int:
    return run_method(
        GenerativeConfig, build_trainer, argv, "rewardmodels train generative", __doc__, final_eval
    )
