"""`rewardmodels train prm`: step-level process reward model training from a recipe."""

from __future__ import annotations

import logging

from rewardmodels.errors import InputError
from rewardmodels.prm.config import PRMConfig
from rewardmodels.prm.trainer import PRMTrainer
from rewardmodels.tokenization import (
    ensure_separator_token,
    resolve_chat_template,
    separator_ids,
    tokenize_stepwise_rows,
)
from rewardmodels.training.arguments import DataArguments, ModelArguments
from rewardmodels.training.batching import run_collator
from rewardmodels.training.run import (
    base_manifest,
    canonical_reader,
    load_model,
    load_train_eval_data,
    run_method,
    trainer_inputs,
)

logger = logging.getLogger("rewardmodels")
# The head is read at every step separator (`load_backbone` explains why it keeps the sequence-cls class).
PRM_HEAD = "token_cls"


def check_hard_labels(rows: list[dict], where: str) -> None:
    """Hard-label training takes bools or exact 0/1; a fractional label means the data is soft."""
    for i, row in enumerate(rows):
        for j, label in enumerate(row["labels"]):
            if label is not None and not isinstance(label, bool) and label not in (0, 1):
                raise ValueError(
                    f"{where} row {i}, field 'labels[{j}]': {label!r} is not a hard label; "
                    "train with --label_mode soft (and --loss_type bce) for fractional labels"
                )


def load_prm_tokenizer(model_args: ModelArguments, args: PRMConfig):
    """The tokenizer, the separator's token ids, and whether a dedicated separator token was added.

    A dedicated separator token must be in the tokenizer before the model is built, so that the embeddings are
    resized and, under LoRA, the token's row is listed among the adapter's trainable and saved weights.
    """
    from rewardmodels.modeling import load_tokenizer

    tokenizer = load_tokenizer(model_args.model_name_or_path, trust_remote_code=model_args.trust_remote_code)
    if not args.separator_token:
        return tokenizer, separator_ids(tokenizer, args.step_separator), False
    token_id, added = ensure_separator_token(tokenizer, args.step_separator)
    logger.info(
        "step separator %r is token %d (%s)", args.step_separator, token_id, "added" if added else "reused"
    )
    return tokenizer, [token_id], added


def step_collator(args: PRMConfig, data_args: DataArguments, model, tokenizer, manifest: dict):
    """The run's step collator (`training.batching.collator_for`), recorded in the manifest."""
    return run_collator("prm", args, data_args, model, tokenizer, manifest)


def build_trainer(model_args: ModelArguments, data_args: DataArguments, args: PRMConfig) -> PRMTrainer:
    hard = args.label_mode == "hard"  # fractional labels are refused (or dropped) with the other bad rows
    read = canonical_reader("stepwise", data_args.column_map_dict(), hard_labels=hard)
    data = load_train_eval_data(data_args, args.seed, read)
    train_rows, eval_rows = data.train, data.held_out
    # Tokenized before the model loads, so that data that keeps no labelled step fails first.
    tokenizer, sep_ids, added = load_prm_tokenizer(model_args, args)
    use_template = resolve_chat_template(data_args.use_chat_template, train_rows, tokenizer)
    train_set, report = tokenize_stepwise_rows(
        tokenizer, train_rows, sep_ids, use_template, data_args.max_length, args.train_on_last_step_only
    )
    logger.info("training rows: %s", report)
    if not train_set:
        raise InputError(
            ", ".join(data_args.train_data),
            None,
            None,
            f"no training row keeps a labelled step within max_length={data_args.max_length}",
            hint="Raise --max_length, or give rows whose labelled steps come earlier.",
        )
    eval_set = None
    if eval_rows:
        # Held-out rows keep every step's label, also with train_on_last_step_only: the metric is per step.
        eval_set, eval_report = tokenize_stepwise_rows(
            tokenizer,
            eval_rows,
            sep_ids,
            use_template,
            data_args.max_length,
            False,
            "tokenizing held-out steps",
        )
        logger.info("held-out rows: %s", eval_report)
    trainable = sep_ids if args.separator_token else None  # the dedicated token's row, trained under LoRA
    model = load_model(model_args, tokenizer, args.num_labels, args.seed, trainable, head=PRM_HEAD)
    manifest = base_manifest(
        "prm", model_args, data_args, use_template, head=PRM_HEAD, dropped_rows=data.dropped
    )
    manifest.update(
        {
            "num_labels": args.num_labels,
            "step_separator": args.step_separator,
            "separator_token": args.separator_token,
            "separator_token_added": added,
            "separator_ids": sep_ids,
            "response_step_split": args.scorer_step_split,
            "aggregation": args.aggregation,
            "label_mode": args.label_mode,
            "loss_type": args.loss_type,
            "train_on_last_step_only": args.train_on_last_step_only,
            "step_tokenization": vars(report),
        }
    )
    collator = step_collator(args, data_args, model, tokenizer, manifest)
    return PRMTrainer(**trainer_inputs(args, model, tokenizer, collator, manifest, train_set, eval_set))


def main(argv: list[str] | None = None) -> int:
    return run_method(PRMConfig, build_trainer, argv, "rewardmodels train prm", __doc__, _final_eval)


def _final_eval(trainer: PRMTrainer) -> None:
    if trainer.eval_dataset is None:
        return
    # transformers evaluates at the last step of a step-based eval schedule already; on CPU a second pass over
    # the held-out rows can take as long as the training itself, so that evaluation is reused.
    last = next((h for h in reversed(trainer.state.log_history) if "eval_loss" in h), None)
    if last is not None and last.get("step") == trainer.state.global_step:
        metrics = {k: v for k, v in last.items() if k.startswith("eval_") or k == "epoch"}
    else:
        metrics = trainer.evaluate()
    trainer.training_manifest["final_eval"] = metrics
    logger.info("final held-out metrics: %s", metrics)
