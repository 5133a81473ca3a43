"""Where the generative verifier's decoding defaults come from (issue 23): ThinkPRM's inference settings
(mukhal/ThinkPRM search-and-learn/src/sal/config.py: prm_temperature 0.0, max_verification_length 8192, prm_n
1), with the CPU budget an explicit override in the smoke recipes, so their behaviour did not change."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rewardmodels.generative.config import GenerativeConfig
from rewardmodels.scorers.verifier_chains import ScalingSettings

RECIPES = Path(__file__).resolve().parents[1] / "recipes" / "generative"


def test_scaling_defaults_are_thinkprms_inference():
    s = ScalingSettings()
    assert (s.parallel, s.rounds, s.max_new_tokens, s.temperature) == (1, 1, 8192, 0.0)


def test_the_sft_manifest_defaults_are_thinkprms_inference():
    fields = GenerativeConfig.__dataclass_fields__
    assert fields["verifier_max_new_tokens"].default == 8192
    assert fields["verifier_temperature"].default == 0.0


@pytest.mark.parametrize("recipe, budget", [("smollm2_chains.yaml", 1024), ("smollm2_templated.yaml", 256)])
def test_the_smoke_recipes_pin_the_cpu_budget(recipe, budget):
    values = yaml.safe_load((RECIPES / recipe).read_text())
    assert (values["verifier_max_new_tokens"], values["verifier_temperature"]) == (budget, 0.6)
