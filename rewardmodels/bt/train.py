"""`rewardmodels train bt`: Bradley-Terry reward-model training from a recipe."""

from __future__ import annotations

import logging

from rewardmodels.bt.config import BTConfig
from rewardmodels.bt.trainer import BTTrainer
from rewardmodels.data_builders.mixing import write_split
from rewardmodels.data_builders.schema import drop_identical_token_pairs
from rewardmodels.modeling import load_tokenizer
from rewardmodels.tokenization import resolve_chat_template, tokenize_pairs
from rewardmodels.training.arguments import DataArguments, ModelArguments
from rewardmodels.training.batching import run_collator
from rewardmodels.training.run import (
    base_manifest,
    canonical_reader,
    final_eval,
    held_out_features,
    load_model,
    load_train_eval_data,
    run_method,
    trainer_inputs,
)

logger = logging.getLogger("rewardmodels")


def build_trainer(model_args: ModelArguments, data_args: DataArguments, args: BTConfig) -> BTTrainer:
    read = canonical_reader("preference", data_args.column_map_dict())
    data = load_train_eval_data(data_args, args.seed, read)
    if args.should_save:  # the split, for `rewardmodels report curve` and `curate --checkpoints`
        write_split(args.output_dir, data.train, data.held_out, data.held_out_sources)
    # Tokenized before the model loads: pairs that truncation makes identical are refused (or dropped) first.
    tokenizer = load_tokenizer(model_args.model_name_or_path, trust_remote_code=model_args.trust_remote_code)
    drop = data_args.invalid_rows == "drop"
    use_template = resolve_chat_template(data_args.use_chat_template, data.train, tokenizer)
    train_set, cut = tokenize_pairs(tokenizer, data.train, use_template, data_args.max_length)
    train_set, same = drop_identical_token_pairs(data.train, train_set, drop, "training pairs")
    logger.info(
        "%d training pairs, %d truncated to max_length=%d, %d dropped as identical once tokenized",
        len(train_set), cut, data_args.max_length, same,
    )  # fmt: skip

    def held_out_pairs(name: str, rows: list[dict]) -> list[dict]:
        features, eval_cut = tokenize_pairs(tokenizer, rows, use_template, data_args.max_length)
        kept, eval_same = drop_identical_token_pairs(rows, features, drop, f"held-out pairs ({name})")
        logger.info("%d held-out pairs from %s, %d truncated, %d dropped as identical",
                    len(kept), name, eval_cut, eval_same)  # fmt: skip
        return kept

    # Held-out pairs per source, so the final evaluation can report each source beside the pooled figure.
    eval_set, held_out = held_out_features(data, held_out_pairs)
    model = load_model(model_args, tokenizer, num_labels=1, seed=args.seed)
    manifest = base_manifest("bt", model_args, data_args, use_template, dropped_rows=data.dropped)
    manifest["truncated_train_pairs"] = cut
    manifest["identical_train_pairs_dropped"] = same
    manifest["seed"] = args.seed  # the new head's initialisation: `report curve` rebuilds the step-0 model
    collator = run_collator("bt", args, data_args, model, tokenizer, manifest, train_set)
    return BTTrainer(
        **trainer_inputs(args, model, tokenizer, collator, manifest, train_set, eval_set, held_out)
    )


def main(argv: list[str] | None = None) -> int:
    return run_method(BTConfig, build_trainer, argv, "rewardmodels train bt", __doc__, final_eval)
