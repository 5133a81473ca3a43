"""Next-token log-probabilities of chosen tokens at chosen places of rendered texts, under a local causal LM:
how a generative verifier reads P(yes) after its decision question and P(correct) after a verdict's brace.

For text x and a character position c (None: the end of x), the place is the token whose last character
ends at c: its logits predict the token that follows. For each target token t the result is

  log p(t | the tokens of x up to and including that token) = log_softmax(logits at that token)[t]

from one forward per batch through `logprobs.token_logprobs`, which runs the LM head only at the asked
positions (several targets at one position are several (position, target) pairs). A text longer than
`max_length` tokens keeps its last `max_length` (a place that falls in the cut-off part gives None); a place
that no token ends at (a slow tokenizer has no offsets at all) gives None too.
"""

from __future__ import annotations

from collections.abc import Sequence


def distinguishing_tokens(tokenizer, context: str, continuations: Sequence[str]) -> tuple[str, list[int]]:
    """Where continuations of `context` part ways in this tokenizer: the text of the whole tokens they all
    share after the context (SmolLM2 splits " Yes" / " No" apart at once, a byte-level tokenizer without
    merges shares the " " token first), and each continuation's first token after that. The probabilities
    of those tokens, read after context + shared text, compare the continuations."""
    base = tokenizer(context, add_special_tokens=False)["input_ids"]
    tails = []
    for text in continuations:
        ids = tokenizer(context + text, add_special_tokens=False)["input_ids"]
        if ids[: len(base)] != base or len(ids) == len(base):
            raise ValueError(f"{text!r} does not start a new token after {context!r} in this tokenizer")
        tails.append(ids[len(base) :])
    shared = 0
    while all(len(t) > shared + 1 and t[shared] == tails[0][shared] for t in tails):
        shared += 1
    shared_text = tokenizer.decode(tails[0][:shared]) if shared else ""
    check = tokenizer(context + shared_text, add_special_tokens=False)["input_ids"]
    if check != base + tails[0][:shared]:
        raise ValueError(
            f"the shared start {shared_text!r} of {list(continuations)} does not re-tokenize alike"
        )
    firsts = [t[shared] for t in tails]
    return shared_text, firsts


def token_places(tokenizer, text: str, chars: Sequence[int | None]) -> tuple[list[int], list[int | None]]:
    """The text's token ids, and the index of the token ending at each character (None where none does)."""
    fast = bool(getattr(tokenizer, "is_fast", False))
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=fast)
    ids = list(enc["input_ids"])
    last = {}
    if fast:
        for j, (_, end) in enumerate(enc["offset_mapping"]):
            last.setdefault(end, j)
    return ids, [len(ids) - 1 if c is None else last.get(c) for c in chars]


def keep_last(ids: list[int], places: list[int | None], max_length: int) -> tuple[list[int], list, bool]:
    """The last `max_length` ids, the places moved with them, and whether anything was cut."""
    drop = max(0, len(ids) - max_length)
    if not drop:
        return ids, places, False
    return ids[drop:], [None if p is None or p < drop else p - drop for p in places], True


def next_token_logprobs(
    model,
    tokenizer,
    texts: Sequence[str],
    chars: Sequence[Sequence[int | None]],
    targets: Sequence[int],
    max_length: int,
    batch_size: int = 16,
) -> tuple[list[list[list[float] | None]], int]:
    """Per text, per asked character, the log-probs of every target (a list of len(targets)), or None; and
    how many texts were cut to max_length. Texts are right-padded `batch_size` at a time."""
    import torch

    from rewardmodels.causal.logprobs import token_logprobs
    from rewardmodels.collators import pad_sequences

    rows, places, cut = [], [], 0
    for text, wanted in zip(texts, chars, strict=True):
        ids, where, was_cut = keep_last(*token_places(tokenizer, text, wanted), max_length)
        rows.append(ids)
        places.append(where)
        cut += was_cut
    pad = next(t for t in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0) if t is not None)
    device = model.device
    out: list[list[list[float] | None]] = [[None] * len(p) for p in places]
    for start in range(0, len(rows), batch_size):
        idx = [
            i
            for i in range(start, min(start + batch_size, len(rows)))
            if any(p is not None for p in places[i])
        ]
        if not idx:
            continue
        input_ids, attention_mask, _ = pad_sequences([rows[i] for i in idx], pad)
        width = input_ids.shape[1]
        flat = [r * width + p for r, i in enumerate(idx) for p in places[i] if p is not None]
        positions = torch.tensor([f for f in flat for _ in targets], device=device)
        wanted = torch.tensor(list(targets) * len(flat), device=device)
        inputs = {"input_ids": input_ids.to(device), "attention_mask": attention_mask.to(device)}
        with torch.inference_mode():
            values = token_logprobs(model, inputs, positions, wanted).view(len(flat), len(targets)).tolist()
        at = 0
        for i in idx:
            for k, p in enumerate(places[i]):
                if p is not None:
                    out[i][k] = values[at]
                    at += 1
    return out, cut
