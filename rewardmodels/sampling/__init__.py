"""Sampling from language models: one seam for every builder and evaluator that generates text.

  core      prompts (text or chat), `SamplingParams`, the `Generator` protocol, the SQLite `SampleCache`
            (keyed by generator fingerprint, rendered prompt, settings and sample index) and `Sampler`
  local     `HFGenerator`: transformers `generate`, batched, left-padded, one seed per sample
  endpoint  `EndpointGenerator`: an OpenAI-compatible server (vLLM, SGLang) over urllib, with retries
  cli       `add_sampling_arguments` / `open_sampler`: the flags every sampling CLI shares

Heavy dependencies (torch, transformers) are imported only when a local generator runs.
"""

from rewardmodels.sampling.cli import add_sampling_arguments, open_generator, open_sampler
from rewardmodels.sampling.core import (
    CACHE_SCHEMA_VERSION,
    DEFAULT_INSTRUCTION,
    Generator,
    Message,
    Prompt,
    SampleCache,
    Sampler,
    SamplingParams,
    continues_final_message,
    math_prompt,
    prompt_identity,
    sample_key,
    sample_seed,
)
from rewardmodels.sampling.endpoint import (
    Completion,
    EndpointError,
    EndpointGenerator,
    api_key_from_env,
    top_logprobs,
)
from rewardmodels.sampling.local import (
    HFGenerator,
    SeededNucleusSampler,
    cut_at_stop,
    generator_fingerprint,
    render_prompt,
)

__all__ = [
    "CACHE_SCHEMA_VERSION",
    "DEFAULT_INSTRUCTION",
    "Completion",
    "EndpointError",
    "EndpointGenerator",
    "Generator",
    "HFGenerator",
    "Message",
    "Prompt",
    "SampleCache",
    "Sampler",
    "SamplingParams",
    "SeededNucleusSampler",
    "add_sampling_arguments",
    "api_key_from_env",
    "continues_final_message",
    "cut_at_stop",
    "generator_fingerprint",
    "math_prompt",
    "open_generator",
    "open_sampler",
    "prompt_identity",
    "render_prompt",
    "sample_key",
    "sample_seed",
    "top_logprobs",
]
