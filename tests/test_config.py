import json
from pathlib import Path

import pytest
import yaml

from rewardmodels.bt.config import BTConfig
from rewardmodels.training.arguments import DataArguments, ModelArguments, parse_layered

REPO = Path(__file__).resolve().parent.parent
TYPES = (ModelArguments, DataArguments, BTConfig)


def test_defaults_then_yaml_then_command_line(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "learning_rate: 2.0e-5\nmax_length: 64\ntrain_data: [a.jsonl, b.jsonl]\nuse_lora: false\n"
    )
    model, data, args = parse_layered(TYPES, ["--config", str(recipe), "--max_length", "32"])
    assert args.learning_rate == 2e-5  # from YAML
    assert data.max_length == 32  # command line beats YAML
    assert data.train_data == ["a.jsonl", "b.jsonl"]
    assert model.use_lora is False
    assert model.lora_r == 16  # dataclass default
    assert args.remove_unused_columns is False


def test_yaml_number_without_dot_is_still_a_float(tmp_path):
    # PyYAML reads 1e-4 as a string; the flags layer converts it with the field's type.
    recipe = tmp_path / "r.yaml"
    recipe.write_text("learning_rate: 1e-4\n")
    *_, args = parse_layered(TYPES, ["--config", str(recipe)])
    assert args.learning_rate == 1e-4


def test_unknown_yaml_field_is_named(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("learning_rat: 1.0\n")
    with pytest.raises(ValueError, match="unknown field 'learning_rat'"):
        parse_layered(TYPES, ["--config", str(recipe)])


def test_column_map_must_be_json():
    data = DataArguments(column_map='{"q": "prompt"}')
    assert data.column_map_dict() == {"q": "prompt"}
    with pytest.raises(ValueError, match="JSON"):
        DataArguments(column_map="q=prompt").column_map_dict()


@pytest.mark.parametrize("recipe", sorted((REPO / "recipes").rglob("*.yaml")), ids=lambda p: p.name)
def test_every_recipe_starts_with_its_launch_command(recipe):
    first = recipe.read_text().splitlines()[0]
    assert (
        first.startswith("# rewardmodels ")
        or first.startswith("# accelerate launch ")
        or first.startswith("# ACCELERATE_USE_CPU")
    )
    if recipe.parent.name != "accelerate":
        assert f"--config {recipe.relative_to(REPO)}" in first


# Every training recipe, under recipes/<method folder>/; recipes/accelerate/ holds accelerate configs instead.
TRAINING_RECIPES = sorted(p for p in (REPO / "recipes").glob("*/*.yaml") if p.parent.name != "accelerate")
ACCELERATE_CONFIGS = sorted((REPO / "recipes" / "accelerate").glob("*.yaml"))


class Parsed(Exception):
    """Raised in place of building the trainer: carries what the method's command parsed, and stops it
    before any model or data loads."""


def parse_recipe_as_launched(recipe: Path, monkeypatch) -> tuple[list[str], tuple]:
    """(the flags given, (model args, data args, method config)) from the method's own `train` command,
    run with the recipe and the extra flags its launch line (its first line) adds."""
    import importlib
    import shlex

    from rewardmodels.cli import COMMANDS

    method = recipe.parent.name.replace("_", "-")
    assert method in COMMANDS["train"], f"{recipe.parent} is not a training method's recipe folder"
    module = importlib.import_module(COMMANDS["train"][method][0])

    def stop(*parsed):
        raise Parsed(*parsed)

    monkeypatch.setattr(module, "build_trainer", stop)
    launch = recipe.read_text().splitlines()[0]
    extra = shlex.split(launch.split(f"--config {recipe.relative_to(REPO)}", 1)[1])
    # bf16 recipes are for GPUs; TrainingArguments refuses bf16 on a CPU-only machine, so switch it off here.
    if yaml.safe_load(recipe.read_text()).get("bf16"):
        extra += ["--bf16", "false"]
    monkeypatch.chdir(REPO)  # recipe paths (output_dir, data) are relative to the repository, as launched
    with pytest.raises(Parsed) as info:
        module.main(["--config", str(recipe), *extra])
    return extra, info.value.args


def comparable(value):
    """A parsed value in the recipe's own terms: enums by their value, tuples as lists."""
    if isinstance(value, (list, tuple)):
        return [comparable(v) for v in value]
    return getattr(value, "value", value)


@pytest.mark.parametrize("recipe", TRAINING_RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_training_recipe_parses_through_its_methods_command(recipe, monkeypatch):
    """A recipe with a misspelled field, a value of the wrong type or a value its method's config refuses
    fails here rather than at a user's launch: each is parsed by its own method's `rewardmodels train`
    command (defaults <- recipe <- launch-line flags), stopped where the trainer would be built."""
    extra, (model_args, data_args, args) = parse_recipe_as_launched(recipe, monkeypatch)
    assert model_args.model_name_or_path and data_args.train_data and args.output_dir
    # Every field the recipe sets arrives with the recipe's value (unless a launch-line flag overrides it).
    overridden = {flag.lstrip("-") for flag in extra if flag.startswith("--")}
    for field, value in yaml.safe_load(recipe.read_text()).items():
        if field in overridden:
            continue
        holder = next(a for a in (model_args, data_args, args) if hasattr(a, field))
        parsed = comparable(getattr(holder, field))
        assert parsed == value, f"{field}: recipe {value!r}, parsed {parsed!r}"


def test_the_recipe_tests_cover_every_method():
    from rewardmodels.cli import COMMANDS

    folders = {recipe.parent.name.replace("_", "-") for recipe in TRAINING_RECIPES}
    assert folders == set(COMMANDS["train"]), "every training method ships at least one recipe"


# One recipe a method for `test_one_training_step_of_a_recipe_per_method`, with the flags that shrink its
# data: a few rows of the same sources (the generative chains in a short verification format, so a chain fits
# the tiny model's 512 positions).
SMALL_SYNTHETIC = ("--train_data", "synthetic:n=8,seed=0", "--eval_data", "synthetic:n=4,seed=1")
STEP_RECIPES = {
    "bt": ("bt/smollm2_synthetic.yaml", *SMALL_SYNTHETIC),
    "prm": ("prm/smollm2_synthetic.yaml", *SMALL_SYNTHETIC),
    "implicit-prm": ("implicit_prm/smollm2_synthetic_ce.yaml", *SMALL_SYNTHETIC),
    "generative": (
        "generative/smollm2_synthetic_templated.yaml",
        "--train_data", "templated:synthetic:n=8,seed=0,task=a", "--max_length", "512",
    ),
}  # fmt: skip


def short_verification_format(path: Path) -> Path:
    """ThinkPRM's format with a short user message (the default prompt alone outgrows the tiny model)."""
    from rewardmodels.verification import load_format

    data = {**load_format().to_dict(), "name": "short", "user_message": "Check: {problem}\n{solution}"}
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("method", sorted(STEP_RECIPES))
def test_one_training_step_of_a_recipe_per_method(method, tiny_llama, tmp_path, monkeypatch):
    """Each method's recipe trains for one step on the tiny model through the command a user runs
    (`rewardmodels train METHOD --config RECIPE` plus flags): its trainable parameters move and a manifest is
    written. The trainer is only observed on its way from build_trainer to the run."""
    import importlib

    import torch

    from rewardmodels.cli import COMMANDS
    from rewardmodels.cli import main as cli_main
    from rewardmodels.packing import USED_PACKING

    recipe, *data_flags = STEP_RECIPES[method]
    module = importlib.import_module(COMMANDS["train"][method][0])
    real_build, seen = module.build_trainer, {}

    def observed_build(*parsed):
        trainer = real_build(*parsed)
        seen["trainer"] = trainer
        seen["before"] = {
            n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad
        }
        return trainer

    monkeypatch.setattr(module, "build_trainer", observed_build)
    monkeypatch.chdir(REPO)  # as launched: recipe paths are relative to the repository
    out = tmp_path / "run"
    # The recipe's schedule is not under test: a warmup's first step has learning rate 0.
    flags = [
        "--model_name_or_path", str(tiny_llama), *data_flags, "--max_steps", "1", "--output_dir", str(out),
        "--report_to", "none", "--save_strategy", "no", "--warmup_steps", "0",
    ]  # fmt: skip
    if method == "implicit-prm":
        flags += ["--reference_cache_dir", str(tmp_path / "cache")]  # not the user's cache
    if method == "generative":
        flags += ["--verification_format", str(short_verification_format(tmp_path / "short.json"))]
    assert cli_main(["train", method, "--config", f"recipes/{recipe}", *flags]) == 0
    trainer, before = seen["trainer"], seen["before"]
    assert trainer.state.global_step == 1
    after = dict(trainer.model.named_parameters())
    changed = {n for n, value in before.items() if not torch.equal(value, after[n].detach())}
    # Every recipe here trains LoRA: lora_B starts at zero, so lora_A has no gradient in the first step; every
    # other trainable tensor (lora_B, a head, an added separator row) must have moved.
    assert changed and changed == {n for n in before if "lora_A" not in n}
    manifest = json.loads((out / "rewardmodels_training.json").read_text())
    assert manifest["kind"] == method.replace("-", "_") and manifest["packing"] in USED_PACKING


def test_every_method_has_a_one_step_recipe_test():
    from rewardmodels.cli import COMMANDS

    assert set(STEP_RECIPES) == set(COMMANDS["train"])
    assert all((REPO / "recipes" / recipe).is_file() for recipe, *_ in STEP_RECIPES.values())


@pytest.mark.parametrize("config", ACCELERATE_CONFIGS, ids=lambda p: p.name)
def test_accelerate_configs_parse(config):
    """The accelerate configs are mappings that accelerate's own loader accepts (it refuses unknown keys)."""
    from accelerate.commands.config.config_args import load_config_from_file

    assert isinstance(yaml.safe_load(config.read_text()), dict)
    assert load_config_from_file(str(config)).num_processes >= 1


def test_demo_runs_the_embedded_default_recipe():
    from rewardmodels.demo import DEMO_RECIPE

    recipe = yaml.safe_load((REPO / "recipes" / "bt" / "smollm2_synthetic.yaml").read_text())
    assert recipe == DEMO_RECIPE


def test_help_shows_each_default_the_help_does_not_already_state():
    import argparse

    from rewardmodels.cli_common import HelpFormatter

    parser = argparse.ArgumentParser(prog="x", formatter_class=HelpFormatter)
    parser.add_argument("--n", type=int, default=8, help="Count.")
    parser.add_argument("--seed", type=int, default=0, help="Seed.")
    parser.add_argument("--cache", default="a.db", help="Cache file (default: a.db).")
    parser.add_argument("--limit", type=int, default=None, help="Limit.")
    parser.add_argument("--quiet", action="store_true", help="Quiet.")
    lines = {" ".join(line.split()) for line in parser.format_help().splitlines()}
    assert "--n N Count. (default: 8)" in lines
    assert "--seed SEED Seed. (default: 0)" in lines  # 0 is a value worth showing, though it equals False
    assert "--cache CACHE Cache file (default: a.db)." in lines
    assert "--limit LIMIT Limit." in lines
    assert "--quiet Quiet." in lines


def test_bt_and_prm_configs_share_one_base_and_every_field_has_help():
    import dataclasses

    from transformers import TrainingArguments

    from rewardmodels.packing import PACKING_MODES, packing_choices
    from rewardmodels.prm.config import PRMConfig
    from rewardmodels.training.reward_config import RewardConfigBase

    hf_fields = {f.name: f for f in dataclasses.fields(TrainingArguments)}
    base_fields = {f.name for f in dataclasses.fields(RewardConfigBase)}
    for config in (BTConfig, PRMConfig):
        assert issubclass(config, RewardConfigBase)
        args = config()
        assert (args.remove_unused_columns, args.learning_rate, args.logging_steps, args.save_steps) == (
            False,
            1e-4,
            10,
            100,
        )
        assert (args.per_device_train_batch_size, args.per_device_eval_batch_size) == (8, 16)
        # Fields declared or overridden by our classes are new Field objects; inherited ones are HF's own.
        ours = [f for f in dataclasses.fields(config) if hf_fields.get(f.name) is not f]
        assert base_fields - set(hf_fields) <= {f.name for f in ours}
        missing = [f.name for f in ours if not f.metadata.get("help")]
        assert not missing, f"{config.__name__} fields without help: {missing}"
    assert BTConfig().output_dir == "outputs/bt" and PRMConfig().output_dir == "outputs/prm"
    # The packing choices and their help derive from rewardmodels.packing's one list.
    bt_help = next(f for f in dataclasses.fields(BTConfig) if f.name == "packing").metadata["help"]
    assert f"({', '.join(PACKING_MODES)})" in bt_help
    prm_help = next(f for f in dataclasses.fields(PRMConfig) if f.name == "packing").metadata["help"]
    assert f"({', '.join(packing_choices(pairs=False))};" in prm_help
    with pytest.raises(ValueError, match="--packing must be one of auto, tree, packed, none, got 'fast'"):
        BTConfig(packing="fast")
    with pytest.raises(ValueError, match="--packing must be one of auto, packed, none, got 'tree'"):
        PRMConfig(packing="tree")
    with pytest.raises(ValueError, match="--tie_loss_weight must be at least 0"):
        BTConfig(tie_loss_weight=-1.0)
