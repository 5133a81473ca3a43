"""rewardmodels.causal.logprobs: reductions by hand; padded = packed = tree per-token log-probs on a tiny Llama."""

from __future__ import annotations

import pytest
import torch

from rewardmodels.causal.logprobs import (
    REDUCTIONS,
    mean_logprobs,
    neg_l2_norm,
    packed_batch,
    padded_batch,
    response_logprobs,
    response_positions,
    step_sums,
    sum_logprobs,
    token_logprobs,
)
from rewardmodels.packing import PackUnit, packing_attention_for

# ---- reductions -------------------------------------------------------------------------------------------


def test_reductions_by_hand():
    logps = torch.tensor([-1.0, -2.0, -2.0])
    assert sum_logprobs(logps).item() == -5.0
    assert mean_logprobs(logps).item() == pytest.approx(-5.0 / 3.0, abs=1e-15)
    assert neg_l2_norm(logps).item() == -3.0  # sqrt(1 + 4 + 4)
    assert {name: f(logps).item() for name, f in REDUCTIONS.items()} == pytest.approx(
        {"sum": -5.0, "avg": -5.0 / 3.0, "norm": -3.0}
    )
    assert sum_logprobs(logps).dtype == torch.float64
    assert sum_logprobs(torch.zeros(0)).item() == 0.0


def test_sums_accumulate_in_float64():
    # float32 addition loses the 1.0 against 1e8 (its spacing there is 8); float64 keeps it
    logps = torch.tensor([1e8, 1.0, -1e8], dtype=torch.float32)
    assert sum_logprobs(logps).item() == 1.0
    assert step_sums(logps, [2, 3]).tolist() == [1e8 + 1.0, -1e8]


def test_step_sums_by_hand():
    logps = torch.tensor([-1.0, -2.0, -3.0, -4.0])
    # steps [0, 1), [1, 1) (empty), [1, 3); token 3 (an EOS after the last step) belongs to no step
    assert step_sums(logps, [1, 1, 3]).tolist() == [-1.0, 0.0, -5.0]
    assert step_sums(logps, [4]).tolist() == [-10.0]
    assert step_sums(logps, []).tolist() == []
    with pytest.raises(ValueError, match="step boundary 1 is 1"):
        step_sums(logps, [2, 1])
    with pytest.raises(ValueError, match="step boundary 0 is 5"):
        step_sums(logps, [5])


def test_reductions_pass_gradients():
    logps = torch.tensor([-1.0, -2.0, -3.0, -4.0], requires_grad=True)
    step_sums(logps, [1, 3]).sum().backward()
    assert logps.grad.tolist() == [1.0, 1.0, 1.0, 0.0]
    logps.grad = None
    neg_l2_norm(logps).backward()  # d/dx -sqrt(sum x^2) = -x / norm
    norm = 30**0.5
    assert logps.grad.tolist() == pytest.approx([1 / norm, 2 / norm, 3 / norm, 4 / norm])


def test_positions_must_predict_a_token():
    assert response_positions([5, 6, 7, 8], 2) == [1, 2]  # tokens 2 and 3 are predicted at 1 and 2
    with pytest.raises(ValueError, match=r"sequence 1: position\(s\) \[2\] predict no token of a 3-token"):
        padded_batch([[1, 2, 3], [1, 2, 3]], [[0], [2]], pad_token_id=0)


# ---- per-token log-probs through a tiny causal LM ---------------------------------------------------------

PREFIX = [4, 90, 88, 268, 204, 77, 78]
# three continuations of one prompt; the third response starts inside the shared prefix
SEQUENCES = [PREFIX + [12, 13, 14, 15], PREFIX + [40, 41], PREFIX + [12, 99, 98, 97, 96]]
STARTS = [7, 7, 5]


def tiny_causal_lm(attn: str):
    from transformers import AutoModelForCausalLM

    from tests.tiny import tiny_config

    torch.manual_seed(0)
    config = tiny_config("llama", vocab_size=400, pad_token_id=1)
    return AutoModelForCausalLM.from_config(config, attn_implementation=attn).eval()


def direct_logprobs(model, seq: list[int], start: int) -> torch.Tensor:
    """log_softmax(model(ids).logits) gathered at the next tokens: one sequence, no batching."""
    ids = torch.tensor([seq])
    logp = model(ids).logits[0, :-1].log_softmax(-1).gather(-1, ids[0, 1:, None]).squeeze(-1)
    return logp[start - 1 :]


def batches(attention: str) -> dict:
    positions = [response_positions(s, st) for s, st in zip(SEQUENCES, STARTS, strict=True)]
    plain = [PackUnit([], [s], [p], [i]) for i, (s, p) in enumerate(zip(SEQUENCES, positions, strict=True))]
    n = len(PREFIX) - 1  # the group's shared token prefix, leaving each branch a token of its own
    tree = PackUnit(SEQUENCES[0][:n], [s[n:] for s in SEQUENCES], positions, [0, 1, 2])
    return {
        "padded": padded_batch(SEQUENCES, positions, pad_token_id=1),
        "packed": packed_batch(plain, pad_token_id=1, attention=attention),
        "tree": packed_batch([tree], pad_token_id=1, attention=attention),
    }


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_padded_packed_and_tree_equal_a_direct_log_softmax(attn):
    model = tiny_causal_lm(attn)
    with torch.inference_mode():
        want = [direct_logprobs(model, s, st) for s, st in zip(SEQUENCES, STARTS, strict=True)]
        for name, batch in batches(packing_attention_for(attn)).items():
            got = response_logprobs(model, batch)
            assert batch.slots == [0, 1, 2], name
            assert [len(g) for g in got] == [4, 2, 7], name  # len - start tokens each
            for g, w in zip(got, want, strict=True):
                assert g.dtype == torch.float32
                torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5, msg=name)
    assert len({round(float(v), 3) for w in want for v in w}) > 8  # varied values, not a constant


def test_the_lm_head_runs_only_where_a_response_token_is_predicted():
    model = tiny_causal_lm("sdpa")
    rows = []
    handle = model.lm_head.register_forward_hook(lambda _m, _i, out: rows.append(out.shape))
    with torch.inference_mode():
        for batch in batches("segments").values():
            response_logprobs(model, batch)
    handle.remove()
    assert rows == [torch.Size([1, 13, 400])] * 3  # 4 + 2 + 7 predicted tokens, never the prompt


def test_training_path_passes_gradients_and_a_step_raises_the_log_probs():
    model = tiny_causal_lm("sdpa").train()
    with torch.inference_mode():  # a batch of its own: the segmented kernel caches its plan on the batch
        scored = batches("segments")["tree"]
        before = token_logprobs(model, scored.inputs, scored.positions, scored.targets)
    batch = batches("segments")["tree"]
    logps = token_logprobs(model, batch.inputs, batch.positions, batch.targets)
    torch.testing.assert_close(logps.detach(), before)  # grad mode and inference mode agree
    loss = -sum(sum_logprobs(lp) for lp in logps.split(batch.counts))
    loss.backward()
    for name in ("lm_head.weight", "model.layers.0.self_attn.q_proj.weight", "model.embed_tokens.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    torch.optim.SGD(model.parameters(), lr=0.05).step()
    with torch.inference_mode():
        after = token_logprobs(model, batch.inputs, batch.positions, batch.targets)
    assert after.sum() > before.sum() + 0.1
