"""A bad scorer directory is bad input like any other: every command that loads one (`score`, `serve`,
`eval rewardbench`, `eval processbench`, `eval best-of-n`, `eval robustness`) prints one line naming the
directory and the problem and exits with code 2, with no traceback.

Four mistakes a user can make: a directory with no manifest; a manifest naming a kind no scorer has; a
complete checkpoint (config, tokenizer, manifest) whose weights are pickled only (`pytorch_model.bin`),
which is refused because unpickling can run arbitrary code; and a `--scorer-option` the kind does not take.
All are refused by the shared scorer-loading path as `InputError`, which the command table reports; the
tests run each command through that table (in process, and once as a real process).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rewardmodels.cli import INPUT_ERROR_EXIT
from rewardmodels.cli import main as cli_main
from rewardmodels.errors import InputError

REPO = Path(__file__).resolve().parent.parent
KNOWN_KINDS = "bt, dpo, generative, implicit_prm, prm, reference_probability"
PICKLE_HINT = "Loading pickled weights can run arbitrary code; convert the checkpoint to safetensors first."
NO_MANIFEST_HINT = "Create one with `rewardmodels export`, or evaluate a plain HF reward model with --model."
CASES = ["no manifest", "unknown kind", "pickled weights", "unknown option"]
COMMANDS = ["score", "eval rewardbench", "serve", "eval processbench", "eval best-of-n", "eval robustness"]


def unknown_kind_dir(tmp_path: Path) -> Path:
    scorer = tmp_path / "unknown-kind"
    scorer.mkdir()
    (scorer / "reward_model.json").write_text(json.dumps({"kind": "oracle", "max_length": 64}))
    return scorer


def pickled_dir(tmp_path: Path, model: Path) -> Path:
    """A copy of a real checkpoint plus a BT manifest, its safetensors rewritten as pytorch_model.bin."""
    from safetensors.torch import load_file

    scorer = tmp_path / "pickled"
    shutil.copytree(model, scorer)
    for weights in scorer.glob("*.safetensors"):
        torch.save(load_file(weights), scorer / "pytorch_model.bin")
        weights.unlink()
    (scorer / "reward_model.json").write_text(json.dumps({"kind": "bt", "max_length": 64}))
    return scorer


def scorer_dir(case: str, tmp_path: Path, model: Path) -> Path:
    if case == "no manifest":
        (tmp_path / "empty").mkdir()
        return tmp_path / "empty"
    if case == "unknown kind":
        return unknown_kind_dir(tmp_path)
    if case == "pickled weights":
        return pickled_dir(tmp_path, model)
    scorer = tmp_path / "bt"  # a BT manifest; the option is refused before the (absent) weights are read
    scorer.mkdir()
    (scorer / "reward_model.json").write_text(json.dumps({"kind": "bt", "max_length": 64}))
    return scorer


def expected_reason(case: str, scorer: Path) -> str:
    manifest = scorer / "reward_model.json"
    if case == "no manifest":
        return f"{scorer}: not a scorer directory (no reward_model.json). {NO_MANIFEST_HINT}"
    if case == "unknown kind":
        return f"{manifest}, field 'kind': unknown scorer kind 'oracle'; known kinds: {KNOWN_KINDS}"
    if case == "unknown option":
        return (
            f"{manifest}: unknown bt scorer option(s) 'aggregation'; the bt kind takes no other besides "
            "device, dtype, max_length and attn_implementation"
        )
    return f"{scorer}: no .safetensors weights, only pickled ones (pytorch_model.bin). {PICKLE_HINT}"


def command_args(command: str, scorer: Path, tmp_path: Path) -> list[str]:
    """Each command with otherwise valid input, so the scorer directory is the only thing wrong."""
    if command == "score":
        rows = tmp_path / "rows.jsonl"
        rows.write_text(json.dumps({"prompt": "p", "response": "r"}) + "\n")
        return ["score", str(scorer), "--input", str(rows), "--output", str(tmp_path / "scores.jsonl")]
    out = ["--output-dir", str(tmp_path / "results")]
    if command in ("eval rewardbench", "eval robustness"):
        pairs = tmp_path / "pairs.jsonl"
        row = {"prompt": "p", "chosen": "a", "rejected": "b", "subset": "alpacaeval-easy", "id": 1}
        pairs.write_text(json.dumps(row) + "\n")
        return [*command.split(), "--scorer", str(scorer), "--dataset", str(pairs), *out]
    if command == "eval processbench":
        rows = tmp_path / "gsm8k.jsonl"
        rows.write_text(json.dumps({"id": "g-0", "problem": "p", "steps": ["a", "b"], "label": -1}) + "\n")
        return ["eval", "processbench", "--scorer", str(scorer), "--dataset", str(rows), *out]
    if command == "eval best-of-n":
        rows = tmp_path / "candidates.jsonl"
        rows.write_text(json.dumps({"problem": "p", "answer": "1", "candidates": ["\\boxed{1}"]}) + "\n")
        return ["eval", "best-of-n", "--scorer", str(scorer), "--candidates", str(rows), *out]
    return ["serve", str(scorer)]  # loopback without a token: the settings are valid, the scorer is not


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("command", COMMANDS)
def test_a_bad_scorer_directory_is_one_line_and_exit_2(command, case, tiny_llama, tmp_path, capsys):
    scorer = scorer_dir(case, tmp_path, tiny_llama)
    option = ["--scorer-option", "aggregation=min"] if case == "unknown option" else []
    code = cli_main([*command_args(command, scorer, tmp_path), *option])
    err = capsys.readouterr().err
    assert code == INPUT_ERROR_EXIT == 2
    assert err == f"rewardmodels {command}: error: {expected_reason(case, scorer)}\n"
    assert not (tmp_path / "scores.jsonl").exists() and not (tmp_path / "results").exists()


def test_a_real_process_prints_no_traceback(tiny_llama, tmp_path):
    """The same refusal from `python -m rewardmodels`: nothing else on stderr, exit status 2."""
    scorer = pickled_dir(tmp_path, tiny_llama)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "rewardmodels", *command_args("serve", scorer, tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr == f"rewardmodels serve: error: {expected_reason('pickled weights', scorer)}\n"


def test_the_refusals_are_input_errors_that_stay_value_errors(tiny_llama, tmp_path):
    """Library callers get the same one line, and code catching ValueError (as before) still catches it."""
    from rewardmodels.scorers import load_scorer

    unknown = unknown_kind_dir(tmp_path)
    with pytest.raises(InputError) as info:
        load_scorer(unknown)
    assert isinstance(info.value, ValueError)
    assert (info.value.file, info.value.field) == (str(unknown / "reward_model.json"), "kind")
    assert info.value.one_line() == expected_reason("unknown kind", unknown)

    pickled = pickled_dir(tmp_path, tiny_llama)
    with pytest.raises(InputError) as info:
        load_scorer(pickled, device="cpu")
    assert info.value.one_line() == expected_reason("pickled weights", pickled)
    (pickled / "pytorch_model.bin").unlink()  # no weights at all: no pickled files to name
    with pytest.raises(InputError) as info:
        load_scorer(pickled, device="cpu")
    assert info.value.one_line() == f"{pickled}: no .safetensors weights. {PICKLE_HINT}"
