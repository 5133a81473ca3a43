"""Implicit-PRM features: rows encoded as token ids, and the identical-pair check.

A feature holds the k sequences of one training row, each as the token ids of prompt + response and where
its response starts (`response_tokens.encode_response`, cut to the last max_length tokens):

  sequences           k lists of token ids: k = 1 for an outcome row, k = 2 (chosen, rejected) for a pair
  response_starts     k ints
  label               float in [0, 1] (outcome rows only)
  reference_logps     k floats, sum_t log pi_ref(y_t|y_<t) of each response (when the cache supplied them)

Batches of these features are `causal.batches.ImplicitPRMCollator`'s (its contract is written there), chosen
by `training.batching.collator_for` like every method's.
"""

from __future__ import annotations

from rewardmodels.causal.response_tokens import encode_response, keep_last_tokens


def sequence_feature(encoded_list: list) -> dict:
    return {
        "sequences": [list(e) for e in encoded_list],
        "response_starts": [int(e.response_start) for e in encoded_list],
    }


def encode_rows(
    tokenizer, rows: list[dict], objective: str, use_chat_template: bool, max_length: int
) -> tuple[list[dict], int]:
    """Features for outcome rows (objective ce) or preference rows (dpo), and how many sequences were cut
    to their last `max_length` tokens."""
    responses = ("completion",) if objective == "ce" else ("chosen", "rejected")
    features, cut = [], 0
    for row in rows:
        encoded = []
        for name in responses:
            e, was_cut = keep_last_tokens(
                encode_response(tokenizer, row["prompt"], row[name], use_chat_template), max_length
            )
            encoded.append(e)
            cut += was_cut
        feature = sequence_feature(encoded)
        if objective == "ce":
            feature["label"] = float(row["label"])
        features.append(feature)
    return features, cut


def drop_identical_pairs(rows: list[dict], features: list[dict], drop: bool, source: str):
    """Pairs whose two sequences are the same tokens once cut carry no preference: refused (InputError naming
    each row's file and line) or dropped, through the check every pair trainer uses."""
    from rewardmodels.data_builders.schema import drop_identical_token_pairs

    views = [
        {"prefix_ids": [], "chosen_ids": f["sequences"][0], "rejected_ids": f["sequences"][1], "feature": f}
        for f in features
    ]
    kept, dropped = drop_identical_token_pairs(rows, views, drop, source)
    return [v["feature"] for v in kept], dropped
