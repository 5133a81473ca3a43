"""A non-editable wheel, installed into a fresh venv and run outside the checkout, imports and runs its CLI,
and installs no generic top-level `eval` or `data_builders` module; it builds without a warning and ships
every package folder, the verification templates among them."""

import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Where each installed package root lives in the checkout (pyproject's package-dir).
PACKAGE_ROOTS = {
    "rewardmodels": REPO / "rewardmodels",
    "rewardmodels.data_builders": REPO / "data_builders",
    "rewardmodels.eval": REPO / "eval",
}


def _listed_packages() -> set[str]:
    tomllib = pytest.importorskip("tomllib")
    with open(REPO / "pyproject.toml", "rb") as f:
        return set(tomllib.load(f)["tool"]["setuptools"]["packages"])


def test_every_package_folder_is_listed_in_pyproject():
    """`packages` is an explicit list (the package-dir remapping rules out discovery), so a new subpackage
    that is not added there is silently left out of the wheel, and a data folder left out makes the build
    warn. Every folder that holds Python modules or the templates must be named."""
    expected = set()
    for root_name, root in PACKAGE_ROOTS.items():
        for folder in [root, *root.rglob("*")]:
            if not folder.is_dir() or folder.name == "__pycache__":
                continue
            if any(folder.glob("*.py")) or folder.name == "templates":
                expected.add(".".join([root_name, *folder.relative_to(root).parts]))
    listed = _listed_packages()
    assert "rewardmodels.templates" in expected
    assert expected - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_checkout(tmp_path):
    dist = tmp_path / "dist"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    # setuptools' deprecations (a license table, a data folder missing from `packages`) become errors later.
    assert "warning" not in (build.stdout + build.stderr).lower(), build.stdout + build.stderr
    (wheel,) = dist.glob("rewardmodels-*.whl")
    top_level = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert "eval" not in top_level and "data_builders" not in top_level
    assert "rewardmodels" in top_level
    names = zipfile.ZipFile(wheel).namelist()
    assert "rewardmodels/eval/__init__.py" in names and "rewardmodels/data_builders/sources.py" in names
    templates = sorted(
        p.relative_to(REPO).as_posix() for p in (REPO / "rewardmodels" / "templates").iterdir()
    )
    assert templates and set(templates) <= set(names), "the verification templates must ship in the wheel"

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    # Dependencies come from the test's own environment, appended after the fresh site-packages, so the
    # package itself can only be the wheel's copy (the editable install's finder is not activated there).
    (fresh_site,) = (env_dir / "lib").glob("python*/site-packages")
    (fresh_site / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    check = (
        "import importlib.util, rewardmodels, rewardmodels.eval, rewardmodels.data_builders.sources, rewardmodels.prm.train, rewardmodels.bt.train;"
        "assert importlib.util.find_spec('eval') is None;"
        "assert importlib.util.find_spec('data_builders') is None;"
        "print(rewardmodels.__file__)"
    )
    out = subprocess.run([py, "-c", check], cwd=outside, check=True, capture_output=True, text=True).stdout
    assert str(fresh_site) in out
    help_text = subprocess.run(
        [env_dir / "bin" / "rewardmodels", "--help"], cwd=outside, check=True, capture_output=True, text=True
    ).stdout
    assert "train bt" in help_text and "export" in help_text
    bt_help = subprocess.run(
        [env_dir / "bin" / "rewardmodels", "train", "bt", "--help"],
        cwd=outside,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "--center_rewards_coefficient" in bt_help and "--train_data" in bt_help
