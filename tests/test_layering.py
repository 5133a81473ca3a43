"""The import layering of the package, checked from source (ast), so no module has to be importable.

Every module under rewardmodels/, eval/ (installed as rewardmodels.eval) and data_builders/ (installed as
rewardmodels.data_builders) is parsed, and every import in it, including those inside functions and
`if TYPE_CHECKING:` blocks, is checked against the rules in RULES. A failure names the module, the line, the
import and the rule with its reason. Every module also sits in exactly one layer of LAYERS (or in UNLAYERED,
with its reason), so a new module is placed, and the rules cover it, from its first commit.

Where export sits: `rewardmodels.export` turns a training output into a scorer directory, so it stands
between the methods and the scorers. It may read the trainers' shared contract (`training.trainer_base`,
`training.run`: the training-manifest name and the checkpoint layout every method writes) and the scorers' manifest, but no
method package (export is generic over methods: docs/design.md, "Export and the manifests") and nothing from eval.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Source folders and the package name each installs as (pyproject.toml's package-dir).
SOURCE_ROOTS = {
    "rewardmodels": REPO / "rewardmodels",
    "rewardmodels.eval": REPO / "eval",
    "rewardmodels.data_builders": REPO / "data_builders",
}

# Method packages: one folder per training method. A new method room is added here when it is created, so
# the rules below cover it from its first file.
METHOD_PACKAGES = [
    "rewardmodels.bt",
    "rewardmodels.prm",
    "rewardmodels.implicit_prm",
    "rewardmodels.generative",
]
# Everything that is training code: the method packages and the training core they share
# (`rewardmodels.training`: the argument dataclasses, the TrainingArguments base, the Trainer base, the run).
TRAINER_MODULES = [*METHOD_PACKAGES, "rewardmodels.training"]
EVAL = ["rewardmodels.eval"]
BUILDERS = ["rewardmodels.data_builders"]
CORE_MODULES = [
    f"rewardmodels.{name}"
    for name in (
        "losses", "modeling", "tokenization", "causal", "packing", "collators", "sampling", "answers", "steps",
        "io", "errors", "cli_common", "verification",
    )
]  # fmt: skip
SCORERS = ["rewardmodels.scorers"]
EXPORT = ["rewardmodels.export"]
# Commands that run a scorer directory or convert a model: they must work without any training code.
APPLICATIONS = ["rewardmodels.score", "rewardmodels.serve", "rewardmodels.serving", "rewardmodels.convert"]
COMMAND_TABLE = "rewardmodels.cli"
# The two modules that run the command table: the table itself and `python -m rewardmodels`.
ENTRY_POINTS = [COMMAND_TABLE, "rewardmodels.__main__"]
# Every module belongs to one layer, so a new module is placed (and covered by the rules) when it is
# written: test_every_module_has_a_layer fails on one that is in none of these and not in UNLAYERED.
LAYERS = {
    "core": CORE_MODULES,
    "training": TRAINER_MODULES,
    "scorers": SCORERS,
    "export": EXPORT,
    "applications": APPLICATIONS,
    "eval": EVAL,
    "builders": BUILDERS,
}
# Modules that may import every layer, each with its reason.
UNLAYERED = {
    "rewardmodels": "the package root: re-exports load_scorer lazily, imports nothing at import time",
    "rewardmodels.cli": "the command table: dispatches to every command",
    "rewardmodels.__main__": "`python -m rewardmodels`: runs the command table",
    "rewardmodels.demo": "the end-to-end demo: trains, exports and evaluates, so it uses every layer",
}


@dataclass(frozen=True)
class Rule:
    name: str
    applies_to: tuple[str, ...]  # module prefixes the rule covers
    forbidden: tuple[str, ...]  # module prefixes they may not import
    reason: str
    exempt: tuple[str, ...] = ()  # modules of applies_to the rule does not cover

    def covers(self, module: str) -> bool:
        return within(module, self.applies_to) and module not in self.exempt


RULES = [
    Rule(
        "eval imports no trainer",
        tuple(EVAL),
        tuple(TRAINER_MODULES),
        "evaluators score exported scorer directories; they must run without any training code",
    ),
    Rule(
        "core imports no method, eval or builder",
        tuple(CORE_MODULES),
        (*TRAINER_MODULES, *EVAL, *BUILDERS),
        "core modules are the shared seams every layer imports, so they may depend on nothing above them",
    ),
    Rule(
        "scorers import no trainer or eval",
        tuple(SCORERS),
        (*TRAINER_MODULES, *EVAL),
        "a scorer directory loads for inference and RL loops without training code or evaluators",
    ),
    Rule(
        "builders import no trainer or eval",
        tuple(BUILDERS),
        (*TRAINER_MODULES, *EVAL),
        "data builders produce canonical rows; training and evaluation consume them, not the reverse",
    ),
    Rule(
        "export imports no method package or eval",
        tuple(EXPORT),
        (*METHOD_PACKAGES, *EVAL),
        "export is generic over methods: it reads the training manifest, never a method's code",
    ),
    Rule(
        "applications import no trainer",
        tuple(APPLICATIONS),
        tuple(TRAINER_MODULES),
        "score, serve and convert run scorer directories and models; they must run without training code",
    ),
    Rule(
        "no library module imports the command table",
        ("rewardmodels",),
        (COMMAND_TABLE,),
        "rewardmodels.cli only dispatches; shared CLI pieces live in rewardmodels.cli_common",
        exempt=tuple(ENTRY_POINTS),
    ),
]


def within(module: str, prefixes: tuple[str, ...] | list[str]) -> bool:
    """True when `module` is one of `prefixes` or inside one of them (a package's submodules)."""
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def module_name(root_package: str, root: Path, path: Path) -> tuple[str, bool]:
    """Dotted name of a source file and whether it is a package (`__init__.py`)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join([root_package, *parts]), is_package


@dataclass(frozen=True)
class Import:
    line: int
    module: str  # the module named, relative imports resolved
    names: tuple[str, ...] = ()  # for `from module import a, b`: a and b, each possibly a submodule

    def candidates(self) -> list[str]:
        """The module, then `module.name` for each name: `from rewardmodels import cli` imports the table."""
        return [self.module, *(f"{self.module}.{name}" for name in self.names if name != "*")]


def imported_modules(source: str, module: str, is_package: bool) -> list[Import]:
    """Every import in `source`, anywhere in the file (function bodies, TYPE_CHECKING blocks)."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [Import(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            found.append(Import(node.lineno, base, tuple(alias.name for alias in node.names)))
    return sorted(found, key=lambda i: i.line)


def violations(module: str, imports: list[Import]) -> list[str]:
    """One line per forbidden import and rule: module, line, what it imports, the rule and its reason."""
    found = []
    for rule in RULES:
        if not rule.covers(module):
            continue
        for imp in imports:
            hit = next((c for c in imp.candidates() if within(c, rule.forbidden)), None)
            if hit is not None:
                found.append(f"{module}:{imp.line} imports {hit} [{rule.name}: {rule.reason}]")
    return found


def source_modules() -> dict[str, tuple[Path, bool]]:
    modules = {}
    for package, root in SOURCE_ROOTS.items():
        for path in sorted(root.rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            name, is_package = module_name(package, root, path)
            modules[name] = (path, is_package)
    return modules


def test_the_tree_keeps_its_layering():
    problems = []
    for module, (path, is_package) in source_modules().items():
        imports = imported_modules(path.read_text(encoding="utf-8"), module, is_package)
        problems += violations(module, imports)
    assert not problems, "forbidden imports:\n  " + "\n  ".join(problems)


def test_the_checker_reads_the_whole_tree():
    modules = source_modules()
    # ~45 modules today; a broken root mapping would find none of a whole folder.
    assert len(modules) >= 30, sorted(modules)
    for expected in (
        "rewardmodels.losses",
        "rewardmodels.scorers",
        "rewardmodels.bt.trainer",
        "rewardmodels.eval.processbench",
        "rewardmodels.data_builders.schema",
    ):
        assert expected in modules
    assert modules["rewardmodels.scorers"][1] and not modules["rewardmodels.losses"][1]


def test_the_checker_catches_a_forbidden_import_inside_a_function():
    source = "import json\n\n\ndef score():\n    from rewardmodels.bt.trainer import BTTrainer\n    return BTTrainer\n"
    found = violations("rewardmodels.eval.fake", imported_modules(source, "rewardmodels.eval.fake", False))
    assert found == [
        "rewardmodels.eval.fake:5 imports rewardmodels.bt.trainer "
        "[eval imports no trainer: evaluators score exported scorer directories; they must run without any "
        "training code]",
    ]


def test_the_checker_resolves_relative_and_submodule_imports():
    # scorers/fake.py: `..bt` is rewardmodels.bt; in a package __init__, `.` is the package itself
    imports = imported_modules("from ..bt import trainer\n", "rewardmodels.scorers.fake", False)
    assert imports == [Import(1, "rewardmodels.bt", ("trainer",))]
    assert [v.split(" [")[0] for v in violations("rewardmodels.scorers.fake", imports)] == [
        "rewardmodels.scorers.fake:1 imports rewardmodels.bt"
    ]
    assert imported_modules("from . import base\n", "rewardmodels.scorers", True) == [
        Import(1, "rewardmodels.scorers", ("base",))
    ]
    # `from rewardmodels import cli` is the command table; the entry point itself is exempt
    table = imported_modules("from rewardmodels import cli\n", "rewardmodels.serve", False)
    assert [v.split(" [")[0] for v in violations("rewardmodels.serve", table)] == [
        "rewardmodels.serve:1 imports rewardmodels.cli"
    ]
    assert violations("rewardmodels.__main__", table) == []
    # a core module may import another core module; `rewardmodels.packing.layout` is inside core `packing`
    ok = imported_modules("from rewardmodels.io import read_rows\n", "rewardmodels.packing.layout", False)
    assert violations("rewardmodels.packing.layout", ok) == []
    bad = imported_modules("import rewardmodels.eval.report\n", "rewardmodels.packing.layout", False)
    assert len(violations("rewardmodels.packing.layout", bad)) == 1


def test_every_module_has_a_layer():
    unplaced = [
        module
        for module in source_modules()
        if module not in UNLAYERED and not any(within(module, prefixes) for prefixes in LAYERS.values())
    ]
    assert not unplaced, (
        f"modules in no layer: {unplaced}. Add each to one of the lists of tests/test_layering.py "
        "(CORE_MODULES, METHOD_PACKAGES, SCORERS, APPLICATIONS, ...) so the import rules cover it, or to "
        "UNLAYERED with the reason it may import every layer"
    )


def test_a_module_in_no_layer_is_reported(monkeypatch):
    real = source_modules()
    with_new = {**real, "rewardmodels.newthing": real["rewardmodels"]}
    monkeypatch.setitem(globals(), "source_modules", lambda: with_new)
    with pytest.raises(AssertionError, match=r"modules in no layer: \['rewardmodels.newthing'\]"):
        test_every_module_has_a_layer()


def test_layers_do_not_overlap():
    placed: dict[str, list[str]] = {}
    for layer, prefixes in LAYERS.items():
        for module in source_modules():
            if within(module, prefixes):
                placed.setdefault(module, []).append(layer)
    assert {m: layers for m, layers in placed.items() if len(layers) > 1} == {}
    assert not [m for m in UNLAYERED if m in placed]


def _flagged(importer: str, source: str) -> list[str]:
    """The names of the rules `source`, written in module `importer`, breaks."""
    found = violations(importer, imported_modules(source, importer, False))
    return [v.split(" [")[1].split(":")[0] for v in found]


def test_response_tokens_reward_config_and_the_sampling_package_are_placed():
    # causal.response_tokens is core: it may not reach up into eval
    assert _flagged("rewardmodels.causal.response_tokens", "from rewardmodels.eval import report\n") == [
        "core imports no method, eval or builder"
    ]
    # sampling is a core package: a module inside it is covered too, and may not import a builder
    builder = "from rewardmodels.data_builders import mc_labeller\n"
    assert _flagged("rewardmodels.sampling.local", builder) == ["core imports no method, eval or builder"]
    assert "rewardmodels.sampling.local" in source_modules()
    # training.reward_config is training code: eval, scorers, core and applications may not import it
    config = "from rewardmodels.training.reward_config import RewardConfigBase\n"
    assert _flagged("rewardmodels.eval.report", config) == ["eval imports no trainer"]
    assert _flagged("rewardmodels.scorers.prm", config) == ["scorers import no trainer or eval"]
    assert _flagged("rewardmodels.losses", config) == ["core imports no method, eval or builder"]
    assert _flagged("rewardmodels.score", config) == ["applications import no trainer"]
    # ... while a method room may
    assert _flagged("rewardmodels.bt.config", config) == []
