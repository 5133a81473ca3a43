"""The measurements of `benchmarks/method_works.py`: held-out figures read from scorers with the project's own
metrics, and the untrained models read the same way. No training happens here.

  pair accuracy         share of pairs with s(chosen) > s(rejected), strictly (a tie is wrong), as BTTrainer's
                        `accuracy` counts it; scores through `scorers.groups.score_response_groups`
  length rule           the same share with s = the response's length in characters, longer better
                        (`scorers.baselines.LengthBaseline` ranks the other way round, so its scores are negated)
  first-error F1        ProcessBench's: prediction = the first step scored below t (`predict_from_scores`),
                        acc_erroneous and acc_correct per `subset_metrics`, F1 their harmonic mean; pooled over
                        every held-out solution. Reported here in percent, as ProcessBench reports it
  tuned threshold       `processbench_metrics.tune_threshold` on a separate split, applied unchanged to the test
  outcome accuracy      share of solutions with (score > t) == label; t = 0 for an implicit PRM (sigmoid(r) >
                        0.5, as ImplicitPRMTrainer's `accuracy`), else the accuracy-best t on a tuning split
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from rewardmodels.eval.processbench_metrics import predict_from_scores, subset_metrics, tune_threshold
from rewardmodels.eval.step_baselines import gold_first_errors
from rewardmodels.scorers.baselines import LengthBaseline
from rewardmodels.scorers.groups import score_response_groups


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


# ---- pairs ------------------------------------------------------------------------------------------------


def pair_scores(scorer, rows: Sequence[dict], batch_size: int = 16) -> list[tuple[float, float]]:
    """(s_chosen, s_rejected) per preference row."""
    groups = [[r["chosen"], r["rejected"]] for r in rows]
    scored = score_response_groups(scorer, [r["prompt"] for r in rows], groups, batch_size)
    return [(c, r) for c, r in scored]


def pair_accuracy(scores: Sequence[tuple[float, float]]) -> float:
    """Share of pairs with s_chosen > s_rejected (NaN or a tie is wrong)."""
    return mean([float(c > r) for c, r in scores])


def length_rule_accuracy(rows: Sequence[dict]) -> float:
    """Pair accuracy of "the longer response is better" (ties wrong)."""
    return pair_accuracy([(-c, -r) for c, r in pair_scores(LengthBaseline(), rows)])


# ---- first errors ----------------------------------------------------------------------------------------


def percent(x: float | None) -> float:
    return math.nan if x is None else 100.0 * x


def first_error_metrics(predictions: Sequence[int], labels: Sequence[int]) -> dict:
    """`subset_metrics` with the accuracies and F1 in percent, plus the exact-match share over all rows."""
    m = subset_metrics(list(labels), list(predictions))
    exact = mean([float(p == y) for p, y in zip(predictions, labels, strict=True)])
    return {
        "n": m["n"],
        "n_erroneous": m["n_erroneous"],
        "n_correct": m["n_correct"],
        "acc_erroneous": percent(m["acc_erroneous"]),
        "acc_correct": percent(m["acc_correct"]),
        "f1": percent(m["f1"]),
        "first_error_accuracy": exact,
    }


def f1_at(step_scores: Sequence[Sequence[float]], labels: Sequence[int], threshold: float) -> dict:
    """First-error metrics of step scores at a fixed threshold."""
    predictions = [predict_from_scores(s, threshold) for s in step_scores]
    return {"threshold": threshold, **first_error_metrics(predictions, labels)}


def f1_tuned(
    tune_scores: Sequence[Sequence[float]],
    tune_labels: Sequence[int],
    test_scores: Sequence[Sequence[float]],
    test_labels: Sequence[int],
) -> dict:
    """Test metrics at the threshold that maximises F1 on the tuning split (out of sample for the test)."""
    threshold, tuning_f1 = tune_threshold(list(tune_scores), list(tune_labels))
    return {**f1_at(test_scores, test_labels, threshold), "tuning_f1": percent(tuning_f1)}


# ---- outcomes --------------------------------------------------------------------------------------------


def outcome_accuracy(scores: Sequence[float], labels: Sequence[bool], threshold: float = 0.0) -> float:
    """Share of solutions with (score > threshold) == label; a NaN score is wrong."""
    return mean(
        [float(not math.isnan(s) and (s > threshold) == bool(y)) for s, y in zip(scores, labels, strict=True)]
    )


def accuracy_threshold(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """The t with the best `outcome_accuracy` on these scores (ties: the smallest t): candidates are the
    midpoints between neighbouring distinct scores and one below the lowest."""
    values = sorted({s for s in scores if not math.isnan(s)})
    if not values:
        return 0.0
    candidates = [values[0] - 1.0] + [(a + b) / 2 for a, b in zip(values, values[1:], strict=False)]
    return max(candidates, key=lambda t: (outcome_accuracy(scores, labels, t), -t))


def implicit_readings(scorer, rows: Sequence[dict], batch_size: int = 8, check: int = 8) -> tuple[dict, dict]:
    """An implicit-PRM scorer's readings of stepwise rows, from one pass of per-token rewards w_t
    (`token_rewards_ids`) over each solution encoded as `score` encodes it (steps joined and split at the
    scorer's step_separator):

      outcome    r(y) = q_T = sum_t w_t (`score` with aggregation last; its sign is the trainer's prediction)
      reward     r_k = the sum of w_t over step k (`implicit_rewards.step_rewards`)
      sigmoid_q  sigmoid(r_1 + ... + r_k) (`score_steps` with step_scores sigmoid_q)

    The first `check` rows are also read through `score` and `score_steps` (with the scorer's own
    step_scores), and the largest difference is returned: one pass instead of three must change no figure
    (more than 1e-4 is an error)."""
    import torch

    from rewardmodels.causal.implicit_rewards import step_rewards

    prompts, steps = [r["prompt"] for r in rows], [list(r["completions"]) for r in rows]
    texts = [scorer.step_separator.join(s) for s in steps]
    encoded = scorer.encode(prompts, texts)
    readings: dict[str, list] = {"outcome": [], "reward": [], "sigmoid_q": []}
    for e, w, s in zip(encoded, scorer.token_rewards_ids(encoded, batch_size), steps, strict=True):
        if len(e.step_boundaries) != len(s):
            raise ValueError(f"{len(s)} steps, but the scorer found {len(e.step_boundaries)} in their text")
        r = step_rewards(w, e.step_boundaries)
        readings["outcome"].append(float(w.sum()))
        readings["reward"].append([float(v) for v in r])
        readings["sigmoid_q"].append([float(v) for v in torch.sigmoid(r.cumsum(0))])
    k = min(check, len(rows))
    direct_steps = scorer.score_steps(prompts[:k], steps[:k], batch_size) if k else []
    direct_outcome = scorer.score(prompts[:k], texts[:k], batch_size) if k else []
    own = readings[scorer.step_scores]
    diff = max(
        [abs(a - b) for x, y in zip(direct_steps, own, strict=False) for a, b in zip(x, y, strict=True)]
        + [abs(a - b) for a, b in zip(direct_outcome, readings["outcome"], strict=False)],
        default=0.0,
    )
    if not diff <= 1e-4:  # float32 log-probs move by ~1e-6 with the batch a sequence is padded into
        raise RuntimeError(f"one-pass implicit rewards differ from score/score_steps by {diff}")
    return readings, {
        "rows_checked": k,
        "step_scores_checked": scorer.step_scores,
        "max_abs_difference": diff,
    }


def majority_rate(labels: Sequence[bool]) -> float:
    """The accuracy of always predicting the more common label."""
    share = mean([float(bool(y)) for y in labels])
    return max(share, 1.0 - share)


# ---- the untrained models, read the same way -------------------------------------------------------------


def untrained_head_scorer(scorer_dir: str | Path, manifest: dict, seed: int):
    """A BT or PRM scorer over the base model with a fresh head (initialised under `seed`, as the training
    run's was), and the exported directory's tokenizer (so an added step separator has a row, also fresh)."""
    from transformers import set_seed

    from rewardmodels.modeling import load_backbone, load_tokenizer, pick_device
    from rewardmodels.scorers import scorer_class

    tokenizer = load_tokenizer(str(scorer_dir))
    set_seed(seed)
    device = pick_device(None)
    head = manifest.get("head", "seq_cls")
    model = load_backbone(
        manifest["base_model"], head, num_labels=int(manifest.get("num_labels", 1)), device=device,
        tokenizer=tokenizer,
    )  # fmt: skip
    return scorer_class(manifest["kind"])(model.eval().requires_grad_(False), tokenizer, manifest, device)


def reference_free_base_scorer(manifest: dict):
    """The untrained base as an implicit PRM without a reference: w_t = beta * log pi_base(y_t | y_<t), so a
    step's score is beta times its summed log-prob (`ImplicitPRMScorer` with reference None)."""
    from rewardmodels.scorers.base import load_for_scoring
    from rewardmodels.scorers.implicit_prm import ImplicitPRMScorer

    policy, tokenizer, device = load_for_scoring(manifest["base_model"], "causal_lm")
    return ImplicitPRMScorer(
        policy, None, tokenizer, device, beta=manifest.get("beta", 0.05), aggregation="last",
        step_separator=manifest.get("step_separator", "\n\n"), max_length=manifest.get("max_length") or 4096,
        use_chat_template=manifest.get("use_chat_template"), manifest={**manifest, "ref_free": True},
    )  # fmt: skip


def untrained_verifier(manifest: dict, cache: str, **settings):
    """The untrained base as a generative verifier with the trained one's format and scoring settings."""
    from rewardmodels.modeling import resolve_model_path
    from rewardmodels.sampling import HFGenerator, generator_fingerprint
    from rewardmodels.scorers.base import load_for_scoring
    from rewardmodels.scorers.generative import GenerativeScorer
    from rewardmodels.scorers.verifier_chains import ScalingSettings
    from rewardmodels.verification import VerificationFormat

    base = manifest["base_model"]
    model, tokenizer, device = load_for_scoring(base, "causal_lm")
    generator = HFGenerator(model, tokenizer, generator_fingerprint(base, resolve_model_path(base)))
    fmt = VerificationFormat.from_dict(manifest["verification_format"])
    verifier = manifest.get("verifier", {})
    scaling = ScalingSettings(
        **{k: v for k, v in {**verifier, **settings}.items() if k in ScalingSettings.__dataclass_fields__}
    )
    return GenerativeScorer(
        generator, tokenizer, fmt, scaling, manifest, device=device, max_length=manifest.get("max_length", 4096),
        decision_choices=verifier.get("decision_choices", "both"), sample_cache=cache,
    )  # fmt: skip


# ---- generative verifiers --------------------------------------------------------------------------------


def verdict_accuracy(p_yes: Sequence[float], labels: Sequence[int]) -> float:
    """Share of solutions with P(yes) >= 0.5 exactly when they have no wrong step (label -1); NaN is wrong."""
    return mean(
        [float(not math.isnan(p) and (p >= 0.5) == (y == -1)) for p, y in zip(p_yes, labels, strict=True)]
    )


def verifier_figures(scorer, rows: Sequence[dict], batch_size: int = 16) -> dict:
    """Verdict accuracy and first-error metrics of `predict_first_error` over stepwise rows, what the chains
    cost, and each row's P(yes) and predicted index."""
    prompts, steps = [r["prompt"] for r in rows], [r["completions"] for r in rows]
    labels = gold_first_errors(rows)
    p_yes = scorer.score_solutions(prompts, steps, batch_size)
    compute = scorer.compute_report()  # before predict_first_error counts the same chains a second time
    predictions = scorer.predict_first_error(prompts, steps, batch_size)  # the same chains, from the cache
    return {
        "verdict_accuracy": verdict_accuracy(p_yes, labels),
        "mean_p_yes_correct": mean([p for p, y in zip(p_yes, labels, strict=True) if y == -1]),
        "mean_p_yes_erroneous": mean([p for p, y in zip(p_yes, labels, strict=True) if y != -1]),
        **first_error_metrics(predictions, labels),
        "compute": compute,
        "p_yes": list(p_yes),
        "predictions": list(predictions),
    }
