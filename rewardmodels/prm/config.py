from __future__ import annotations

from dataclasses import dataclass

from rewardmodels.packing import packing_choices
from rewardmodels.steps import PROBABILITY_AGGREGATIONS
from rewardmodels.training.reward_config import RewardConfigBase, option, output_dir_field

LABEL_MODES = ("hard", "soft")
LOSS_TYPES = ("auto", "ce", "bce")


def unescape(text: str) -> str:
    return text.replace("\\n", "\n").replace("\\t", "\t")


@dataclass
class PRMConfig(RewardConfigBase):
    """Step-level process reward model: a token-level head read at the separator after every step."""

    output_dir: str = output_dir_field("outputs/prm")
    step_separator: str = option(
        "\n\n",
        "Text placed after every step; the step's label is read at its last token. A string such as "
        "'\\n\\n' (typed escapes \\n and \\t mean newline and tab; several tokens are fine), or a token "
        "name with --separator_token.",
    )
    separator_token: bool = option(
        False,
        "Make --step_separator one dedicated special token, as Qwen2.5-Math-PRM does with <extra_0>: "
        "reused if the vocabulary has it, added (and the embeddings resized) if not. Under LoRA its "
        "embedding row is trained and saved with the adapter.",
    )
    label_mode: str = option(
        "hard",
        "hard: labels are bools (or exactly 0/1); soft: labels are floats in [0, 1], e.g. the share "
        "of Monte Carlo rollouts that reach the right answer.",
    )
    loss_type: str = option(
        "auto",
        "ce: two-way head with cross-entropy (hard labels only); bce: one logit with binary "
        "cross-entropy (hard or soft targets); auto: ce for hard labels, bce for soft ones.",
    )
    train_on_last_step_only: bool = option(
        False, "Train on the label of each solution's final step only (evaluation still reads every step)."
    )
    aggregation: str = option(
        "min",
        f"How the exported scorer turns step probabilities into one score: {', '.join(PROBABILITY_AGGREGATIONS)}. "
        "Written to the manifest; a scorer can override it when loaded.",
    )
    response_step_split: str | None = option(
        None,
        "How the scorer splits a whole response into steps for score(): defaults to the separator "
        "when it is a string, and to '\\n\\n' with --separator_token.",
    )
    packing: str = option(
        "packed",
        f"How solutions are batched ({', '.join(packing_choices(pairs=False))}; no tree: a "
        "solution is one sequence). auto and packed: each solution once, without padding, in one row per "
        "batch (sdpa) or rows as wide as the longest solution (eager), every solution keeping its own "
        "positions and attending only to itself; none: padded rows. All give the same step scores and "
        "losses (see docs/packing.md).",
    )

    def __post_init__(self):
        super().__post_init__()
        self.check_choices(
            {
                "packing": packing_choices(pairs=False),
                "label_mode": LABEL_MODES,
                "loss_type": LOSS_TYPES,
                "aggregation": PROBABILITY_AGGREGATIONS,
            }
        )
        if self.loss_type == "auto":
            self.loss_type = "ce" if self.label_mode == "hard" else "bce"
        if self.loss_type == "ce" and self.label_mode == "soft":
            raise ValueError("soft labels need --loss_type bce (cross-entropy here takes hard labels only)")
        # Newlines are awkward to type on a command line, so the two-character escapes \n and \t are read as
        # the characters they name.
        self.step_separator = unescape(self.step_separator)
        if self.response_step_split is not None:
            self.response_step_split = unescape(self.response_step_split)
        if not self.step_separator:
            raise ValueError("--step_separator must not be empty")

    @property
    def num_labels(self) -> int:
        return 2 if self.loss_type == "ce" else 1

    @property
    def scorer_step_split(self) -> str:
        if self.response_step_split:
            return self.response_step_split
        return "\n\n" if self.separator_token else self.step_separator
