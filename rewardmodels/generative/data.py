"""Chain rows as SFT features, and the completion-only collator.

A row (problem, steps, chain) is rendered as the verifier will be prompted (`sampling.render_prompt` of
`verification.verifier_prompt`: the chat template's user turn, the generation prompt, the chain opener) and
followed by the chain and the tokenizer's EOS text (the end of the assistant turn, so the verifier learns
to stop after its decision). The whole text is tokenized once; the completion starts at the first token
not entirely inside the prompt text (`response_tokens.tokens_before`).

Batch contract (`CompletionCollator`): the model inputs of `logprobs.padded_batch` (right-padded rows) or
`logprobs.packed_batch` (packed rows, each sequence attending only to itself), plus

  lm_positions  (n,) flat indices into rows * length of the positions whose logits predict a completion token
  lm_targets    (n,) the completion token predicted at each: for a sequence of T tokens whose completion
                starts at s, positions s-1 .. T-2 predict tokens s .. T-1; no prompt token is ever a target
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from rewardmodels.causal.logprobs import packed_batch, padded_batch, response_positions
from rewardmodels.causal.response_tokens import tokens_before
from rewardmodels.packing import PackUnit
from rewardmodels.sampling import render_prompt
from rewardmodels.verification import VerificationFormat, verifier_prompt


def chain_texts(tokenizer, fmt: VerificationFormat, row: dict) -> tuple[str, str]:
    """(prompt text, completion text) of one chain row."""
    prompt = render_prompt(tokenizer, verifier_prompt(fmt, row["problem"], row["steps"]), "the verifier")
    return prompt, row["chain"] + (tokenizer.eos_token or "")


def encode_chain(tokenizer, prompt: str, completion: str) -> tuple[list[int], int]:
    """Token ids of prompt + completion (special tokens as the text holds them) and the completion start."""
    text = prompt + completion
    fast = bool(getattr(tokenizer, "is_fast", False))
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=fast)
    ids = list(enc["input_ids"])
    if fast:
        start = bisect_right(tokens_before([tuple(o) for o in enc["offset_mapping"]]), len(prompt))
    else:  # no offsets: the prompt's own ids must be a prefix
        head = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        if ids[: len(head)] != head:
            raise ValueError("the prompt's tokens change when the chain follows; use a fast tokenizer")
        start = len(head)
    if not 1 <= start < len(ids):
        raise ValueError(
            f"the chain has no tokens of its own after the prompt (start {start}, {len(ids)} ids)"
        )
    return ids, start


@dataclass
class ChainTokenizationReport:
    rows: int = 0
    too_long: int = (
        0  # rows over max_length: dropped, as a cut chain would train a verdict without its reason
    )

    def __str__(self) -> str:
        return f"{self.rows} chain rows, {self.too_long} dropped for exceeding max_length"


def chain_features(
    tokenizer, fmt: VerificationFormat, rows: Sequence[dict], max_length: int
) -> tuple[list[dict], ChainTokenizationReport]:
    """{"input_ids", "completion_start"} for every row that fits in max_length tokens."""
    features, report = [], ChainTokenizationReport()
    for row in rows:
        report.rows += 1
        ids, start = encode_chain(tokenizer, *chain_texts(tokenizer, fmt, row))
        if len(ids) > max_length:
            report.too_long += 1
            continue
        features.append({"input_ids": ids, "completion_start": start})
    return features, report


@dataclass
class CompletionCollator:
    """Features -> the batch contract above; `packing` "packed" or "none", `attention` as
    `packing.packing_attention_for(the model's kernel)` says."""

    pad_token_id: int
    packing: str = "packed"
    attention: str = "segments"
    token_budget: int | None = None

    def __call__(self, features: list[dict]) -> dict:
        sequences = [list(f["input_ids"]) for f in features]
        positions = [
            response_positions(s, f["completion_start"]) for s, f in zip(sequences, features, strict=True)
        ]
        if self.packing == "none":
            batch = padded_batch(sequences, positions, self.pad_token_id)
        else:
            units = [
                PackUnit([], [s], [p], [i]) for i, (s, p) in enumerate(zip(sequences, positions, strict=True))
            ]
            batch = packed_batch(units, self.pad_token_id, self.attention, self.token_budget)
        return {**batch.inputs, "lm_positions": batch.positions, "lm_targets": batch.targets}
