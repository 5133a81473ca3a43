import pytest
import torch

from rewardmodels.collators import PaddedPairCollator, PaddedSequenceCollator, pair_fields
from rewardmodels.packing import PackedPairCollator


def test_padded_pair_collator_literal_tensors():
    features = [
        {"prefix_ids": [5, 6], "chosen_ids": [7], "rejected_ids": [8, 9], "margin": 0.5},
        {"prefix_ids": [], "chosen_ids": [1, 2, 3], "rejected_ids": [4]},
    ]
    batch = PaddedPairCollator(pad_token_id=0)(features)
    assert torch.equal(
        batch["input_ids"],
        torch.tensor([[5, 6, 7, 0], [1, 2, 3, 0], [5, 6, 8, 9], [4, 0, 0, 0]]),
    )
    assert torch.equal(
        batch["attention_mask"], torch.tensor([[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 1], [1, 0, 0, 0]])
    )
    # last real token of each row, as flat indices into 4 rows x 4 columns
    assert batch["reward_positions"].tolist() == [2, 6, 11, 12]
    assert batch["margin"].tolist() == [0.5, 0.0]


def test_padded_pair_collator_without_margins_and_pad_multiple():
    batch = PaddedPairCollator(pad_token_id=9, pad_to_multiple_of=4)(
        [{"prefix_ids": [1], "chosen_ids": [2], "rejected_ids": [3]}]
    )
    assert "margin" not in batch
    assert torch.equal(batch["input_ids"], torch.tensor([[1, 2, 9, 9], [1, 3, 9, 9]]))
    assert batch["reward_positions"].tolist() == [1, 5]


def test_padded_sequence_collator():
    batch = PaddedSequenceCollator(pad_token_id=0)([{"input_ids": [3]}, {"input_ids": [4, 5, 6]}])
    assert torch.equal(batch["input_ids"], torch.tensor([[3, 0, 0], [4, 5, 6]]))
    assert torch.equal(batch["attention_mask"], torch.tensor([[1, 0, 0], [1, 1, 1]]))
    assert batch["reward_positions"].tolist() == [0, 5]


def test_every_pair_collator_carries_tie_in_pair_order():
    # Lengths differ so that first-fit decreasing places the pairs out of feature order.
    features = [
        {"prefix_ids": [1], "chosen_ids": [2], "rejected_ids": [3], "tie": False},
        {"prefix_ids": [4, 5, 6], "chosen_ids": [7, 8], "rejected_ids": [9], "tie": True, "margin": 1.5},
        {"prefix_ids": [], "chosen_ids": [10, 11, 12], "rejected_ids": [13]},  # no field: not a tie
    ]
    collators = {
        "padded": PaddedPairCollator(pad_token_id=0),
        "packed": PackedPairCollator(pad_token_id=0, attention="mask", tree=False),
        "tree": PackedPairCollator(pad_token_id=0, attention="segments", tree=True),
    }
    for name, collate in collators.items():
        batch = collate(features)
        assert batch["tie"].dtype == torch.bool, name
        assert batch["tie"].tolist() == [False, True, False], name
        assert batch["margin"].tolist() == [0.0, 1.5, 0.0], name
        # The i-th chosen reward is read at pair i's last chosen token, so tie[i] labels the right pair.
        last_tokens = batch["input_ids"].reshape(-1)[batch["reward_positions"]].tolist()
        assert last_tokens == [2, 8, 12, 3, 9, 13], name
    packed = collators["packed"](features)
    assert packed["input_ids"][0].tolist()[:5] == [4, 5, 6, 7, 8]  # pair 1 really was placed first


def test_pair_batches_without_tie_fields_have_no_tie_and_bad_ties_are_named():
    plain = [{"prefix_ids": [1], "chosen_ids": [2], "rejected_ids": [3]}]
    assert "tie" not in PaddedPairCollator(pad_token_id=0)(plain)
    assert pair_fields([{"tie": None}, {"tie": True}])["tie"].tolist() == [False, True]
    with pytest.raises(ValueError, match="feature 1: field 'tie' must be a bool, got 'yes'"):
        pair_fields([{"tie": False}, {"tie": "yes"}])
