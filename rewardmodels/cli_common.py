"""What every command module shares: the parser, the flags several commands take, progress bars, logging,
and how a command's bad input is reported.

The command style (docs/design.md, "Commands"): each command module has `build_parser()`, which builds an
`ArgumentParser` with prog `rewardmodels <command> [<method>]` and a help text for every flag, and
`main(argv: list[str] | None = None) -> int`; `train <method>` and `demo` parse their dataclasses with
`training.arguments.parse_layered` (HfArgumentParser) under the same prog and error handling. Bad input, a
usage error included, is an `InputError`;
`run_command` (which the command table runs every command through) prints it as one line and returns exit
code 2. The flags several commands share are added here, once: `add_scorer_arguments` (loading a scorer
directory), `add_output_dir_argument` (`--output-dir`/`-o`), `add_progress_argument` (`--no-progress`).

It imports only `rewardmodels.errors` of the project, so any module may import it; `rewardmodels.cli` (the
command table) imports command modules only when one runs, and no library module imports `rewardmodels.cli`.
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import logging
import sys
from collections.abc import Callable, Iterator

from rewardmodels.errors import InputError

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"
INPUT_ERROR_EXIT = 2  # as argparse exits on a bad flag
DTYPE_CHOICES = ("auto", "float32", "bfloat16", "float16")


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


def usage_error(message: str) -> InputError:
    """A usage error (a bad or missing flag) as the one-line `InputError` every bad input is."""
    return InputError(None, None, None, message, hint="See --help.")


class ArgumentParser(argparse.ArgumentParser):
    """argparse with this project's help formatter, where every long flag also answers to its other
    spelling (`--max_length` and `--max-length`), as the training CLIs (HfArgumentParser) already do, and to
    hidden aliases (`add_hidden_alias`: an old name kept working, absent from --help). A usage error raises
    `usage_error(...)` instead of printing the usage and exiting, so it is reported like any bad input.

    Spellings and aliases are mended in the arguments before parsing rather than registered as option
    strings, so flags added through argument groups and mutually exclusive groups get them too."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        self._hidden_aliases: dict[str, str] = {}

    def add_hidden_alias(self, alias: str, flag: str) -> None:
        """Let `alias` stand for the flag `flag` without showing it in --help."""
        self._hidden_aliases[alias] = flag

    def error(self, message: str):
        raise usage_error(message)

    def parse_known_args(self, args=None, namespace=None):
        if args is not None:
            args = [self._known_spelling(a) for a in args]
        else:
            args = [self._known_spelling(a) for a in sys.argv[1:]]
        return super().parse_known_args(args, namespace)

    def _known_spelling(self, arg: str) -> str:
        flag, eq, value = arg.partition("=")
        if flag in self._option_string_actions:
            return arg
        if flag in self._hidden_aliases:
            return self._hidden_aliases[flag] + eq + value
        other = other_spelling(flag)
        if other and other in self._option_string_actions:
            return other + eq + value
        return arg


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format=LOG_FORMAT)


def run_command(
    label: str, main: Callable[[list[str] | None], int | None], argv: list[str] | None, debug: bool = False
) -> int:
    """`main(argv)`'s exit code; bad input (`InputError`) printed to stderr as `rewardmodels LABEL: error:
    ...` in one line, exit code 2 (`debug`: raised, with its traceback). Any other exception is a bug and
    keeps its traceback."""
    try:
        return int(main(argv) or 0)
    except InputError as e:
        if debug:
            raise
        print(f"rewardmodels {label}: error: {e.one_line()}", file=sys.stderr)
        return INPUT_ERROR_EXIT


# ---- output directories and progress bars -------------------------------------------------------------------


def add_output_dir_argument(
    parser: argparse.ArgumentParser,
    help: str,
    *,
    required: bool = False,
    default: str | None = None,
    old_spellings: tuple[str, ...] = (),
) -> None:
    """`--output-dir`/`-o`, the one spelling of a command's output directory (a command writing one file
    takes `--output`/`-o`); `old_spellings` keep working as hidden aliases."""
    parser.add_argument("--output-dir", "-o", required=required, default=default, help=help)
    for old in old_spellings:
        parser.add_hidden_alias(old, "--output-dir")


_PROGRESS_SHOWN = contextvars.ContextVar("rewardmodels_progress_shown", default=True)


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="Hide progress bars.")


@contextlib.contextmanager
def progress_bars(shown: bool) -> Iterator[None]:
    """Within the block, `progress_bar` shows bars only when `shown` (a command's `not args.no_progress`).
    A context variable rather than a parameter of every function with a bar: the flag reaches the library
    functions a command calls without each passing it on."""
    token = _PROGRESS_SHOWN.set(shown)
    try:
        yield
    finally:
        _PROGRESS_SHOWN.reset(token)


def progress_bar(iterable=None, **kwargs):
    """tqdm.auto's bar over `iterable`, hidden inside `progress_bars(False)` (and wherever `disable` says)."""
    from tqdm.auto import tqdm

    if not _PROGRESS_SHOWN.get():
        kwargs["disable"] = True
    return tqdm(iterable, **kwargs)


# ---- loading a scorer directory -----------------------------------------------------------------------------


def add_scorer_arguments(
    parser: argparse.ArgumentParser,
    max_length_help: str = "Tokens per sequence; a longer one is cut and counted (default: the manifest's).",
) -> None:
    """The flags that say how a scorer directory loads (`scorer_keywords` reads them), in one group:
    --device, --dtype, --max-length, --attn-implementation and --scorer-option."""
    group = parser.add_argument_group("loading the scorer")
    group.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda when available)."
    )
    group.add_argument(
        "--dtype",
        default=None,
        choices=DTYPE_CHOICES,
        help="Weights dtype (default: auto, which is bfloat16 on CUDA and float32 on CPU).",
    )
    group.add_argument("--max-length", type=int, default=None, help=max_length_help)
    group.add_argument(
        "--attn-implementation",
        default=None,
        help="Attention kernel: sdpa, eager, flash_attention_2, flex_attention (default: flash_attention_2 on "
        "CUDA when flash-attn is installed, else sdpa).",
    )
    add_scorer_option_argument(group)


def add_scorer_option_argument(parser) -> None:
    """`--scorer-option KEY=VALUE` (repeatable): options of the scorer's kind (`ScorerOptions.extra`)."""
    parser.add_argument(
        "--scorer-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="An option of the scorer's kind, e.g. aggregation=min (PRM, implicit PRM) or "
        "step_scores=sigmoid_q (implicit PRM); the value is read as JSON when it parses, else as text. "
        "Repeat for several. A kind refuses options it does not take.",
    )


def scorer_options(values: list[str] | None) -> dict:
    """{'KEY': value} from `--scorer-option KEY=VALUE` strings: JSON values (numbers, true, null, lists)
    where they parse, the text otherwise."""
    import json

    options = {}
    for item in values or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise InputError(None, None, "--scorer-option", f"{item!r}: expected KEY=VALUE")
        try:
            options[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            options[key.strip()] = text
    return options


def scorer_keywords(args: argparse.Namespace) -> dict:
    """The keywords the `add_scorer_arguments` flags name, for `ScorerOptions.from_keywords`: the four shared
    options, then each --scorer-option; one that has its own flag (max_length, ...) is refused."""
    shared = {
        "device": args.device,
        "dtype": args.dtype,
        "max_length": args.max_length,
        "attn_implementation": args.attn_implementation,
    }
    extra = scorer_options(args.scorer_option)
    clash = sorted(set(extra) & set(shared))
    if clash:
        flag = "--" + clash[0].replace("_", "-")
        raise InputError(None, None, "--scorer-option", f"{clash[0]} has its own flag, {flag}")
    return {**shared, **extra}
