"""What every reward-model trainer here shares: per-mode metrics, a non-finite-loss guard, and a manifest
written beside every checkpoint so that `rewardmodels export` knows how the model was trained."""

from __future__ import annotations

import math
import os
from collections import defaultdict

import torch
from transformers import Trainer

from rewardmodels.io import write_json

TRAINING_MANIFEST = "rewardmodels_training.json"


class NonFiniteLossError(RuntimeError):
    pass


class RewardTrainerBase(Trainer):
    """Subclasses implement `compute_loss` and call `self.record(metrics)` with tensors to average."""

    def __init__(
        self,
        *args,
        training_manifest: dict | None = None,
        held_out_by_source: dict[str, list] | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.training_manifest = training_manifest or {}
        # Held-out features per training source: `training.run.final_eval` reports each beside the pooled figure.
        self.held_out_by_source = held_out_by_source
        # Per metric, (sum, count) pairs: a logged value is weighted by how many samples each batch had, so
        # an uneven last eval batch (or one split unevenly across ranks) counts as much as it should.
        self._metrics: dict[str, dict[str, list[tuple[float, int]]]] = {
            "train": defaultdict(list),
            "eval": defaultdict(list),
        }
        self._collected_rewards: list[torch.Tensor] | None = None

    @property
    def mode(self) -> str:
        return "train" if self.model.training else "eval"

    def record(self, metrics: dict[str, torch.Tensor], where: torch.Tensor | None = None) -> None:
        """Gather each metric over processes now and average it over samples when it is logged.

        Give one value per sample (dim 0 = samples) so that `gather_for_metrics` can drop the samples the
        distributed sampler repeated to even out the last batch; a scalar counts as one sample.

        `where` (bool, one per sample) restricts every metric of this call to the samples where it is True,
        e.g. the tie pairs of a batch: values are still given for every sample, so every rank gathers tensors
        of the same size, and the logged value is sum(value * where) / sum(where). A metric that had no such
        sample in a logging interval is not logged.
        """
        mask = None
        if where is not None:
            mask = self.accelerator.gather_for_metrics(where.detach().float().reshape(-1)) > 0
        for name, value in metrics.items():
            value = value.detach().float().reshape(-1)
            if where is not None and value.numel() != where.numel():
                raise ValueError(
                    f"metric {name!r}: {value.numel()} values for {where.numel()} samples in `where`"
                )
            value = self.accelerator.gather_for_metrics(value)
            if mask is None:
                self._metrics[self.mode][name].append((value.sum().item(), value.numel()))
            else:
                total = torch.where(mask, value, torch.zeros_like(value)).sum().item()
                self._metrics[self.mode][name].append((total, int(mask.sum().item())))

    def record_totals(self, totals: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Add (sum, count) of each metric, summed over processes, for metrics whose samples do not line up
        across ranks (a PRM batch's steps: each rank holds a different number). The logged value is the
        pooled mean sum(sums) / sum(counts) over the logging interval, never a mean of batch means, so an
        uneven last batch weighs what it holds. Unlike `record`, the repeats that a distributed sampler adds
        to even out the last eval batch are counted here (one or two samples per rank at most)."""
        if not totals:
            return
        names = list(totals)
        stacked = torch.stack(
            [torch.stack([total.detach().float().sum(), torch.as_tensor(count).float().to(total.device)])
             for total, count in (totals[n] for n in names)]
        )  # fmt: skip
        summed = self.accelerator.reduce(stacked, reduction="sum").cpu()
        for name, (total, count) in zip(names, summed.tolist(), strict=True):
            if count > 0:
                self._metrics[self.mode][name].append((total, int(count)))

    def derived_metrics(self, logs: dict[str, float], prefix: str) -> None:
        """Add metrics computed from pooled ones (already in `logs` under `prefix`); a subclass hook."""

    def collect_rewards(self, rewards: torch.Tensor) -> None:
        """Keep eval rewards while `evaluate_with_statistics` runs, so statistics need no second pass.

        dim 0 must count samples (a pair trainer passes (pairs, 2)): `gather_for_metrics` trims the last
        batch's repeated samples along dim 0, and flattening before gathering would trim the wrong values.
        """
        if self._collected_rewards is not None and not self.model.training:
            gathered = self.accelerator.gather_for_metrics(rewards.detach().float())
            self._collected_rewards.append(gathered.reshape(-1).cpu())

    def evaluate_with_statistics(self) -> tuple[dict, dict]:
        """Held-out metrics plus the mean and std of every reward given, for score normalisation; no
        statistics from a trainer that gives no rewards (the generative verifier's SFT)."""
        self._collected_rewards = []
        try:
            metrics = self.evaluate()
            collected = self._collected_rewards
        finally:
            self._collected_rewards = None
        if not collected:
            return metrics, {}
        values = torch.cat(collected)
        std = values.std().item() if values.numel() > 1 else 1.0
        return metrics, {"reward_mean": values.mean().item(), "reward_std": std}

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        mode = "train" if "loss" in logs else "eval"
        # An evaluation's keys carry its metric_key_prefix (eval_loss, or eval_<source>_loss for one source).
        prefix = ""
        if mode == "eval":
            prefix = next(
                (k[: -len("loss")] for k in logs if k.startswith("eval") and k.endswith("_loss")), "eval_"
            )
        for name, values in self._metrics[mode].items():
            count = sum(n for _, n in values)
            if count:
                logs[f"{prefix}{name}"] = sum(total for total, _ in values) / count
        self._metrics[mode].clear()
        self.derived_metrics(logs, prefix)
        super().log(logs, start_time)

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        # Every rank must agree before any of them raises, or the others would hang in the next collective.
        bad = torch.tensor([0.0 if torch.isfinite(loss).all() else 1.0], device=loss.device)
        if self.accelerator.reduce(bad, reduction="sum").item() > 0:
            last = self._last_checkpoint()
            raise NonFiniteLossError(
                f"non-finite loss ({loss.item()}) at step {self.state.global_step + 1}; training stopped before the "
                f"optimizer step. Last good checkpoint: {last or 'none saved yet'}. Lower the learning rate, "
                "check the data for extreme margins, or use --max_grad_norm."
            )
        return loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, self._prepare_inputs(inputs))
        return loss.detach(), None, None

    def _last_checkpoint(self) -> str | None:
        from transformers.trainer_utils import get_last_checkpoint

        if os.path.isdir(self.args.output_dir):
            return get_last_checkpoint(self.args.output_dir)
        return None

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        super()._save(output_dir, state_dict)
        output_dir = output_dir or self.args.output_dir
        if self.args.should_save:
            write_json(os.path.join(output_dir, TRAINING_MANIFEST), self.training_manifest)


def finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None
