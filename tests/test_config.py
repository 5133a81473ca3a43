from pathlib import Path

import pytest
import yaml

from rewardmodels.bt.config import BTConfig
from rewardmodels.config import DataArguments, ModelArguments, parse_layered

REPO = Path(__file__).resolve().parent.parent
TYPES = (ModelArguments, DataArguments, BTConfig)


def test_defaults_then_yaml_then_command_line(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("learning_rate: 2.0e-5\nmax_length: 64\ntrain_data: [a.jsonl, b.jsonl]\nuse_lora: false\n")
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
    assert first.startswith("# rewardmodels ") or first.startswith("# accelerate launch ") or first.startswith("# ACCELERATE_USE_CPU")
    if recipe.parent.name != "accelerate":
        assert f"--config {recipe.relative_to(REPO)}" in first


@pytest.mark.parametrize("recipe", sorted((REPO / "recipes" / "bt").glob("*.yaml")), ids=lambda p: p.name)
def test_bt_recipes_parse(recipe):
    # bf16 recipes are for GPUs; TrainingArguments refuses bf16 on a CPU-only machine, so switch it off here.
    extra = ["--bf16", "false"] if "bf16: true" in recipe.read_text() else []
    model, data, args = parse_layered(TYPES, ["--config", str(recipe), *extra])
    assert data.train_data and args.output_dir


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

    from rewardmodels.packing import PACKING_MODES, SEQUENCE_PACKING_MODES
    from rewardmodels.prm.config import PRMConfig
    from rewardmodels.trainer_config import RewardConfigBase

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
    assert f"({', '.join(SEQUENCE_PACKING_MODES)})" in prm_help
    with pytest.raises(ValueError, match="--packing must be one of auto, tree, packed, none, got 'fast'"):
        BTConfig(packing="fast")
    with pytest.raises(ValueError, match="--packing must be one of packed, none, got 'tree'"):
        PRMConfig(packing="tree")
    with pytest.raises(ValueError, match="--tie_loss_weight must be at least 0"):
        BTConfig(tie_loss_weight=-1.0)
