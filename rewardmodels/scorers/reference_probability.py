"""The `reference_probability` scorer: RLPR's verifier-free reward (Yu et al. 2025, "RLPR: Extrapolating RLVR
to General Domains without Verifiers"), a causal LM's own probability of the reference answer after the
completion's reasoning, against the same probability without it.

For a prompt x, a completion o and a reference answer y* (a dataset column, or the server's `references`):

  1. o is cut where it states its own final answer (`answers.locate_final_answer`: the last \\boxed{...}, a
     `# Answer` heading, or "The answer is"): z = the reasoning before that statement, a = the statement's
     lead-in ("\\boxed{", "# Answer\\n\\n", "The answer is "). A completion in which no rule finds an answer
     is reasoning throughout: z = o, and a = `fallback_lead_in` ("\\nThe answer is " unless set).
  2. y* takes the place of o's answer, in o's format: the response is z + a + y*. Whatever o wrote after its
     answer (the closing brace, more text) is dropped, and nothing follows y*. The reference tokens are read
     off the one rendering of prompt + response (`causal.response_tokens`): the tokens that cover y*'s
     characters, a token that merges a's last characters with y*'s first counting as y*'s.
  3. p_with = (1/T) sum_t p(y*_t | x, z, a, y*_<t), the mean per-token probability of y*'s T tokens
     (`logprobs.mean_probabilities`; RLPR's choice over the likelihood exp(sum_t log p_t), which one unlikely
     token drags towards 0). p_without = the same for the response a + y*: the prompt, the lead-in and the
     reference, with no reasoning. Both sequences of every item go through one batched pass (length-sorted
     padded batches, `scorers.base.response_values`); a no-reasoning sequence shared by several completions
     of one prompt (the same lead-in) is scored once.
  4. r = max(0, p_with - p_without): RLPR's debiasing. The difference is what the reasoning adds to the
     reference's probability rather than how likely the reference is anyway; the clip at 0 gives a reasoning
     that lowers it no reward, instead of ranking such reasonings by how much they lower it.
     `clip=False` gives the signed difference.

`log_probability=True` replaces the mean probability by the mean log-probability (1/T) sum_t log p_t:
r = max(0, mean log p_with - mean log p_without), the mean per-token log-ratio of the reference with the
reasoning over without it. It is unbounded above (the probability difference is at most 1), and the clip
acts on it the same way.

Reading the reference's tokens off the rendering takes a fast tokenizer (one with offsets). A reference that
is None or empty gives NaN (None in a reward function: TRL's "not scored"). RLPR's own code
computes p_without once per prompt before training and keeps it; here it is computed at every call under the
model as it is then, which for the live policy is the exact debiasing term.

The scorer is a model and a tokenizer: `ReferenceProbabilityScorer(model, tokenizer)` with a loaded causal LM
(the live policy of a GRPO loop: scoring puts it in eval mode under `torch.no_grad()` and restores its mode),
`from_pretrained(path or Hub id)` (a frozen copy), or a scorer directory whose manifest reads
{"kind": "reference_probability", "model": PATH_OR_HUB_ID} plus any of the options (`from_directory`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch

from rewardmodels.answers import locate_final_answer
from rewardmodels.causal.logprobs import (
    mean_logprobs,
    mean_probabilities,
    pad_id_within_vocab,
    response_logprobs,
)
from rewardmodels.causal.response_tokens import EncodedResponse, encode_response, keep_last_tokens
from rewardmodels.errors import InputError
from rewardmodels.scorers.base import MANIFEST_NAME, load_for_scoring, response_values
from rewardmodels.scorers.options import DEFAULT_OPTIONS, ScorerOptions
from rewardmodels.scorers.reward_funcs import TRAINER_KEYWORDS
from rewardmodels.tokenization import as_messages

FALLBACK_LEAD_IN = "\nThe answer is "
# Manifest options and the types they take (`from_directory` checks them before any model loads).
MANIFEST_OPTIONS: dict[str, tuple[type, ...]] = {
    "model": (str,),
    "log_probability": (bool,),
    "clip": (bool,),
    "max_length": (int,),
    "use_chat_template": (bool,),
    "fallback_lead_in": (str,),
}


def reference_response(
    completion: str, reference: str, fallback_lead_in: str = FALLBACK_LEAD_IN
) -> tuple[str, str, str]:
    """(z + a + y*, z, a): the completion with its own final answer replaced by the reference, the reasoning
    z before the answer's statement, and the lead-in a (module docstring, steps 1-2)."""
    located = locate_final_answer(completion)
    if located is None:
        reasoning, lead_in = completion, fallback_lead_in
    else:
        reasoning, lead_in = completion[: located.start], completion[located.start : located.content_start]
    return reasoning + lead_in + reference, reasoning, lead_in


def split_completion(prompt, completion) -> tuple[object, str]:
    """(what comes before the completion's text, that text): a plain completion after its prompt, or the
    last message of a chat completion after the prompt's messages and any earlier completion messages."""
    if isinstance(completion, str):
        return prompt, completion
    if not completion or not isinstance(completion[-1], dict) or "content" not in completion[-1]:
        raise ValueError(f"a chat completion must end with a message that has 'content', got {completion!r}")
    return as_messages(prompt, []) + list(completion[:-1]), completion[-1]["content"]


def reference_text(reference, where: int) -> str | None:
    """A reference as text: a string as it is, a number in its str() form, None or "" as None (not scored)."""
    if reference is None or reference == "":
        return None
    if isinstance(reference, bool) or not isinstance(reference, (str, int, float)):
        raise ValueError(f"reference {where} must be a string (or a number), got {type(reference).__name__}")
    return str(reference)


def debiased_reward(with_reasoning: float, without_reasoning: float, clip: bool = True) -> float:
    """r = with - without, and max(0, r) when `clip`; NaN when either side is NaN."""
    difference = with_reasoning - without_reasoning
    if math.isnan(difference) or not clip:
        return difference
    return max(0.0, difference)


@contextlib.contextmanager
def scoring_mode(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode without gradients inside the block, the model's own mode restored after (a live policy
    goes back to training)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


class ReferenceProbabilityScorer:
    kind = "reference_probability"
    extra_options: tuple[
        str, ...
    ] = ()  # ScorerOptions.extra names it takes: none (its settings are the manifest's)
    preferred_batch_size = 8  # sequences per forward off CPU; each item is two sequences

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer,
        *,
        log_probability: bool = False,
        clip: bool = True,
        max_length: int = 4096,
        use_chat_template: bool = False,
        fallback_lead_in: str = FALLBACK_LEAD_IN,
        name: str | None = None,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.log_probability = bool(log_probability)
        self.clip = bool(clip)
        self.max_length = int(max_length)
        # Plain strings are joined as text, chat messages go through the template: as TRL hands them over.
        self.use_chat_template = bool(use_chat_template)
        self.fallback_lead_in = fallback_lead_in
        self.pad_id = pad_id_within_vocab(tokenizer, model)
        self.truncated = 0
        self.last_truncated: list[bool] = []
        self.manifest = {
            "kind": self.kind,
            "model": name,
            "log_probability": self.log_probability,
            "clip": self.clip,
            "max_length": self.max_length,
            "use_chat_template": self.use_chat_template,
            "fallback_lead_in": self.fallback_lead_in,
        }

    @property
    def device(self) -> torch.device:
        """Where the model's weights are now (a trainer may move a live policy after this scorer is made)."""
        return next(self.model.parameters()).device

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        *,
        device=None,
        dtype=None,
        attn_implementation: str | None = None,
        trust_remote_code: bool = False,
        **options,
    ) -> ReferenceProbabilityScorer:
        """A frozen causal LM (Hub id, local safetensors directory, .gguf or the embedded alias) loaded through
        `modeling.load_backbone`; `options` are the constructor's."""
        model, tokenizer, _ = load_for_scoring(
            name_or_path,
            "causal_lm",
            device=device,
            dtype=dtype,
            attn_implementation=attn_implementation,
            trust_remote_code=trust_remote_code,
        )
        return cls(model, tokenizer, name=options.pop("name", str(name_or_path)), **options)

    @classmethod
    def from_directory(
        cls, path, manifest: dict, options: ScorerOptions = DEFAULT_OPTIONS
    ) -> ReferenceProbabilityScorer:
        """A scorer directory: a manifest with kind "reference_probability" and optionally `model` (a path
        inside the directory, an absolute path, a Hub id or the embedded alias; absent: the directory holds
        the weights) and the constructor's options (log_probability, clip, max_length, use_chat_template,
        fallback_lead_in). A wrong type is an `InputError` naming the field, raised before the model loads;
        `options.max_length` overrides the manifest's."""
        manifest_path = Path(path) / MANIFEST_NAME
        for key, types in MANIFEST_OPTIONS.items():
            value = manifest.get(key)
            if value is not None and (
                not isinstance(value, types) or (int in types and isinstance(value, bool))
            ):
                wanted = " or ".join(t.__name__ for t in types)
                raise InputError(manifest_path, None, key, f"must be {wanted}, got {value!r}")
        model = manifest.get("model")
        if model is None:
            model = str(path)
        elif (Path(path) / model).exists():
            model = str(Path(path) / model)
        settings = {k: manifest[k] for k in MANIFEST_OPTIONS if k != "model" and manifest.get(k) is not None}
        if options.max_length is not None:
            settings["max_length"] = options.max_length
        return cls.from_pretrained(
            model,
            device=options.device,
            dtype=options.dtype,
            attn_implementation=options.attn_implementation,
            name=model,
            **settings,
        )

    # -- tokenization -------------------------------------------------------------------------------------
    def _reference_tokens(self, prompt, response: str, reference_start: int) -> tuple[EncodedResponse, bool]:
        """prompt + response's ids up to the end of the reference (the response's characters from
        `reference_start` on), `response_start` at its first token, cut to the last max_length tokens."""
        encoded = encode_response(
            self.tokenizer,
            prompt,
            response,
            self.use_chat_template,
            step_ends=[reference_start, len(response)],
        )
        before, through = encoded.step_boundaries
        start, stop = encoded.response_start + before, encoded.response_start + through
        if stop <= start:
            raise ValueError(f"the reference {response[reference_start:]!r} has no token of its own")
        return keep_last_tokens(EncodedResponse(encoded[:stop], start), self.max_length)

    def encode(
        self, prompts: Sequence, completions: Sequence, references: Sequence
    ) -> list[tuple[EncodedResponse, EncodedResponse] | None]:
        """Per item, the (with reasoning, without reasoning) sequences whose response is the reference's
        tokens; None for an item without a reference. `last_truncated` flags items with a cut sequence."""
        if not len(prompts) == len(completions) == len(references):
            raise ValueError(
                f"{len(prompts)} prompts, {len(completions)} completions and {len(references)} references"
            )
        pairs, flags = [], []
        for i, (prompt, completion, reference) in enumerate(
            zip(prompts, completions, references, strict=True)
        ):
            reference = reference_text(reference, i)
            if reference is None:
                pairs.append(None)
                flags.append(False)
                continue
            context, text = split_completion(prompt, completion)
            response, reasoning, lead_in = reference_response(text, reference, self.fallback_lead_in)
            with_ids, cut_with = self._reference_tokens(context, response, len(reasoning) + len(lead_in))
            without_ids, cut_without = self._reference_tokens(context, lead_in + reference, len(lead_in))
            pairs.append((with_ids, without_ids))
            flags.append(cut_with or cut_without)
        self.last_truncated = flags
        self.truncated += sum(flags)
        return pairs

    # -- scoring ------------------------------------------------------------------------------------------
    def _values(self, batch) -> list[float]:
        """The mean per-token probability (or mean log-probability) of each sequence's response tokens."""
        reduce = mean_logprobs if self.log_probability else mean_probabilities
        return [float(reduce(lp)) for lp in response_logprobs(self.model, batch)]

    def reference_probabilities(
        self, prompts: Sequence, completions: Sequence, references: Sequence, batch_size: int = 8
    ) -> list[tuple[float, float]]:
        """(p_with, p_without) per item (mean log-probabilities with `log_probability`); NaN for an item
        without a reference. Every distinct sequence is scored once, in one batched pass."""
        pairs = self.encode(prompts, completions, references)
        index: dict[tuple, int] = {}
        sequences: list[EncodedResponse] = []
        for pair in pairs:
            for seq in pair or ():
                key = (tuple(seq), seq.response_start)
                if key not in index:
                    index[key] = len(sequences)
                    sequences.append(seq)
        with scoring_mode(self.model):
            values = response_values(sequences, self._values, self.pad_id, self.device, batch_size)

        def value(seq: EncodedResponse) -> float:
            return values[index[(tuple(seq), seq.response_start)]]

        return [(math.nan, math.nan) if p is None else (value(p[0]), value(p[1])) for p in pairs]

    def score_with_references(
        self, prompts: Sequence, completions: Sequence, references: Sequence, batch_size: int = 8
    ) -> list[float]:
        """The reward per item (module docstring, step 4); NaN for an item without a reference."""
        pairs = self.reference_probabilities(prompts, completions, references, batch_size)
        return [debiased_reward(with_, without, self.clip) for with_, without in pairs]

    def score(
        self, prompts: Sequence, responses: Sequence, batch_size: int = 8, references: Sequence | None = None
    ) -> list[float]:
        """`score_with_references`; the references are required (this reward is relative to them)."""
        if references is None:
            raise ValueError(
                "the reference_probability scorer scores a response against a reference answer: pass "
                "references=[...] (one per response), or use its reward function with a reference column"
            )
        return self.score_with_references(prompts, responses, references, batch_size)

    def as_reward_func(self, **options) -> Callable:
        """A TRL reward function reading the references from a dataset column
        (`reference_probability_reward_func`: reference_column, batch_size, asynchronous, name)."""
        return reference_probability_reward_func(self, **options)


def reference_probability_reward_func(
    scorer,
    reference_column: str = "reference",
    *,
    batch_size: int | None = None,
    asynchronous: bool = False,
    name: str = "reference_probability_reward",
) -> Callable:
    """`scorer.score_with_references` as a TRL reward function, f(prompts=, completions=, **columns): TRL
    passes each dataset column as a keyword, and the references are the column `reference_column`. A call
    without that column raises a ValueError naming it and the columns that are there; a row whose reference
    is None or empty gets None ("not scored"). Calls hold the scorer's lock (`reward_funcs.scorer_lock`);
    `asynchronous` gives an `async def` function that scores in a worker thread."""
    from rewardmodels.scorers.reward_funcs import make_reward_func, scorer_lock

    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    lock = scorer_lock(scorer)
    batch = {} if batch_size is None else {"batch_size": batch_size}

    def score(prompts: list, completions: list, columns: dict) -> list[float]:
        if reference_column not in columns:
            present = sorted(k for k in columns if k not in TRAINER_KEYWORDS)
            raise ValueError(
                f"{name}: the dataset has no {reference_column!r} column with the reference answers; its "
                f"columns: {', '.join(present) or 'none'} (choose one with reference_column=)"
            )
        with lock:
            return scorer.score_with_references(
                prompts, completions, list(columns[reference_column]), **batch
            )

    return make_reward_func(score, name, asynchronous, pass_columns=True)


__all__ = [
    "FALLBACK_LEAD_IN",
    "ReferenceProbabilityScorer",
    "debiased_reward",
    "reference_probability_reward_func",
    "reference_response",
]
