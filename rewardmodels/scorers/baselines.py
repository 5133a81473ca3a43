"""Trivial baselines that score without a model, to put a trained reward model's numbers in context.

`LengthBaseline` scores a response by minus its length in characters:

    score(prompt, response) = -len(text of response)

so in a pair the shorter answer wins and two answers of equal length tie (a tie counts as wrong under
RewardBench's official rule; the baseline does nothing special about it). The text of a chat-message
response is its messages' contents joined by newlines (`data_builders.schema.text_of`, the evaluators'
notion of a response's text).

The other baseline issue 18 asks for, the untrained base model's mean per-token log-prob of the response,
is a reference-free DPO scorer (`rewardmodels.scorers.dpo.DPOScorer` with ref_free="avg") and lives there.

A baseline only implements `ScoresTexts` (`rewardmodels.scorers.capabilities`): it tokenizes nothing, so
callers score it through `score` on the texts.
"""

from __future__ import annotations

from collections.abc import Sequence

from rewardmodels.data_builders.schema import text_of

__all__ = ["LengthBaseline"]


class LengthBaseline:
    """Prefers the shorter response: score = -len(response text) in characters, prompt ignored."""

    kind = "baseline-length"
    baseline = "length"

    def score(self, prompts: Sequence, responses: Sequence, batch_size: int = 16) -> list[float]:
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        return [-float(len(text_of(r))) for r in responses]
