"""Steps every `rewardmodels train <method>` run shares: load and split data, load the model, resume, save."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from transformers import set_seed
from transformers.trainer_utils import get_last_checkpoint

from rewardmodels.cli_common import setup_logging
from rewardmodels.modeling import (
    HEAD_MODEL_CLASSES,
    LoraSettings,
    load_backbone,
    load_tokenizer,
    resolve_model_path,
)
from rewardmodels.training.arguments import DataArguments, ModelArguments, parse_layered

if TYPE_CHECKING:
    from rewardmodels.data_builders.schema import ValidationReport

logger = logging.getLogger("rewardmodels")


RowReader = Callable[[list[str], bool, int | None], tuple[list[dict], "ValidationReport"]]
"""Reads data specs into validated rows: (specs, drop invalid rows, row cap per spec) -> (rows, report). Bad
rows are dropped and counted in the report, or refused with an InputError naming the row and field."""


def canonical_reader(schema: str, column_map: dict | None = None, hard_labels: bool = False) -> RowReader:
    """The reader of canonical rows of `schema` (`data_builders.sources.load_rows`). `hard_labels`: stepwise
    labels must be bools or exactly 0/1."""
    from rewardmodels.data_builders.sources import load_rows

    def read(specs: list[str], drop: bool, max_rows: int | None):
        return load_rows(specs, schema, column_map, drop, max_rows, hard_labels=hard_labels)

    return read


@dataclass
class TrainEvalData:
    """Validated training rows, held-out rows with the name of the source each came from, and the invalid rows
    dropped under --invalid_rows drop (training and held-out data), counted by reason."""

    train: list[dict]
    held_out: list[dict]
    held_out_sources: list[str]
    dropped: Counter = field(default_factory=Counter)

    def held_out_by_source(self) -> dict[str, list[dict]]:
        return group_by_source(self.held_out, self.held_out_sources)


def load_train_eval_data(data_args: DataArguments, seed: int, read: RowReader) -> TrainEvalData:
    """Training and held-out rows through `read`, before the model loads, so bad data fails fast. Each
    training spec may carry mixing options (`data_builders/mixing.py`:
    `SPEC|eval=N,rows=N,weight=W,name=NAME`); the held-out split is drawn per source, before caps and weights;
    --eval_data replaces it."""
    from rewardmodels.data_builders import mixing

    drop = data_args.invalid_rows == "drop"
    if data_args.invalid_rows not in ("error", "drop"):
        raise ValueError(f"--invalid_rows must be 'error' or 'drop', got {data_args.invalid_rows!r}")
    mixes = mixing.parse_mix(list(data_args.train_data))
    if data_args.eval_data and any(m.eval_rows is not None for m in mixes):
        raise ValueError(
            "--eval_data and an `eval=N` mixing option in --train_data both choose held-out rows: use one"
        )
    fraction = 0.0 if data_args.eval_data else data_args.eval_fraction
    sources, dropped = [], Counter()
    for position, mix in enumerate(mixes):
        rows, report = read([mix.spec], drop, data_args.max_train_rows)
        logger.info("training data %s: %s", mix.name, report)
        dropped.update(report.dropped)
        sources.append(mixing.mix_source(mix, rows, seed, position, fraction))
    if len(sources) > 1 or any(m.has_options for m in mixes):
        logger.info("data mix:\n%s", mixing.summary(sources))
    train = [row for s in sources for row in s.train]
    held_out = [row for s in sources for row in s.held_out]
    names = [s.name for s in sources for _ in s.held_out]
    if data_args.eval_data:
        held_out, eval_report = read(list(data_args.eval_data), drop, None)
        names = ["eval_data"] * len(held_out)
        logger.info("eval data: %s", eval_report)
        dropped.update(eval_report.dropped)
    return TrainEvalData(train, held_out, names, dropped)


def load_train_eval_sources(
    data_args: DataArguments, schema: str, seed: int, hard_labels: bool = False
) -> tuple[list[dict], list[dict], list[str]]:
    """Validated training rows, held-out rows, and the name of the source each held-out row came from
    (`load_train_eval_data` of canonical rows of `schema`)."""
    read = canonical_reader(schema, data_args.column_map_dict(), hard_labels)
    data = load_train_eval_data(data_args, seed, read)
    return data.train, data.held_out, data.held_out_sources


def load_train_eval_rows(
    data_args: DataArguments, schema: str, seed: int, hard_labels: bool = False
) -> tuple[list[dict], list[dict]]:
    """Validated training and held-out rows (`load_train_eval_sources`, without the source names)."""
    train, held_out, _ = load_train_eval_sources(data_args, schema, seed, hard_labels)
    return train, held_out


def group_by_source(rows: list[dict], sources: list[str]) -> dict[str, list[dict]]:
    """Rows grouped by their source's name, sources in first-seen order."""
    groups: dict[str, list[dict]] = {}
    for row, name in zip(rows, sources, strict=True):
        groups.setdefault(name, []).append(row)
    return groups


def held_out_features(
    data: TrainEvalData, featurize: Callable[[str, list[dict]], list[dict]]
) -> tuple[list[dict] | None, dict[str, list[dict]] | None]:
    """The held-out features, pooled (None when there are none) and per source (None with fewer than two
    sources, where the pooled figure says it all), `featurize(source name, rows)` run once per source; a
    source none of whose rows survives featurizing is left out."""
    by_source = {name: featurize(name, rows) for name, rows in data.held_out_by_source().items()}
    by_source = {name: features for name, features in by_source.items() if features}
    pooled = [feature for features in by_source.values() for feature in features] or None
    return pooled, by_source if len(by_source) > 1 else None


def load_model(
    model_args: ModelArguments,
    tokenizer,
    num_labels: int,
    seed: int,
    trainable_token_ids: list[int] | None = None,
    head: str = "seq_cls",
):
    """The backbone with a fresh `num_labels`-way `head` (see `load_backbone`), under LoRA if asked.
    `trainable_token_ids` are token rows added to the tokenizer (a PRM separator): under LoRA they are trained
    and saved with the adapter. The model stays on the CPU; the Trainer places it."""
    set_seed(seed)  # the new head's (and any new token row's) initialisation depends on it
    lora = (
        LoraSettings(
            model_args.lora_r, model_args.lora_alpha, model_args.lora_dropout, model_args.lora_target_modules
        )
        if model_args.use_lora
        else None
    )
    return load_backbone(
        model_args.model_name_or_path,
        head,
        num_labels=num_labels,
        dtype=model_args.model_dtype,
        attn_implementation=model_args.attn_implementation,
        lora=lora,
        trust_remote_code=model_args.trust_remote_code,
        tokenizer=tokenizer,
        trainable_token_ids=trainable_token_ids if lora is not None else None,
    )


def load_model_and_tokenizer(model_args: ModelArguments, num_labels: int, seed: int, head: str = "seq_cls"):
    tokenizer = load_tokenizer(model_args.model_name_or_path, trust_remote_code=model_args.trust_remote_code)
    return load_model(model_args, tokenizer, num_labels, seed, head=head), tokenizer


def base_manifest(
    kind: str,
    model_args: ModelArguments,
    data_args: DataArguments,
    use_chat_template: bool,
    head: str = "seq_cls",
    dropped_rows: Counter | None = None,
) -> dict:
    """What every training manifest records. `head` and `model_class` tell export which model class to
    rebuild and write (`load_backbone`'s heads); `dropped_rows`, the invalid rows --invalid_rows drop left
    out, by reason (`TrainEvalData.dropped`)."""
    name = model_args.model_name_or_path
    resolved = Path(resolve_model_path(name))
    manifest = {
        "kind": kind,
        "head": head,
        "model_class": HEAD_MODEL_CLASSES[head],
        "base_model": name,
        "resolved_base_model": str(resolved.resolve()) if resolved.exists() else name,
        "lora": model_args.use_lora,
        "use_chat_template": use_chat_template,
        "max_length": data_args.max_length,
        "train_data": list(data_args.train_data),
    }
    if dropped_rows is not None:
        manifest["dropped_rows"] = dict(sorted(dropped_rows.items()))
    return manifest


def trainer_inputs(
    args,
    model,
    tokenizer,
    collator,
    manifest: dict,
    train_set: list[dict],
    eval_set: list[dict] | None,
    held_out_by_source: dict[str, list[dict]] | None = None,
) -> dict:
    """The keyword arguments every method's Trainer (a `RewardTrainerBase`) is built with; a method adds its
    own (the implicit PRM's reference) beside them."""
    return {
        "model": model,
        "args": args,
        "train_dataset": train_set,
        "eval_dataset": eval_set,
        "data_collator": collator,
        "processing_class": tokenizer,
        "training_manifest": manifest,
        "held_out_by_source": held_out_by_source,
    }


def resolve_resume(value: str | None, output_dir: str) -> str | None:
    """'latest' means the newest checkpoint in output_dir (None if there is none yet)."""
    if value in (None, "", "none"):
        return None
    if value == "latest":
        return get_last_checkpoint(output_dir) if Path(output_dir).is_dir() else None
    if not Path(value).is_dir():
        raise FileNotFoundError(f"--resume_from_checkpoint: no checkpoint directory at {value}")
    return value


def run_method(
    config_class: type,
    build_trainer: Callable,
    argv: list[str] | None,
    prog: str,
    description: str | None,
    finalize: Callable | None = None,
) -> int:
    """A `rewardmodels train <method>` command: logging; ModelArguments, DataArguments and the method's
    `config_class` from defaults <- recipe <- flags (`parse_layered`); `build_trainer(model_args, data_args,
    args)`; then `train_and_save` with `finalize`."""
    setup_logging()
    model_args, data_args, args = parse_layered(
        (ModelArguments, DataArguments, config_class), argv, prog=prog, description=description
    )
    trainer = build_trainer(model_args, data_args, args)
    train_and_save(trainer, args, finalize=finalize)
    return 0


def train_and_save(trainer, args, finalize=None) -> None:
    """Train (resuming if asked), run `finalize(trainer)` (final eval, statistics for the manifest), then save
    the final model and manifest and close every rank cleanly."""
    resume = resolve_resume(args.resume_from_checkpoint, args.output_dir)
    if resume:
        logger.info("resuming from %s", resume)
    trainer.train(resume_from_checkpoint=resume)
    if finalize is not None:
        finalize(trainer)
    trainer.save_model(args.output_dir)
    if trainer.args.should_save:
        trainer.state.save_to_json(str(Path(args.output_dir) / "trainer_state.json"))
    trainer.accelerator.wait_for_everyone()
    trainer.accelerator.end_training()


def final_eval(trainer) -> dict:
    """Evaluate once at the end and put the metrics and reward statistics into the training manifest."""
    if trainer.eval_dataset is None:
        return {}
    metrics, stats = trainer.evaluate_with_statistics()
    trainer.training_manifest.update(stats)
    trainer.training_manifest["final_eval"] = metrics
    logger.info("final held-out metrics: %s", metrics)
    by_source = getattr(trainer, "held_out_by_source", None) or {}
    if by_source:
        per_source = {
            name: trainer.evaluate(eval_dataset=rows, metric_key_prefix=f"eval_{name}")
            for name, rows in by_source.items()
        }
        trainer.training_manifest["final_eval_by_source"] = per_source
        for name, values in per_source.items():
            logger.info("final held-out metrics, %s: %s", name, values)
    return metrics
