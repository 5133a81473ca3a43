"""From canonical rows to token ids: chat templates, EOS handling, shared prefixes and explicit truncation.

A pair is stored as the token prefix that chosen and rejected share, plus each continuation. The shared
prefix is found in token ids, not text, so tokenization at the boundary cannot change a result. Truncation
keeps the end of every sequence: the shared prefix is cut from the left first, and a continuation that alone
exceeds `max_length` keeps its last tokens, so the reward is always read at the real final token.

Rendering (`render_text`, `tokenize_text`) is defined here once; where a response starts in those ids, and
where its steps end, is read off the same rendering in `rewardmodels.causal.response_tokens`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tqdm.auto import tqdm


def is_conversational(value) -> bool:
    return isinstance(value, list)


def as_messages(prompt, response) -> list[dict]:
    prompt_msgs = (
        prompt if isinstance(prompt, list) else ([{"role": "user", "content": prompt}] if prompt else [])
    )
    response_msgs = response if isinstance(response, list) else [{"role": "assistant", "content": response}]
    return list(prompt_msgs) + list(response_msgs)


def resolve_chat_template(setting: str, rows: list[dict], tokenizer, prompt_key: str = "prompt") -> bool:
    """'auto' uses the template for conversational rows only; 'always' and 'never' force a choice."""
    if setting not in ("auto", "always", "never"):
        raise ValueError(f"use_chat_template must be auto, always or never, got {setting!r}")
    use = setting == "always" or (
        setting == "auto" and bool(rows) and is_conversational(rows[0].get(prompt_key))
    )
    if use and not tokenizer.chat_template:
        raise ValueError(
            "the tokenizer has no chat template, but the data is conversational or use_chat_template=always"
        )
    return use


def uses_chat_template(use_chat_template: bool, prompt, response) -> bool:
    """Conversational rows always go through the template; plain strings only when asked."""
    return bool(use_chat_template) or is_conversational(prompt) or is_conversational(response)


def render_text(tokenizer, prompt, response, use_chat_template: bool) -> str:
    """prompt + response as the one string that is tokenized: the template's rendering, or `join_plain`."""
    if uses_chat_template(use_chat_template, prompt, response):
        return chat_text(tokenizer, as_messages(prompt, response))
    return join_plain(prompt, response)


def chat_text(tokenizer, messages: list[dict], add_generation_prompt: bool = False) -> str:
    """The template's rendering; `apply_chat_template(tokenize=True)` tokenizes this string without special
    tokens, as `tokenize_text(..., chat=True)` does."""
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )


def tokenize_text(
    tokenizer, text: str, chat: bool, with_offsets: bool = False
) -> tuple[list[int], list[tuple[int, int]] | None]:
    """Ids of a rendered text (and each token's (start, end) characters). A chat rendering holds its
    special tokens; plain text gets the tokenizer's (BOS) and ends with EOS, appended with offsets
    (len, len) when the tokenizer did not put one there."""
    encoded = tokenizer(text, add_special_tokens=not chat, return_offsets_mapping=with_offsets)
    ids = list(encoded["input_ids"])
    offsets = [tuple(o) for o in encoded["offset_mapping"]] if with_offsets else None
    eos = tokenizer.eos_token_id
    if not chat and eos is not None and (not ids or ids[-1] != eos):
        ids.append(eos)
        if offsets is not None:
            offsets.append((len(text), len(text)))
    return ids, offsets


def render_ids(tokenizer, prompt, response, use_chat_template: bool) -> list[int]:
    """Token ids of prompt + response: through the chat template, or as plain text followed by EOS."""
    chat = uses_chat_template(use_chat_template, prompt, response)
    return tokenize_text(tokenizer, render_text(tokenizer, prompt, response, chat), chat)[0]


def join_plain(prompt: str, response: str) -> str:
    """Plain-text rows are joined with a newline unless one side already brings the whitespace."""
    if prompt and not prompt[-1].isspace() and not response[:1].isspace():
        return prompt + "\n" + response
    return prompt + response


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common token prefix."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def shared_prefix_length(a: list[int], b: list[int]) -> int:
    """Length of the common token prefix, leaving each sequence at least one token of its own."""
    return max(0, min(common_prefix_length(a, b), min(len(a), len(b)) - 1))


@dataclass
class TokenizedPair:
    prefix_ids: list[int]
    chosen_ids: list[int]
    rejected_ids: list[int]
    truncated: bool

    def as_features(self, margin: float | None = None, tie: bool | None = None) -> dict:
        features = {
            "prefix_ids": self.prefix_ids,
            "chosen_ids": self.chosen_ids,
            "rejected_ids": self.rejected_ids,
        }
        if margin is not None:
            features["margin"] = float(margin)
        if tie is not None:  # a pair rated equally good: BT trains it with the tie loss
            features["tie"] = bool(tie)
        return features


def truncate_pair(
    prefix: list[int], chosen: list[int], rejected: list[int], max_length: int
) -> TokenizedPair:
    longest = max(len(chosen), len(rejected))
    if len(prefix) + longest <= max_length:
        return TokenizedPair(prefix, chosen, rejected, truncated=False)
    keep = max(0, max_length - longest)
    prefix = prefix[len(prefix) - keep :] if keep else []
    return TokenizedPair(prefix, chosen[-max_length:], rejected[-max_length:], truncated=True)


def tokenize_pair(tokenizer, row: dict, use_chat_template: bool, max_length: int) -> TokenizedPair:
    chosen = render_ids(tokenizer, row["prompt"], row["chosen"], use_chat_template)
    rejected = render_ids(tokenizer, row["prompt"], row["rejected"], use_chat_template)
    n = shared_prefix_length(chosen, rejected)
    return truncate_pair(chosen[:n], chosen[n:], rejected[n:], max_length)


def tokenize_pairs(
    tokenizer, rows: list[dict], use_chat_template: bool, max_length: int, desc: str = "tokenizing pairs"
):
    """Features for every row, plus how many pairs were truncated."""
    features, truncated = [], 0
    for row in tqdm(rows, desc=desc, disable=len(rows) < 2000):
        pair = tokenize_pair(tokenizer, row, use_chat_template, max_length)
        truncated += pair.truncated
        features.append(pair.as_features(row.get("margin"), row.get("tie")))
    return features, truncated


def truncate_sequence(ids: list[int], max_length: int) -> tuple[list[int], bool]:
    """Keep the last `max_length` tokens (the end is where the reward is read)."""
    if len(ids) <= max_length:
        return ids, False
    return ids[-max_length:], True


# ---- step-level rows (process reward models) --------------------------------------------------------------
#
# A stepwise row becomes  prompt ids + (step ids + separator ids) for every step. Each step is tokenized on its
# own, so a separator such as "\n\n" can never merge with the text around it, and the index of every
# separator's last token is known from construction, never searched for: a separator string that happens to
# occur inside a step carries no label. The sequence ends at the last separator: nothing after it could change
# a causal model's output at any separator. Features are {input_ids, step_positions, step_labels}, with
# positions relative to the row, so a padded collator and a packer can both use them unchanged.


def separator_ids(tokenizer, separator: str) -> list[int]:
    """Token ids of a step separator; a multi-token separator is allowed (the label sits on its last token)."""
    if not separator:
        raise ValueError("the step separator must be a non-empty string")
    ids = tokenizer(separator, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ValueError(f"the step separator {separator!r} tokenizes to no tokens")
    return list(ids)


def ensure_separator_token(tokenizer, separator: str) -> tuple[int, bool]:
    """Make `separator` a single token, as Qwen2.5-Math-PRM's `<extra_0>`: reuse it when the vocabulary already
    encodes it as one token, otherwise add it as a special token. Returns (token id, whether it was added);
    when it was added the model's embeddings must be resized (and, under LoRA, its row trained and saved)."""
    ids = tokenizer(separator, add_special_tokens=False)["input_ids"]
    if len(ids) == 1 and tokenizer.decode(ids) == separator:
        return ids[0], False
    tokenizer.add_tokens([separator], special_tokens=True)
    ids = tokenizer(separator, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ValueError(f"could not make {separator!r} a single token (got {ids})")
    return ids[0], True


def step_prompt_ids(tokenizer, prompt, use_chat_template: bool) -> list[int]:
    """Ids that precede the first step: the chat template up to the assistant turn, or the plain prompt text
    with a newline (as `join_plain` joins plain rows) and the tokenizer's BOS."""
    if use_chat_template or is_conversational(prompt):
        return tokenize_text(tokenizer, chat_text(tokenizer, as_messages(prompt, []), True), chat=True)[0]
    text = prompt if not prompt or prompt[-1].isspace() else prompt + "\n"
    return list(tokenizer(text, add_special_tokens=True)["input_ids"])


@dataclass
class TokenizedSteps:
    input_ids: list[int]
    step_positions: list[int]  # last separator token of each labelled step (of every step, when scoring)
    step_labels: list[float]  # one per position when labels were given; empty when tokenizing for scoring
    step_index: list[int]  # which original step each position belongs to
    kept_steps: int  # steps that fit within max_length, labelled or not
    truncated: bool

    def as_features(self) -> dict:
        return {
            "input_ids": self.input_ids,
            "step_positions": self.step_positions,
            "step_labels": self.step_labels,
        }


def tokenize_steps(
    tokenizer,
    prompt,
    steps: list[str],
    labels: list | None,
    sep_ids: list[int],
    use_chat_template: bool,
    max_length: int,
    last_step_only: bool = False,
    prompt_ids: list[int] | None = None,
) -> TokenizedSteps:
    """Ids and label positions for one stepwise row.

    `labels=None` tokenizes for scoring: every step that fits gets a position. Otherwise a step whose label is
    None is kept as context without a position. With `last_step_only`, only the row's final step is labelled.

    Truncation keeps the beginning (a step is judged by what comes before it): whole steps are cut from the
    end, and the cut steps lose their labels. The prompt is cut from the left only when not even the first
    step would fit after it; if the first step alone exceeds max_length, no step is kept.
    """
    if labels is not None and len(labels) != len(steps):
        raise ValueError(f"{len(labels)} labels for {len(steps)} steps")
    if prompt_ids is None:
        prompt_ids = step_prompt_ids(tokenizer, prompt, use_chat_template)
    prefix = list(prompt_ids)
    # One batched call: a fast tokenizer encodes a list of steps much faster than step by step.
    encoded = tokenizer(list(steps), add_special_tokens=False)["input_ids"] if steps else []
    chunks = [list(ids) + list(sep_ids) for ids in encoded]
    total = len(prefix) + sum(len(c) for c in chunks)
    kept, used, budget = 0, 0, max_length - len(prefix)
    for chunk in chunks:
        if used + len(chunk) > budget:
            break
        used += len(chunk)
        kept += 1
    if kept == 0 and chunks and len(chunks[0]) <= max_length:
        room = max_length - len(chunks[0])
        prefix = prefix[len(prefix) - room :] if room else []
        kept = 1
    input_ids = list(prefix)
    positions, out_labels, index = [], [], []
    for i in range(kept):
        input_ids += chunks[i]
        if labels is None:
            positions.append(len(input_ids) - 1)
            index.append(i)
            continue
        label = labels[i]
        if label is None or (last_step_only and i != len(steps) - 1):
            continue
        positions.append(len(input_ids) - 1)
        out_labels.append(float(label))
        index.append(i)
    return TokenizedSteps(input_ids, positions, out_labels, index, kept, truncated=total > max_length)


@dataclass
class StepTokenizationReport:
    rows: int = 0
    truncated_rows: int = 0
    labels_cut: int = 0  # labelled steps lost to truncation
    dropped_rows: int = 0  # rows left with no labelled step (dropped from the dataset)

    def __str__(self) -> str:
        return (
            f"{self.rows} rows: {self.truncated_rows} truncated ({self.labels_cut} step labels cut), "
            f"{self.dropped_rows} dropped for having no labelled step left"
        )


def tokenize_stepwise_rows(
    tokenizer,
    rows: list[dict],
    sep_ids: list[int],
    use_chat_template: bool,
    max_length: int,
    last_step_only: bool = False,
    desc: str = "tokenizing steps",
) -> tuple[list[dict], StepTokenizationReport]:
    """Features for every stepwise row that keeps at least one labelled step, and a report of what was cut."""
    features, report = [], StepTokenizationReport()
    for row in tqdm(rows, desc=desc, disable=len(rows) < 2000):
        report.rows += 1
        steps, labels = row["completions"], row["labels"]
        tok = tokenize_steps(
            tokenizer, row["prompt"], steps, labels, sep_ids, use_chat_template, max_length, last_step_only
        )
        if tok.truncated:
            report.truncated_rows += 1
            wanted = [i for i, x in enumerate(labels) if x is not None]
            if last_step_only:
                wanted = [i for i in wanted if i == len(steps) - 1]
            report.labels_cut += sum(1 for i in wanted if i >= tok.kept_steps)
        if not tok.step_positions:
            report.dropped_rows += 1
            continue
        features.append(tok.as_features())
    return features, report
