"""RewardBench v1 and v2 for any scorer (`rewardmodels eval rewardbench`; see `cli` for the usage).

One module per concern, every public name re-exported here so `from rewardmodels.eval import rewardbench as
rb` reaches them all:

- `official`: reward-bench's weights and section mapping, and the pure arithmetic over per-example records
- `data`: loading rows, `--column-map`, validating every row before any model work
- `runner`: `run_rewardbench`, tokenize once, score chunk by chunk through the group-scoring seam, journal
- `reports`: the markdown report and the bar chart
- `cli`: `build_parser`, `build_scorer`, `main`
"""

from __future__ import annotations

from rewardmodels.eval.rewardbench.cli import (
    build_parser,
    build_scorer,
    input_settings,
    main,
    resolve_baseline,
)
from rewardmodels.eval.rewardbench.data import (
    DEFAULT_SPLITS,
    V1_DATASET,
    V2_DATASET,
    Example,
    PreparedData,
    RewardBenchDataError,
    apply_column_map,
    detect_version,
    load_rows,
    parse_column_map,
    prepare_examples,
    row_errors,
)
from rewardmodels.eval.rewardbench.official import (
    EXAMPLE_COUNTS,
    OFFICIAL_ROWS,
    PRIOR_SETS,
    SECTION_OF,
    SUBSET_MAPPING,
    V2_SUBSETS,
    best_of_n,
    overall_v1,
    parse_ties_id,
    prior_sets_score,
    section_scores,
    subset_accuracies,
    summarize_v1,
    summarize_v2,
    ties_score,
    v2_subset_scores,
)
from rewardmodels.eval.rewardbench.reports import markdown_report, write_chart
from rewardmodels.eval.rewardbench.runner import (
    CHART_NAME,
    EXAMPLES_NAME,
    MARKDOWN_NAME,
    RESULTS_NAME,
    STATE_NAME,
    RunOutcome,
    default_batch_size,
    make_record,
    plan_chunks,
    record_key,
    run_rewardbench,
)

__all__ = [
    "CHART_NAME",
    "DEFAULT_SPLITS",
    "EXAMPLES_NAME",
    "EXAMPLE_COUNTS",
    "Example",
    "MARKDOWN_NAME",
    "OFFICIAL_ROWS",
    "PRIOR_SETS",
    "PreparedData",
    "RESULTS_NAME",
    "RewardBenchDataError",
    "RunOutcome",
    "SECTION_OF",
    "STATE_NAME",
    "SUBSET_MAPPING",
    "V1_DATASET",
    "V2_DATASET",
    "V2_SUBSETS",
    "apply_column_map",
    "best_of_n",
    "build_parser",
    "build_scorer",
    "default_batch_size",
    "detect_version",
    "input_settings",
    "load_rows",
    "main",
    "make_record",
    "markdown_report",
    "overall_v1",
    "parse_column_map",
    "parse_ties_id",
    "plan_chunks",
    "prepare_examples",
    "prior_sets_score",
    "record_key",
    "resolve_baseline",
    "row_errors",
    "run_rewardbench",
    "section_scores",
    "subset_accuracies",
    "summarize_v1",
    "summarize_v2",
    "ties_score",
    "v2_subset_scores",
    "write_chart",
]
