"""The training core: what every `rewardmodels train <method>` run shares, and nothing a scorer needs.

  arguments      `ModelArguments`, `DataArguments` and layered parsing (defaults <- recipe YAML <- flags)
  reward_config  `RewardConfigBase`: the `TrainingArguments` defaults every method's config subclasses
  trainer_base   `RewardTrainerBase`: metrics per mode and pair type, the NaN guard, the training manifest
  run            the run every method goes through: data split and mixing, model load, resume, save, final eval
  causal_lm      the causal-LM setup both causal methods (implicit PRM, generative verifier) share

A method room (`bt/`, `prm/`, `implicit_prm/`, `generative/`) adds its config, its trainer and a `train.py`
on top of these. Scorers, eval and the applications never import this package (`tests/test_layering.py`).
"""
