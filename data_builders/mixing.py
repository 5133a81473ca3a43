"""Mixing several training sources: a row cap, a weight and a held-out split per source.

A training spec may end in mixing options after a `|`, in any order:

    hh_rlhf:../shared/data/hh_rlhf_harmless_base_test.jsonl.gz|rows=600,eval=100
    sharegpt:../shared/data/dpo_en_demo.json|weight=2,eval=30
    prm800k_pairs:../shared/data/prm800k_phase1_stepwise_train.parquet?exclude=../shared/data/math500.jsonl|rows=800,name=math

  eval=N     hold out N rows of this source (before any cap or weight, so no held-out row is trained on);
             without it the recipe's --eval_fraction of the source is held out
  rows=N     train on at most N distinct rows of what is left (a seeded sample)
  weight=W   then take round(W x that many) rows: W < 1 a seeded subsample, W > 1 whole repeats plus a seeded
             sample of the remainder, so the source counts W times as much in every epoch
  name=NAME  the source's name in logs and per-source held-out metrics (default: the spec's prefix, or the
             file's stem for a plain file; a repeated name gets -2, -3, ...)
  curated=F  apply a `rewardmodels curate` run's decisions (its decisions.jsonl) to the training rows, after
             the held-out split and before the cap: dropped pairs are removed, flipped ones swapped. The
             held-out rows are the uncurated run's, for any seed, so curated and uncurated runs are compared
             on the same pairs (data_builders/curation.py)

`|` separates the options from the builder's own `?` options: those belong to one raw format, these to any
source. Each source is shuffled on its own, with a seed made of the run's seed and the source's position, so
adding a source never changes which rows another one holds out, and one source with no options holds out
exactly what the pooled split of a single source did before (same shuffle, same count).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace
from pathlib import Path

from rewardmodels.data_builders.curation import apply_decisions, read_decisions, row_key
from rewardmodels.errors import InputError
from rewardmodels.io import read_text, write_json, write_jsonl

OPTION_KEYS = ("eval", "rows", "weight", "name", "curated")
# What a training run writes to its output_dir about its split: the held-out rows, each with the `source` it
# came from (`rewardmodels report curve` evaluates every checkpoint on them), and the keys of the distinct
# rows it trained on (`rewardmodels curate --checkpoints` gives LIM scores to those only).
HELD_OUT_FILE = "held_out.jsonl"
TRAINED_KEYS_FILE = "trained_keys.json"


@dataclass(frozen=True)
class MixSpec:
    """One training source and its mixing options (module docstring)."""

    spec: str
    name: str
    eval_rows: int | None = None
    max_rows: int | None = None
    weight: float = 1.0
    curated: str | None = None

    @property
    def has_options(self) -> bool:
        return (
            self.eval_rows is not None
            or self.max_rows is not None
            or self.weight != 1.0
            or self.curated is not None
        )


@dataclass
class MixedSource:
    """What one source gave: its held-out rows, its training rows (after cap and weight), and the counts."""

    name: str
    held_out: list
    train: list
    read: int
    distinct_train: int


def default_name(spec: str) -> str:
    prefix, sep, rest = spec.partition(":")
    if sep and rest and "/" not in prefix and "." not in prefix:
        return prefix
    return Path(spec.split("?")[0]).name.split(".")[0] or spec


def parse_mix_spec(text: str) -> MixSpec:
    """`SPEC|key=value,...` -> MixSpec; an unknown key or a bad value is an InputError naming the spec."""
    spec, sep, options = text.partition("|")
    spec = spec.strip()
    values: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in options.split(","))) if sep else ():
        key, eq, value = item.partition("=")
        if key not in OPTION_KEYS or not eq or not value:
            raise InputError(
                None, None, "train_data",
                f"bad mixing option {item!r} in {text!r}: expected key=value with key one of {', '.join(OPTION_KEYS)}",
            )  # fmt: skip
        values[key] = value
    try:
        eval_rows = int(values["eval"]) if "eval" in values else None
        max_rows = int(values["rows"]) if "rows" in values else None
        weight = float(values.get("weight", 1.0))
    except ValueError as e:
        raise InputError(None, None, "train_data", f"bad mixing option in {text!r}: {e}") from None
    if (eval_rows is not None and eval_rows < 0) or (max_rows is not None and max_rows < 1) or weight <= 0:
        raise InputError(
            None, None, "train_data", f"in {text!r}: eval >= 0, rows >= 1 and weight > 0 are required"
        )
    return MixSpec(
        spec, values.get("name") or default_name(spec), eval_rows, max_rows, weight, values.get("curated")
    )


def parse_mix(specs: list[str]) -> list[MixSpec]:
    """Every spec parsed, with repeated names made unique (-2, -3, ...) in order."""
    parsed, seen = [], {}
    for text in specs:
        mix = parse_mix_spec(text)
        seen[mix.name] = seen.get(mix.name, 0) + 1
        if seen[mix.name] > 1:
            mix = replace(mix, name=f"{mix.name}-{seen[mix.name]}")
        parsed.append(mix)
    return parsed


def weighted(rows: list, weight: float, rng: random.Random) -> list:
    """round(weight x len(rows)) rows: whole copies of `rows`, then a seeded sample of the remainder."""
    target = round(weight * len(rows))
    whole, rest = divmod(target, len(rows)) if rows else (0, 0)
    return rows * whole + rng.sample(rows, rest)


def mix_source(mix: MixSpec, rows: list, seed: int, position: int, eval_fraction: float) -> MixedSource:
    """Split one source's validated rows: held-out first (eval=N, else eval_fraction), then cap and weight.

    The held-out count with eval_fraction is max(1, int(len x fraction)), the count the pooled split used."""
    order = list(range(len(rows)))
    random.Random(seed if position == 0 else seed * 1_000_003 + position).shuffle(order)
    if mix.eval_rows is not None:
        n_eval = mix.eval_rows
    else:
        n_eval = max(1, int(len(rows) * eval_fraction)) if eval_fraction > 0 else 0
    if n_eval >= len(rows):
        raise InputError(
            None, None, "train_data",
            f"source '{mix.name}' ({mix.spec}) has {len(rows)} rows, so {n_eval} held out would leave none to train on",
        )  # fmt: skip
    held_out = [rows[i] for i in order[:n_eval]]
    # Nothing to draw: the rows keep their file order, as a run without mixing options always had them.
    train = [rows[i] for i in order[n_eval:]] if n_eval or mix.max_rows is not None else list(rows)
    if mix.curated is not None:
        train, _ = apply_decisions(train, read_decisions(mix.curated), mix.name, mix.curated)
        if not train:
            raise InputError(
                mix.curated, None, None, f"curation dropped every training row of source '{mix.name}'"
            )
    if mix.max_rows is not None:
        train = train[: mix.max_rows]  # already shuffled: the first N are a seeded sample
    distinct = len(train)
    if mix.weight != 1.0:
        train = weighted(train, mix.weight, random.Random(seed + position + 1))
    return MixedSource(mix.name, held_out, train, len(rows), distinct)


def summary(sources: list[MixedSource]) -> str:
    """One line per source for the log: rows read, held out, distinct training rows, rows per epoch."""
    lines = [f"{'source':<16} {'read':>7} {'held out':>9} {'distinct':>9} {'per epoch':>10}"]
    for s in sources:
        lines.append(
            f"{s.name:<16} {s.read:>7} {len(s.held_out):>9} {s.distinct_train:>9} {len(s.train):>10}"
        )
    return "\n".join(lines)


def write_split(output_dir: str | Path, train: list[dict], held_out: list[dict], sources: list[str]) -> None:
    """HELD_OUT_FILE (the held-out rows, each with the name of its `source`; none when nothing is held out)
    and TRAINED_KEYS_FILE (the sorted distinct `row_key`s of the training rows), atomically."""
    if held_out:
        rows = ({**row, "source": name} for row, name in zip(held_out, sources, strict=True))
        write_jsonl(Path(output_dir) / HELD_OUT_FILE, rows)
    write_json(Path(output_dir) / TRAINED_KEYS_FILE, sorted({row_key(row) for row in train}))


def read_trained_keys(run_dir: str | Path) -> set[str] | None:
    """The keys a run wrote to TRAINED_KEYS_FILE; None for a run that wrote none (before it was written)."""
    path = Path(run_dir) / TRAINED_KEYS_FILE
    if not path.is_file():
        return None
    keys = json.loads(read_text(path))
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise InputError(path, None, None, "expected a JSON list of row keys")
    return set(keys)
