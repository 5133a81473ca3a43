from __future__ import annotations

from dataclasses import dataclass

from rewardmodels.packing import PACKING_MODES
from rewardmodels.training.reward_config import RewardConfigBase, option, output_dir_field


@dataclass
class BTConfig(RewardConfigBase):
    """Bradley-Terry reward-model training: -log sigmoid(r_chosen - r_rejected - margin) on preference
    pairs, and the tie loss on pairs marked `tie` (see `losses.preference_and_tie_loss`)."""

    output_dir: str = output_dir_field("outputs/bt")
    center_rewards_coefficient: float | None = option(
        None,
        "Weight of the (r_chosen + r_rejected)^2 penalty that keeps rewards centred at 0; off when unset.",
    )
    use_margin: bool = option(True, "Subtract each row's `margin` (if the data has one) inside the sigmoid.")
    tie_loss_weight: float = option(
        1.0,
        "Weight of the tie loss -0.5 * (log sigmoid(r_a - r_b) + log sigmoid(r_b - r_a)) on pairs "
        "marked `tie: true`, relative to the BT loss of preference pairs; the batch loss is the mean over "
        "all pairs. At 0 ties add nothing to the loss (they still count in the mean).",
    )
    include_num_input_tokens_seen: bool = option(
        True,
        "Count the tokens the model is fed (transformers' `all`): trainer_state.json records them "
        "as num_input_tokens_seen, which `rewardmodels report curve` turns into training compute. Every "
        "position of input_ids counts: a tree's shared prompt once, and padding where a batch has some "
        "(--packing none, eager attention's packed rows), since it is computed too.",
    )
    packing: str = option(
        "auto",
        f"How pairs are batched ({', '.join(PACKING_MODES)}). auto: tree when chosen and rejected "
        "share a token prefix, else packed; tree: the shared prefix once, both continuations attend to it "
        "through a tree mask; packed: each sequence once without padding; none: padded rows. All give the "
        "same rewards (see docs/packing.md).",
    )

    def __post_init__(self):
        super().__post_init__()
        self.check_choices({"packing": PACKING_MODES})
        if self.tie_loss_weight < 0:
            raise ValueError(f"--tie_loss_weight must be at least 0, got {self.tie_loss_weight}")
