"""`rewardmodels train generative`: SFT of a ThinkPRM-style generative verifier on verification chains.

Data: chain rows from `rewardmodels build verification-cots` (teacher chains kept by ThinkPRM's filters), or
`templated:SPEC` for chains written from the gold labels of stepwise rows (smoke runs only: not the paper's
recipe). The loss covers the chain tokens only (completion-only). The training manifest records the
verification format and the verifier's scoring defaults, so `rewardmodels export` writes a scorer directory
of kind `generative` (plain `AutoModelForCausalLM` files) that prompts and parses as trained.
"""

from __future__ import annotations

import logging

from rewardmodels.generative.config import GenerativeConfig
from rewardmodels.generative.data import CompletionCollator, chain_features
from rewardmodels.generative.trainer import GenerativeSFTTrainer
from rewardmodels.training.arguments import DataArguments, ModelArguments
from rewardmodels.training.causal_lm import (
    CAUSAL_LM_HEAD,
    causal_batching,
    load_causal_lm,
    load_causal_tokenizer,
)
from rewardmodels.training.run import base_manifest, run_method

logger = logging.getLogger("rewardmodels")


def load_chain_data(data_args: DataArguments, fmt, seed: int) -> tuple[list[dict], list[dict], dict]:
    """Training and held-out chain rows (held out: --eval_data, else --eval_fraction of the training rows)."""
    import random

    from rewardmodels.data_builders.verification_cots import load_chain_rows

    drop = data_args.invalid_rows == "drop"
    train, sources = load_chain_rows(data_args.train_data, fmt, drop, data_args.max_train_rows)
    held_out: list[dict] = []
    if data_args.eval_data:
        held_out, _ = load_chain_rows(data_args.eval_data, fmt, drop)
    elif data_args.eval_fraction > 0:
        order = list(range(len(train)))
        random.Random(seed).shuffle(order)
        n_eval = max(1, int(len(train) * data_args.eval_fraction))
        held_out, train = [train[i] for i in order[:n_eval]], [train[i] for i in order[n_eval:]]
    return train, held_out, sources


def build_trainer(model_args: ModelArguments, data_args: DataArguments, args: GenerativeConfig):
    from rewardmodels.verification import load_format

    fmt = load_format(args.verification_format)
    train_rows, eval_rows, sources = load_chain_data(data_args, fmt, args.seed)
    tokenizer = load_causal_tokenizer(model_args)  # the vocabulary as saved
    train_set, report = chain_features(tokenizer, fmt, train_rows, data_args.max_length)
    logger.info("training chains: %s; sources %s", report, sources)
    if not train_set:
        raise ValueError(f"no training chain fits in max_length={data_args.max_length} tokens")
    eval_set = None
    if eval_rows:
        eval_set, eval_report = chain_features(tokenizer, fmt, eval_rows, data_args.max_length)
        logger.info("held-out chains: %s", eval_report)
        eval_set = eval_set or None
    model = load_causal_lm(model_args, tokenizer, args.seed)
    manifest = base_manifest("generative", model_args, data_args, True, head=CAUSAL_LM_HEAD)
    manifest.update(
        {
            "verification_format": fmt.to_dict(),
            "verifier": args.verifier_defaults(),
            "chain_sources": sources,
            "chain_tokenization": vars(report),
            "packing": args.packing,
        }
    )
    batching = causal_batching(
        model, tokenizer, args.packing == "packed", args.packing_token_budget, data_args.max_length
    )
    if batching.attention is None:
        collator = CompletionCollator(batching.pad_token_id, args.packing)
    else:
        logger.info("batching: packed (attention via %s)", batching.attention)
        collator = CompletionCollator(
            batching.pad_token_id, args.packing, batching.attention, args.packing_token_budget
        )
    return GenerativeSFTTrainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=collator,
        processing_class=tokenizer,
        training_manifest=manifest,
    )


def _final_eval(trainer) -> None:
    if trainer.eval_dataset is not None:
        trainer.training_manifest["final_eval"] = trainer.evaluate()


def main(argv: list[str] | None = None) -> int:
    return run_method(
        GenerativeConfig, build_trainer, argv, "rewardmodels train generative", __doc__, _final_eval
    )
