"""Scorer for sequence-level reward models (Bradley-Terry): one scalar read at the last token."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from rewardmodels.collators import PaddedSequenceCollator
from rewardmodels.modeling import rewards_at
from rewardmodels.packing import group_trees
from rewardmodels.scorers.base import (
    count_cuts,
    group_batches,
    length_sorted_batches,
    load_for_scoring,
    split_into_groups,
)
from rewardmodels.scorers.options import DEFAULT_OPTIONS, ScorerOptions
from rewardmodels.scorers.reward_funcs import reward_function
from rewardmodels.tokenization import render_ids, truncate_sequence


class SequenceScorer:
    kind = "bt"
    score_scale = "logit"  # the head's reward (scorers.calibration)
    extra_options: tuple[str, ...] = ()  # ScorerOptions.extra names it takes: none

    def __init__(self, model, tokenizer, manifest: dict, device: torch.device):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.manifest = manifest
        self.device = device
        self.max_length = int(manifest.get("max_length", 4096))
        self.use_chat_template = bool(manifest.get("use_chat_template", tokenizer.chat_template is not None))
        self.collate = PaddedSequenceCollator(pad_token_id=tokenizer.pad_token_id)
        self.truncated = 0
        self.last_truncated: list[bool] = []

    @classmethod
    def from_directory(cls, path, manifest: dict, options: ScorerOptions = DEFAULT_OPTIONS) -> SequenceScorer:
        """An exported scorer directory; `options.max_length` overrides the manifest's."""
        model, tokenizer, dev = load_for_scoring(path, "seq_cls", **options.model_keywords())
        if options.max_length is not None:
            manifest = {**manifest, "max_length": options.max_length}
        return cls(model, tokenizer, manifest, dev)

    @classmethod
    def from_hf_model(
        cls,
        name_or_path: str,
        device=None,
        dtype=None,
        max_length: int = 4096,
        use_chat_template=None,
        trust_remote_code: bool = False,
        attn_implementation=None,
    ) -> SequenceScorer:
        """Any AutoModelForSequenceClassification reward model (Hub id, directory, .gguf), as reward-bench
        loads them."""
        model, tokenizer, dev = load_for_scoring(
            name_or_path,
            "seq_cls",
            device=device,
            dtype=dtype,
            attn_implementation=attn_implementation,
            trust_remote_code=trust_remote_code,
        )
        if use_chat_template is None:
            use_chat_template = tokenizer.chat_template is not None
        manifest = {
            "kind": "bt",
            "base_model": name_or_path,
            "max_length": max_length,
            "use_chat_template": use_chat_template,
        }
        return cls(model, tokenizer, manifest, dev)

    def encode(self, prompts: Sequence, responses: Sequence) -> list[list[int]]:
        """Token ids for each (prompt, response), formatted as in training and cut to max_length from the left."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        return count_cuts(
            self,
            (
                truncate_sequence(render_ids(self.tokenizer, p, r, self.use_chat_template), self.max_length)
                for p, r in zip(prompts, responses, strict=True)
            ),
        )

    @torch.inference_mode()
    def score_ids(self, sequences: list[list[int]], batch_size: int = 16) -> list[float]:
        """Rewards for pre-tokenized sequences, batched by length; returned in input order."""
        scores = [0.0] * len(sequences)
        for batch_idx in length_sorted_batches([len(s) for s in sequences], batch_size):
            batch = self.collate([{"input_ids": sequences[i]} for i in batch_idx])
            batch = {k: v.to(self.device) for k, v in batch.items()}
            values = rewards_at(self.model, batch).squeeze(-1).float().cpu().tolist()
            for i, v in zip(batch_idx, values, strict=True):
                scores[i] = v
        return scores

    @torch.inference_mode()
    def score_groups_ids(self, groups: list[list[list[int]]], batch_size: int = 16) -> list[list[float]]:
        """Rewards for groups of pre-tokenized sequences that answer one prompt (a pair, a best-of-n set).

        Each group runs as one tree (rewardmodels.packing): the group's common token prefix once, then each
        sequence's own tokens, which see only the prefix and themselves. Scores equal score_ids' up to float
        rounding, and the prompt is computed once per group. sdpa runs the groups through the segmented
        kernel (one unpadded row), eager through a dense tree mask; kernels that cannot express a tree
        (flash-attention varlen, flex) get plain score_ids.
        """
        from rewardmodels.modeling import attn_implementation_of
        from rewardmodels.packing import (
            allowed_attention,
            layout_units,
            packing_attention_for,
            scoring_runs_trees,
        )

        attention = packing_attention_for(attn_implementation_of(self.model))
        if not scoring_runs_trees(attention, exact=False):
            return split_into_groups(self.score_ids([s for g in groups for s in g], batch_size), groups)
        values = [0.0] * sum(len(g) for g in groups)
        units = group_trees(groups, [[[len(s) - 1] for s in g] for g in groups])
        for take in group_batches([len(u) for u in units], [len(g) for g in groups], batch_size):
            batch_units = [units[i] for i in take]
            if attention == "segments":  # one row, no padding; attention costs only the blocks that exist
                lay = layout_units(batch_units, self.tokenizer.pad_token_id, token_budget=None, rows="single")
                extra = {"packed_segments": lay.segments}
            else:
                width = max(len(u) for u in batch_units)
                lay = layout_units(batch_units, self.tokenizer.pad_token_id, token_budget=width)
                extra = {"attention_mask": allowed_attention(lay.doc_ids, lay.branch_ids)}
            batch = {
                "input_ids": lay.input_ids,
                "position_ids": lay.position_ids,
                "reward_positions": lay.reward_positions,
                **extra,
            }
            out = rewards_at(self.model, {k: v.to(self.device) for k, v in batch.items()})
            slots = sorted(slot for u in batch_units for slot in u.slots)  # the layout emits slots in order
            for slot, v in zip(slots, out.squeeze(-1).float().cpu().tolist(), strict=True):
                values[slot] = v
        return split_into_groups(values, groups)

    def score(self, prompts: Sequence, responses: Sequence, batch_size: int = 16) -> list[float]:
        return self.score_ids(self.encode(prompts, responses), batch_size)

    def normalize(self, scores: list[float]) -> list[float]:
        mean, std = self.manifest.get("reward_mean"), self.manifest.get("reward_std")
        if mean is None or not std:
            return scores
        return [(s - mean) / std for s in scores]

    def encode_rendered(self, texts: Sequence[str]) -> list[list[int]]:
        """Ids of texts already rendered in this scorer's format (an RL loop's decoded prompt + response, special
        tokens written out): tokenized without adding special tokens, this tokenizer's pad stripped from both
        ends, EOS appended in the plain format as `tokenize_text` does, cut to max_length from the left."""
        return count_cuts(self, (truncate_sequence(self._rendered_ids(t), self.max_length) for t in texts))

    def _rendered_ids(self, text: str) -> list[int]:
        pad, eos = self.tokenizer.pad_token_id, self.tokenizer.eos_token_id
        ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        start, end = 0, len(ids)
        while start < end and ids[start] == pad:
            start += 1
        while end > start and ids[end - 1] == pad:
            end -= 1
        ids = ids[start:end]
        if not self.use_chat_template and eos is not None and (not ids or ids[-1] != eos):
            ids.append(eos)
        return ids

    def as_reward_func(self, **options):
        """A TRL reward function (`scorers.reward_funcs.reward_function`: normalize, calibrated, clip,
        batch_size, asynchronous)."""
        name = f"rm_{Path(str(self.manifest.get('base_model', 'scorer'))).name}"
        return reward_function(self, name=name, **options)
