"""The `rewardmodels` command. Each subcommand lives in its own module, imported only when it runs, and has
`main(argv: list[str] | None = None) -> int` (the style is in `rewardmodels.cli_common`).

Bad input (`rewardmodels.errors.InputError`, raised by every loader and for every usage error) is printed as
one line naming the file, line and field, with exit code 2 (`cli_common.run_command`); any other exception is
a bug and keeps its traceback. `--debug`, given before the command, keeps the traceback for bad input too.
"""

from __future__ import annotations

import importlib
import sys

from rewardmodels.cli_common import INPUT_ERROR_EXIT, run_command

# command -> {name: (module with main(argv), one-line help)}; a None name means the command takes no method.
COMMANDS: dict[str, dict[str | None, tuple[str, str]]] = {
    "train": {
        "bt": ("rewardmodels.bt.train", "Bradley-Terry outcome reward model on preference pairs"),
        "prm": ("rewardmodels.prm.train", "step-level process reward model on stepwise rows"),
        "implicit-prm": ("rewardmodels.implicit_prm.train", "implicit PRM from outcome labels or pairs"),
        "generative": ("rewardmodels.generative.train", "ThinkPRM-style generative verifier (SFT on chains)"),
    },
    "build": {
        None: (
            "rewardmodels.data_builders.cli",
            "convert a raw source into canonical rows (see `rewardmodels build --help`)",
        ),
    },
    "eval": {
        "processbench": ("rewardmodels.eval.processbench", "ProcessBench earliest-error F1 for a PRM scorer"),
        "best-of-n": ("rewardmodels.eval.best_of_n", "best-of-N / majority vote on sampled candidates"),
        "rewardbench": ("rewardmodels.eval.rewardbench", "RewardBench v1/v2: scorer dir, HF RM or DPO"),
        "compute-curve": ("rewardmodels.eval.compute_curve", "accuracy against verifier compute, from runs"),
        "robustness": ("rewardmodels.eval.robustness", "spurious transforms, length bias, RM-Bench styles"),
    },
    "curate": {
        None: ("rewardmodels.eval.curate", "decontaminate and filter preference pairs, with a report")
    },
    "report": {
        "curve": ("rewardmodels.eval.learning_curve", "held-out accuracy against compute, fitted ceiling")
    },
    "export": {None: ("rewardmodels.export", "merge LoRA and write a scorer directory")},
    "score": {None: ("rewardmodels.score", "score a file of prompt/response rows with a scorer")},
    "calibrate": {
        None: (
            "rewardmodels.eval.calibrate",
            "fit temperature scaling on labelled rows, store it in the scorer's manifest",
        )
    },
    "serve": {None: ("rewardmodels.serve", "serve a scorer over HTTP (OpenRLHF remote-RM API)")},
    "demo": {
        None: (
            "rewardmodels.demo",
            "train a BT scorer on the embedded default model and task, before/after accuracy",
        )
    },
    "convert-gguf": {
        None: (
            "rewardmodels.convert",
            "convert a .gguf (or the embedded default) into a cached HF checkpoint",
        )
    },
}


def usage() -> str:
    lines = ["usage: rewardmodels [--debug] <command> [<method>] [options]", "", "commands:"]
    for command, methods in COMMANDS.items():
        if None in methods:
            lines.append(f"  {command:<28} {methods[None][1]}")
        for method, (_, help_text) in methods.items():
            if method is not None:
                lines.append(f"  {command + ' ' + method:<28} {help_text}")
    lines += [
        "",
        "Run `rewardmodels <command> [<method>] --help` for the options of each. Bad input is reported in one",
        f"line (exit code {INPUT_ERROR_EXIT}); --debug before the command shows its traceback as well.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Only before the command: after it, `--debug` belongs to the command (TrainingArguments has one).
    debug = bool(argv) and argv[0] == "--debug"
    if debug:
        argv = argv[1:]
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from rewardmodels import __version__

        print(__version__)
        return 0
    command, rest = argv[0], argv[1:]
    methods = COMMANDS.get(command)
    if methods is None:
        print(f"rewardmodels: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    label = command
    if None in methods:
        module, _ = methods[None]
    else:
        if not rest or rest[0] not in methods:
            known = ", ".join(sorted(m for m in methods if m))
            print(f"rewardmodels {command}: choose a method: {known or '(none available)'}", file=sys.stderr)
            return 2 if rest and rest[0] not in ("-h", "--help") else 0
        module, _ = methods[rest[0]]
        label, rest = f"{command} {rest[0]}", rest[1:]
    return run_command(label, importlib.import_module(module).main, rest, debug)


if __name__ == "__main__":
    sys.exit(main())
