"""A ProcessBench threshold kept in the scorer's manifest: chosen once out of sample, then used by default.

`rewardmodels eval processbench --scorer DIR --tune-threshold-on S --store-threshold` writes the tuned t into
DIR/reward_model.json (atomically, `rewardmodels.io.write_json`) under `processbench_threshold`:

  value           t: a step scored below t is an error
  tuned_on        the subset S it maximised F1 on, and tuning_f1 / tuning_rows (that in-sample F1 and size)
  step_scores     the step reading it belongs to (a scorer option, else the manifest's, else null: the
                  kind's own default)
  scorer_options  every --scorer-option of the tuning run except `aggregation` (which does not touch step
                  scores): a later run must read the steps with the same options to reuse t
  max_length      the --max-length override of the tuning run (null: the manifest's), which decides which
                  steps are unscored
  rule            how t turns scores into a prediction

No date or commit is written: the record says what t is and what it was chosen on, and nothing that changes
when the same run is repeated. A later run with neither --threshold nor --tune-threshold-on uses the stored t
and reports `threshold_source: "scorer manifest (tuned on S)"`; every subset's F1 is labelled in- or
out-of-sample with respect to S. This is how the authors' ProcessBench script reads an implicit PRM
(PRIME-RL/ImplicitPRM eval/process_eval.sh: a threshold searched on gsm8k, then applied to the other sets).
"""

from __future__ import annotations

from pathlib import Path

from rewardmodels.errors import InputError
from rewardmodels.io import read_json_object, write_json
from rewardmodels.scorers.base import MANIFEST_NAME

FIELD = "processbench_threshold"
DEFAULT_THRESHOLD = 0.5  # when no threshold is given, tuned or stored
RULE = "the first step scored below value is the predicted error; an unscored step reached first is a miss"
SCORE_NEUTRAL_OPTIONS = ("aggregation",)  # scorer options that change score() but never score_steps()


def reading_options(options: dict) -> dict:
    """The scorer options that can change step scores (all but `SCORE_NEUTRAL_OPTIONS`)."""
    return {k: v for k, v in sorted(options.items()) if k not in SCORE_NEUTRAL_OPTIONS}


def stored_threshold(scorer_dir: str | Path) -> dict | None:
    """The `processbench_threshold` record of a scorer directory's manifest, or None."""
    record = read_json_object(Path(scorer_dir) / MANIFEST_NAME).get(FIELD)
    return record if isinstance(record, dict) else None


def threshold_record(results: dict, manifest: dict, options: dict, max_length: int | None) -> dict:
    """The manifest record of a run that tuned its threshold (`results` from `processbench.run`)."""
    tuned_on = results.get("tuned_on")
    if tuned_on is None or results.get("threshold") is None:
        raise InputError(None, None, None, "only a threshold tuned with --tune-threshold-on can be stored")
    return {
        "value": results["threshold"],
        "tuned_on": tuned_on,
        "tuning_f1": results.get("tuning_f1"),
        "tuning_rows": results["subsets"][tuned_on]["n"],
        "step_scores": options.get("step_scores", manifest.get("step_scores")),
        "scorer_options": reading_options(options),
        "max_length": max_length,
        "rule": RULE,
    }


def store_threshold(scorer_dir: str | Path, record: dict) -> Path:
    """Write `record` into the scorer's manifest under `processbench_threshold`, replacing any earlier one;
    the rest of the manifest is kept as it is. Atomic: a reader sees the old manifest or the new one."""
    path = Path(scorer_dir) / MANIFEST_NAME
    manifest = read_json_object(path)
    write_json(path, {**manifest, FIELD: record})
    return path


def resolve_threshold(
    explicit: float | None, tune_on: str | None, record: dict | None, options: dict
) -> tuple[float, str, str | None]:
    """(t, threshold_source, the subset a stored t was tuned on): --threshold wins, then --tune-threshold-on
    (tuned later, by the evaluator), then the stored t, then `DEFAULT_THRESHOLD`. A stored t read with other
    step-score options is refused rather than applied to values it was not chosen for."""
    if explicit is not None:
        return explicit, "fixed", None
    if tune_on is not None or record is None:
        return DEFAULT_THRESHOLD, "fixed", None
    stored_options = record.get("scorer_options") or {}
    if reading_options(options) != stored_options:
        raise InputError(
            None,
            None,
            None,
            f"the scorer manifest's processbench_threshold was tuned with scorer options {stored_options}, "
            f"this run reads steps with {reading_options(options)}: pass --threshold or --tune-threshold-on",
        )
    tuned_on = str(record["tuned_on"])
    return float(record["value"]), f"scorer manifest (tuned on {tuned_on})", tuned_on


def stored_provenance(record: dict, subsets: list[str]) -> dict:
    """results.json fields for a stored threshold: the record itself and each subset's F1 labelled in-sample
    (it is the subset t was tuned on) or out-of-sample."""
    tuned_on = str(record["tuned_on"])
    inside = "in-sample (the stored threshold was tuned on it)"
    outside = f"out-of-sample (threshold from the scorer manifest, tuned on {tuned_on})"
    return {
        "stored_threshold": record,
        "threshold_from": {s: inside if s == tuned_on else outside for s in subsets},
    }


__all__ = [
    "DEFAULT_THRESHOLD",
    "FIELD",
    "reading_options",
    "resolve_threshold",
    "store_threshold",
    "stored_provenance",
    "stored_threshold",
    "threshold_record",
]
