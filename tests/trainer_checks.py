"""Checks every trainer's tests share: parameter snapshots, stopping mid-run, resuming, poisoning the head."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from transformers import TrainerCallback


def trainable_snapshot(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


class StopAt(TrainerCallback):
    """Stop training after step `step`, as a killed run would (its checkpoint already written)."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


class PoisonHeadAt(TrainerCallback):
    """Set the head to NaN just before step `step` runs (after the previous checkpoint was written)."""

    def __init__(self, step: int):
        self.step = step

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        if state.global_step == self.step - 1:
            with torch.no_grad():
                for name, p in model.named_parameters():
                    if "score" in name and p.requires_grad:
                        p.fill_(float("nan"))


def assert_resume_reproduces(
    make_trainer: Callable[[Path], object], tmp_path: Path, cut: int, total: int
) -> None:
    """A run stopped after `cut` steps and resumed from its checkpoint ends with the parameters of an
    uninterrupted run of `total` steps. `make_trainer(output_dir)` must save a checkpoint at step `cut`."""
    full = make_trainer(tmp_path / "full")
    full.train()
    expected = trainable_snapshot(full.model)
    first = make_trainer(tmp_path / "cut")
    first.add_callback(StopAt(cut))
    first.train()
    assert first.state.global_step == cut
    resumed = make_trainer(tmp_path / "cut")
    resumed.train(resume_from_checkpoint=str(tmp_path / "cut" / f"checkpoint-{cut}"))
    assert resumed.state.global_step == total
    got = trainable_snapshot(resumed.model)
    for name, value in expected.items():
        torch.testing.assert_close(got[name], value, rtol=0, atol=1e-6, msg=name)
