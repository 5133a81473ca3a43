"""Issue 17: bad input anywhere gets one clear line naming file, line and field, before any model loads.

Each case writes a small file, asserts the exact message, and, where a model would follow, that none was
loaded (every model loader ends in `PreTrainedModel.from_pretrained`, patched here to fail). The command line
prints the error as one line with exit code 2; written files and directories get the umask's usual modes.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from rewardmodels.data_builders.schema import DataValidationError, drop_identical_token_pairs
from rewardmodels.data_builders.sources import load_rows
from rewardmodels.errors import InputError
from rewardmodels.io import read_rows, write_json, write_jsonl
from rewardmodels.training.arguments import DataArguments, ModelArguments, parse_layered

REPO = Path(__file__).resolve().parent.parent
SOFT_HINT = "train with --label_mode soft (and --loss_type bce) for fractional labels"
DROP_HINT = "Fix the rows, or pass --invalid_rows drop to drop and count them."


class ModelLoaded(AssertionError):
    pass


@pytest.fixture
def no_model_loads(monkeypatch):
    """Fail the test if any model (a training backbone or a scorer) starts to load."""
    import transformers

    import rewardmodels.scorers

    def refuse(*args, **kwargs):
        raise ModelLoaded("a model was loaded before the input was checked")

    monkeypatch.setattr(transformers.PreTrainedModel, "from_pretrained", classmethod(refuse))
    monkeypatch.setattr(rewardmodels.scorers, "load_scorer", refuse)


def write_lines(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def stepwise(labels: list, steps: list | None = None) -> dict:
    return {"prompt": "p", "completions": steps or [f"s{i}" for i in range(len(labels))], "labels": labels}


# ---- PRM hard labels: checked with the other rows, before the model, by the file's own line numbers ----------


def prm_args(model: Path, out: Path, *extra: str):
    from rewardmodels.prm.config import PRMConfig

    return parse_layered(
        (ModelArguments, DataArguments, PRMConfig),
        ["--model_name_or_path", str(model), "--output_dir", str(out), "--report_to", "none", *extra],
    )


def test_hard_label_error_names_file_line_and_field_before_the_model(tiny_llama, tmp_path, no_model_loads):
    from rewardmodels.prm.train import build_trainer

    # line 1 is invalid for another reason, line 2 is blank: the soft label on line 3 is still "line 3"
    data = tmp_path / "steps.jsonl"
    data.write_text(
        json.dumps(stepwise([True], ["a", "b"])) + "\n\n" + json.dumps(stepwise([True, 0.5])) + "\n"
    )
    with pytest.raises(InputError) as info:
        build_trainer(*prm_args(tiny_llama, tmp_path / "run", "--train_data", str(data)))
    assert info.value.one_line() == (
        f"{data}, line 1, field 'labels': length mismatch (1 labels for 2 steps); 2 problems in 2 row(s) "
        f"[length mismatch: 1, soft label: 1]. {DROP_HINT}"
    )
    assert f"  line 3, field 'labels[1]': soft label (0.5 is not a hard label; {SOFT_HINT})" in str(
        info.value
    )


def test_hard_labels_obey_drop_mode_and_are_counted(tmp_path):
    data = write_lines(
        tmp_path / "steps.jsonl",
        [
            stepwise([True, 0.5]),
            stepwise([True, False]),
            stepwise([1, 0]),
            stepwise([0.25]),
            stepwise([True], ["a", "b"]),
        ],
    )
    kept, report = load_rows(str(data), "stepwise", drop_invalid=True, hard_labels=True)
    assert [r["labels"] for r in kept] == [[True, False], [1, 0]]
    assert report.dropped == {"soft label": 2, "length mismatch": 1}
    # soft training takes every fraction
    kept, report = load_rows(str(data), "stepwise", drop_invalid=True)
    assert len(kept) == 4 and report.dropped == {"length mismatch": 1}


def test_nothing_left_after_dropping_is_refused_before_the_model(tiny_llama, tmp_path, no_model_loads):
    from rewardmodels.prm.train import build_trainer

    data = write_lines(tmp_path / "steps.jsonl", [stepwise([0.5]), stepwise([True, 0.7])])
    args = prm_args(tiny_llama, tmp_path / "run", "--train_data", str(data), "--invalid_rows", "drop")
    with pytest.raises(InputError) as info:
        build_trainer(*args)
    assert info.value.one_line() == (
        f"{data}, line 1, field 'labels[0]': soft label (0.5 is not a hard label; {SOFT_HINT}); 2 problems in 2 "
        "row(s) [soft label: 2]. Every row was invalid and dropped: nothing is left."
    )


def test_problems_are_counted_per_row_and_a_row_is_dropped_once(tmp_path):
    data = write_lines(tmp_path / "steps.jsonl", [stepwise([True], ["a", " "]), stepwise([True, False])])
    with pytest.raises(InputError) as info:
        load_rows(str(data), "stepwise")
    assert info.value.one_line() == (
        f"{data}, line 1, field 'completions[1]': empty step (no text); 2 problems in 1 row(s) "
        f"[empty step: 1, length mismatch: 1]. {DROP_HINT}"
    )
    kept, report = load_rows(str(data), "stepwise", drop_invalid=True)
    assert len(kept) == 1 and report.dropped == {"empty step": 1} and report.total == 2


def test_no_labelled_step_within_max_length_is_refused_before_the_model(tiny_llama, tmp_path, no_model_loads):
    from rewardmodels.prm.train import build_trainer

    # the first step alone is longer than max_length, so no step (and no label) is kept
    data = write_lines(tmp_path / "steps.jsonl", [stepwise([True, False], ["what is the answer " * 40, "b"])])
    args = prm_args(tiny_llama, tmp_path / "run", "--train_data", str(data), "--max_length", "16")
    with pytest.raises(InputError) as info:
        build_trainer(*args)
    assert info.value.one_line() == (
        f"{data}: no training row keeps a labelled step within max_length=16. Raise --max_length, or give rows "
        "whose labelled steps come earlier."
    )


# ---- recipes and flags: one InputError each; a recipe's names its file, line and field --------------------------


def test_recipe_errors_name_the_file_line_and_field(tiny_llama, tmp_path, no_model_loads):
    recipe = tmp_path / "r.yaml"

    def refused(text: str, *flags: str, parse=bt_args) -> str:
        recipe.write_text(text)
        with pytest.raises(InputError) as info:
            parse(tiny_llama, tmp_path / "run", "--config", str(recipe), *flags)
        return info.value.one_line()

    assert refused("max_length: 64\nlerning_rate: 1.0\n") == (
        f"{recipe}, line 2: unknown field 'lerning_rate'. Did you mean 'learning_rate'?"
    )
    assert refused("# a comment\nlearning_rate: fast\n") == (
        f"{recipe}, line 2, field 'learning_rate': invalid float value: 'fast'"
    )
    assert (
        refused("lora_r: [4, 8]\n") == f"{recipe}, line 1, field 'lora_r': takes one value, got a list of 2"
    )
    assert refused("max_length: [1, 2\n") == (
        f"{recipe}, line 2: not valid YAML (expected ',' or ']', but got '<stream end>')"
    )
    # a value the config refuses after parsing is blamed on the recipe line that set it ...
    assert refused("max_length: 64\npacking: weird\n") == (
        f"{recipe}, line 2, field 'packing': --packing must be one of auto, tree, packed, none, got 'weird'"
    )
    assert refused("label_mode: medium\n", parse=prm_args) == (
        f"{recipe}, line 1, field 'label_mode': --label_mode must be one of hard, soft, got 'medium'"
    )
    # ... unless the command line set it, and a flag overrides a bad recipe value
    assert refused("packing: none\n", "--packing", "weird") == (
        "--packing must be one of auto, tree, packed, none, got 'weird'"
    )
    recipe.write_text("packing: weird\n")
    assert (
        bt_args(tiny_llama, tmp_path / "run", "--config", str(recipe), "--packing", "none")[2].packing
        == "none"
    )
    with pytest.raises(InputError) as info:
        bt_args(tiny_llama, tmp_path / "run", "--config", str(tmp_path / "missing.yaml"))
    assert info.value.one_line() == f"{tmp_path / 'missing.yaml'}: no such file"


def test_flag_errors_are_one_input_error(tiny_llama, tmp_path, no_model_loads):
    with pytest.raises(InputError) as info:
        bt_args(tiny_llama, tmp_path / "run", "--lerning_rate", "3")
    assert info.value.one_line() == "unrecognized arguments: --lerning_rate 3. See --help."
    with pytest.raises(InputError) as info:
        bt_args(tiny_llama, tmp_path / "run", "--learning-rate", "x")
    assert info.value.one_line() == (
        "argument --learning_rate/--learning-rate: invalid float value: 'x'. See --help."
    )
    with pytest.raises(InputError) as info:
        prm_args(tiny_llama, tmp_path / "run", "--label_mode", "soft", "--loss_type", "ce")
    assert (
        info.value.one_line()
        == "soft labels need --loss_type bce (cross-entropy here takes hard labels only)"
    )


# ---- BT pairs that truncation makes identical ------------------------------------------------------------------

LONG_TAIL = " the answer is good" * 12


def identical_pair_rows() -> list[dict]:
    return [
        {"prompt": "q", "chosen": "yes", "rejected": "no"},
        {"prompt": "q", "chosen": "hello" + LONG_TAIL, "rejected": "world" + LONG_TAIL},
        {"prompt": "q", "chosen": "good", "rejected": "bad"},
    ]


def bt_args(model: Path, out: Path, *extra: str):
    from rewardmodels.bt.config import BTConfig

    return parse_layered(
        (ModelArguments, DataArguments, BTConfig),
        ["--model_name_or_path", str(model), "--output_dir", str(out), "--report_to", "none", *extra],
    )


def test_pairs_identical_after_truncation_are_refused_before_the_model(tiny_llama, tmp_path, no_model_loads):
    from rewardmodels.bt.train import build_trainer

    data = write_lines(tmp_path / "pairs.jsonl", identical_pair_rows())
    args = bt_args(tiny_llama, tmp_path / "run", "--train_data", str(data), "--max_length", "16")
    with pytest.raises(InputError) as info:
        build_trainer(*args)
    assert info.value.one_line() == (
        f"{data}, line 2, field 'rejected': identical after tokenization (chosen and rejected are the same 16 "
        "tokens once truncated). Raise --max_length, fix the rows, or pass --invalid_rows drop to drop and "
        "count them."
    )


def test_pairs_identical_after_truncation_are_dropped_and_counted(
    tiny_llama, tmp_path, no_model_loads, caplog
):
    from rewardmodels.bt.train import build_trainer

    data = write_lines(tmp_path / "pairs.jsonl", identical_pair_rows())
    args = bt_args(
        tiny_llama,
        tmp_path / "run",
        "--train_data",
        str(data),
        "--max_length",
        "16",
        "--invalid_rows",
        "drop",
    )
    caplog.set_level(logging.INFO, logger="rewardmodels")
    with pytest.raises(ModelLoaded):  # the checks passed, so the model is next
        build_trainer(*args)
    assert (
        "2 training pairs, 1 truncated to max_length=16, 1 dropped as identical once tokenized" in caplog.text
    )


def test_identical_token_pairs_keep_their_order_and_name_in_memory_rows():
    rows = [{"id": 0}, {"id": 1}, {"id": 2}]
    features = [
        {"prefix_ids": [1], "chosen_ids": [2], "rejected_ids": [3]},
        {"prefix_ids": [1], "chosen_ids": [4, 5], "rejected_ids": [4, 5]},
        {"prefix_ids": [], "chosen_ids": [6], "rejected_ids": [7]},
    ]
    kept, dropped = drop_identical_token_pairs(rows, features, drop_invalid=True)
    assert kept == [features[0], features[2]] and dropped == 1
    with pytest.raises(DataValidationError) as info:
        drop_identical_token_pairs(rows, features, drop_invalid=False)
    assert info.value.one_line().startswith(
        "pairs, row 2, field 'rejected': identical after tokenization (chosen and rejected are the same 3 tokens"
    )


# ---- rewardmodels score: types and emptiness before the scorer loads -------------------------------------------


def score(tmp_path: Path, *extra: str) -> int:
    from rewardmodels.score import main

    return main([str(tmp_path / "no-scorer"), "--output", str(tmp_path / "out.jsonl"), *extra])


def test_score_checks_every_response_type_before_loading(tmp_path, no_model_loads):
    data = write_lines(
        tmp_path / "in.jsonl",
        [
            {"prompt": "p", "response": 5},
            {"prompt": "p", "response": None},
            {"prompt": "p", "response": ["a", "b"]},
            {"prompt": "p", "response": "fine"},
        ],
    )
    with pytest.raises(InputError) as info:
        score(tmp_path, "--input", str(data))
    assert info.value.one_line() == (
        f"{data}, line 1, field 'response': wrong type (expected a string or a list of {{role, content}} "
        "messages, got int); 3 problems in 3 row(s) [wrong type: 2, missing field: 1]. See "
        "--prompt-field/--response-field."
    )
    text = str(info.value)
    assert "  line 2, field 'response': missing field (required)" in text
    assert (
        "  line 3, field 'response': wrong type (expected a string or a list of {role, content} messages, got list)"
        in text
    )
    assert not (tmp_path / "out.jsonl").exists()


def test_score_refuses_an_empty_file_before_loading(tmp_path, no_model_loads):
    data = tmp_path / "in.jsonl"
    data.write_text("\n\n")
    with pytest.raises(InputError) as info:
        score(tmp_path, "--input", str(data))
    assert info.value.one_line() == f"{data}: empty dataset (no rows)"


# ---- files: encoding, JSON, manifests --------------------------------------------------------------------------


def test_non_utf8_jsonl_names_the_line_in_train_and_score(tiny_llama, tmp_path, no_model_loads):
    from rewardmodels.bt.train import build_trainer

    data = tmp_path / "pairs.jsonl"
    data.write_bytes(
        b'{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": "caf\xe9", "chosen": "a", "rejected": "b"}\n'
    )
    expected = f"{data}, line 2: not UTF-8 text (byte b'\\xe9'); re-save the file as UTF-8"
    with pytest.raises(InputError) as info:
        build_trainer(*bt_args(tiny_llama, tmp_path / "run", "--train_data", str(data)))
    assert info.value.one_line() == expected
    with pytest.raises(InputError) as info:
        score(tmp_path, "--input", str(data), "--response-field", "chosen")
    assert info.value.one_line() == expected


def test_non_utf8_and_bad_json_in_a_json_list_name_the_line(tmp_path):
    data = tmp_path / "rows.json"
    data.write_bytes(b'[\n  {"prompt": "p"},\n  {"prompt": "\xff"}\n]\n')
    with pytest.raises(InputError, match=r"rows\.json, line 3: not UTF-8 text \(byte b'\\xff'\)"):
        read_rows(data)
    data.write_text('[\n  {"prompt": "p"},\n  {"prompt": "q",}\n]\n')
    with pytest.raises(InputError) as info:
        read_rows(data)
    assert (
        info.value.one_line()
        == f"{data}, line 3: not valid JSON (Expecting property name enclosed in double quotes, column 18)"
    )


def test_json_errors_and_rows_count_from_one(tmp_path):
    data = write_lines(
        tmp_path / "pairs.jsonl", [{"prompt": "p", "chosen": "a", "rejected": "b"}, "", "{oops"]
    )
    with pytest.raises(InputError) as info:
        read_rows(data)
    assert info.value.one_line() == (
        f"{data}, line 3: not valid JSON (Expecting property name enclosed in double quotes, column 2)"
    )
    # a JSON list has rows, counted from 1 like lines
    listed = tmp_path / "pairs.json"
    listed.write_text(
        json.dumps([{"prompt": "p", "chosen": "a", "rejected": "b"}, {"prompt": "p", "chosen": "a"}])
    )
    with pytest.raises(InputError) as info:
        load_rows(str(listed), "preference")
    assert (
        info.value.one_line() == f"{listed}, row 2, field 'rejected': missing field (required). {DROP_HINT}"
    )
    with pytest.raises(InputError) as info:
        read_rows(tmp_path / "missing.jsonl")
    assert info.value.one_line() == f"{tmp_path / 'missing.jsonl'}: no such file"


def test_a_corrupt_scorer_manifest_names_its_path(tmp_path):
    from rewardmodels.scorers import load_scorer

    (tmp_path / "reward_model.json").write_text(
        '{\n  "kind": "bt",\n  "max_length": 512\n  "base_model": "x"\n}\n'
    )
    with pytest.raises(InputError) as info:
        load_scorer(tmp_path)
    assert info.value.one_line() == (
        f"{tmp_path / 'reward_model.json'}, line 4: not valid JSON (Expecting ',' delimiter, column 3)"
    )
    (tmp_path / "reward_model.json").write_text("[]")
    with pytest.raises(InputError, match="expected a JSON object, got list"):
        load_scorer(tmp_path)


def test_empty_eval_datasets_are_refused(tmp_path):
    from rewardmodels.eval import best_of_n, processbench

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(InputError, match="no candidate rows: the file is empty"):
        best_of_n.load_candidates(str(empty))
    with pytest.raises(InputError, match="no ProcessBench rows"):
        processbench.load_examples([str(empty)])


def test_a_missing_scorer_directory_is_one_input_error_before_any_model(tmp_path, monkeypatch):
    import transformers

    from rewardmodels.scorers import load_scorer

    monkeypatch.setattr(transformers.PreTrainedModel, "from_pretrained", classmethod(ModelLoaded))
    hint = "Create one with `rewardmodels export`, or evaluate a plain HF reward model with --model."
    with pytest.raises(InputError) as info:
        load_scorer(tmp_path / "nowhere")
    assert info.value.one_line() == f"{tmp_path / 'nowhere'}: no such directory. {hint}"
    with pytest.raises(FileNotFoundError) as info:  # still a FileNotFoundError for code that catches one
        load_scorer(tmp_path)
    assert info.value.one_line() == f"{tmp_path}: not a scorer directory (no reward_model.json). {hint}"


def test_export_refuses_an_existing_output_and_a_missing_checkpoint_before_any_model(
    tmp_path, no_model_loads
):
    from rewardmodels.export import export_scorer

    (tmp_path / "scorer").mkdir()
    with pytest.raises(InputError) as info:
        export_scorer(tmp_path / "run", tmp_path / "scorer")
    assert isinstance(info.value, FileExistsError)
    assert info.value.one_line() == f"{tmp_path / 'scorer'}: exists already. Pass --overwrite to replace it."
    with pytest.raises(InputError) as info:
        export_scorer(tmp_path / "run", tmp_path / "new")
    assert info.value.one_line() == (
        f"{tmp_path / 'run'}: no such directory. Export a `rewardmodels train` output_dir or one of its "
        "checkpoint-N folders."
    )
    (tmp_path / "run").mkdir()
    with pytest.raises(InputError, match=r"run: no rewardmodels_training\.json\. Export"):
        export_scorer(tmp_path / "run", tmp_path / "new")


def test_cli_export_onto_an_existing_directory_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "scorer").mkdir()
    done = run_cli("export", str(tmp_path / "run"), "--output", str(tmp_path / "scorer"))
    assert done.returncode == 2
    assert done.stderr == (
        f"rewardmodels export: error: {tmp_path / 'scorer'}: exists already. Pass --overwrite to replace it.\n"
    )


def test_eval_loaders_name_the_files_own_lines(tmp_path):
    from rewardmodels.data_builders.schema import validate_rows
    from rewardmodels.eval import best_of_n, processbench
    from rewardmodels.eval import rewardbench as rb
    from rewardmodels.eval.best_of_n_sample import problem_row_errors
    from rewardmodels.eval.rewardbench.data import FIX_HINT

    # line 2 is blank, so the bad row is on line 3 (it is the second row)
    pairs = tmp_path / "rb.jsonl"
    good = {"prompt": "p", "chosen": "a", "rejected": "b", "subset": "s", "id": 1}
    pairs.write_text(json.dumps(good) + "\n\n" + json.dumps({**good, "id": 2, "rejected": 5}) + "\n")
    with pytest.raises(InputError) as info:
        rb.prepare_examples(rb.load_rows(str(pairs)), 1, source=str(pairs))
    assert info.value.one_line() == (
        f"{pairs}, line 3, field 'rejected': wrong type (expected a string or chat messages, got int). "
        f"{FIX_HINT}"
    )
    # a duplicate id names the line of the row it repeats
    pairs.write_text(json.dumps(good) + "\n\n" + json.dumps(good) + "\n")
    with pytest.raises(
        InputError, match=r"line 3, field 'id': duplicate id \(id 1 in subset 's' repeats line 1\)"
    ):
        rb.prepare_examples(rb.load_rows(str(pairs)), 1, source=str(pairs))
    # renamed columns keep their lines
    pairs.write_text(json.dumps({"question": "p", "chosen": "a", "subset": "s", "id": 1}) + "\n")
    renamed = rb.apply_column_map(rb.load_rows(str(pairs)), {"question": "prompt"}, str(pairs))
    with pytest.raises(InputError) as info:
        rb.prepare_examples(renamed, 1, source=str(pairs))
    assert info.value.one_line() == f"{pairs}, line 1, field 'rejected': missing field (required). {FIX_HINT}"

    steps = tmp_path / "pb.jsonl"
    steps.write_text("\n" + json.dumps({"problem": "p", "steps": ["a"], "label": 3}) + "\n")
    with pytest.raises(InputError) as info:
        processbench.load_examples([str(steps)])
    assert info.value.one_line() == (
        f"{steps}, line 2, field 'label': out of range (expected -1 or a step index below 1, got 3). "
        f"{processbench.FIX_HINT}"
    )

    candidates = tmp_path / "bon.jsonl"
    row = {"problem": "p", "answer": "1", "candidates": ["\\boxed{1}"]}
    candidates.write_text(json.dumps(row) + "\n" + json.dumps({**row, "candidates": [{"txt": "x"}]}) + "\n")
    with pytest.raises(InputError) as info:
        best_of_n.load_candidates(str(candidates))
    assert info.value.one_line() == (
        f"{candidates}, line 2, field 'candidates': wrong type (every candidate must be text)"
    )
    problems = write_lines(tmp_path / "problems.jsonl", [{"problem": "p", "answer": "1"}, {"question": 3}])
    with pytest.raises(InputError) as info:
        validate_rows(read_rows(problems), problem_row_errors, source=str(problems), hint=None)
    assert info.value.one_line() == (
        f"{problems}, line 2, field 'problem': missing field (a 'problem' (or 'prompt' / 'question') string); "
        "2 problems in 1 row(s) [missing field: 2]"
    )


# ---- file modes ------------------------------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask():
    """Set the umask for one test and put the old one back."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize("mask, file_mode", [(0o022, 0o644), (0o027, 0o640)])
def test_atomic_writes_get_the_umask_modes(tmp_path, umask, mask, file_mode):
    from rewardmodels.io import atomic_path

    umask(mask)
    write_json(tmp_path / "results.json", {"a": 1})
    write_jsonl(tmp_path / "examples.jsonl", [{"a": 1}])
    with atomic_path(tmp_path / "report.md") as tmp:
        assert mode(tmp) == 0o600  # private while it is written
        tmp.write_text("x")
    assert {p.name: mode(p) for p in tmp_path.iterdir()} == {
        "results.json": file_mode,
        "examples.jsonl": file_mode,
        "report.md": file_mode,
    }


def test_exported_scorer_directory_and_score_output_get_the_umask_modes(tiny_scorer, tmp_path, umask):
    from rewardmodels.export import export_scorer
    from rewardmodels.score import main as score_main

    umask(0o027)
    out = export_scorer(tiny_scorer.parent / "run", tmp_path / "scorer")
    assert mode(out) == 0o750
    modes = {p.name: mode(p) for p in out.iterdir()}
    assert modes["model.safetensors"] == 0o640 and modes["reward_model.json"] == 0o640
    assert set(modes.values()) == {0o640}, modes
    rows = write_lines(tmp_path / "in.jsonl", [{"prompt": "p", "response": "r"}])
    assert score_main([str(out), "--input", str(rows), "--output", str(tmp_path / "scores.jsonl")]) == 0
    assert mode(tmp_path / "scores.jsonl") == 0o640


# ---- the command line: one line, exit code 2; --debug keeps the traceback -------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "rewardmodels", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )


def test_cli_prints_one_line_and_exits_2(tmp_path):
    data = write_lines(
        tmp_path / "in.jsonl", [{"prompt": "p", "response": "r"}, {"prompt": "p", "answer": "r"}]
    )
    args = ("score", str(tmp_path / "no-scorer"), "--input", str(data), "--output", str(tmp_path / "o.jsonl"))
    done = run_cli(*args)
    assert done.returncode == 2
    assert done.stderr == (
        f"rewardmodels score: error: {data}, line 2, field 'response': missing field (required). "
        "See --prompt-field/--response-field.\n"
    )
    debug = run_cli("--debug", *args)
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.strip().endswith("See --prompt-field/--response-field.")


@pytest.mark.slow
def test_cli_train_reports_a_recipe_error_in_one_line(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("learning_rate: 1.0e-4\npacking: weird\n")
    done = run_cli("train", "bt", "--config", str(recipe), "--output_dir", str(tmp_path / "run"))
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == (
        f"rewardmodels train bt: error: {recipe}, line 2, field 'packing': --packing must be one of auto, tree, "
        "packed, none, got 'weird'"
    )
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_cli_train_reports_a_soft_label_in_one_line_before_any_model(tmp_path):
    # the model path does not exist: reaching the model would fail with a different error
    data = write_lines(tmp_path / "steps.jsonl", [stepwise([True, False]), stepwise([True, 0.5])])
    done = run_cli(
        "train", "prm", "--model_name_or_path", str(tmp_path / "no-model"), "--train_data", str(data),
        "--output_dir", str(tmp_path / "run"), "--report_to", "none",
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        f"rewardmodels train prm: error: {data}, line 2, field 'labels[1]': soft label (0.5 is not a hard label; "
        f"{SOFT_HINT}). {DROP_HINT}"
    )
    assert "Traceback" not in done.stderr
