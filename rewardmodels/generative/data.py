"""Chain rows as SFT features (batched by `causal.batches.CompletionCollator`, which names only chain
tokens as targets).

A row (problem, steps, chain) is rendered as the verifier will be prompted (`sampling.render_prompt` of
`verification.verifier_prompt`: the chat template's user turn, the generation prompt, the chain opener) and
followed by the chain and the tokenizer's EOS text (the end of the assistant turn, so the verifier learns
to stop after its decision). The whole text is tokenized once; the completion starts at the first token
not entirely inside the prompt text (`response_tokens.tokens_before`).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from rewardmodels.causal.response_tokens import tokens_before
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
