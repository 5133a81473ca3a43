"""`ImplicitPRMConfig`: an implicit PRM's objective, beta, reference and reference cache."""

from __future__ import annotations

from dataclasses import dataclass

from rewardmodels.causal.implicit_rewards import DEFAULT_AGGREGATION, DEFAULT_STEP_SCORES, STEP_SCORES
from rewardmodels.packing import PACKING_MODES, packing_choices
from rewardmodels.steps import REWARD_AGGREGATIONS
from rewardmodels.training.reward_config import RewardConfigBase, option, output_dir_field

OBJECTIVES = ("ce", "dpo")
REFERENCE_FREE = "none"
SAME_AS_BASE = "base"


def unescape(text: str) -> str:
    """The two-character escapes \\n and \\t (awkward to type on a command line) as the characters they
    name."""
    return text.replace("\\n", "\n").replace("\\t", "\t")


@dataclass
class ImplicitPRMConfig(RewardConfigBase):
    """Implicit PRM: a causal LM whose reward is r(y) = beta * sum_t log pi_theta(y_t|y_<t)/pi_ref(y_t|y_<t),
    trained on outcome labels (CE) or preference pairs (DPO); process rewards come for free."""

    output_dir: str = output_dir_field("outputs/implicit_prm")
    learning_rate: float = option(5e-5, "Peak learning rate (AdamW).")
    objective: str = option(
        "ce",
        "ce: BCE(sigmoid(r(y)), label) on outcome rows (prompt, completion, label in [0, 1]); "
        "dpo: -log sigmoid(r(y_w) - r(y_l)) on preference rows (prompt, chosen, rejected).",
    )
    beta: float = option(0.05, "beta in r = beta * log-ratio (0.05 in the paper).")
    reference: str = option(
        SAME_AS_BASE,
        "pi_ref: 'base' (the same base model; under LoRA the policy with its adapters disabled, "
        "no second copy), a model path or Hub id, or 'none' for the reference-free reward "
        "beta * sum_t log pi_theta(y_t|y_<t).",
    )
    reference_cache: bool = option(
        True,
        "Compute the reference log-probs once, in a first inference pass, and keep them on disk "
        "(keyed by the token ids, the reference's fingerprint and the tokenization settings); training "
        "then never runs the reference. Off: the reference runs in every step.",
    )
    reference_cache_dir: str | None = option(
        None, "Where the reference log-prob cache lives (default: <cache root>/implicit_prm_ref)."
    )
    aggregation: str = option(
        DEFAULT_AGGREGATION,
        f"What the exported scorer's score() returns ({', '.join(REWARD_AGGREGATIONS)}): min = the "
        "smallest step reward (default: the minimum over steps, the reference's best-of-N choice as "
        "issue 23 reports it); min_q = the smallest step value q_k; last = q at the final token = r(y); "
        "sum = the sum of step rewards. Written to the manifest; a scorer can override it when loaded.",
    )
    step_scores: str = option(
        DEFAULT_STEP_SCORES,
        f"What the exported scorer's score_steps() returns ({', '.join(STEP_SCORES)}): "
        "sigmoid_q = sigmoid(q at the end of each step), the value the authors' ProcessBench script "
        "thresholds (default); reward = the step reward r_k. Written to the manifest.",
    )
    step_separator: str = option(
        "\n\n",
        "How the scorer joins a caller's steps into one response (score_steps) and splits a "
        "response into steps (score); typed escapes \\n and \\t mean newline and tab.",
    )
    packing: str = option(
        "auto",
        f"How sequences are batched ({', '.join(PACKING_MODES)}). auto: without padding through "
        "the model's packed attention, DPO pairs as one tree (the prompt once, both answers attending "
        "to it); tree (DPO only): the same; packed: every sequence once, without padding; none: padded "
        "rows. All give the same log-probs.",
    )

    def __post_init__(self):
        super().__post_init__()
        self.check_choices(
            {
                "objective": OBJECTIVES,
                "packing": packing_choices(pairs=self.objective == "dpo"),
                "aggregation": REWARD_AGGREGATIONS,
                "step_scores": STEP_SCORES,
            }
        )
        if self.beta <= 0:
            raise ValueError(f"--beta must be positive, got {self.beta}")
        self.step_separator = unescape(self.step_separator)
        if not self.step_separator:
            raise ValueError("--step_separator must not be empty")

    @property
    def reference_free(self) -> bool:
        return self.reference == REFERENCE_FREE
