"""`RewardConfigBase`: the `TrainingArguments` overrides every reward-model trainer shares, written once.

Each method's config (`BTConfig`, `PRMConfig`) subclasses it and adds its own fields, its `output_dir`
default (through `output_dir_field`, so the help is written once too) and its `packing` field, whose
choices derive from `rewardmodels.packing.PACKING_MODES`; `check_choices` refuses a value outside them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from transformers import TrainingArguments

from rewardmodels.errors import InputError


def option(default, help: str):
    """A config field with its `--help` text: what every method config's fields are, written once."""
    return field(default=default, metadata={"help": help})


def output_dir_field(default: str):
    """The `output_dir` field of a method's config, with that method's default directory."""
    return field(default=default, metadata={"help": "Where checkpoints and the final model are written."})


@dataclass
class RewardConfigBase(TrainingArguments):
    """Defaults shared by the reward-model trainers; every field keeps its help for `--help`."""

    learning_rate: float = field(default=1e-4, metadata={"help": "Peak learning rate (AdamW)."})
    per_device_train_batch_size: int = field(
        default=8,
        metadata={"help": "Training examples per device per step: pairs (BT) or solutions (PRM)."},
    )
    per_device_eval_batch_size: int = field(
        default=16, metadata={"help": "Held-out examples (pairs or solutions) per device per eval step."}
    )
    logging_steps: float = field(default=10, metadata={"help": "Log every N steps."})
    save_steps: float = field(default=100, metadata={"help": "Checkpoint every N steps."})
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Kept False: the collator needs every feature."}
    )
    dataloader_pin_memory: bool | None = field(
        default=None,
        metadata={
            "help": "Pin batches in page-locked memory for faster host-to-GPU copies. Default: on when a GPU "
            "is present (on CPU there is nothing to copy to, and torch warns about it)."
        },
    )
    packing_token_budget: int | None = field(
        default=None,
        metadata={
            "help": "Cap on the tokens of one packed row (default: none; at least max_length). With sdpa the "
            "whole batch is one row; with a dense 4D mask (eager) rows are as wide as the longest example. "
            "A BT tree longer than the cap is packed as two sequences: same result, no prefix saving."
        },
    )

    def __post_init__(self):
        if self.dataloader_pin_memory is None:
            import torch

            self.dataloader_pin_memory = torch.cuda.is_available()
        super().__post_init__()

    def check_choices(self, choices: Mapping[str, tuple[str, ...]]) -> None:
        """Refuse a field whose value is not among its choices, naming the flag and the allowed values."""
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                reason = f"--{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}"
                raise InputError(None, None, None, reason)
