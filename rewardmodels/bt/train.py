"""`rewardmodels train bt`: Bradley-Terry reward-model training from a recipe."""

from __future__ import annotations

import logging

from rewardmodels.bt.config import BTConfig
from rewardmodels.bt.trainer import BTTrainer
from rewardmodels.data_builders.mixing import write_split
from rewardmodels.data_builders.schema import drop_identical_token_pairs
from rewardmodels.modeling import attn_implementation_of, load_tokenizer
from rewardmodels.packing import make_pair_collator
from rewardmodels.tokenization import resolve_chat_template, tokenize_pairs
from rewardmodels.training.arguments import DataArguments, ModelArguments
from rewardmodels.training.run import (
    base_manifest,
    final_eval,
    group_by_source,
    load_model,
    load_train_eval_sources,
    run_method,
)

logger = logging.getLogger("rewardmodels")


def build_trainer(model_args: ModelArguments, data_args: DataArguments, args: BTConfig) -> BTTrainer:
    train_rows, eval_rows, eval_sources = load_train_eval_sources(data_args, "preference", args.seed)
    if args.should_save:  # the split, for `rewardmodels report curve` and `curate --checkpoints`
        write_split(args.output_dir, train_rows, eval_rows, eval_sources)
    # Tokenized before the model loads: pairs that truncation makes identical are refused (or dropped) first.
    tokenizer = load_tokenizer(model_args.model_name_or_path, trust_remote_code=model_args.trust_remote_code)
    drop = data_args.invalid_rows == "drop"
    use_template = resolve_chat_template(data_args.use_chat_template, train_rows, tokenizer)
    train_set, cut = tokenize_pairs(tokenizer, train_rows, use_template, data_args.max_length)
    train_set, same = drop_identical_token_pairs(train_rows, train_set, drop, "training pairs")
    logger.info(
        "%d training pairs, %d truncated to max_length=%d, %d dropped as identical once tokenized",
        len(train_set), cut, data_args.max_length, same,
    )  # fmt: skip
    # Held-out pairs per source, so the final evaluation can report each source beside the pooled figure.
    held_out: dict[str, list[dict]] = {}
    for name, rows in group_by_source(eval_rows, eval_sources).items():
        features, eval_cut = tokenize_pairs(tokenizer, rows, use_template, data_args.max_length)
        held_out[name], eval_same = drop_identical_token_pairs(
            rows, features, drop, f"held-out pairs ({name})"
        )
        logger.info(
            "%d held-out pairs from %s, %d truncated, %d dropped as identical",
            len(held_out[name]), name, eval_cut, eval_same,
        )  # fmt: skip
    eval_set = [feature for features in held_out.values() for feature in features] or None
    model = load_model(model_args, tokenizer, num_labels=1, seed=args.seed)
    manifest = base_manifest("bt", model_args, data_args, use_template)
    manifest["truncated_train_pairs"] = cut
    manifest["identical_train_pairs_dropped"] = same
    manifest["seed"] = args.seed  # the new head's initialisation: `report curve` rebuilds the step-0 model
    return BTTrainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=pair_collator(args, data_args, model, tokenizer, train_set, manifest),
        processing_class=tokenizer,
        training_manifest=manifest,
        held_out_by_source=held_out if len(held_out) > 1 else None,
    )


def pair_collator(args: BTConfig, data_args: DataArguments, model, tokenizer, train_set, manifest: dict):
    """Tree packing when the pairs share prefixes, plain packing otherwise, padded with --packing none."""
    choice = make_pair_collator(
        args.packing,
        tokenizer.pad_token_id,
        attn_implementation_of(model),
        train_set,
        token_budget=args.packing_token_budget,
        max_length=data_args.max_length,
    )
    logger.info("batching: %s (%s; attention via %s)", choice.mode, choice.reason, choice.attention)
    manifest["packing"] = choice.mode
    return choice.collator


def main(argv: list[str] | None = None) -> int:
    return run_method(BTConfig, build_trainer, argv, "rewardmodels train bt", __doc__, final_eval)
