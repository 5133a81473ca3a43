"""A minimal PRIME-style RL loop: policy-gradient updates from outcome rewards plus implicit process
rewards, with the implicit PRM itself updated online on the same rollouts.

    python recipes/rl/prime_loop.py --policy smollm2-135m --prm outputs/implicit_prm/scorer \
        --problems synthetic:8 --iterations 2 --samples 4 --max-new-tokens 64 --output outputs/rl/prime

Each iteration k, for every problem x with gold answer a:

  1. rollouts y_1..y_n from the current policy, through `rewardmodels.sampling` (HFGenerator + Sampler); the
     generator's fingerprint names the iteration, so no sample of an older policy is read from the cache
  2. outcome rewards o_i = 1 if `answers.is_correct(y_i, a)` else 0
  3. process rewards s_{i,t} (one per response token) and the PRM's CE update on (y_i, o_i):
     `implicit_prm.online.update_on_rollouts`, which returns s from *before* its update, as PRIME's
     single-forward recipe does: by default the raw log-ratio, divided by the batch's largest absolute
     return-to-go, times PRIME's reward coefficient 5 (`--reward-norm`, `--reward-coef`), the PRM's gradient
     clipped at 10 (`--prm-grad-clip`)
  4. advantages, within each problem's group of n rollouts (`--advantage`):
       prime (default; PRIME's RLOO, `prime_advantages`):
         P_{i,t} = s_{i,t} * n/(n-1) - (1/(n-1)) sum_j mean_u s_{j,u}      leave-one-out process rewards
         O_i     = c_o * (o_i * n/(n-1) - (1/(n-1)) sum_j o_j)              at y_i's last token, c_o = 5
         G_{i,t} = sum_{u >= t} (P_{i,u} + O_i [u = T_i])                    return-to-go
         A_{i,t} = (G_{i,t} - mean G) / sqrt(var G + 1e-8)                  whitened over the batch's tokens
       grpo (this loop's earlier estimator, `advantages`):
         A_{i,t} = (o_i - mean_j o_j) / (std_j o_j + eps) + G_{i,t} - (1/n) sum_j G_{j,0},  G = sum_{u>=t} s
  5. one policy-gradient step on L = -(1/N) sum_i (1/|y_i|) sum_t A_{i,t} log pi(y_{i,t} | x, y_{i,<t})

PRIME's settings this follows (its recipe training/examples/run_prime_main.sh and verl's PRIME recipe, read
in stored copies; docs/rl.md): rm_coef and the outcome coefficient 5, prime_norm batch_norm, token
granularity, RLOO with whitening, KL coefficient 0, rollout temperature 1, n = 4, policy lr 5e-7. Simplified
on purpose (no PPO ratio clipping, no accuracy filter of the prompts, one step per iteration): it shows where
each piece of this package goes in an online loop, not a tuned trainer. The policy and the PRM must share a
vocabulary (PRIME starts the PRM from the policy): both read the PRM's encoding of each rollout, so s_{i,t}
and log pi(y_{i,t}) are about the same tokens.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from rewardmodels.answers import is_correct  # noqa: E402
from rewardmodels.causal.logprobs import padded_batch, response_logprobs, response_positions  # noqa: E402
from rewardmodels.implicit_prm.online import (  # noqa: E402
    PRIME_GRAD_CLIP,
    PRIME_REWARD_COEF,
    REWARD_NORMS,
    update_on_rollouts,
)
from rewardmodels.sampling import HFGenerator, SampleCache, Sampler, SamplingParams, math_prompt  # noqa: E402

EPS = 1e-6
PRIME_OUTCOME_COEF = 5.0  # PRIME's verifier reward_coef / verl's reward_gt_coef
WHITEN_EPS = 1e-8  # verl's masked_whiten
ADVANTAGES = ("prime", "grpo")


def outcome_advantages(outcomes: list[float]) -> list[float]:
    """(o_i - mean) / (std + eps) over one group (population std); all 0 when the group agrees."""
    n = len(outcomes)
    mean = sum(outcomes) / n
    std = (sum((o - mean) ** 2 for o in outcomes) / n) ** 0.5
    return [(o - mean) / (std + EPS) for o in outcomes]


def returns_to_go(w: torch.Tensor) -> torch.Tensor:
    """G_t = sum_{s >= t} w_s."""
    return w.flip(0).cumsum(0).flip(0)


def advantages(
    outcomes: list[float], token_rewards: list[torch.Tensor], group_size: int
) -> list[torch.Tensor]:
    """A_{i,t} per rollout (module docstring, step 4); rollouts come in consecutive groups of `group_size`."""
    if len(outcomes) != len(token_rewards) or len(outcomes) % group_size:
        raise ValueError(
            f"{len(outcomes)} outcomes, {len(token_rewards)} reward lists, groups of {group_size}"
        )
    out = []
    for start in range(0, len(outcomes), group_size):
        group = range(start, start + group_size)
        a_outcome = outcome_advantages([outcomes[i] for i in group])
        returns = [returns_to_go(token_rewards[i].double()) for i in group]
        baseline = sum(float(g[0]) if g.numel() else 0.0 for g in returns) / group_size
        out += [a + g - baseline for a, g in zip(a_outcome, returns, strict=True)]
    return out


def leave_one_out(values: list[torch.Tensor], group_size: int) -> list[torch.Tensor]:
    """PRIME's RLOO over consecutive groups of `group_size`: each value v of rollout i becomes
    v * n/(n-1) - (1/(n-1)) sum_j mean(values_j); an empty rollout adds 0 to the sum."""
    if group_size < 2 or len(values) % group_size:
        raise ValueError(f"{len(values)} rollouts in groups of {group_size}: RLOO needs groups of 2 or more")
    n, out = group_size, []
    for start in range(0, len(values), n):
        group = values[start : start + n]
        baseline = sum(float(v.mean()) for v in group if v.numel()) / (n - 1)
        out += [v * (n / (n - 1)) - baseline for v in group]
    return out


def whiten(values: list[torch.Tensor]) -> list[torch.Tensor]:
    """(x - mean) / sqrt(var + 1e-8) over every token of the batch, var with Bessel's correction (verl's
    masked_whiten); a batch of one token is only centred."""
    flat = torch.cat(values)
    mean = flat.mean()
    var = flat.var(unbiased=True) if flat.numel() > 1 else torch.zeros((), dtype=flat.dtype)
    return [(v - mean) * torch.rsqrt(var + WHITEN_EPS) for v in values]


def prime_advantages(
    outcomes: list[float],
    process_rewards: list[torch.Tensor],
    group_size: int,
    outcome_coef: float = PRIME_OUTCOME_COEF,
) -> list[torch.Tensor]:
    """A_{i,t} by PRIME's RLOO (module docstring, step 4, prime): process and outcome rewards each
    leave-one-out within their group, the outcome scaled by `outcome_coef` on the last token, summed into
    returns-to-go and whitened over the batch."""
    if len(outcomes) != len(process_rewards):
        raise ValueError(f"{len(outcomes)} outcomes but {len(process_rewards)} reward lists")
    process = leave_one_out([s.double() for s in process_rewards], group_size)
    outcome = leave_one_out([torch.tensor([o], dtype=torch.float64) for o in outcomes], group_size)
    returns = []
    for p, o in zip(process, outcome, strict=True):
        rewards = p.clone()
        if rewards.numel():
            rewards[-1] += outcome_coef * float(o[0])
        returns.append(returns_to_go(rewards))
    return whiten(returns) if any(r.numel() for r in returns) else returns


def policy_step(policy, optimizer, encoded, token_advantages, pad_id: int, device) -> float:
    """One step on L = -(1/N) sum_i mean_t A_{i,t} log pi(y_{i,t}); returns L."""
    positions = [response_positions(s, s.response_start) for s in encoded]
    batch = padded_batch(encoded, positions, pad_id).to(device)
    policy.train()
    optimizer.zero_grad()
    logps = response_logprobs(policy, batch)
    terms = []
    for lp, adv in zip(logps, token_advantages, strict=True):
        if lp.numel() != adv.numel():
            raise ValueError(
                f"{lp.numel()} log-probs but {adv.numel()} advantages: policy and PRM tokenize apart"
            )
        terms.append((adv.to(lp.device, lp.dtype) * lp).mean())
    loss = -torch.stack(terms).mean()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    policy.eval()
    return float(loss.detach())


@dataclass
class Loop:
    """What persists across iterations."""

    policy: torch.nn.Module
    tokenizer: object
    prm: object  # an ImplicitPRMScorer
    optimizer: torch.optim.Optimizer
    cache: SampleCache
    params: SamplingParams
    name: str = "policy"
    advantage: str = "prime"  # ADVANTAGES
    reward_norm: str = "batch_norm"  # online.REWARD_NORMS
    reward_coef: float = PRIME_REWARD_COEF
    outcome_coef: float = PRIME_OUTCOME_COEF
    prm_grad_clip: float | None = PRIME_GRAD_CLIP


def iteration(loop: Loop, k: int, problems: list[tuple[str, str]], samples: int) -> dict:
    """One PRIME iteration over `problems` ((problem, gold answer)); returns its figures."""
    generator = HFGenerator(loop.policy, loop.tokenizer, f"{loop.name}@iteration{k}", batch_size=16)
    sampler = Sampler(generator, loop.cache, loop.params)
    prompts = [math_prompt(problem, [], loop.params.instruction) for problem, _ in problems]
    groups = sampler.complete_many([(p, samples) for p in prompts])
    rollouts = [(p, y) for p, group in zip(prompts, groups, strict=True) for y in group]
    outcomes = [float(is_correct(y, gold)) for (_, gold), group in zip(problems, groups, strict=True)
                for y in group]  # fmt: skip
    token_rewards = update_on_rollouts(  # s before the PRM's update
        loop.prm,
        rollouts,
        outcomes,
        reward_norm=loop.reward_norm,
        reward_coef=loop.reward_coef,
        grad_clip=loop.prm_grad_clip,
    )
    if loop.advantage == "prime":
        adv = prime_advantages(outcomes, token_rewards, samples, loop.outcome_coef)
    else:
        adv = advantages(outcomes, token_rewards, samples)
    encoded = loop.prm.encode([p for p, _ in rollouts], [y for _, y in rollouts])
    loss = policy_step(loop.policy, loop.optimizer, encoded, adv, loop.prm.pad_id, loop.prm.device)
    return {
        "iteration": k,
        "rollouts": len(rollouts),
        "outcome_mean": sum(outcomes) / len(outcomes),
        "implicit_return_mean": sum(float(w.sum()) for w in token_rewards) / len(token_rewards),  # of s
        "policy_loss": loss,
    }


def synthetic_problems(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """n arithmetic problems of the synthetic task with their answers."""
    import random

    from rewardmodels.data_builders.synthetic import make_problem

    rng = random.Random(f"prime-{seed}")
    problems = [make_problem(rng) for _ in range(n)]
    return [(p.question, str(p.steps()[1])) for p in problems]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--policy", required=True, help="Causal LM to train (path, Hub id or the embedded alias)."
    )
    parser.add_argument("--prm", required=True, help="Implicit-PRM scorer directory (`rewardmodels export`).")
    parser.add_argument(
        "--problems", default="synthetic:8", help="synthetic:N, or a JSONL of {problem, answer}."
    )
    parser.add_argument("--iterations", type=int, default=2, help="RL iterations.")
    parser.add_argument("--samples", type=int, default=4, help="Rollouts per problem (the GRPO group).")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="Longest rollout.")
    parser.add_argument("--temperature", type=float, default=1.0, help="Sampling temperature.")
    parser.add_argument("--learning-rate", type=float, default=5e-7, help="Policy learning rate (PRIME's).")
    parser.add_argument(
        "--advantage", choices=ADVANTAGES, default="prime", help="PRIME's RLOO, or GRPO-shaped."
    )
    parser.add_argument(
        "--reward-norm",
        choices=REWARD_NORMS,
        default="batch_norm",
        help="Process rewards divided by the batch's largest |return| (PRIME), or beta-scaled.",
    )
    parser.add_argument(
        "--reward-coef", type=float, default=PRIME_REWARD_COEF, help="Process-reward coefficient."
    )
    parser.add_argument(
        "--outcome-coef",
        type=float,
        default=PRIME_OUTCOME_COEF,
        help="Outcome-reward coefficient (--advantage prime).",
    )
    parser.add_argument(
        "--prm-grad-clip",
        type=float,
        default=PRIME_GRAD_CLIP,
        help="Clip the PRM's gradient norm at this (0: no clipping).",
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, ...")
    parser.add_argument("--output", required=True, help="Folder for the sample cache and the figures.")
    args = parser.parse_args(argv)

    from transformers import AutoTokenizer

    from rewardmodels.modeling import load_backbone, pick_device, resolve_model_path
    from rewardmodels.scorers import load_scorer

    if args.problems.startswith("synthetic:"):
        problems = synthetic_problems(int(args.problems.split(":", 1)[1]))
    else:
        rows = [json.loads(line) for line in Path(args.problems).read_text().splitlines() if line.strip()]
        problems = [(r["problem"], str(r["answer"])) for r in rows]
    device = pick_device(args.device)
    path = resolve_model_path(args.policy)
    tokenizer = AutoTokenizer.from_pretrained(path)
    policy = load_backbone(path, "causal_lm", dtype="float32", device=device).eval()
    prm = load_scorer(args.prm, device=str(device))
    if prm.tokenizer.get_vocab() != tokenizer.get_vocab():
        parser.error("the policy and the PRM use different vocabularies; start the PRM from the policy")
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    loop = Loop(policy, tokenizer, prm, torch.optim.AdamW(policy.parameters(), lr=args.learning_rate),
                SampleCache(out / "samples.sqlite"),
                SamplingParams(max_new_tokens=args.max_new_tokens, temperature=args.temperature),
                name=str(args.policy), advantage=args.advantage, reward_norm=args.reward_norm,
                reward_coef=args.reward_coef, outcome_coef=args.outcome_coef,
                prm_grad_clip=args.prm_grad_clip or None)  # fmt: skip
    figures = []
    for k in range(args.iterations):
        figures.append(iteration(loop, k, problems, args.samples))
        print(json.dumps(figures[-1]), flush=True)
    (out / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
