"""Generative verifiers (ThinkPRM-style): supervised fine-tuning of a causal LM on verification chains.

  config   GenerativeConfig: the SFT settings and the verifier defaults written to the manifest
  data     chain rows -> token ids with the completion start (batched by `causal.batches`)
  trainer  GenerativeSFTTrainer: mean negative log-likelihood of the chain tokens only
  train    `rewardmodels train generative`

The verification format (render and parse) is the core module `rewardmodels.verification`, and scoring with
verifier compute scaling is the scorer kind `generative` (`rewardmodels.scorers.generative`,
`rewardmodels.scorers.verifier_chains`): the builder and the scorer read them too, and neither may import
training code. Chains come from `rewardmodels build verification-cots`.
"""

from rewardmodels.generative.config import GenerativeConfig
from rewardmodels.generative.trainer import GenerativeSFTTrainer

__all__ = ["GenerativeConfig", "GenerativeSFTTrainer"]
