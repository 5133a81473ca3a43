"""One style for every command in `rewardmodels.cli.COMMANDS` (`rewardmodels.cli_common` describes it).

The walk runs `--help` for every entry of the command table in process (through its module's
`main(argv)`, and through the table), catches the parser that prints the help, and checks: the prog is
`rewardmodels <command> [<method>]`, the usage line says so, and every option and positional of that parser
(and of each subcommand parser under it, such as `rewardmodels build <builder>`) has a help text. A bad flag
is one line and exit code 2 from every command, the shared flags have one spelling everywhere, and an old
spelling kept as a hidden alias still works without showing in --help.
"""

from __future__ import annotations

import argparse
import importlib

import pytest

from rewardmodels.cli import COMMANDS
from rewardmodels.cli import main as cli_main
from rewardmodels.cli_common import ArgumentParser, add_output_dir_argument, progress_bar, progress_bars
from rewardmodels.errors import InputError

# The command table's entries, as argv prefixes, with the module whose main(argv) runs each.
ENTRIES = [
    ([command] + ([method] if method else []), module)
    for command, methods in COMMANDS.items()
    for method, (module, _) in methods.items()
]
# A word a command's own main dispatches on, so the table cannot list it: `eval best-of-n sample`.
NESTED = [(["eval", "best-of-n", "sample"], "rewardmodels.eval.best_of_n_sample")]
# Commands that load a scorer directory take the shared loading flags (cli_common.add_scorer_arguments).
SCORER_COMMANDS = [
    "score",
    "serve",
    "eval rewardbench",
    "eval processbench",
    "eval best-of-n",
    "eval robustness",
]
SCORER_FLAGS = {"--device", "--dtype", "--max-length", "--attn-implementation", "--scorer-option"}
# Commands that show progress bars, and so take --no-progress.
PROGRESS_COMMANDS = [
    "train bt",
    "demo",
    "score",
    "eval rewardbench",
    "eval processbench",
    "eval best-of-n",
    "eval best-of-n sample",
    "eval robustness",
]


def ids(entries) -> list[str]:
    return [" ".join(argv) for argv, _ in entries]


def help_parsers(run, argv: list[str], monkeypatch, capsys) -> tuple[list[argparse.ArgumentParser], str]:
    """The parsers that print help when `run(argv + ["--help"])` runs (one per command), and the text."""
    printed: list[argparse.ArgumentParser] = []
    print_help = argparse.ArgumentParser.print_help

    def record(parser, file=None):
        printed.append(parser)
        print_help(parser, file)

    monkeypatch.setattr(argparse.ArgumentParser, "print_help", record)
    with pytest.raises(SystemExit) as exit_info:
        run([*argv, "--help"])
    assert exit_info.value.code == 0
    return printed, capsys.readouterr().out


def parsers_under(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """`parser` and every subcommand parser below it."""
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += parsers_under(sub)
    return found


def unhelped(parser: argparse.ArgumentParser) -> list[str]:
    """The options and positionals of `parser` with no help text."""
    return [
        "/".join(a.option_strings) or a.dest
        for a in parser._actions
        if a.help is not argparse.SUPPRESS and not (a.help or "").strip()
    ]


@pytest.mark.parametrize(("argv", "module"), ENTRIES + NESTED, ids=ids(ENTRIES + NESTED))
def test_every_command_prints_help_with_its_prog_and_a_help_text_for_every_flag(
    argv, module, monkeypatch, capsys
):
    (parser,), text = help_parsers(importlib.import_module(module).main, [], monkeypatch, capsys)
    prog = "rewardmodels " + " ".join(argv)
    assert parser.prog == prog
    assert " ".join(text.split()).startswith(f"usage: {prog} ")
    for each in parsers_under(parser):
        assert each.prog.startswith(prog), each.prog
        assert unhelped(each) == [], each.prog
    # the command table routes to the same parser
    (routed,), _ = help_parsers(cli_main, argv, monkeypatch, capsys)
    assert routed.prog == prog


@pytest.mark.parametrize(("argv", "module"), ENTRIES + NESTED, ids=ids(ENTRIES + NESTED))
def test_a_bad_flag_is_one_line_and_exit_2_from_every_command(argv, module, capsys):
    assert cli_main([*argv, "--no-such-flag"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    label = " ".join(argv[:2])  # the table's label: the command and its method
    assert line.startswith(f"rewardmodels {label}: error: ") and line.endswith(". See --help.")


def all_flags(argv: list[str], monkeypatch, capsys) -> set[str]:
    (parser,), _ = help_parsers(cli_main, argv, monkeypatch, capsys)
    return {flag for action in parser._actions for flag in action.option_strings}


@pytest.mark.parametrize("command", SCORER_COMMANDS)
def test_scorer_commands_share_the_loading_flags(command, monkeypatch, capsys):
    assert SCORER_FLAGS <= all_flags(command.split(), monkeypatch, capsys)


@pytest.mark.parametrize("command", PROGRESS_COMMANDS)
def test_commands_with_progress_bars_take_no_progress(command, monkeypatch, capsys):
    assert "--no-progress" in all_flags(command.split(), monkeypatch, capsys)


def test_output_directories_are_output_dir_or_o_everywhere(monkeypatch, capsys):
    """A command that writes a directory takes --output-dir/-o; one that writes one file takes --output/-o."""
    for argv, _ in ENTRIES + NESTED:
        flags = all_flags(argv, monkeypatch, capsys)
        if "--output-dir" in flags or "--output_dir" in flags:
            assert "--output" not in flags, argv
            assert "-o" in flags or argv[0] in ("train", "demo"), argv  # HfArgumentParser: --output_dir only


def test_a_hidden_alias_parses_as_its_flag_and_is_not_in_help():
    parser = ArgumentParser(prog="rewardmodels example")
    add_output_dir_argument(parser, "Where to write.", old_spellings=("--output",))
    assert parser.parse_args(["--output", "a"]).output_dir == "a"
    assert parser.parse_args(["--output=b"]).output_dir == "b"
    assert parser.parse_args(["-o", "c"]).output_dir == "c"
    assert "--output " not in parser.format_help() and "--output-dir" in parser.format_help()
    with pytest.raises(InputError, match=r"^argument --output-dir/-o: expected one argument\. See --help\.$"):
        parser.parse_args(["--output"])


def test_no_progress_hides_bars_inside_the_block_only():
    def hidden(**kwargs) -> bool:
        with progress_bar(range(3), **kwargs) as bar:
            return bar.disable

    with progress_bars(False):
        assert hidden()
    with progress_bars(True):
        assert not hidden()
        assert hidden(disable=True)  # a caller's own disable still holds
    assert not hidden()  # outside any block: shown, as before


def test_train_no_progress_switches_off_the_trainers_bars(tmp_path):
    """`rewardmodels train METHOD --no-progress` is TrainingArguments' `--disable_tqdm true`, and wins over
    an explicit `--disable_tqdm false` given with it."""
    from rewardmodels.bt.config import BTConfig
    from rewardmodels.training.arguments import DataArguments, ModelArguments, parse_layered

    def disable_tqdm(*flags: str) -> bool:
        return parse_layered(
            (ModelArguments, DataArguments, BTConfig), ["--output_dir", str(tmp_path), *flags]
        )[2].disable_tqdm

    assert disable_tqdm("--no-progress") is True
    assert disable_tqdm("--disable_tqdm", "false", "--no-progress") is True
    assert disable_tqdm("--disable_tqdm", "false") is False
