"""The checkpoints of a Bradley-Terry training run, loaded as scorers, with the tokens and parameters that
turn each one's training into compute.

A run's output_dir holds checkpoint-N folders (one per --save_steps; keep them all by leaving
--save_total_limit above their count) and, once training ends, the final model. Each has a trainer_state.json; BT runs
record `num_input_tokens_seen` there (BTConfig.include_num_input_tokens_seen, on by default), the tokens the
model was fed up to that step.

Compute (`flops_per_token`): a forward pass costs 2 FLOPs per parameter per token, the backward pass 2 more
for the activation gradients (through every layer, frozen or not) and 2 more for the weight gradients of
the trained parameters only. So

    C = tokens x (4 N_frozen + 6 N_trainable)

which is the usual 6 N per token for a full fine-tune; under LoRA the frozen base costs 4 N_base per token
(forward and activation gradients) and the adapters and the head, which are trained, 6 N each. N counts the
parameters that multiply: the input embedding matrix is a lookup and is left out (`parameter_counts`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from rewardmodels.errors import InputError
from rewardmodels.export import find_training_manifest, load_trained_model, manifest_head
from rewardmodels.io import read_json_object

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
TRAINER_STATE = "trainer_state.json"
WEIGHT_FILES = ("adapter_model.safetensors", "model.safetensors", "model.safetensors.index.json")
ADAPTER_FILE = "adapter_model.safetensors"


@dataclass(frozen=True)
class RunPoint:
    """One evaluated state of a run: a checkpoint-N folder, or the final model in the run folder itself."""

    name: str
    path: Path
    step: int
    tokens: int | None  # num_input_tokens_seen from its trainer_state.json; None when not recorded


def has_weights(path: Path) -> bool:
    return any((path / name).is_file() for name in WEIGHT_FILES)


def read_tokens(state_path: Path) -> tuple[int, int | None]:
    """(global_step, num_input_tokens_seen or None) from a trainer_state.json."""
    state = read_json_object(state_path)
    tokens = state.get("num_input_tokens_seen")
    return int(state.get("global_step", 0)), int(tokens) if isinstance(
        tokens, int | float
    ) and tokens > 0 else None


def run_points(run_dir: str | Path, include_final: bool = True) -> list[RunPoint]:
    """Every checkpoint-N of `run_dir` with weights, by step, then the final model when it is there and its
    step is not a checkpoint's already. None at all is an InputError naming the folder."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(
            run_dir, None, None, "no such directory" if not run_dir.exists() else "not a directory"
        )
    points = []
    for child in run_dir.iterdir():
        match = CHECKPOINT.match(child.name)
        if match and child.is_dir():
            if not has_weights(child) or not (child / TRAINER_STATE).is_file():
                raise InputError(child, None, None, f"a checkpoint without weights or {TRAINER_STATE}")
            step, tokens = read_tokens(child / TRAINER_STATE)
            points.append(RunPoint(child.name, child, int(match.group(1)), tokens))
    points.sort(key=lambda p: p.step)
    if include_final and has_weights(run_dir) and (run_dir / TRAINER_STATE).is_file():
        step, tokens = read_tokens(run_dir / TRAINER_STATE)
        if step not in {p.step for p in points}:
            points.append(RunPoint("final", run_dir, step, tokens))
    if not points:
        raise InputError(
            run_dir, None, None, "no checkpoint-N folders and no final model",
            hint="Train with --save_steps N and a --save_total_limit above the checkpoint count to keep them all.",
        )  # fmt: skip
    return points


def bt_manifest(path: Path) -> dict:
    """The training manifest of a checkpoint or run; a run of another kind than BT is an InputError."""
    manifest = find_training_manifest(path)
    if manifest.get("kind") != "bt":
        raise InputError(path, None, "kind", f"a {manifest.get('kind')!r} run: only BT runs score pairs here")
    return manifest


def load_point_scorer(path: str | Path, device: str | None = None):
    """A checkpoint (LoRA merged) as a `SequenceScorer`, scoring as the exported scorer would."""
    from rewardmodels.modeling import pick_device
    from rewardmodels.scorers.sequence import SequenceScorer

    path = Path(path)
    manifest = bt_manifest(path)
    model, tokenizer = load_trained_model(path, manifest)
    dev = pick_device(device)
    return SequenceScorer(model.to(dev).eval().requires_grad_(False), tokenizer, manifest, dev)


def load_initial_scorer(point: Path, device: str | None = None):
    """The run's step-0 model as a `SequenceScorer`: the base model with the head initialised as training
    initialised it (the manifest's `seed`, set just before the model loads, as `training.run.load_model`
    does; LoRA's B matrices start at zero, so the adapters change nothing at step 0). None when the
    manifest records no seed (runs before it was recorded)."""
    from transformers import AutoTokenizer, set_seed

    from rewardmodels.modeling import load_backbone, pick_device
    from rewardmodels.scorers.sequence import SequenceScorer

    manifest = bt_manifest(Path(point))
    if manifest.get("seed") is None:
        return None
    tokenizer = AutoTokenizer.from_pretrained(point)
    set_seed(int(manifest["seed"]))
    dev = pick_device(device)
    model = load_backbone(
        manifest["base_model"],
        manifest_head(manifest),
        num_labels=1,
        dtype="float32",
        device=dev,
        tokenizer=tokenizer,
    )
    return SequenceScorer(model.eval().requires_grad_(False), tokenizer, manifest, dev)


@dataclass(frozen=True)
class ParameterCounts:
    frozen: int
    trainable: int
    embedding: int  # the input embedding matrix, left out of both (a lookup, no multiply-adds)

    @property
    def flops_per_token(self) -> int:
        return flops_per_token(self.frozen, self.trainable)


def flops_per_token(frozen: int, trainable: int) -> int:
    """4 N_frozen + 6 N_trainable: training FLOPs per token (module docstring)."""
    return 4 * frozen + 6 * trainable


def parameter_counts(point: str | Path) -> ParameterCounts:
    """Frozen and trained parameters of a checkpoint, counted without loading weights: the architecture is
    built on the meta device from its config (a LoRA run's base model), the adapters from the shapes in
    adapter_model.safetensors. An adapter tensor that is not a LoRA matrix is a module trained in full (the
    head, `modules_to_save`), also in the base count, so it moves from frozen to trained; trained token rows
    are embedding rows and left out like the embedding."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from rewardmodels.modeling import resolve_model_path

    point = Path(point)
    manifest = bt_manifest(point)
    adapter = point / ADAPTER_FILE
    source = resolve_model_path(manifest["base_model"]) if adapter.is_file() else point
    config = AutoConfig.from_pretrained(source)
    config.num_labels = 1
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(config)
    embedding = model.get_input_embeddings().weight.numel()
    total = sum(p.numel() for p in model.parameters()) - embedding
    if not adapter.is_file():
        return ParameterCounts(0, total, embedding)
    from safetensors import safe_open

    lora = modules = 0
    with safe_open(str(adapter), framework="pt") as f:
        for name in f.keys():
            size = math.prod(f.get_slice(name).get_shape())
            if "lora_" in name:
                lora += size
            elif "trainable_tokens" not in name:
                modules += size
    return ParameterCounts(total - modules, lora + modules, embedding)
