"""What every command module shares: the help formatter, the parser, and the logging setup.

It imports nothing of the project, so any module may import it; `rewardmodels.cli` (the command table)
imports command modules only when one runs, and no library module imports `rewardmodels.cli`.
"""

from __future__ import annotations

import argparse
import logging

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps descriptions as written, and ends each flag's help with its default when it has one the help
    does not already state (argparse's own defaults formatter would also print every `None`)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        shown = (
            action.default is not None and action.default is not False and action.default != argparse.SUPPRESS
        )
        if shown and action.option_strings and "default" not in text.lower():
            text += " (default: %(default)s)"
        return text


def other_spelling(flag: str) -> str | None:
    """`--max_length` <-> `--max-length`; None for a flag with neither character, or a short flag."""
    if not flag.startswith("--"):
        return None
    body = flag[2:]
    if "_" in body:
        return "--" + body.replace("_", "-")
    if "-" in body:
        return "--" + body.replace("-", "_")
    return None


class ArgumentParser(argparse.ArgumentParser):
    """argparse with this project's help formatter, where every long flag also answers to its other
    spelling (`--max_length` and `--max-length`), as the training CLIs (HfArgumentParser) already do.

    The spelling is mended in the arguments before parsing rather than by registering aliases, so flags
    added through argument groups and mutually exclusive groups get it too."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        if args is not None:
            args = [self._known_spelling(a) for a in args]
        else:
            import sys

            args = [self._known_spelling(a) for a in sys.argv[1:]]
        return super().parse_known_args(args, namespace)

    def _known_spelling(self, arg: str) -> str:
        flag, eq, value = arg.partition("=")
        if flag in self._option_string_actions:
            return arg
        other = other_spelling(flag)
        if other and other in self._option_string_actions:
            return other + eq + value
        return arg


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format=LOG_FORMAT)


def add_scorer_option_argument(parser: argparse.ArgumentParser) -> None:
    """`--scorer-option KEY=VALUE` (repeatable): keywords for the scorer kind's `from_directory`."""
    parser.add_argument(
        "--scorer-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="A keyword for the scorer kind's from_directory, e.g. aggregation=min (PRM, implicit PRM) or "
        "step_scores=sigmoid_q (implicit PRM); the value is read as JSON when it parses, else as text. "
        "Repeat for several. A kind refuses keywords it does not take.",
    )


def scorer_options(values: list[str] | None) -> dict:
    """{'KEY': value} from `--scorer-option KEY=VALUE` strings: JSON values (numbers, true, null, lists)
    where they parse, the text otherwise."""
    import json

    options = {}
    for item in values or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--scorer-option {item!r}: expected KEY=VALUE")
        try:
            options[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            options[key.strip()] = text
    return options
