"""`rewardmodels train implicit-prm`: an implicit PRM (a causal LM and its frozen reference) from outcome
labels (CE) or preference pairs (DPO), from a recipe."""

from __future__ import annotations

import logging
from pathlib import Path

from rewardmodels.causal.fingerprints import model_fingerprint
from rewardmodels.implicit_prm.config import SAME_AS_BASE, ImplicitPRMConfig
from rewardmodels.implicit_prm.data import drop_identical_pairs, encode_rows
from rewardmodels.implicit_prm.ref_cache import ReferenceLogprobCache, attach_reference_logps
from rewardmodels.implicit_prm.reference import ADAPTERS, MODEL, NONE, Reference
from rewardmodels.implicit_prm.trainer import ImplicitPRMTrainer
from rewardmodels.modeling import attn_implementation_of, cache_root, load_backbone, resolve_model_path
from rewardmodels.tokenization import resolve_chat_template
from rewardmodels.training.arguments import DataArguments, ModelArguments
from rewardmodels.training.batching import run_collator
from rewardmodels.training.causal_lm import CAUSAL_LM_HEAD, load_causal_lm, load_causal_tokenizer
from rewardmodels.training.run import (
    base_manifest,
    canonical_reader,
    final_eval,
    load_train_eval_data,
    run_method,
    trainer_inputs,
)

logger = logging.getLogger("rewardmodels")


def reference_name(model_args: ModelArguments, args: ImplicitPRMConfig) -> str | None:
    if args.reference_free:
        return None
    return model_args.model_name_or_path if args.reference == SAME_AS_BASE else args.reference


def build_reference(model_args: ModelArguments, args: ImplicitPRMConfig, model) -> Reference:
    """Kinds in `implicit_prm.reference`: the adapters-disabled policy under LoRA with the base as reference,
    otherwise a separate frozen copy (loaded like the policy), or none."""
    if args.reference_free:
        return Reference(NONE, model)
    if args.reference == SAME_AS_BASE and model_args.use_lora:
        return Reference(ADAPTERS, model)
    copy = load_backbone(
        reference_name(model_args, args),
        CAUSAL_LM_HEAD,
        dtype=model_args.model_dtype,
        attn_implementation=model_args.attn_implementation,
        trust_remote_code=model_args.trust_remote_code,
    )
    if copy.get_input_embeddings().weight.shape[0] != model.get_input_embeddings().weight.shape[0]:
        raise ValueError(
            f"reference {args.reference!r} and the policy have vocabularies of different sizes; their "
            "log-probs cannot be compared token by token"
        )
    return Reference(MODEL, model, copy)


def tokenize(tokenizer, rows, args, data_args, use_template, what: str):
    features, cut = encode_rows(tokenizer, rows, args.objective, use_template, data_args.max_length)
    same = 0
    if args.objective == "dpo":
        features, same = drop_identical_pairs(rows, features, data_args.invalid_rows == "drop", what)
    logger.info("%d %s, %d sequences cut to max_length=%d, %d identical pairs dropped",
                len(features), what, cut, data_args.max_length, same)  # fmt: skip
    return features, cut


def cache_settings(
    model_args, data_args, args, tokenizer, use_template: bool, fingerprint: str, model
) -> dict:
    """Everything besides the token ids that changes a cached reference log-prob (`ref_cache`)."""
    return {
        "reference_fingerprint": fingerprint,
        "tokenizer": str(getattr(tokenizer, "name_or_path", "")),
        "vocab_size": len(tokenizer),
        "use_chat_template": use_template,
        "max_length": data_args.max_length,
        "dtype": model_args.model_dtype,
        "attn_implementation": attn_implementation_of(model),
    }


def build_trainer(model_args: ModelArguments, data_args: DataArguments, args: ImplicitPRMConfig):
    schema = "outcome" if args.objective == "ce" else "preference"
    data = load_train_eval_data(data_args, args.seed, canonical_reader(schema, data_args.column_map_dict()))
    train_rows, eval_rows = data.train, data.held_out
    tokenizer = load_causal_tokenizer(model_args)
    use_template = resolve_chat_template(data_args.use_chat_template, train_rows, tokenizer)
    train_set, cut = tokenize(tokenizer, train_rows, args, data_args, use_template, "training rows")
    eval_set = (
        tokenize(tokenizer, eval_rows, args, data_args, use_template, "held-out rows")[0]
        if eval_rows
        else None
    )
    model = load_causal_lm(model_args, tokenizer, args.seed)
    reference = build_reference(model_args, args, model)
    fingerprint = None if args.reference_free else model_fingerprint(reference_name(model_args, args))
    manifest = base_manifest(
        "implicit_prm", model_args, data_args, use_template, head=CAUSAL_LM_HEAD, dropped_rows=data.dropped
    )
    ref = reference_name(model_args, args)
    manifest.update(
        {
            "objective": args.objective,
            "beta": args.beta,
            "reference": ref,
            "resolved_reference": str(Path(resolve_model_path(ref)).resolve()) if ref else None,
            "reference_fingerprint": fingerprint,
            "ref_free": args.reference_free,
            "reference_kind": reference.kind,
            "aggregation": args.aggregation,
            "step_scores": args.step_scores,
            "step_separator": args.step_separator,
            "truncated_train_sequences": cut,
        }
    )
    collator = run_collator("implicit_prm", args, data_args, model, tokenizer, manifest, train_set)
    if args.reference_cache and not args.reference_free:
        directory = args.reference_cache_dir or cache_root() / "implicit_prm_ref"
        settings = cache_settings(model_args, data_args, args, tokenizer, use_template, fingerprint, model)
        cache = ReferenceLogprobCache(directory, settings)
        model.to(args.device)
        for name, features in (("training", train_set), ("held-out", eval_set or [])):
            counts = attach_reference_logps(
                features, reference, collator, args.device, cache, args.per_device_eval_batch_size
            )
            logger.info("reference log-probs of the %s rows: %s (cache %s)", name, counts, cache.path)
        reference.release()  # a separate reference copy is not needed again
        manifest["reference_cache"] = str(cache.path)
    inputs = trainer_inputs(args, model, tokenizer, collator, manifest, train_set, eval_set)
    return ImplicitPRMTrainer(**inputs, reference=reference)


def main(argv: list[str] | None = None) -> int:
    return run_method(
        ImplicitPRMConfig, build_trainer, argv, "rewardmodels train implicit-prm", __doc__, final_eval
    )
