from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.tiny import save_tiny_model

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-llama"), "llama")


@pytest.fixture(scope="session")
def tiny_qwen2(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-qwen2"), "qwen2")


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from tests.tiny import build_tokenizer

    return build_tokenizer()


def shared_data(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(
            f"{path} is not present (../shared/data comes with the project's CI, not with a fresh clone)"
        )
    return path


def smoke_enabled() -> None:
    if os.environ.get("RM_SMOKE") != "1":
        pytest.skip("opt-in smoke test: set RM_SMOKE=1 to run it on SmolLM2 with ../shared/data")


@pytest.fixture(scope="session")
def tiny_scorer(tiny_llama, tmp_path_factory) -> Path:
    """A BT scorer directory exported from one LoRA training step of the tiny Llama (chat template on),
    with reward statistics from 8 held-out pairs."""
    from rewardmodels.bt.train import main as train_main
    from rewardmodels.export import export_scorer

    root = tmp_path_factory.mktemp("tiny-scorer")
    train_main(
        [
            "--model_name_or_path",
            str(tiny_llama),
            "--train_data",
            "synthetic:n=16,seed=0",
            "--eval_data",
            "synthetic:n=8,seed=1",
            "--output_dir",
            str(root / "run"),
            "--max_steps",
            "1",
            "--per_device_train_batch_size",
            "4",
            "--save_strategy",
            "no",
            "--max_length",
            "128",
            "--use_chat_template",
            "always",
            "--learning_rate",
            "1e-2",
        ]
    )
    return export_scorer(root / "run", root / "scorer")
