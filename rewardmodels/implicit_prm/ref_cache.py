"""The reference runs once per example: a first pass in inference mode computes sum_t log pi_ref(y_t|y_<t)
for every sequence of every feature, and an on-disk cache keeps them, so training never runs the reference.

The cache is one JSON file per *settings*: the reference model's fingerprint
(`fingerprints.model_fingerprint`, a hash of its weights), the tokenization settings (tokenizer, chat
template, max length) and how the reference was computed (dtype, attention kernel). Its name is a hash of
those settings, and the file repeats them, so a file is only ever read for exactly its settings. Inside, values are keyed by the *data*: a hash of
each feature's token ids and response starts (`feature_key`). A changed reference or tokenization therefore
opens another file, and a changed row another key: no stale value is ever served, and unchanged rows are
not recomputed. The file is rewritten atomically (`io.atomic_path`) after every `SAVE_EVERY` batches, so a
killed first pass resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from rewardmodels.causal.batches import ImplicitPRMCollator
from rewardmodels.implicit_prm.reference import Reference
from rewardmodels.io import atomic_path
from rewardmodels.scorers.base import length_sorted_batches

logger = logging.getLogger("rewardmodels")

CACHE_VERSION = 1
SAVE_EVERY = 32  # batches between atomic rewrites of the cache file during a first pass


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def feature_key(feature: dict) -> str:
    """The data's part of a cache key: sha256 of the feature's token ids and response starts."""
    return _digest([feature["sequences"], feature["response_starts"]])


class ReferenceLogprobCache:
    """Reference log-prob sums by `feature_key`, for one set of settings (module docstring)."""

    def __init__(self, directory: str | Path, settings: dict):
        self.settings = {"cache_version": CACHE_VERSION, **settings}
        self.path = Path(directory) / f"ref-logps-{_digest(self.settings)[:24]}.json"
        self.values: dict[str, list[float]] = {}
        if self.path.is_file():
            stored = json.loads(self.path.read_text(encoding="utf-8"))
            if stored.get("settings") != self.settings:
                raise ValueError(
                    f"{self.path} holds reference log-probs for other settings than its name says; "
                    "delete it (it is a cache) and run again"
                )
            self.values = stored["values"]

    def get(self, key: str) -> list[float] | None:
        return self.values.get(key)

    def put_many(self, items: dict[str, list[float]]) -> None:
        self.values.update(items)

    def save(self) -> None:
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps({"settings": self.settings, "values": self.values}), encoding="utf-8")

    def __len__(self) -> int:
        return len(self.values)


@torch.inference_mode()
def attach_reference_logps(
    features: Sequence[dict],
    reference: Reference,
    collator: ImplicitPRMCollator,
    device: torch.device | str,
    cache: ReferenceLogprobCache | None = None,
    batch_size: int = 8,
) -> dict[str, int]:
    """Set `reference_logps` (one float per sequence) on every feature: from the cache where it has the
    feature's key, else computed in length-sorted batches of `batch_size` features and added to the cache.
    Returns how many features were computed and how many came from the cache."""
    from rewardmodels.causal.batches import batch_logprob_parts

    keys = [feature_key(f) for f in features]
    missing = []
    for i, (f, key) in enumerate(zip(features, keys, strict=True)):
        cached = cache.get(key) if cache is not None else None
        if cached is not None and len(cached) == len(f["sequences"]):
            f["reference_logps"] = list(cached)
        else:
            missing.append(i)
    lengths = [sum(len(s) for s in features[i]["sequences"]) for i in missing]
    batches = length_sorted_batches(lengths, batch_size)
    for n, batch_idx in enumerate(batches, 1):
        idx = [missing[j] for j in batch_idx]
        parts = batch_logprob_parts(collator([_without_reference(features[i]) for i in idx])).to(device)
        sums = reference.logp_sums(parts).cpu().tolist()
        k = len(features[idx[0]]["sequences"])
        new = {}
        for row, i in enumerate(idx):
            features[i]["reference_logps"] = sums[row * k : (row + 1) * k]
            new[keys[i]] = features[i]["reference_logps"]
        if cache is not None:
            cache.put_many(new)
            if n % SAVE_EVERY == 0 or n == len(batches):
                cache.save()
        if n % SAVE_EVERY == 0:
            logger.info("reference log-probs: %d of %d batches", n, len(batches))
    return {"computed": len(missing), "from_cache": len(features) - len(missing)}


def _without_reference(feature: dict) -> dict:
    return {k: v for k, v in feature.items() if k != "reference_logps"}


__all__ = ["CACHE_VERSION", "ReferenceLogprobCache", "attach_reference_logps", "feature_key"]
