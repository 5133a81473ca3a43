"""A minimal PRIME-style RL loop: GRPO-shaped policy updates from outcome rewards plus implicit process
rewards, with the implicit PRM itself updated online on the same rollouts.

    python recipes/rl/prime_loop.py --policy smollm2-135m --prm outputs/implicit_prm/scorer \
        --problems synthetic:8 --iterations 2 --samples 4 --max-new-tokens 64 --output outputs/rl/prime

Each iteration k, for every problem x with gold answer a:

  1. rollouts y_1..y_n from the current policy, through `rewardmodels.sampling` (HFGenerator + Sampler); the
     generator's fingerprint names the iteration, so no sample of an older policy is read from the cache
  2. outcome rewards o_i = 1 if `answers.is_correct(y_i, a)` else 0
  3. implicit process rewards w_{i,t} (one per response token) and the PRM's CE update on (y_i, o_i):
     `implicit_prm.online.update_on_rollouts`, which returns w from *before* its update, as PRIME does
  4. advantages, within each problem's group of n rollouts (`advantages`):
       A^o_i     = (o_i - mean_j o_j) / (std_j o_j + eps)      GRPO's outcome advantage (0 when all agree)
       G_{i,t}   = sum_{s >= t} w_{i,s}                          return-to-go of the process rewards
       A_{i,t}   = A^o_i + G_{i,t} - (1/n) sum_j G_{j,0}         the group's mean implicit return as baseline
  5. one policy-gradient step on L = -(1/N) sum_i (1/|y_i|) sum_t A_{i,t} log pi(y_{i,t} | x, y_{i,<t})

Simplified on purpose (no PPO ratio clipping, no KL term, one step per iteration): it shows where each piece
of this package goes in an online loop, not a tuned trainer. The policy and the PRM must share a vocabulary
(PRIME starts the PRM from the policy): both read the PRM's encoding of each rollout, so w_{i,t} and
log pi(y_{i,t}) are about the same tokens.
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
from rewardmodels.implicit_prm.online import update_on_rollouts  # noqa: E402
from rewardmodels.logprobs import padded_batch, response_logprobs, response_positions  # noqa: E402
from rewardmodels.sampling import HFGenerator, SampleCache, Sampler, SamplingParams, math_prompt  # noqa: E402

EPS = 1e-6


def outcome_advantages(outcomes: list[float]) -> list[float]:
    """(o_i - mean) / (std + eps) over one group (population std); all 0 when the group agrees."""
    n = len(outcomes)
    mean = sum(outcomes) / n
    std = (sum((o - mean) ** 2 for o in outcomes) / n) ** 0.5
    return [(o - mean) / (std + EPS) for o in outcomes]


def returns_to_go(w: torch.Tensor) -> torch.Tensor:
    """G_t = sum_{s >= t} w_s."""
    return w.flip(0).cumsum(0).flip(0)


def advantages(outcomes: list[float], token_rewards: list[torch.Tensor], group_size: int) -> list[torch.Tensor]:
    """A_{i,t} per rollout (module docstring, step 4); rollouts come in consecutive groups of `group_size`."""
    if len(outcomes) != len(token_rewards) or len(outcomes) % group_size:
        raise ValueError(f"{len(outcomes)} outcomes, {len(token_rewards)} reward lists, groups of {group_size}")
    out = []
    for start in range(0, len(outcomes), group_size):
        group = range(start, start + group_size)
        a_outcome = outcome_advantages([outcomes[i] for i in group])
        returns = [returns_to_go(token_rewards[i].double()) for i in group]
        baseline = sum(float(g[0]) if g.numel() else 0.0 for g in returns) / group_size
        out += [a + g - baseline for a, g in zip(a_outcome, returns, strict=True)]
    return out


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
            raise ValueError(f"{lp.numel()} log-probs but {adv.numel()} advantages: policy and PRM tokenize apart")
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


def iteration(loop: Loop, k: int, problems: list[tuple[str, str]], samples: int) -> dict:
    """One PRIME iteration over `problems` ((problem, gold answer)); returns its figures."""
    generator = HFGenerator(loop.policy, loop.tokenizer, f"{loop.name}@iteration{k}", batch_size=16)
    sampler = Sampler(generator, loop.cache, loop.params)
    prompts = [math_prompt(problem, [], loop.params.instruction) for problem, _ in problems]
    groups = sampler.complete_many([(p, samples) for p in prompts])
    rollouts = [(p, y) for p, group in zip(prompts, groups, strict=True) for y in group]
    outcomes = [float(is_correct(y, gold)) for (_, gold), group in zip(problems, groups, strict=True)
                for y in group]  # fmt: skip
    token_rewards = update_on_rollouts(loop.prm, rollouts, outcomes)  # w before the PRM's update
    adv = advantages(outcomes, token_rewards, samples)
    encoded = loop.prm.encode([p for p, _ in rollouts], [y for _, y in rollouts])
    loss = policy_step(loop.policy, loop.optimizer, encoded, adv, loop.prm.pad_id, loop.prm.device)
    return {
        "iteration": k,
        "rollouts": len(rollouts),
        "outcome_mean": sum(outcomes) / len(outcomes),
        "implicit_return_mean": sum(float(w.sum()) for w in token_rewards) / len(token_rewards),
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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", required=True, help="Causal LM to train (path, Hub id or the embedded alias).")
    parser.add_argument("--prm", required=True, help="Implicit-PRM scorer directory (`rewardmodels export`).")
    parser.add_argument("--problems", default="synthetic:8", help="synthetic:N, or a JSONL of {problem, answer}.")
    parser.add_argument("--iterations", type=int, default=2, help="RL iterations.")
    parser.add_argument("--samples", type=int, default=4, help="Rollouts per problem (the GRPO group).")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="Longest rollout.")
    parser.add_argument("--temperature", type=float, default=1.0, help="Sampling temperature.")
    parser.add_argument("--learning-rate", type=float, default=1e-6, help="Policy learning rate.")
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
                name=str(args.policy))  # fmt: skip
    figures = []
    for k in range(args.iterations):
        figures.append(iteration(loop, k, problems, args.samples))
        print(json.dumps(figures[-1]), flush=True)
    (out / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
