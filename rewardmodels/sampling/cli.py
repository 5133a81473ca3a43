"""The sampling flags every sampling CLI shares, and the `Sampler` they describe."""

from __future__ import annotations

import argparse
import logging

from rewardmodels.cli_common import add_progress_argument
from rewardmodels.sampling.core import CACHE_SCHEMA_VERSION, SampleCache, Sampler, SamplingParams

logger = logging.getLogger("rewardmodels")


def add_sampling_arguments(parser: argparse.ArgumentParser, max_new_tokens_help: str) -> None:
    """The generator (local or an OpenAI-compatible endpoint), sampling, cache, device and thread flags, and
    --no-progress (a command that samples shows progress bars)."""
    parser.add_argument(
        "--generator", default="smollm2-135m", help="Local causal LM: Hub id, local dir, .gguf or alias."
    )
    parser.add_argument("--max-new-tokens", type=int, default=256, help=max_new_tokens_help)
    parser.add_argument("--temperature", type=float, default=0.7, help="Sampling temperature (0 = greedy).")
    parser.add_argument("--top-p", type=float, default=0.95, help="Nucleus sampling p.")
    parser.add_argument("--seed", type=int, default=0, help="Mixed into every sample's seed (and cache key).")
    parser.add_argument(
        "--stop", action="append", default=None, help="A string that ends a sample (repeat for several)."
    )
    parser.add_argument(
        "--cache",
        default=None,
        help=f"SQLite sample cache (default: <cache root>/samples-v{CACHE_SCHEMA_VERSION}.sqlite).",
    )
    parser.add_argument(
        "--device", default=None, help="Local generator device (default: cuda when available)."
    )
    parser.add_argument(
        "--dtype", default=None, help="Local generator dtype (default: bfloat16 on cuda, else float32)."
    )
    parser.add_argument(
        "--attn-implementation",
        default=None,
        help="Local generator attention (default: the project's choice).",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads for generation. Token-by-token sampling gains little from several threads, "
        "and on a CPU shared with other jobs 1 thread can be many times faster (see docs/prm.md).",
    )
    add_progress_argument(parser)
    remote = parser.add_argument_group(
        "OpenAI-compatible endpoint", "Sample on a vLLM / SGLang / OpenAI-style server instead of locally."
    )
    remote.add_argument(
        "--endpoint",
        default=None,
        metavar="URL",
        help="Base URL of the API, e.g. http://127.0.0.1:8000/v1 (/v1 is added to a URL without a path).",
    )
    remote.add_argument(
        "--endpoint-model", default=None, metavar="NAME", help="Model name the server serves."
    )
    remote.add_argument(
        "--api-key-env",
        default=None,
        metavar="VAR",
        help="Environment variable holding the API key, sent as a bearer token (never logged).",
    )
    remote.add_argument(
        "--request-timeout", type=float, default=300.0, help="Seconds to wait for one answer."
    )
    remote.add_argument(
        "--max-retries",
        type=int,
        default=3,
        help="Retries of a request after a connection error, timeout, 429 or 5xx, with doubling waits.",
    )


def open_generator(args: argparse.Namespace):
    """The generator the `add_sampling_arguments` flags name."""
    if args.endpoint:
        from rewardmodels.sampling.endpoint import EndpointGenerator, api_key_from_env

        if not args.endpoint_model:
            raise ValueError("--endpoint needs --endpoint-model: the name the server serves the model under")
        return EndpointGenerator(
            args.endpoint,
            args.endpoint_model,
            api_key=api_key_from_env(args.api_key_env),
            timeout=args.request_timeout,
            max_retries=args.max_retries,
        )
    from rewardmodels.sampling.local import HFGenerator

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    return HFGenerator.load(
        args.generator, device=args.device, dtype=args.dtype, attn_implementation=args.attn_implementation
    )


def open_sampler(args: argparse.Namespace) -> Sampler:
    """The generator and its on-disk cache that `add_sampling_arguments` flags name; the caller closes
    `sampler.cache`."""
    from rewardmodels.modeling import cache_root

    params = SamplingParams(
        args.max_new_tokens, args.temperature, args.top_p, seed=args.seed, stop=tuple(args.stop or ())
    )
    cache = SampleCache(args.cache or cache_root() / f"samples-v{CACHE_SCHEMA_VERSION}.sqlite")
    try:
        generator = open_generator(args)
    except BaseException:
        cache.close()
        raise
    logger.info("sampling with %s; cache %s (%d samples)", generator.fingerprint, cache.path, len(cache))
    return Sampler(generator, cache, params)
