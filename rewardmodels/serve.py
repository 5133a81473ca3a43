"""`rewardmodels serve`: a scorer directory over HTTP, for RL loops (OpenRLHF's remote reward model, or any
loop that POSTs texts). FastAPI on uvicorn; the model runs on one worker thread that batches the requests
arriving within a short window (--batch-window-ms) up to --max-batch-size sequences and --max-batch-tokens.

Endpoints (JSON bodies; see docs/rl.md for examples):
  POST /get_reward   OpenRLHF: {"query": [prompt+response text, ...], "prompts": ..., "labels": ...}
                     -> {"rewards": [...], "scores": [...], "extra_logs": {...}}
  POST /score        {"prompts": [...], "responses": [...], "calibrated": bool?} -> {"scores": [...]}; a
                     reference_probability scorer (RLPR) also wants "references": [reference answer, ...],
                     one per response
  POST /score_steps  {"prompts": [...], "steps": [[...], ...]} -> {"step_scores": [[...], ...]}
  GET  /health, GET /metrics (request counts, forward sizes, queue depth, latency percentiles)

It binds 127.0.0.1 unless --host says otherwise; any other address needs a bearer token (environment
variable RM_SERVE_TOKEN, or --token-file) unless --insecure-no-auth is given. A full queue answers 503
with Retry-After; every bad input gets a 4xx naming the field.
"""

from __future__ import annotations

from rewardmodels.cli_common import ArgumentParser, add_scorer_arguments, scorer_keywords, setup_logging
from rewardmodels.errors import InputError
from rewardmodels.scorers.reward_funcs import RewardOptions, parse_clip
from rewardmodels.serving.auth import TOKEN_ENV, check_bind, read_token
from rewardmodels.serving.requests import Limits
from rewardmodels.serving.service import OPENRLHF_SCORES, ScoringService, ServerSettings
from rewardmodels.steps import PROBABILITY_AGGREGATIONS


def score_request(scorer, payload: dict, batch_size: int = 16) -> dict:
    """The /get_reward reply to one body, scored at once in this thread (no server, no queue); a bad body
    raises `RequestError` (a ValueError) with the message the server would send."""
    service = ScoringService(scorer, ServerSettings(max_batch_size=batch_size))
    return service.answer_now("get_reward", payload)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="rewardmodels serve", description=__doc__)
    parser.add_argument("scorer", help="Scorer directory written by `rewardmodels export`.")
    net = parser.add_argument_group("network and access")
    net.add_argument(
        "--host", default="127.0.0.1", help="Address to bind; anything but loopback needs a token."
    )
    net.add_argument("--port", type=int, default=5000, help="Port to bind.")
    net.add_argument(
        "--token-env", default=TOKEN_ENV, help="Environment variable holding the bearer token (if set)."
    )
    net.add_argument("--token-file", default=None, help="File whose first line is the bearer token.")
    net.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="Serve a non-loopback address without a token (anyone who can reach it may use the model).",
    )
    net.add_argument(
        "--max-connections", type=int, default=1024, help="Open connections beyond which uvicorn answers 503."
    )
    add_scorer_arguments(parser)
    batching = parser.add_argument_group("batching and limits")
    batching.add_argument(
        "--max-batch-size", "--batch-size", type=int, default=16, help="Sequences per forward pass."
    )
    batching.add_argument(
        "--max-batch-tokens", type=int, default=16384, help="Rows x longest sequence per forward pass."
    )
    batching.add_argument(
        "--batch-window-ms",
        type=float,
        default=5.0,
        help="How long the worker waits for more requests before a forward (0: never waits).",
    )
    batching.add_argument(
        "--max-queue",
        type=int,
        default=1024,
        help="Sequences waiting; beyond it requests get 503 + Retry-After.",
    )
    batching.add_argument(
        "--request-timeout", type=float, default=60.0, help="Seconds from arrival to answer before a 504."
    )
    batching.add_argument(
        "--max-body-bytes", type=int, default=8 * 2**20, help="Largest request body (413 above)."
    )
    batching.add_argument(
        "--max-request-items", type=int, default=256, help="Sequences per request (413 above)."
    )
    batching.add_argument(
        "--max-text-chars", type=int, default=100_000, help="Characters per text (413 above)."
    )
    batching.add_argument(
        "--on-overlong",
        choices=("truncate", "refuse"),
        default="truncate",
        help="A text over the scorer's max_length: cut from the left and counted, or refused with 400.",
    )
    rewards = parser.add_argument_group("rewards")
    rewards.add_argument(
        "--normalize",
        action="store_true",
        help="Standardise rewards with the manifest's reward mean and std.",
    )
    rewards.add_argument(
        "--calibrated",
        action="store_true",
        help="Return calibrated probabilities sigmoid(a * z + b), the fit `rewardmodels calibrate` stored in the "
        "manifest (/get_reward, /score; /score_steps for a step fit). A /score body may set `calibrated` itself.",
    )
    rewards.add_argument(
        "--clip",
        default=None,
        help="Clip rewards (after --normalize): C for [-C, C], or LO,HI (either may be empty).",
    )
    rewards.add_argument(
        "--aggregation",
        choices=PROBABILITY_AGGREGATIONS,
        default=None,
        help="Step scorers: aggregate steps with this rule.",
    )
    rewards.add_argument(
        "--openrlhf-scores",
        choices=OPENRLHF_SCORES,
        default="rewards",
        help="What /get_reward returns as `scores` (OpenRLHF's dynamic filtering): the rewards, or sigmoid(reward).",
    )
    parser.add_argument("--log-level", default="info", help="uvicorn's log level (warning: no access log).")
    return parser


def clip_flag(value: str | None):
    """`--clip` as reward_funcs.parse_clip takes it: "2" -> 2.0, "-1,3" -> (-1, 3), ",3" -> (None, 3)."""
    if value is None:
        return None
    if "," not in value:
        return parse_clip(float(value))
    lo, hi = (part.strip() for part in value.split(",", 1))
    return parse_clip((float(lo) if lo else None, float(hi) if hi else None))


def settings_from(args, token: str | None) -> ServerSettings:
    return ServerSettings(
        max_batch_size=args.max_batch_size,
        max_batch_tokens=args.max_batch_tokens,
        batch_window_s=args.batch_window_ms / 1000.0,
        max_queue=args.max_queue,
        request_timeout_s=args.request_timeout,
        max_body_bytes=args.max_body_bytes,
        limits=Limits(max_items=args.max_request_items, max_text_chars=args.max_text_chars),
        refuse_overlong=args.on_overlong == "refuse",
        options=RewardOptions(
            normalize=args.normalize,
            clip=clip_flag(args.clip),
            aggregation=args.aggregation,
            calibrated=args.calibrated,
        ),
        openrlhf_scores=args.openrlhf_scores,
        token=token,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    try:
        token = read_token(args.token_env, args.token_file)
        check_bind(args.host, token, args.insecure_no_auth)
        settings = settings_from(args, token)
        settings.check()
    except InputError:
        raise
    except (ValueError, OSError) as e:  # an unreadable token file, a bind that needs a token, a bad limit
        raise InputError(None, None, None, str(e)) from None
    import uvicorn

    from rewardmodels.scorers import ScorerOptions, load_scorer
    from rewardmodels.serving.app import create_app

    scorer = load_scorer(args.scorer, options=ScorerOptions.from_keywords(**scorer_keywords(args)))
    try:
        service = ScoringService(scorer, settings)
    except ValueError as e:  # an option the scorer cannot honour (--normalize without statistics, ...)
        raise InputError(None, None, None, str(e)) from None
    auth = "bearer token required" if token else "no authentication"
    print(f"serving {args.scorer} ({scorer.kind}) on http://{args.host}:{args.port} ({auth})", flush=True)
    uvicorn.run(
        create_app(service),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        limit_concurrency=args.max_connections,
    )
    return 0
