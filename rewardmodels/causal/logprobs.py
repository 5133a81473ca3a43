"""Log-probabilities of response tokens under a causal LM, and their reductions: the one place both live.

Batch contract (`token_logprobs`; `LogprobBatch` carries the three parts):

  inputs     the model batch as `rewardmodels.collators` and `rewardmodels.packing` build it: input_ids with a
             2D attention_mask for padded rows, or position_ids and the packing keys (packed_segments, a 4D
             attention_mask, doc/branch ids, cu_seq_lens) for packed and prompt-sharing tree rows;
             `modeling.forward_kwargs` adapts them to the model's attention kernel, as for head outputs
  positions  (n,) flat indices into rows * length of the positions whose logits predict a target. Token t is
             predicted by the logits at t - 1, so a response starting at token s of an n-token sequence is
             predicted at s - 1 .. n - 2 (`response_positions`)
  targets    (n,) the token id predicted at each position

and the result is (n,) float32: log p(target | the tokens up to its position). The LM head runs only at
`positions` (a forward pre-hook hands it those hidden states alone), so no logits exist for prompt tokens,
which matters for 49k-vocabulary models; log-softmax then runs over `LOG_SOFTMAX_ROWS` rows at a time.

Nothing here picks a gradient mode: a trainer calls it with gradients on (the implicit PRM trains through
it), a scorer inside `torch.inference_mode()`. A trainer that runs a frozen reference on the same batch
first should do so under `torch.no_grad()`, not inference mode: the segmented sdpa kernel caches its gather
plan on the batch's `packed_segments`, and a plan built in inference mode cannot be used with gradients.

Reductions take one sequence's per-token log-probs log p_1 .. log p_T and accumulate in float64. A sum of
float32 terms rounds to a grid of about |sum| * 6e-8; a DPO log-ratio is the small difference of two such
sums (two sums near -72 differ in their last float32 bit by 7.6e-6), so float32 accumulation alone made the
same score differ by 1.5e-5 between two batchings of the same sequence.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import torch
from torch import nn

from rewardmodels.collators import pad_sequences
from rewardmodels.modeling import forward_kwargs, unwrap
from rewardmodels.packing import PackUnit
from rewardmodels.packing.collators import units_batch

LOG_SOFTMAX_ROWS = 1024  # rows of (vocab,) float32 log-softmax alive at once: 200 MB at a 49k vocabulary


def pad_id_within_vocab(tokenizer, model: nn.Module) -> int:
    """A pad id for log-prob batches: the tokenizer's pad when the model's embedding table has that row, else
    EOS (else 0). Padding is masked and sits after every real token, so any id inside the vocabulary works,
    and a pad token that `load_tokenizer` added may lie outside it."""
    vocab = model.get_input_embeddings().weight.shape[0]
    pad = tokenizer.pad_token_id
    return pad if pad is not None and pad < vocab else (tokenizer.eos_token_id or 0)


def response_positions(sequence: Sequence[int], response_start: int) -> list[int]:
    """The positions whose logits predict the response tokens response_start .. len - 1: one before each."""
    return list(range(response_start - 1, len(sequence) - 1))


@dataclass
class LogprobBatch:
    """What `token_logprobs` reads, for whole sequences: `counts[i]` targets belong to sequence `slots[i]`,
    in that order (slots are the caller's sequence indices)."""

    inputs: dict
    positions: torch.Tensor
    targets: torch.Tensor
    counts: list[int]
    slots: list[int]

    def to(self, device: torch.device | str) -> LogprobBatch:
        inputs = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in self.inputs.items()}
        positions, targets = self.positions.to(device), self.targets.to(device)
        return replace(self, inputs=inputs, positions=positions, targets=targets)


def _next_tokens(where: int, sequence: Sequence[int], positions: Sequence[int]) -> list[int]:
    bad = [p for p in positions if not 0 <= p < len(sequence) - 1]
    if bad:
        raise ValueError(
            f"sequence {where}: position(s) {bad} predict no token of a {len(sequence)}-token sequence "
            f"(valid: 0 .. {len(sequence) - 2})"
        )
    return [sequence[p + 1] for p in positions]


def padded_batch(
    sequences: Sequence[Sequence[int]], positions: Sequence[Sequence[int]], pad_token_id: int
) -> LogprobBatch:
    """Right-padded rows (`collators.pad_sequences`); `positions[i]` lists the positions in sequence i whose
    logits predict its next token."""
    if len(sequences) != len(positions):
        raise ValueError(f"{len(sequences)} sequences but {len(positions)} position lists")
    input_ids, attention_mask, _ = pad_sequences([list(s) for s in sequences], pad_token_id)
    width = input_ids.shape[1]
    flat, targets = [], []
    for row, (seq, pos) in enumerate(zip(sequences, positions, strict=True)):
        targets += _next_tokens(row, seq, pos)
        flat += [row * width + p for p in pos]
    return LogprobBatch(
        {"input_ids": input_ids, "attention_mask": attention_mask},
        torch.tensor(flat, dtype=torch.long),
        torch.tensor(targets, dtype=torch.long),
        [len(p) for p in positions],
        list(range(len(sequences))),
    )


def packed_batch(
    units: Sequence[PackUnit], pad_token_id: int, attention: str = "segments", token_budget: int | None = None
) -> LogprobBatch:
    """Units packed without padding (`packing.units_batch`): a plain sequence is a unit of one branch, a
    group of responses to one prompt a tree (its common prefix once, then each response). `unit.rewards[b]`
    lists the predicting positions in prefix + branches[b], and `unit.slots[b]` names that sequence.
    `attention` is `packing.packing_attention_for(the model's kernel)`."""
    inputs = units_batch(list(units), pad_token_id, attention, token_budget)
    positions = inputs.pop("reward_positions")  # emitted slot by slot, each slot's positions in given order
    by_slot: dict[int, list[int]] = {}
    for unit in units:
        for branch, pos, slot in zip(unit.branches, unit.rewards, unit.slots, strict=True):
            by_slot[slot] = _next_tokens(slot, unit.prefix + branch, pos)
    slots = sorted(by_slot)
    targets = [t for s in slots for t in by_slot[s]]
    return LogprobBatch(
        inputs, positions, torch.tensor(targets, dtype=torch.long), [len(by_slot[s]) for s in slots], slots
    )


@contextlib.contextmanager
def lm_head_only_at(model: nn.Module, positions: torch.Tensor) -> Iterator[None]:
    """Inside the block, the (possibly wrapped) model's LM head sees only the hidden states at `positions`
    (flat indices into rows * length), so its logits come out as (1, n, vocab)."""
    head = unwrap(model).get_output_embeddings()
    if head is None:
        raise ValueError(f"{type(unwrap(model)).__name__} has no LM head; log-probs need a causal LM")

    def keep_positions(_module, args):
        hidden = args[0]
        return (hidden.reshape(-1, hidden.shape[-1])[positions].unsqueeze(0), *args[1:])

    handle = head.register_forward_pre_hook(keep_positions)
    try:
        yield
    finally:
        handle.remove()


def token_logprobs(
    model: nn.Module, inputs: dict, positions: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """log p(targets[i] | tokens up to positions[i]) = log_softmax(logits at positions[i])[targets[i]], (n,)
    float32, through the model's own forward (so DDP/peft wrappers keep their hooks)."""
    with lm_head_only_at(model, positions):
        logits = model(**forward_kwargs(model, inputs)).logits
    logits = logits.reshape(-1, logits.shape[-1])
    if logits.shape[0] != positions.numel():
        raise RuntimeError(f"the LM head returned {logits.shape[0]} rows for {positions.numel()} positions")
    return TargetLogprobs.apply(logits, targets)


class TargetLogprobs(torch.autograd.Function):
    """(n, vocab) logits z and (n,) targets y -> (n,) float32 log_softmax(z)[y] = (z_y - m) - log sum_v
    exp(z_v - m), m = max_v z_v (log_softmax's own order of operations), `LOG_SOFTMAX_ROWS` rows at a time.

    The backward writes dL/dz = g * (onehot(y) - softmax(z)) into one buffer, chunk by chunk. Autograd's
    log_softmax + gather (and the chunks' slices) zero-filled and re-read (n, vocab) buffers several times
    over: a quarter of a LoRA training step's backward on SmolLM2-135M (docs/implicit_prm.md)."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        out = torch.empty(logits.shape[0], dtype=torch.float32, device=logits.device)
        lse = torch.empty_like(out)
        for lo in range(0, logits.shape[0], LOG_SOFTMAX_ROWS):
            rows = logits[lo : lo + LOG_SOFTMAX_ROWS].float()
            top = rows.amax(-1, keepdim=True)
            log_total = (rows - top).exp_().sum(-1).log_()
            picked = rows.gather(-1, targets[lo : lo + LOG_SOFTMAX_ROWS, None]).squeeze(-1)
            out[lo : lo + LOG_SOFTMAX_ROWS] = (picked - top.squeeze(-1)) - log_total
            lse[lo : lo + LOG_SOFTMAX_ROWS] = top.squeeze(-1) + log_total
        ctx.save_for_backward(logits, targets, lse)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        logits, targets, lse = ctx.saved_tensors
        result = torch.empty_like(logits)
        for lo in range(0, logits.shape[0], LOG_SOFTMAX_ROWS):
            hi = lo + LOG_SOFTMAX_ROWS
            g = grad[lo:hi, None].float()
            rows = (logits[lo:hi].float() - lse[lo:hi, None]).exp_().mul_(-g)
            result[lo:hi] = rows.scatter_add_(-1, targets[lo:hi, None], g)
        return result, None


def response_logprobs(model: nn.Module, batch: LogprobBatch) -> list[torch.Tensor]:
    """Per-token log-probs of each sequence of the batch, in `batch.slots` order."""
    flat = token_logprobs(model, batch.inputs, batch.positions, batch.targets)
    return list(flat.split(batch.counts))


# ---- reductions: pure functions of one sequence's per-token log-probs (float64, differentiable) ---------


def sum_logprobs(logps: torch.Tensor) -> torch.Tensor:
    """S = sum_t log p_t, the log-probability of the whole response (0 for T = 0 tokens)."""
    return logps.sum(dtype=torch.float64)


def mean_logprobs(logps: torch.Tensor) -> torch.Tensor:
    """S / T: the length-normalised log-probability, divided by the number of response tokens T
    (reward-bench's reference-free "avg"); NaN for T = 0."""
    return logps.sum(dtype=torch.float64) / logps.numel()


def mean_probabilities(logps: torch.Tensor) -> torch.Tensor:
    """(1/T) sum_t exp(log p_t): the mean per-token probability (RLPR's reward on a reference answer), which
    a single unlikely token cannot drag towards 0 as it does exp(S / T); NaN for T = 0."""
    return logps.double().exp().sum() / logps.numel()


def neg_l2_norm(logps: torch.Tensor) -> torch.Tensor:
    """-sqrt(sum_t (log p_t)^2): reward-bench's reference-free "norm". Despite the name it is not a length
    normalisation (it grows with T, like -S); `mean_logprobs` is."""
    return -torch.linalg.vector_norm(logps, ord=2, dtype=torch.float64)


# The reference-free reductions by the names reward-bench's DPO script gives them.
REDUCTIONS = {"sum": sum_logprobs, "avg": mean_logprobs, "norm": neg_l2_norm}


def step_sums(logps: torch.Tensor, boundaries: Sequence[int]) -> torch.Tensor:
    """(K,) float64: s_k = sum of log p_t for t in [b_{k-1}, b_k), with b_{-1} = 0; tokens from b_{K-1} on
    (an EOS after the last step) belong to no step. Boundaries index the response tokens, non-decreasing, at
    most T (an empty step sums to 0)."""
    previous = 0
    for k, b in enumerate(boundaries):
        if not previous <= b <= logps.numel():
            raise ValueError(
                f"step boundary {k} is {b}: boundaries must not decrease (previous {previous}) and must be "
                f"at most the {logps.numel()} response tokens"
            )
        previous = b
    running = torch.cat([logps.new_zeros(1, dtype=torch.float64), logps.cumsum(0, dtype=torch.float64)])
    ends = torch.tensor(list(boundaries), dtype=torch.long, device=logps.device)
    starts = torch.cat([ends.new_zeros(1), ends[:-1]])
    return running[ends] - running[starts]
