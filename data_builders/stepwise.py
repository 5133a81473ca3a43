"""Stepwise builders: raw process-supervision sources -> canonical stepwise rows.

Every builder returns `(rows, skipped)`: rows with `prompt`, `completions` (the steps) and `labels` (one per
step: bool, a float in [0, 1], or None for a step kept as context but not trained on), plus an `id`; and a
Counter of what was skipped and why. The builders are plain functions with keyword options, so the build CLI
and the data specs of a recipe call the same code:

  prm800k:PATH[?neutral=negative,alternatives=false]   official PRM800K .jsonl (phase 1 or 2)
  prm800k_stepwise:PATH[?...same options]              PRM800K "stepwise-critic" parquet, one rated step a row
  math_shepherd:PATH[?tag=ки,strip_step_numbers=false]  Math-Shepherd `input`/`label` rows
  processbench:PATH[?after_error=unlabelled]            ProcessBench rows, earliest-error index -> step labels

PRM800K ratings are -1/0/+1. A neutral 0 ("not wrong, but no progress") is positive by default, as in Qwen's
PRM800K baseline; `neutral=negative` follows TRL's conversion, where only +1 is positive. A step a human wrote
in phase 1 (after every model step was rated -1) is positive. Unrated steps carry no label.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from rewardmodels.errors import ROW, InputError, Location
from rewardmodels.io import location_of, read_rows, with_location

NEUTRAL_CHOICES = ("positive", "negative")


# ---- spec options ---------------------------------------------------------------------------------------------


def _option_value(text: str):
    low = text.lower()
    if low in ("true", "yes", "1"):
        return True
    if low in ("false", "no", "0"):
        return False
    return text


def split_spec(rest: str) -> tuple[str, dict]:
    """'PATH?key=value,key=value' -> (PATH, {key: value}); 'true'/'false' become bools."""
    path, _, query = rest.partition("?")
    options = {}
    for item in filter(None, query.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"spec option {item!r} must be key=value")
        options[key.strip()] = _option_value(value.strip())
    return path, options


def from_spec(build):
    """Adapt `build(path, **options)` to the `build(rest)` call that data specs make.

    Two options apply to every builder: `limit=N` keeps the first N rows, `sample=N` (with `seed=S`) a seeded
    random N rows in their original order, e.g. a small held-out set for evaluation during training.
    """

    def build_from_spec(rest: str):
        path, options = split_spec(rest)
        limit, sample, seed = options.pop("limit", None), options.pop("sample", None), options.pop("seed", 0)
        rows, skipped = build(path, **options)
        if sample is not None and int(sample) < len(rows):
            import random

            keep = sorted(random.Random(int(seed)).sample(range(len(rows)), int(sample)))
            rows = [rows[i] for i in keep]
        if limit is not None:
            rows = rows[: int(limit)]
        return rows, skipped

    build_from_spec.__name__ = build.__name__
    build_from_spec.__doc__ = build.__doc__
    return build_from_spec


# ---- PRM800K ---------------------------------------------------------------------------------------------------


def prm800k_label(rating, neutral: str = "positive") -> bool | None:
    """-1 -> False, +1 -> True, 0 -> by `neutral`; None (unrated) -> None."""
    if neutral not in NEUTRAL_CHOICES:
        raise ValueError(f"neutral must be one of {NEUTRAL_CHOICES}, got {neutral!r}")
    if rating is None:
        return None
    rating = int(rating)
    if rating not in (-1, 0, 1):
        raise ValueError(f"PRM800K ratings are -1, 0 or 1, got {rating!r}")
    if rating == 0:
        return neutral == "positive"
    return rating == 1


def _human_text(human) -> str | None:
    # The README reconstructs trajectories with the human completion as text, while the released records hold
    # an object with a `text` field; accept both.
    if human is None:
        return None
    if isinstance(human, str):
        return human
    return human.get("text")


def prm800k_record_rows(
    record: dict, neutral: str = "positive", alternatives: bool = True, id_prefix: str = ""
) -> tuple[list[dict], Counter]:
    """Stepwise rows from one official PRM800K line.

    The chosen path (the chosen completion at each step, or the human one) is one solution. With
    `alternatives`, every rated completion that was not chosen ends a solution of its own: the chosen path up
    to that step plus the alternative. A trajectory that stops at a step with no chosen completion (phase 2
    `found_error`, or a phase 1 step whose completions were all rated -1) ends on that step's rated
    completions; without `alternatives` only the first of them is kept.
    """
    skipped: Counter = Counter()
    label = record.get("label") or {}
    if label.get("finish_reason") == "bad_problem":
        skipped["bad_problem"] += 1
        return [], skipped
    prompt = (record.get("question") or {}).get("problem")
    if not isinstance(prompt, str):
        raise ValueError("missing question.problem")
    path, path_labels, rows = [], [], []
    ended_on_chosen = False

    def emit(steps: list[str], labels: list, suffix: str) -> None:
        if steps and any(x is not None for x in labels):
            rows.append({"prompt": prompt, "completions": steps, "labels": labels, "id": id_prefix + suffix})
        elif steps:
            skipped["no labelled step"] += 1

    for k, step in enumerate(label.get("steps") or []):
        completions = step.get("completions") or []
        chosen = step.get("chosen_completion")
        human = _human_text(step.get("human_completion"))
        rated = [(i, c) for i, c in enumerate(completions) if i != chosen and c.get("rating") is not None]
        if chosen is None and human is None:
            # The trajectory ends here; its rated completions are where it ends.
            ends = rated if alternatives else rated[:1]
            for i, c in ends:
                emit(path + [c["text"]], path_labels + [prm800k_label(c["rating"], neutral)], f"-s{k}c{i}")
            ended_on_chosen = False
            break
        if alternatives:
            for i, c in rated:
                emit(path + [c["text"]], path_labels + [prm800k_label(c["rating"], neutral)], f"-s{k}c{i}")
        if chosen is not None:
            c = completions[chosen]
            path.append(c["text"])
            path_labels.append(prm800k_label(c.get("rating"), neutral))
        else:
            path.append(human)
            path_labels.append(True)
        ended_on_chosen = True
    if ended_on_chosen:
        emit(path, path_labels, "")
    elif not path and not rows:
        skipped["no steps"] += 1
    return rows, skipped


def build_prm800k(
    path: str, neutral: str = "positive", alternatives: bool = True
) -> tuple[list[dict], Counter]:
    """Official PRM800K .jsonl (label.steps[].completions[].rating), phase 1 or 2."""
    rows, skipped = [], Counter()
    for i, record in enumerate(read_rows(path)):
        where = location_of(record, Location(path, i + 1, ROW))
        try:
            got, why = prm800k_record_rows(record, neutral, alternatives, id_prefix=f"{Path(path).stem}-{i}")
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
            raise InputError.at(where, "label.steps", str(e)) from None
        rows.extend(with_location(row, where) for row in got)
        skipped.update(why)
    return rows, skipped


def _critic_trajectories(records: list[dict]) -> list[list[dict]]:
    """Split the one-rated-step-a-row file back into trajectories, in file order.

    Rows of one trajectory come in step order: rows rating alternatives for step k share the context of k
    earlier steps, and the rows for step k+1 extend that context by the chosen step. A new problem, a context
    that restarts, or one that does not extend the previous one begins a new trajectory.
    """
    trajectories: list[list[dict]] = []
    prev_problem, prev_ctx = None, None
    for r in records:
        ctx = list(r.get("responses") or [])
        same = (
            r.get("instruction") == prev_problem
            and prev_ctx is not None
            and (ctx == prev_ctx or (len(ctx) == len(prev_ctx) + 1 and ctx[:-1] == prev_ctx))
        )
        if not same:
            trajectories.append([])
        trajectories[-1].append(r)
        prev_problem, prev_ctx = r.get("instruction"), ctx
    return trajectories


def _critic_label(r: dict, neutral: str) -> bool | None:
    if r.get("is_human_response"):
        return True
    rating = r.get("rating")
    if rating is None or rating != rating:  # None or NaN (pandas writes missing floats as NaN)
        return None
    return prm800k_label(rating, neutral)


def build_prm800k_stepwise(
    path: str, neutral: str = "positive", alternatives: bool = True, records: list[dict] | None = None
) -> tuple[list[dict], Counter]:
    """PRM800K "stepwise-critic" parquet (instruction, responses, next_response, rating), reassembled into
    solutions. `records`: the file's rows when the caller has read them already (so it is read once)."""
    records = read_rows(path) if records is None else records
    for i, r in enumerate(records):
        for key in ("instruction", "responses", "next_response"):
            if key not in r:
                raise InputError.at(location_of(r, Location(path, i + 1, ROW)), key, "missing field")
    rows, skipped = [], Counter()
    for t, traj in enumerate(_critic_trajectories(records)):
        prompt = traj[0]["instruction"]
        groups: dict[int, list[dict]] = {}
        for r in traj:
            groups.setdefault(len(r.get("responses") or []), []).append(r)
        last = max(groups)
        path = list(traj[-1].get("responses") or [])
        chosen_last = [r for r in groups[last] if r.get("is_preferred_response")]
        if chosen_last:
            path.append(chosen_last[0]["next_response"])
        labels: list = []
        for k, step in enumerate(path):
            match = [r for r in groups.get(k, []) if r["next_response"] == step]
            preferred = [r for r in match if r.get("is_preferred_response")] or match
            labels.append(_critic_label(preferred[0], neutral) if preferred else None)
        seen: set = set()
        out: list[dict] = []

        def emit(
            steps: list[str], step_labels: list, suffix: str, _seen=seen, _out=out, _p=prompt, _t=t
        ) -> None:
            key = (tuple(steps), tuple(step_labels))
            if key in _seen:
                skipped["duplicate solution"] += 1
                return
            _seen.add(key)
            if any(x is not None for x in step_labels):
                _out.append(
                    {"prompt": _p, "completions": steps, "labels": step_labels, "id": f"traj{_t}{suffix}"}
                )
            else:
                skipped["no labelled step"] += 1

        for k in sorted(groups):
            others = [r for r in groups[k] if not (k < len(path) and r["next_response"] == path[k])]
            rated = [r for r in others if _critic_label(r, neutral) is not None]
            skipped["unrated step row"] += len(others) - len(rated)
            if not alternatives and not (k == last and not chosen_last):
                continue
            if not alternatives:
                rated = rated[:1]  # the trajectory ends here: keep the step it ended on
            for j, r in enumerate(rated):
                emit(path[:k] + [r["next_response"]], labels[:k] + [_critic_label(r, neutral)], f"-s{k}a{j}")
        if chosen_last:
            emit(path, labels, "")
        # a solution is named by the first record of its trajectory
        rows.extend(with_location(row, location_of(traj[0], Location(path))) for row in out)
    return rows, skipped


# ---- Math-Shepherd ----------------------------------------------------------------------------------------------

_STEP_NUMBER = re.compile(r"^\s*Step\s*\d+\s*:\s*")
_FIRST_STEP = re.compile(r"Step\s*1\s*:")


def parse_math_shepherd(
    text: str, label_text: str, tag: str = "ки", strip_step_numbers: bool = True
) -> tuple[str, list[str], list[bool]]:
    """Split a Math-Shepherd `input` (steps ending in `tag`) into prompt and steps, reading each step's label
    from the `label` text, where the tag at the same place is replaced by '+' or '-'."""
    parts = text.split(tag)
    if len(parts) < 2:
        raise ValueError(f"no step tag {tag!r} in the input")
    labels, at = [], 0
    for seg in parts[:-1]:
        if label_text[at : at + len(seg)] != seg:
            raise ValueError(f"the label text differs from the input near character {at}")
        mark = label_text[at + len(seg) : at + len(seg) + 1]
        if mark not in ("+", "-"):
            raise ValueError(f"expected '+' or '-' where the input has the step tag, found {mark!r}")
        labels.append(mark == "+")
        at += len(seg) + 1
    if label_text[at:] != parts[-1]:
        raise ValueError("the label text differs from the input after the last step")
    first = _FIRST_STEP.search(parts[0])
    if first is None:
        raise ValueError("cannot find 'Step 1:' separating the question from the first step")
    prompt = parts[0][: first.start()].strip()
    steps = [parts[0][first.start() :]] + parts[1:-1]
    steps = [(_STEP_NUMBER.sub("", s) if strip_step_numbers else s).strip() for s in steps]
    return prompt, steps, labels


def build_math_shepherd(
    path: str, tag: str = "ки", strip_step_numbers: bool = True
) -> tuple[list[dict], Counter]:
    """Math-Shepherd rows: `input` with steps ending in 'ки', `label` with '+'/'-' in their place."""
    rows, skipped = [], Counter()
    for i, raw in enumerate(read_rows(path)):
        where = location_of(raw, Location(path, i + 1, ROW))
        for key in ("input", "label"):
            if not isinstance(raw.get(key), str):
                raise InputError.at(where, key, "expected a string")
        try:
            prompt, steps, labels = parse_math_shepherd(raw["input"], raw["label"], tag, strip_step_numbers)
        except ValueError as e:
            raise InputError.at(where, "label", str(e)) from None
        if any(not s for s in steps):
            skipped["empty step"] += 1
            continue
        row = {"prompt": prompt, "completions": steps, "labels": labels, "id": str(raw.get("id", i))}
        if "task" in raw:
            row["task"] = raw["task"]
        rows.append(with_location(row, where))
    return rows, skipped


# ---- ProcessBench -----------------------------------------------------------------------------------------------

AFTER_ERROR_CHOICES = ("drop", "unlabelled")


def processbench_step_labels(label: int, n_steps: int, after_error: str = "drop") -> list[bool | None]:
    """Earliest-error index -> per-step labels: correct before it, wrong at it, and after it either dropped
    (the list ends at the error) or None. Steps after the first error are never marked correct."""
    if after_error not in AFTER_ERROR_CHOICES:
        raise ValueError(f"after_error must be one of {AFTER_ERROR_CHOICES}, got {after_error!r}")
    if label == -1:
        return [True] * n_steps
    if not 0 <= label < n_steps:
        raise ValueError(f"label {label} is outside the {n_steps} steps")
    labels: list[bool | None] = [True] * label + [False]
    if after_error == "unlabelled":
        labels += [None] * (n_steps - label - 1)
    return labels


def build_processbench(path: str, after_error: str = "drop") -> tuple[list[dict], Counter]:
    """ProcessBench rows (id, problem, steps, label = earliest wrong step or -1) as stepwise training rows."""
    rows = []
    for i, raw in enumerate(read_rows(path)):
        where = location_of(raw, Location(path, i + 1, ROW))
        for key, kind in (("problem", str), ("steps", list), ("label", int)):
            if not isinstance(raw.get(key), kind) or isinstance(raw.get(key), bool):
                raise InputError.at(where, key, f"expected {kind.__name__}")
        try:
            labels = processbench_step_labels(raw["label"], len(raw["steps"]), after_error)
        except ValueError as e:
            raise InputError.at(where, "label", str(e)) from None
        rows.append(
            with_location(
                {
                    "prompt": raw["problem"],
                    "completions": list(raw["steps"][: len(labels)]),
                    "labels": labels,
                    "id": str(raw.get("id", i)),
                    "first_error": raw["label"],
                },
                where,
            )
        )
    return rows, Counter()
