"""Arguments shared by every trainer, and layered config loading.

Values apply in three layers: dataclass defaults, then the YAML file given with --config, then command-line
flags. The YAML is turned into flags placed before the user's own, so argparse applies both with one set of
type conversions and the last value wins. Recipe values are checked first, so that an error in one names
the recipe's line.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from rewardmodels.cli_common import usage_error
from rewardmodels.errors import InputError
from rewardmodels.io import read_text


@dataclass
class ModelArguments:
    model_name_or_path: str = field(
        default="smollm2-135m",
        metadata={
            "help": "Backbone: an HF Hub id, a local HF directory, a .gguf file, or 'smollm2-135m' (the embedded default)."
        },
    )
    attn_implementation: str = field(
        default="auto",
        metadata={
            "help": "auto (flash_attention_2 on CUDA when flash-attn is installed, else sdpa), sdpa, eager, flash_attention_2 or flex_attention."
        },
    )
    model_dtype: str = field(
        default="float32",
        metadata={
            "help": "Dtype the weights are loaded in: float32, bfloat16, float16 or auto. Use --bf16 for mixed precision."
        },
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow model code from the Hub to run. Off unless you ask for it."}
    )
    use_lora: bool = field(
        default=True,
        metadata={"help": "Train LoRA adapters (and the full reward head) instead of all weights."},
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha (scaling is alpha / r)."})
    lora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the LoRA input."})
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        metadata={
            "help": "Module names that get LoRA adapters (Llama/Qwen/Mistral projection names by default)."
        },
    )


@dataclass
class DataArguments:
    train_data: list[str] = field(
        default_factory=lambda: ["synthetic:n=2000,seed=0"],
        metadata={
            "help": "Training data specs: synthetic[:n=..,seed=..], hh_rlhf:PATH, sharegpt:PATH, prm800k_pairs:PATH, a .jsonl/.json/.parquet file, a save_to_disk dir, or hf:ID[:SPLIT]. Several are mixed; each may end in |eval=N,rows=N,weight=W,name=NAME (hold out N rows of it, train on at most N of the rest, count them W times, name it in per-source metrics)."
        },
    )
    eval_data: list[str] | None = field(
        default=None,
        metadata={
            "help": "Held-out data specs, same forms as --train_data. If unset, --eval_fraction of the training rows is held out."
        },
    )
    eval_fraction: float = field(
        default=0.0,
        metadata={
            "help": "Fraction of each training source held out for evaluation when --eval_data is not given and the source has no |eval=N."
        },
    )
    column_map: str | None = field(
        default=None,
        metadata={
            "help": 'JSON object renaming source columns to canonical ones, e.g. \'{"question": "prompt"}\'.'
        },
    )
    max_length: int = field(
        default=512,
        metadata={"help": "Maximum tokens per sequence; longer ones are cut from the left (prompt first)."},
    )
    max_train_rows: int | None = field(
        default=None, metadata={"help": "Use at most this many rows from each training source."}
    )
    invalid_rows: str = field(
        default="error",
        metadata={
            "help": "What to do with invalid rows: 'error' stops before training, 'drop' drops and counts them."
        },
    )
    use_chat_template: str = field(
        default="auto",
        metadata={
            "help": "auto (template for conversational rows only), always, or never (plain text + EOS)."
        },
    )

    def column_map_dict(self) -> dict[str, str] | None:
        if not self.column_map:
            return None
        try:
            mapping = json.loads(self.column_map)
        except json.JSONDecodeError as e:
            raise ValueError(f"--column_map must be a JSON object: {e}") from None
        if not isinstance(mapping, dict):
            raise ValueError("--column_map must be a JSON object of source -> canonical names")
        return mapping


@dataclass
class Recipe:
    """A recipe YAML as flags: `values[key]` are the `--key` flag's values (lists give several, mappings one
    JSON string, null leaves the field at its default), `argv` all of them in the file's order, and
    `lines[key]` the key's 1-based line."""

    path: str
    values: dict[str, list[str]]
    lines: dict[str, int]

    @property
    def argv(self) -> list[str]:
        return [flag for key, values in self.values.items() for flag in (f"--{key}", *values)]


def read_recipe(path: str | Path) -> Recipe:
    """Read a recipe; `InputError` naming the file (and line) if it is missing, not YAML or not a mapping."""
    text = read_text(path)
    try:
        data = yaml.safe_load(text) or {}
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e)
        raise InputError(path, mark.line + 1 if mark else None, None, f"not valid YAML ({problem})") from None
    if not isinstance(data, dict):
        raise InputError(path, None, None, "a recipe must be a mapping of field: value")
    lines = {str(k.value): k.start_mark.line + 1 for k, _ in node.value} if node is not None else {}
    values: dict[str, list[str]] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            values[str(key)] = [json.dumps(value)]
        elif isinstance(value, list):
            values[str(key)] = [str(v) for v in value]
        elif value is not None:
            values[str(key)] = [str(value)]
    return Recipe(str(path), values, lines)


def check_recipe(parser: argparse.ArgumentParser, recipe: Recipe) -> None:
    """Every recipe field is an option of `parser` and its value has the option's type and choices; else an
    `InputError` naming the recipe's line and field. Runs before the command line is parsed, so a bad value
    is blamed on the file it is in, not on a flag the user never typed."""
    options = parser._option_string_actions  # argparse's table of flag -> action
    for key, values in recipe.values.items():
        line = recipe.lines.get(key)
        action = options.get(f"--{key}")
        if action is None or action.dest in ("config", "help"):
            known = sorted({a.dest for a in parser._actions} - {"config", "help"})
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"Did you mean '{close[0]}'?" if close else None
            raise InputError(recipe.path, line, None, f"unknown field '{key}'", hint=hint)
        if action.nargs == 0:
            raise InputError(recipe.path, line, key, "a switch that takes no value; set the field it negates")
        if action.nargs in (None, "?") and len(values) != 1:
            raise InputError(recipe.path, line, key, f"takes one value, got a list of {len(values)}")
        try:
            parser._get_values(action, list(values))  # argparse's own type and choices checks
        except argparse.ArgumentError as e:
            raise InputError(recipe.path, line, key, e.message) from None


def _refuse(message: str):
    """argparse's `error`, raising instead of printing the usage and exiting: one line, exit code 2."""
    raise usage_error(message)


def _config_error(error: ValueError, recipe: Recipe | None, argv: list[str]) -> InputError:
    """A config's refusal (`__post_init__`) as an InputError. One about a `--field` that the recipe set and
    the command line did not names the recipe's file, line and field."""
    if not isinstance(error, InputError):
        error = InputError(None, None, None, str(error))
    flag = re.match(r"--([\w-]+)", error.reason)
    if error.file is None and recipe is not None and flag:
        name = flag.group(1).replace("-", "_")
        typed = {a[2:].split("=")[0].replace("-", "_") for a in argv if a.startswith("--")}
        key = next((k for k in recipe.values if k.replace("-", "_") == name), None)
        if key is not None and name not in typed:
            return InputError(recipe.path, recipe.lines.get(key), key, error.reason, hint=error.hint)
    return error


def parse_layered(
    dataclass_types: tuple,
    argv: list[str] | None = None,
    prog: str | None = None,
    description: str | None = None,
):
    """Parse dataclass defaults <- YAML (--config) <- command line.

    Bad input in any layer is an `InputError` (one line and exit code 2 from the `rewardmodels` command): an
    unknown recipe field, or a recipe value of the wrong type, names the file, line and field; an unknown
    flag, a flag value of the wrong type, or a value a config refuses is named as given."""
    from transformers import HfArgumentParser

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = HfArgumentParser(dataclass_types, prog=prog, description=description)
    parser.add_argument(
        "--config", default=None, help="Recipe YAML; its values override defaults, and flags override it."
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="Hide progress bars (the same as --disable_tqdm true)."
    )
    parser.error = _refuse
    if "--no-progress" in argv:  # the spelling every command shares, for TrainingArguments' own switch
        argv = [a for a in argv if a != "--no-progress"] + ["--disable_tqdm", "true"]
    recipe = None
    if "--config" in argv:
        i = argv.index("--config")
        if i + 1 == len(argv):
            _refuse("argument --config: expected one argument")
        recipe = read_recipe(argv[i + 1])
        argv = argv[:i] + argv[i + 2 :]
        check_recipe(parser, recipe)
    try:
        parsed = parser.parse_args_into_dataclasses(
            args=(recipe.argv if recipe else []) + argv, return_remaining_strings=True
        )
    except ValueError as e:
        raise _config_error(e, recipe, argv) from None
    if parsed[-1]:
        _refuse(f"unrecognized arguments: {' '.join(parsed[-1])}")
    return parsed[: len(dataclass_types)]
