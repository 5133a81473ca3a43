"""`rewardmodels export`: turn a training output or checkpoint into a scorer directory.

The directory holds plain HF model files (safetensors, LoRA merged), the tokenizer, `reward_model.json` and a
short model card. It loads with no custom code, through the class the training manifest's `head` names
(`modeling.HEAD_MODEL_CLASSES`): `AutoModelForSequenceClassification.from_pretrained(dir)` for reward heads
(BT, PRM), `AutoModelForCausalLM.from_pretrained(dir)` for a `causal_lm` head (a DPO policy).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from rewardmodels.cli_common import ArgumentParser, add_output_dir_argument, setup_logging
from rewardmodels.errors import MissingInputError, OutputExistsError
from rewardmodels.io import publish_tree, read_json_object, write_json
from rewardmodels.packing import manifest_batching
from rewardmodels.scorers.base import MANIFEST_NAME
from rewardmodels.training.trainer_base import TRAINING_MANIFEST

logger = logging.getLogger("rewardmodels")
FORMAT_VERSION = 1


def find_training_manifest(checkpoint: Path) -> dict:
    for candidate in (checkpoint / TRAINING_MANIFEST, checkpoint.parent / TRAINING_MANIFEST):
        if candidate.is_file():
            return read_json_object(candidate)
    raise MissingInputError(
        checkpoint,
        None,
        None,
        "no such directory" if not checkpoint.exists() else f"no {TRAINING_MANIFEST}",
        hint="Export a `rewardmodels train` output_dir or one of its checkpoint-N folders.",
    )


def manifest_head(manifest: dict) -> str:
    """The head a training manifest records; manifests written before it was recorded hold
    sequence-classification weights (BT and PRM alike), which the `seq_cls` head reloads."""
    return manifest.get("head", "seq_cls")


def saved_dtype(checkpoint: Path) -> str:
    """The dtype a full (non-LoRA) checkpoint was saved in, from its config.json (float32 if unrecorded)."""
    config = json.loads((checkpoint / "config.json").read_text())
    return config.get("dtype") or config.get("torch_dtype") or "float32"


def load_trained_model(checkpoint: Path, manifest: dict, num_labels: int = 1):
    """The trained model with LoRA merged into the base weights, and its tokenizer, on the CPU: a LoRA run's
    base in float32, a full fine-tune in the dtype it was saved in."""
    from transformers import AutoTokenizer

    from rewardmodels.modeling import load_backbone, peft_probe_quiet

    head = manifest_head(manifest)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    if (checkpoint / "adapter_config.json").is_file():
        from peft import PeftModel

        base = load_backbone(
            manifest["base_model"],
            head,
            num_labels=num_labels,
            dtype="float32",
            device="cpu",
            tokenizer=tokenizer,
        )
        with peft_probe_quiet():
            model = PeftModel.from_pretrained(base, checkpoint).merge_and_unload()
    else:
        model = load_backbone(
            str(checkpoint),
            head,
            num_labels=None,  # as saved
            dtype=saved_dtype(checkpoint),
            device="cpu",
            tokenizer=tokenizer,
        )
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def scorer_manifest_of(manifest: dict, checkpoint: Path) -> dict:
    """The scorer directory's manifest: the training manifest with its batching (`packing`, `attention`) in
    `packing.choice`'s vocabulary, old manifests' values read through `manifest_batching`, the format version
    and the checkpoint it was exported from."""
    scorer_manifest = {**manifest, "format_version": FORMAT_VERSION, "exported_from": str(checkpoint)}
    packing, attention = manifest_batching(manifest)
    if packing is not None:
        scorer_manifest["packing"], scorer_manifest["attention"] = packing, attention
    return scorer_manifest


def model_card(manifest: dict) -> str:
    metrics = manifest.get("final_eval") or {}
    lines = [
        f"# Reward model ({manifest['kind']})",
        "",
        f"- Base model: `{manifest.get('base_model')}`",
        f"- Training data: {', '.join(f'`{d}`' for d in manifest.get('train_data', []))}",
        f"- Max length: {manifest.get('max_length')}; chat template: {manifest.get('use_chat_template')}",
    ]
    if metrics:
        lines.append(
            "- Held-out metrics at the end of training: "
            + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, float))
        )
    lines += [
        "",
        "Exported by `rewardmodels export`. Load it with:",
        "",
        "```python",
        "import rewardmodels",
        "scorer = rewardmodels.load_scorer(PATH)",
        "scorer.score(['What is 2+2?'], ['4'])",
        "```",
        "",
    ]
    return "\n".join(lines)


def export_scorer(
    checkpoint: str | os.PathLike, output_dir: str | os.PathLike, overwrite: bool = False
) -> Path:
    checkpoint, output_dir = Path(checkpoint), Path(output_dir)
    if output_dir.exists() and not overwrite:
        raise OutputExistsError(
            output_dir, None, None, "exists already", hint="Pass --overwrite to replace it."
        )
    manifest = find_training_manifest(checkpoint)
    scorer_manifest = scorer_manifest_of(manifest, checkpoint)  # a bad manifest fails before the model loads
    model, tokenizer = load_trained_model(checkpoint, manifest, num_labels=int(manifest.get("num_labels", 1)))
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=output_dir.parent, prefix=f".{output_dir.name}."))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        write_json(tmp / MANIFEST_NAME, scorer_manifest)
        (tmp / "README.md").write_text(model_card(scorer_manifest))
        publish_tree(tmp)  # private while written; readable by a server or evaluator once in place
        if output_dir.exists():
            shutil.rmtree(output_dir)
        os.replace(tmp, output_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return output_dir


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="rewardmodels export", description=__doc__)
    parser.add_argument(
        "checkpoint", help="A `rewardmodels train` output_dir or one of its checkpoint-N folders."
    )
    add_output_dir_argument(parser, "Scorer directory to write.", required=True, old_spellings=("--output",))
    parser.add_argument(
        "--overwrite", action="store_true", help="Replace --output-dir if it exists (the swap is atomic)."
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    out = export_scorer(args.checkpoint, args.output_dir, args.overwrite)
    print(f"scorer written to {out}")
    return 0
