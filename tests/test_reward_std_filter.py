"""RLPR's std filter against values worked out by hand: group stds, the fixed threshold, the EMA-adjusted
threshold over two steps, and the TRL reward-function wrapper that flattens dropped groups."""

import math

import pytest

from rewardmodels.scorers.reward_std_filter import (
    StdFilter,
    group_stds,
    kept_prompts,
    std_filtered_reward_func,
)

# Four prompts, G = 4 completions each (binary fractions, so every std below is exact or a known root):
#   0: 0.25 0.75 0.25 0.75   mean 0.5,  deviations +-0.25          s = 0.25
#   1: 0.5 x 4               mean 0.5                              s = 0
#   2: 0 0 0 1               mean 0.25, squares 3 x 0.0625 + 0.5625 = 0.75, / 4 = 0.1875   s = sqrt(0.1875)
#   3: 0.2 NaN 0.2 0.2       unscored completion                   s = NaN
REWARDS = [0.25, 0.75, 0.25, 0.75, 0.5, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0, 1.0, 0.2, math.nan, 0.2, 0.2]


def test_group_stds_and_the_fixed_threshold_by_hand():
    stds = group_stds(REWARDS, 4)
    assert stds[:3] == [0.25, 0.0, pytest.approx(math.sqrt(0.1875), abs=1e-15)] and math.isnan(stds[3])
    assert kept_prompts(REWARDS, 4, 0.25) == [0, 2]  # s >= beta keeps prompt 0 at the boundary
    assert kept_prompts(REWARDS, 4, 0.3) == [2]
    assert kept_prompts(REWARDS, 4, 0.0) == [0, 1, 2]  # a NaN std never passes
    with pytest.raises(ValueError, match="15 rewards do not split into groups of 4"):
        group_stds(REWARDS[:-1], 4)


def test_ema_threshold_moves_with_the_stds_it_sees():
    ema = StdFilter(0.25, momentum=0.5)
    assert ema(REWARDS, 4) == [0, 2]  # step 1 filters with beta_1 = 0.25
    # beta_2 = 0.5 * 0.25 + 0.5 * mean(0.25, 0, sqrt(0.1875)) (the NaN group is left out of the mean)
    beta_2 = 0.5 * 0.25 + 0.5 * (0.25 + 0.0 + math.sqrt(0.1875)) / 3
    assert ema.threshold == pytest.approx(beta_2, abs=1e-15) and beta_2 == pytest.approx(0.23883545, abs=1e-8)
    # step 2: a group with s = 0.24 (0.5 +- 0.24) now passes, where the fixed 0.25 drops it
    step_2 = [0.26, 0.74, 0.26, 0.74, 0.5, 0.5, 0.5, 0.5]
    assert ema(step_2, 4) == [0] and kept_prompts(step_2, 4, 0.25) == []
    fixed = StdFilter(0.25)
    fixed(REWARDS, 4)
    assert fixed.threshold == 0.25 and fixed.last_kept == [0, 2]


def test_the_reward_function_wrapper_flattens_dropped_groups():
    def reward(prompts, completions, **kwargs):
        return [None if math.isnan(r) else r for r in REWARDS]

    filtered = std_filtered_reward_func(reward, 4, StdFilter(0.25))
    assert filtered.__name__ == "reward"
    # prompts 1 (s = 0) and 3 (an unscored completion) are dropped: their four rewards become 0.0
    assert filtered(["p"] * 16, ["c"] * 16) == REWARDS[:4] + [0.0] * 4 + REWARDS[8:12] + [0.0] * 4
