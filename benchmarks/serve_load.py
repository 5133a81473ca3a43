"""Load on `rewardmodels serve`: batched serving against unbatched, OpenRLHF-shaped, on loopback.

    python benchmarks/serve_load.py outputs/demo/scorer                      # 400 requests, concurrency 16
    python benchmarks/serve_load.py SCORER --requests 200 --time-cap 60 --concurrency 16

Each run starts the server in this process twice on 127.0.0.1 (an ephemeral port): batched (--max-batch-size,
--batch-window-ms) and unbatched (one sequence per forward, no window), and sends both the same requests:
OpenRLHF's one-sample `{"query": [text], "prompts": [...], "labels": [...]}` bodies, the texts being the
scorer's own renderings of synthetic arithmetic problems and their solutions, decoded as OpenRLHF decodes
them, with a bad body every --bad-every requests (bad JSON, wrong types, empty or missing fields).

Bounded so that it always stops: --requests N in all, --concurrency client threads, and a --time-cap per mode
after which no new request is sent. Every good request must come back 200 with its correct score (the
scorer's own score of that text alone, within --tolerance), every bad one with a 4xx; anything else counts
as an error. Per mode: good requests per second over the mode's wall time, p50 and p99 latency of the good
requests, wrong scores, errors, 503s. Before the modes, the bare model's forward throughput (no server) at 1, 4
and --max-batch-size sequences per forward gives the ceiling batching can reach on the machine:
forward_gain = the best of them over one at a time. The last line:

    serve_load model=<dir> requests=<n> concurrency=<c> batched_rps=<x> unbatched_rps=<x> ... forward_gain=<x> batched_vs_unbatched=<ratio>
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rewardmodels.serving.metrics import percentile  # noqa: E402

BAD_BODIES = [
    b'{"query": ["unterminated',
    b'["a list, not an object"]',
    b'{"query": "a string, not a list"}',
    b'{"query": []}',
    b'{"prompts": ["no query and no responses"]}',
    b'{"query": [42]}',
]


@dataclass(frozen=True)
class LoadRequest:
    body: bytes
    expected: float | None  # the correct reward; None: a bad body, which must get a 4xx


@dataclass(frozen=True)
class Result:
    index: int
    status: int  # HTTP status; 0 when no answer came (connection error, client timeout)
    seconds: float
    reward: float | None


def mix_requests(good: list[tuple[str, float]], n: int, bad_every: int) -> list[LoadRequest]:
    """n requests: request i is bad when bad_every > 0 and (i + 1) % bad_every == 0 (cycling BAD_BODIES),
    otherwise the next good (text, expected reward), cycling through `good`."""
    out, g, b = [], 0, 0
    for i in range(n):
        if bad_every > 0 and (i + 1) % bad_every == 0:
            out.append(LoadRequest(BAD_BODIES[b % len(BAD_BODIES)], None))
            b += 1
        else:
            text, expected = good[g % len(good)]
            body = {"query": [text], "prompts": [text[: len(text) // 2]], "labels": [None]}
            out.append(LoadRequest(json.dumps(body).encode(), expected))
            g += 1
    return out


def run_load(
    send: Callable[[int], tuple[int, float | None]],
    n: int,
    concurrency: int,
    time_cap: float,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[list[Result], float, str]:
    """Send requests 0..n-1 from `concurrency` threads, each taking the next index, until all are sent or
    `time_cap` seconds have passed (no request starts after that; those in flight finish).
    Returns (results in index order, wall seconds, "requests" or "time_cap")."""
    results: list[Result | None] = [None] * n
    lock = threading.Lock()
    state = {"next": 0, "capped": False}
    start = clock()

    def worker() -> None:
        while True:
            with lock:
                if state["next"] >= n:
                    return
                if clock() - start >= time_cap:
                    state["capped"] = True
                    return
                i = state["next"]
                state["next"] += 1
            began = clock()
            status, reward = send(i)
            results[i] = Result(i, status, clock() - began, reward)

    threads = [threading.Thread(target=worker) for _ in range(max(1, concurrency))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = [r for r in results if r is not None]
    return done, clock() - start, "time_cap" if state["capped"] else "requests"


def summarize(requests: list[LoadRequest], results: list[Result], wall: float, tolerance: float) -> dict:
    """Counts and rates of one mode. good_rps = good requests answered 200 with the correct reward / wall."""
    good_ok, wrong, errors, refused, bad_4xx, latencies = 0, 0, 0, 0, 0, []
    for r in results:
        expected = requests[r.index].expected
        if r.status == 503:
            refused += 1
        elif expected is None:
            bad_4xx += 400 <= r.status < 500
            errors += not 400 <= r.status < 500
        elif r.status != 200 or r.reward is None:
            errors += 1
        elif abs(r.reward - expected) > tolerance:
            wrong += 1
        else:
            good_ok += 1
            latencies.append(r.seconds)
    return {
        "sent": len(results),
        "good_ok": good_ok,
        "wrong": wrong,
        "errors": errors,
        "refused_503": refused,
        "bad_4xx": bad_4xx,
        "wall_s": wall,
        "good_rps": good_ok / wall if wall > 0 else 0.0,
        "p50_ms": 1000 * percentile(latencies, 50),
        "p99_ms": 1000 * percentile(latencies, 99),
    }


def post(url: str, body: bytes, timeout: float) -> tuple[int, float | None]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())["rewards"][0]
    except urllib.error.HTTPError as e:
        e.read()
        return e.code, None
    except (urllib.error.URLError, OSError):
        return 0, None


def good_texts(scorer, n: int, seed: int) -> list[tuple[str, float]]:
    """n (query text, reward): synthetic problems with a chosen or a rejected solution, rendered by the scorer
    and decoded; the reward is the scorer's score of that text alone (one sequence, one forward)."""
    from rewardmodels.data_builders import synthetic

    rows = synthetic.preference_rows(max(1, (n + 1) // 2), seed=seed)
    prompts = [r["prompt"] for r in rows for _ in (0, 1)][:n]
    responses = [r[k] for r in rows for k in ("chosen", "rejected")][:n]
    texts = [scorer.tokenizer.decode(ids) for ids in scorer.encode(prompts, responses)]
    rewards = [scorer.score_ids(scorer.encode_rendered([t]), 1)[0] for t in texts]
    return list(zip(texts, rewards, strict=True))


def forward_rates(scorer, texts: list[str], sizes: list[int], seconds: float) -> dict[int, float]:
    """Sequences per second of the bare model (`score_ids`, no server) at each forward size, each measured
    for about `seconds` after one untimed forward: the ceiling batching can reach on this machine."""
    ids = scorer.encode_rendered(texts)
    rates = {}
    for size in sizes:
        chunk = [ids[i % len(ids)] for i in range(size)]
        scorer.score_ids(chunk, size)
        began, done = time.perf_counter(), 0
        while time.perf_counter() - began < seconds:
            scorer.score_ids(chunk, size)
            done += size
        rates[size] = done / (time.perf_counter() - began)
    return rates


def run_mode(scorer, settings, requests, args) -> dict:
    from rewardmodels.serving import ScoringService
    from rewardmodels.serving.app import BackgroundServer, create_app

    service = ScoringService(scorer, settings)
    with BackgroundServer(create_app(service)) as server:
        url = f"{server.url}/get_reward"
        for request in requests[: args.warmup]:  # untimed: first forwards allocate
            post(url, request.body, args.client_timeout)
        results, wall, stopped = run_load(
            lambda i: post(url, requests[i].body, args.client_timeout),
            len(requests),
            args.concurrency,
            args.time_cap,
        )
        metrics = service.metrics.snapshot(service.batcher.depth())
    summary = summarize(requests, results, wall, args.tolerance)
    summary.update(stopped_by=stopped, forward_size_mean=metrics["forward_size_mean"])
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scorer", help="A scorer directory whose scorer encodes rendered text (BT).")
    parser.add_argument("--requests", type=int, default=400, help="Requests per mode, bad ones included.")
    parser.add_argument("--concurrency", type=int, default=16, help="Client threads.")
    parser.add_argument(
        "--time-cap", type=float, default=120.0, help="Seconds per mode after which none is sent."
    )
    parser.add_argument(
        "--bad-every", type=int, default=10, help="Every k-th request is a bad body (0: none)."
    )
    parser.add_argument("--distinct", type=int, default=64, help="Distinct good texts, cycled.")
    parser.add_argument("--max-batch-size", type=int, default=16, help="Batched mode: sequences per forward.")
    parser.add_argument(
        "--batch-window-ms", type=float, default=5.0, help="Batched mode: the batching window."
    )
    parser.add_argument("--warmup", type=int, default=8, help="Untimed requests before each mode.")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="Largest |reward - expected| accepted.")
    parser.add_argument(
        "--client-timeout", type=float, default=180.0, help="Seconds a client waits (OpenRLHF: 180)."
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, ...")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the synthetic problems.")
    parser.add_argument("--out", default=None, help="Also write the figures to this JSON file.")
    parser.add_argument(
        "--ceiling-seconds",
        type=float,
        default=3.0,
        help="Seconds per forward size of the bare-model measurement.",
    )
    args = parser.parse_args(argv)

    import torch

    from rewardmodels.scorers import load_scorer
    from rewardmodels.serving import ServerSettings

    scorer = load_scorer(args.scorer, device=args.device)
    good = good_texts(scorer, args.distinct, args.seed)
    requests = mix_requests(good, args.requests, args.bad_every)
    modes = {
        "batched": ServerSettings(
            max_batch_size=args.max_batch_size, batch_window_s=args.batch_window_ms / 1000
        ),
        "unbatched": ServerSettings(max_batch_size=1, batch_window_s=0.0),
    }
    print(f"# {args.scorer}: {len(requests)} requests per mode ({sum(r.expected is None for r in requests)} bad), "
          f"concurrency {args.concurrency}, torch threads {torch.get_num_threads()}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}", flush=True)  # fmt: skip
    sizes = sorted({1, 4, args.max_batch_size})
    rates = forward_rates(scorer, [t for t, _ in good], sizes, args.ceiling_seconds)
    print("bare model forwards: " + ", ".join(f"{k} per forward {v:.1f} seq/s" for k, v in rates.items()),
          flush=True)  # fmt: skip
    figures = {"forward_seq_s": rates}
    for name, settings in modes.items():
        figures[name] = s = run_mode(scorer, settings, requests, args)
        print(f"{name}: {s['good_ok']} good of {s['sent']} sent in {s['wall_s']:.1f} s = {s['good_rps']:.2f} req/s, "
              f"p50 {s['p50_ms']:.0f} ms, p99 {s['p99_ms']:.0f} ms, wrong {s['wrong']}, errors {s['errors']}, "
              f"503 {s['refused_503']}, bad->4xx {s['bad_4xx']}, mean forward {s['forward_size_mean']:.2f} seqs, "
              f"stopped by {s['stopped_by']}", flush=True)  # fmt: skip
    b, u = figures["batched"], figures["unbatched"]
    ratio = b["good_rps"] / u["good_rps"] if u["good_rps"] else float("nan")
    figures["batched_vs_unbatched"] = ratio
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")
    print(
        f"serve_load model={args.scorer} requests={args.requests} concurrency={args.concurrency} "
        f"batched_rps={b['good_rps']:.2f} unbatched_rps={u['good_rps']:.2f} batched_p50_ms={b['p50_ms']:.0f} "
        f"batched_p99_ms={b['p99_ms']:.0f} unbatched_p50_ms={u['p50_ms']:.0f} unbatched_p99_ms={u['p99_ms']:.0f} "
        f"wrong={b['wrong'] + u['wrong']} errors={b['errors'] + u['errors']} "
        f"refused_503={b['refused_503'] + u['refused_503']} forward_gain={max(rates.values()) / rates[1]:.2f} "
        f"batched_vs_unbatched={ratio:.2f}"
    )
    return 0 if b["wrong"] + u["wrong"] + b["errors"] + u["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
