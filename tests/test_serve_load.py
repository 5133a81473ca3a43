"""The load benchmark's arithmetic and stop conditions (benchmarks/serve_load.py); its timed run is a
benchmark (docs/benchmarks.md), not a test."""

import threading
from types import SimpleNamespace

import pytest

from benchmarks.serve_load import (
    BAD_BODIES,
    LoadRequest,
    Result,
    forward_rates,
    mix_requests,
    run_load,
    run_mode,
    summarize,
)
from rewardmodels.serving import ServerSettings
from tests.rl_fixtures import LengthScorer


def test_bad_bodies_are_mixed_in_every_kth_request():
    reqs = mix_requests([("aa", 2.0), ("bbb", 3.0)], n=7, bad_every=3)
    assert [r.expected for r in reqs] == [2.0, 3.0, None, 2.0, 3.0, None, 2.0]
    assert [r.body for r in reqs if r.expected is None] == BAD_BODIES[:2]
    assert b'"query": ["aa"]' in reqs[0].body and b'"labels": [null]' in reqs[0].body
    assert all(r.expected is not None for r in mix_requests([("a", 1.0)], n=5, bad_every=0))


def test_summary_by_hand():
    reqs = [LoadRequest(b"", 1.0), LoadRequest(b"", 2.0), LoadRequest(b"", None), LoadRequest(b"", 3.0),
            LoadRequest(b"", None), LoadRequest(b"", 4.0), LoadRequest(b"", 5.0)]  # fmt: skip
    results = [
        Result(0, 200, 0.10, 1.0),  # good
        Result(1, 200, 0.30, 2.00001),  # good within 1e-4
        Result(2, 400, 0.01, None),  # bad body refused: as it should be
        Result(3, 200, 0.20, 3.5),  # wrong score
        Result(4, 200, 0.01, 9.0),  # bad body accepted: an error
        Result(5, 503, 0.01, None),  # queue full
        Result(6, 0, 5.00, None),  # no answer: an error
    ]
    s = summarize(reqs, results, wall=4.0, tolerance=1e-4)
    assert (s["good_ok"], s["wrong"], s["errors"], s["refused_503"], s["bad_4xx"], s["sent"]) == (
        2,
        1,
        2,
        1,
        1,
        7,
    )
    assert s["good_rps"] == 0.5  # 2 correct answers / 4 s
    assert s["p50_ms"] == pytest.approx(100.0) and s["p99_ms"] == pytest.approx(300.0)  # over the good only


def test_load_stops_after_n_requests_with_at_most_concurrency_in_flight():
    lock, state = threading.Lock(), {"now": 0, "max": 0}
    sent = []

    def send(i):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        threading.Event().wait(0.002)
        with lock:
            state["now"] -= 1
            sent.append(i)
        return 200, float(i)

    results, wall, stopped = run_load(send, n=40, concurrency=4, time_cap=60)
    assert (
        stopped == "requests"
        and sorted(sent) == list(range(40))
        and [r.index for r in results] == sorted(sent)
    )
    assert 1 <= state["max"] <= 4 and wall > 0


def test_load_stops_at_the_time_cap():
    clock = {"t": 100.0}

    def send(i):  # each request takes 1 s of the fake clock
        clock["t"] += 1.0
        return 200, 0.0

    results, wall, stopped = run_load(send, n=100, concurrency=1, time_cap=5.0, clock=lambda: clock["t"])
    assert stopped == "time_cap" and len(results) == 5 and wall == 5.0
    assert all(r.seconds == 1.0 for r in results)


def test_one_mode_end_to_end_on_a_pure_scorer():
    requests = mix_requests([("abc", 3.0), ("abcdefg", 7.0)], n=30, bad_every=5)
    args = SimpleNamespace(warmup=2, client_timeout=10, concurrency=4, time_cap=30, tolerance=1e-9)
    s = run_mode(LengthScorer(), ServerSettings(batch_window_s=0.01), requests, args)
    assert (s["good_ok"], s["bad_4xx"], s["wrong"], s["errors"], s["stopped_by"]) == (24, 6, 0, 0, "requests")


def test_bare_forward_rates_cover_each_size():
    scorer = LengthScorer()
    rates = forward_rates(scorer, ["ab", "cde"], [1, 4], seconds=0.01)
    assert sorted(rates) == [1, 4] and all(r > 0 for r in rates.values())
    assert 4 in scorer.calls and 1 in scorer.calls  # forwards of exactly those sizes ran
