"""The local backend: a causal LM sampled with transformers `generate`, several prompts per batch.

Rows are left-padded (with an attention mask), so every row's new tokens start at the same column. Each row
is sampled with its own `torch.Generator`, seeded with that sample's seed (`SeededNucleusSampler`), so a
sample depends on its prompt and seed only, not on the other rows of its batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from rewardmodels.sampling.core import Prompt, SamplingParams, continues_final_message, math_prompt


def generator_fingerprint(name: str, path: str) -> str:
    """The generator's identity in cache keys: its name, plus the size and mtime of local weight files, so a
    model retrained in place never reuses samples from its earlier self."""
    p = Path(path)
    if not p.is_dir():
        return name
    stats = sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in p.glob("*.safetensors"))
    return f"{name}@{hashlib.sha256(repr(stats).encode()).hexdigest()[:12]}"


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """`text` up to (without) the earliest occurrence of any stop string, as OpenAI-compatible servers
    return it."""
    cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return text[: min(cuts)] if cuts else text


def render_prompt(tokenizer, prompt: Prompt, name: str = "the generator") -> str:
    """The text a local model reads for a prompt: text as it is; a chat through the tokenizer's chat template,
    with the generation prompt, and a final assistant message's text appended to be continued. A trainer
    that fine-tunes on what the generator will be prompted with renders through this too."""
    if isinstance(prompt, str):
        return prompt
    if not tokenizer.chat_template:
        raise ValueError(
            f"{name}: the tokenizer has no chat template, so a chat prompt cannot be rendered; pass the "
            "prompt as text"
        )
    head, tail = (prompt[:-1], prompt[-1]["content"]) if continues_final_message(prompt) else (prompt, "")
    return tokenizer.apply_chat_template(head, tokenize=False, add_generation_prompt=True) + tail


class SeededNucleusSampler:
    """A logits processor that samples row r's next token from its own generator seeded with `seeds[r]`, and
    hands greedy decoding a score row where only that token is finite.

    With z the row's logits and p = softmax(z / T), the token is drawn from p restricted to the nucleus (the
    most probable tokens, in order, while the mass before a token is below top_p; the first always stays)
    and renormalised, by the Gumbel-max trick: argmax_v (log p_v + g_v), g_v = -log(-log u_v), u_v ~ U(0, 1)
    from the row's generator. Each call draws one u per vocabulary entry per row, so row r's draws depend on
    its seed and step count only.
    """

    def __init__(self, seeds: Sequence[int], temperature: float, top_p: float):
        if temperature <= 0:
            raise ValueError("SeededNucleusSampler samples; temperature 0 is plain greedy decoding")
        self.seeds, self.temperature, self.top_p = list(seeds), temperature, top_p
        self.generators = None

    def __call__(self, input_ids, scores):
        import torch

        if scores.shape[0] != len(self.seeds):
            raise ValueError(f"{scores.shape[0]} rows to sample, {len(self.seeds)} seeds")
        if self.generators is None:
            self.generators = [torch.Generator(device=scores.device).manual_seed(s) for s in self.seeds]
        logp = torch.log_softmax(scores.float() / self.temperature, dim=-1)
        if self.top_p < 1:
            sorted_logp, order = logp.sort(dim=-1, descending=True)
            probs = sorted_logp.exp()
            outside = (probs.cumsum(dim=-1) - probs) >= self.top_p
            logp = logp.masked_fill(torch.zeros_like(outside).scatter(-1, order, outside), float("-inf"))
        tiny = torch.finfo(torch.float32).tiny
        u = torch.stack(
            [torch.rand(logp.shape[-1], generator=g, device=scores.device) for g in self.generators]
        ).clamp(min=tiny, max=1 - 1e-7)
        choice = (logp - torch.log(-torch.log(u))).argmax(dim=-1, keepdim=True)
        return torch.full_like(scores, float("-inf")).scatter(-1, choice, 0.0)


class HFGenerator:
    """A causal LM sampled with transformers `generate`; `batch_size` rows per call."""

    def __init__(self, model, tokenizer, fingerprint: str, batch_size: int = 16):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.fingerprint = fingerprint
        self.batch_size = batch_size

    @classmethod
    def load(
        cls,
        name_or_path: str,
        *,
        device: str | None = None,
        dtype: str | None = None,
        attn_implementation: str | None = None,
        batch_size: int = 16,
    ) -> HFGenerator:
        """The model through `modeling.load_backbone` (the project's dtype and attention choice for the
        device; the device defaults to cuda when available), and its own tokenizer."""
        from transformers import AutoTokenizer

        from rewardmodels.modeling import load_backbone, pick_device, resolve_model_path

        path = resolve_model_path(name_or_path)
        model = load_backbone(
            path,
            "causal_lm",
            dtype=dtype,
            device=pick_device(device),
            attn_implementation=attn_implementation,
        )
        tokenizer = AutoTokenizer.from_pretrained(path)
        return cls(model, tokenizer, generator_fingerprint(name_or_path, path), batch_size)

    def render(self, prompt: Prompt) -> str:
        """The text the model reads (`render_prompt`)."""
        return render_prompt(self.tokenizer, prompt, self.fingerprint)

    def build_prompt(self, problem: str, prefix: Sequence[str], params: SamplingParams) -> str:
        messages = math_prompt(problem, prefix, params.instruction)
        if self.tokenizer.chat_template:
            return self.render(messages)
        continuation = messages[1]["content"] if len(messages) > 1 else ""
        return f"Problem: {messages[0]['content']}\nSolution:\n{continuation}"

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams, seeds: Sequence[int]) -> list[str]:
        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        texts = [self.render(p) for p in prompts]
        if params.temperature == 0:
            # Greedy decoding gives one answer however often it is asked, so each distinct prompt runs once.
            unique = list(dict.fromkeys(texts))
            answers = dict(zip(unique, self._in_batches(unique, params, None), strict=True))
            return [answers[t] for t in texts]
        return self._in_batches(texts, params, list(seeds))

    def _in_batches(self, texts: list[str], params: SamplingParams, seeds: list[int] | None) -> list[str]:
        out: list[str] = []
        for start in range(0, len(texts), self.batch_size):
            end = start + self.batch_size
            out += self._generate_batch(texts[start:end], params, None if seeds is None else seeds[start:end])
        return out

    def _generate_batch(self, texts: list[str], params: SamplingParams, seeds: list[int] | None) -> list[str]:
        import torch

        tok = self.tokenizer
        ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
        for i, row in enumerate(ids):
            if not row:
                raise ValueError(f"prompt {i} renders to no tokens: {texts[i]!r}")
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        width = max(len(row) for row in ids)
        device = self.model.device
        input_ids = torch.tensor([[pad] * (width - len(row)) + row for row in ids], device=device)
        mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in ids], device=device)
        config_eos = self.model.generation_config.eos_token_id
        eos = {tok.eos_token_id, *(config_eos if isinstance(config_eos, list) else [config_eos])} - {None}
        kwargs = {}
        if seeds is not None:
            from transformers import LogitsProcessorList

            kwargs["logits_processor"] = LogitsProcessorList(
                [SeededNucleusSampler(seeds, params.temperature, params.top_p)]
            )
        if params.stop:
            kwargs.update(stop_strings=list(params.stop), tokenizer=tok)
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids,
                attention_mask=mask,
                do_sample=False,  # sampling happens in SeededNucleusSampler, one generator per row
                temperature=None,
                top_p=None,
                top_k=None,
                max_new_tokens=params.max_new_tokens,
                pad_token_id=pad,
                eos_token_id=sorted(eos) or None,
                **kwargs,
            )
        return [cut_at_stop(tok.decode(row[width:], skip_special_tokens=True), params.stop) for row in out]
