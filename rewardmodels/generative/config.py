from __future__ import annotations

from dataclasses import dataclass

from rewardmodels.packing import packing_choices
from rewardmodels.scorers.generative import DECISION_CHOICES
from rewardmodels.training.reward_config import RewardConfigBase, option, output_dir_field


@dataclass
class GenerativeConfig(RewardConfigBase):
    """SFT of a generative verifier on verification chains: the loss is the mean negative log-likelihood of
    the chain tokens (and the end-of-turn token after them); the prompt's tokens are context only."""

    output_dir: str = output_dir_field("outputs/generative")
    learning_rate: float = option(2e-5, "Peak learning rate (AdamW).")
    verification_format: str | None = option(
        None,
        "Verification format template (JSON, see rewardmodels/verification.py); default: "
        "ThinkPRM's. Written into the manifest, so the exported scorer prompts and parses exactly as "
        "trained.",
    )
    packing: str = option(
        "packed",
        f"How chains are batched ({', '.join(packing_choices(pairs=False))}; no tree: a chain is "
        "one sequence). auto and packed: each chain once without padding, attending only to itself; "
        "none: right-padded rows. All give the same loss.",
    )
    # The scorer's decoding defaults are ThinkPRM's inference settings (mukhal/ThinkPRM search-and-learn/src/
    # sal/config.py:52, 64: prm_temperature 0.0, max_verification_length 8192). On CPU a smoke run overrides
    # them in its recipe (recipes/generative/*.yaml: sampling at 0.6, 160-1,024 tokens).
    verifier_max_new_tokens: int = option(
        8192,
        "The exported scorer's default token budget per chain round (ThinkPRM: 8,192; the CPU "
        "smoke recipes set 160-1,024).",
    )
    verifier_temperature: float = option(
        0.0,
        "The exported scorer's default sampling temperature for chains (0 = greedy, ThinkPRM's "
        "inference; the CPU smoke recipes sample at 0.6).",
    )
    decision_choices: str = option(
        "both",
        f"The exported scorer's default reading of the decision ({', '.join(DECISION_CHOICES)}): "
        "both sums the probabilities of 'Yes' and 'yes' (training targets are capitalised, ThinkPRM's "
        "inference choices lowercase).",
    )

    def __post_init__(self):
        super().__post_init__()
        self.check_choices({"packing": packing_choices(pairs=False), "decision_choices": DECISION_CHOICES})

    def verifier_defaults(self) -> dict:
        """The manifest's `verifier` block: the scorer's defaults, each overridable when it is loaded."""
        return {
            "max_new_tokens": self.verifier_max_new_tokens,
            "temperature": self.verifier_temperature,
            "decision_choices": self.decision_choices,
            "parallel": 1,
            "rounds": 1,
        }
