"""`rewardmodels serve` on loopback: every endpoint, every error case, the bounded queue (503), the request
timeout (504), batched against unbatched scores, tokens, and a slow client that must not hold up others.
Most tests use pure-Python scorers (tests/rl_fixtures.py) so that the expected scores are known exactly."""

import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

import rewardmodels
from rewardmodels.cli import main as cli_main
from rewardmodels.errors import InputError
from rewardmodels.serve import clip_flag
from rewardmodels.serve import main as serve_main
from rewardmodels.serving import Limits, ScoringService, ServerSettings
from rewardmodels.serving.app import BackgroundServer, create_app
from rewardmodels.serving.auth import authorized, check_bind, is_loopback
from rewardmodels.serving.batcher import plan_forwards
from rewardmodels.serving.metrics import percentile
from tests.rl_fixtures import LengthScorer, StepScorer

PROMPTS = ["Compute 2 + 3. Work it out one step at a time.", "Compute 9 - 4. Work it out one step at a time."]
RESPONSES = ["2 + 3 = 5\nAnswer: 5", "9 - 4 = 1\nAnswer: 1"]


def call(url: str, body=None, raw: bytes | None = None, headers: dict | None = None, method: str = "POST"):
    """(status, JSON reply, headers: case-insensitive) of one request; HTTP errors are returned, not raised."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json",
                                                                         **(headers or {})})  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read()), resp.headers
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), e.headers


@contextlib.contextmanager
def serving(scorer, **settings):
    service = ScoringService(scorer, ServerSettings(**settings))
    with BackgroundServer(create_app(service)) as server:
        yield server.url, service


def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


# -- pure parts ---------------------------------------------------------------------------------------------
def test_forward_plan_by_hand():
    # costs by index: 0:5 1:9 2:3 3:9 4:1; longest first -> 1, 3, 0, 2, 4
    assert plan_forwards([5, 9, 3, 9, 1], max_rows=2, max_tokens=100) == [[1, 3], [0, 2], [4]]
    # 3 rows x 9 tokens = 27 > 20: a forward of 9-token rows holds 2; an item over budget goes alone
    assert plan_forwards([9, 9, 9, 2], max_rows=8, max_tokens=20) == [[0, 1], [2, 3]]
    assert plan_forwards([50, 1], max_rows=8, max_tokens=20) == [[0], [1]]


def test_nearest_rank_percentiles_by_hand():
    values = [0.5, 0.1, 0.4, 0.2, 0.3]  # sorted 0.1 .. 0.5
    assert percentile(values, 50) == 0.3  # k = ceil(2.5) = 3
    assert percentile(values, 99) == 0.5 and percentile(values, 0) == 0.1
    assert percentile([7.0], 50) == 7.0


def test_access_rules():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3") and not is_loopback("example.org")
    check_bind("127.0.0.1", None, False)
    check_bind("0.0.0.0", "secret", False)
    check_bind("0.0.0.0", None, True)
    with pytest.raises(ValueError, match="--host 0.0.0.0 is reachable from other machines"):
        check_bind("0.0.0.0", None, False)
    assert authorized("Bearer secret", "secret") and authorized(None, None)
    assert not authorized("Bearer wrong", "secret") and not authorized(None, "secret")
    assert not authorized("Basic secret", "secret")


def test_clip_flag():
    assert (
        clip_flag("2") == (-2.0, 2.0) and clip_flag("-1,3") == (-1.0, 3.0) and clip_flag(",3") == (None, 3.0)
    )


def test_serving_off_loopback_without_token_is_refused_before_any_model_loads(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("RM_SERVE_TOKEN", raising=False)
    argv = [str(tmp_path / "no-such-scorer"), "--host", "0.0.0.0"]
    with pytest.raises(InputError, match="reachable from other machines"):
        serve_main(argv)
    # through the command table: one line, exit code 2 (the missing scorer directory is never reached)
    assert cli_main(["serve", *argv]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("rewardmodels serve: error: ") and "reachable from other machines" in line


# -- endpoints ----------------------------------------------------------------------------------------------
def test_endpoints_answer_in_their_formats():
    with serving(LengthScorer()) as (url, _):
        status, body, _ = call(f"{url}/get_reward", {"query": ["abcd"], "prompts": ["ab"], "labels": [None]})
        assert status == 200
        assert body == {"rewards": [4.0], "scores": [4.0], "extra_logs": {"reward": [4.0], "truncated": [0]}}
        status, body, _ = call(f"{url}/score", {"prompts": ["p", "q"], "responses": ["abc", [{"role": "assistant",
                                                                                             "content": "xy"}]]})  # fmt: skip
        assert (status, body) == (200, {"scores": [3.0, 2.0], "truncated": [False, False]})
        status, body, _ = call(f"{url}/health", method="GET")
        assert status == 200 and body["status"] == "ok" and body["kind"] == "length"
        status, body, _ = call(f"{url}/metrics", method="GET")
        assert body["requests"] == {"get_reward": {"200": 1}, "score": {"200": 1}}
        assert body["sequences_scored"] == 3 and body["latency_seconds"]["window"] == 2
        assert body["queue"]["queued_sequences"] == 0 and body["latency_seconds"]["p50"] > 0


def test_score_steps_and_reward_options():
    with serving(StepScorer(), options=_options(aggregation="prod")) as (url, _):
        status, body, _ = call(f"{url}/score_steps", {"prompts": ["p"], "steps": [["one two", "CUT"]],
                                                      "aggregation": "min"})  # fmt: skip
        assert status == 200 and body == {"step_scores": [[1 / 3, None]], "scores": [1 / 3]}
        # /score re-aggregates the steps with the server's --aggregation: 1/3 * 1/2
        status, body, _ = call(f"{url}/score", {"prompts": ["p"], "responses": ["one two\n\nthree"]})
        assert status == 200 and body["scores"] == pytest.approx([1 / 6], abs=1e-12)
    with serving(
        LengthScorer(), options=_options(normalize=True, clip=(-2.0, 5.0)), openrlhf_scores="sigmoid"
    ) as (
        url,
        _,
    ):
        # lengths 4 and 30 -> (4-10)/2 = -3 and (30-10)/2 = 10 -> clipped to -2 and 5
        status, body, _ = call(f"{url}/get_reward", {"query": ["a" * 4]})
        assert body["rewards"] == [-2.0] and body["scores"] == pytest.approx([1 / (1 + 2.718281828459045**2)])
        assert call(f"{url}/score", {"prompts": ["p"], "responses": ["a" * 30]})[1]["scores"] == [5.0]


def _options(**kw):
    from rewardmodels.scorers.reward_funcs import RewardOptions

    return RewardOptions(**kw)


BAD_REQUESTS = [
    ("/get_reward", b"{not json", 400, "the body is not valid JSON"),
    ("/get_reward", b"\xff\xfe", 400, "the body is not UTF-8"),
    ("/get_reward", b"[1, 2]", 400, "the body must be a JSON object, got a list"),
    ("/get_reward", b'{"labels": []}', 400, "send {'query': [text, ...]} (OpenRLHF) or"),
    ("/get_reward", b'{"query": "text"}', 400, "field 'query' must be a list, got a string"),
    ("/get_reward", b'{"query": []}', 400, "field 'query' is empty"),
    ("/get_reward", b'{"query": ["a", 3]}', 400, "query[1] must be a string, got a number"),
    ("/score", b'{"prompts": ["p"]}', 400, "missing field 'responses'"),
    ("/score", b'{"prompts": ["p", "q"], "responses": ["r"]}', 400, "2 prompts but 1 responses"),
    (
        "/score",
        b'{"prompts": [null], "responses": ["r"]}',
        400,
        "prompts[0] must be a string or a non-empty list",
    ),
    (
        "/score",
        b'{"prompts": [[{"role": "user"}]], "responses": ["r"]}',
        400,
        "prompts[0][0] has no 'content'",
    ),
    (
        "/score",
        b'{"prompts": ["p"], "responses": ["' + b"x" * 50 + b'"]}',
        413,
        "responses[0] has 50 characters",
    ),
    (
        "/score",
        b'{"prompts": ["p","p","p","p"], "responses": ["a","b","c","d"]}',
        413,
        "at most 3 per request",
    ),
    (
        "/score_steps",
        b'{"prompts": ["p"], "steps": [[]]}',
        400,
        "steps[0] must be a non-empty list of strings",
    ),
    ("/score_steps", b'{"prompts": ["p"], "steps": [["s"]]}', 400, "this length scorer gives no step scores"),
]


@pytest.mark.parametrize(("path", "raw", "status", "message"), BAD_REQUESTS)
def test_bad_input_gets_a_4xx_naming_the_field_and_the_server_keeps_serving(server_for_errors, path, raw, status,
                                                                            message):  # fmt: skip
    url = server_for_errors
    got, body, _ = call(f"{url}{path}", raw=raw)
    assert got == status and message in body["error"], body
    assert call(f"{url}/get_reward", {"query": ["ok"]})[:2] == (200, {"rewards": [2.0], "scores": [2.0],
                                                                      "extra_logs": {"reward": [2.0],
                                                                                     "truncated": [0]}})  # fmt: skip


@pytest.fixture(scope="module")
def server_for_errors():
    settings = {"limits": Limits(max_items=3, max_text_chars=40), "max_body_bytes": 2048}
    with serving(LengthScorer(), **settings) as (url, _):
        yield url


def test_body_caps_paths_methods_and_overlong_texts(server_for_errors):
    url = server_for_errors
    status, body, _ = call(f"{url}/score", raw=b'{"prompts": ["' + b"p" * 4000 + b'"]}')
    assert status == 413 and "at most 2048" in body["error"]
    status, body, _ = call(f"{url}/nope", {})
    assert status == 404 and "/get_reward, /score, /score_steps" in body["error"]
    assert call(f"{url}/score", method="GET")[0] == 405
    # LengthScorer's max_length is 64 tokens (characters): longer texts are cut from the left and counted
    status, body, _ = call(f"{url}/get_reward", {"query": ["y" * 30 + "z" * 10]})
    assert status == 200 and body["rewards"] == [40.0] and body["extra_logs"]["truncated"] == [0]
    with serving(LengthScorer(), limits=Limits(max_text_chars=1000)) as (loose, _):
        status, body, _ = call(f"{loose}/get_reward", {"query": ["y" * 100]})
        assert status == 200 and body["rewards"] == [64.0] and body["extra_logs"]["truncated"] == [1]
        assert call(f"{loose}/metrics", method="GET")[1]["truncated_texts"] == 1
    with serving(LengthScorer(), limits=Limits(max_text_chars=1000), refuse_overlong=True) as (strict, _):
        status, body, _ = call(f"{strict}/get_reward", {"query": ["ok", "y" * 100]})
        assert status == 400 and "query[1] is longer than the scorer's max_length" in body["error"]


def test_a_failing_scorer_fails_that_request_only():
    class Flaky(LengthScorer):
        def score_ids(self, sequences, batch_size=16):
            if any(s == [ord(c) for c in "boom"] for s in sequences):
                raise RuntimeError("CUDA out of memory (simulated)")
            return super().score_ids(sequences, batch_size)

    with serving(Flaky()) as (url, _):
        status, body, _ = call(f"{url}/get_reward", {"query": ["boom"]})
        assert status == 500 and "RuntimeError: CUDA out of memory (simulated)" in body["error"]
        assert call(f"{url}/get_reward", {"query": ["fine"]})[1]["rewards"] == [4.0]


def test_pre_formatted_queries_need_a_scorer_that_encodes_rendered_text():
    with serving(StepScorer()) as (url, _):
        status, body, _ = call(f"{url}/get_reward", {"query": ["text"]})
        assert status == 400 and "cannot score pre-formatted 'query' texts" in body["error"]


# -- the queue, the timeout, a slow client -------------------------------------------------------------------
def test_full_queue_answers_503_with_retry_after():
    scorer = LengthScorer(delay=0.5)
    settings = {"max_batch_size": 1, "batch_window_s": 0.0, "max_queue": 2, "limits": Limits(max_items=1)}
    with serving(scorer, **settings) as (url, service):
        replies = []
        send = lambda text: replies.append(call(f"{url}/get_reward", {"query": [text]})[:2])  # noqa: E731
        threads = [threading.Thread(target=send, args=("a",))]
        threads[0].start()
        wait_until(lambda: service.batcher.depth()["running_sequences"] == 1)  # the worker holds "a"
        threads += [threading.Thread(target=send, args=(t,)) for t in ("bb", "ccc")]
        for t in threads[1:]:
            t.start()
        wait_until(lambda: service.batcher.depth()["queued_sequences"] == 2)  # "bb" and "ccc" wait: full
        status, body, headers = call(f"{url}/get_reward", {"query": ["dddd"]})
        assert status == 503 and "queue" in body["error"] and int(headers["Retry-After"]) >= 1
        for t in threads:
            t.join()
        assert sorted(r[1]["rewards"][0] for r in replies) == [1.0, 2.0, 3.0]  # the queued ones were answered
        assert call(f"{url}/metrics", method="GET")[1]["requests"]["get_reward"] == {"200": 3, "503": 1}


def test_request_timeout_answers_504():
    with serving(LengthScorer(delay=1.0), request_timeout_s=0.3) as (url, _):
        status, body, _ = call(f"{url}/get_reward", {"query": ["slow"]})
        assert status == 504 and "request timeout" in body["error"]


def read_reply(sock: socket.socket) -> str:
    """Read one whole HTTP reply: headers and body may come in separate segments, so a single recv
    can return the head alone (seen in CI)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return data.decode()
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)  # fmt: skip
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            break
        body += chunk
    return (head + b"\r\n\r\n" + body).decode()


def test_a_slow_client_does_not_hold_up_others():
    with serving(LengthScorer(), request_timeout_s=2.0) as (url, _):
        host, port = url.removeprefix("http://").split(":")
        slow = socket.create_connection((host, int(port)))
        slow.sendall(b"POST /get_reward HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"query\": [")  # fmt: skip
        started = time.monotonic()
        for text in ("a", "bb", "ccc"):  # answered while the slow body is still outstanding
            assert call(f"{url}/get_reward", {"query": [text]})[1]["rewards"] == [float(len(text))]
        assert time.monotonic() - started < 1.5
        slow.settimeout(10)
        reply = read_reply(slow)  # the slow client gets 408 once its body is overdue
        slow.close()
        assert reply.startswith("HTTP/1.1 408") and "did not arrive within 2 s" in reply


# -- batching -----------------------------------------------------------------------------------------------
def concurrent_rewards(url: str, texts: list[str], concurrency: int = 16) -> list[float]:
    out: list = [None] * len(texts)

    def worker(k: int) -> None:
        for i in range(k, len(texts), concurrency):
            status, body, _ = call(f"{url}/get_reward", {"query": [texts[i]]})
            assert status == 200, body
            out[i] = body["rewards"][0]

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_batched_scores_equal_unbatched_exactly_and_requests_share_forwards():
    texts = [("x" * (i % 23 + 1)) + str(i) for i in range(64)] + ["same"] * 8
    with serving(LengthScorer(delay=0.02), max_batch_size=1, batch_window_s=0.0) as (url, _):
        unbatched = concurrent_rewards(url, texts)
        assert call(f"{url}/metrics", method="GET")[1]["forward_sizes"] == {"1": len(texts)}
    with serving(LengthScorer(delay=0.02), max_batch_size=16, batch_window_s=0.02) as (url, _):
        batched = concurrent_rewards(url, texts)
        metrics = call(f"{url}/metrics", method="GET")[1]
    assert batched == unbatched == [float(len(t)) for t in texts]
    assert metrics["forward_size_mean"] > 2 and metrics["requests_per_batch_mean"] > 2  # requests were merged
    assert metrics["sequences_scored"] + metrics["duplicate_sequences"] == len(texts)


def test_batched_model_scores_equal_unbatched_to_float_rounding(tiny_scorer):
    """With a real model, a sequence padded beside others differs from its lone forward by float rounding
    (kernels pick their blocking by shape): equal to 1e-6, not bit for bit (docs/rl.md)."""
    scorer = rewardmodels.load_scorer(tiny_scorer)
    prompts = [f"Compute {a} + {b}." for a in range(6) for b in range(4)]
    responses = [f"{a} + {b} = {a + b}" + " and so on" * (b % 3) for a in range(6) for b in range(4)]
    texts = [scorer.tokenizer.decode(ids) for ids in scorer.encode(prompts, responses)]
    with serving(scorer, max_batch_size=1, batch_window_s=0.0) as (url, _):
        unbatched = concurrent_rewards(url, texts, concurrency=4)
    with serving(scorer, max_batch_size=16, batch_window_s=0.05) as (url, _):
        batched = concurrent_rewards(url, texts, concurrency=8)
        assert call(f"{url}/metrics", method="GET")[1]["forward_size_mean"] > 1
    assert batched == pytest.approx(unbatched, abs=1e-6)
    assert unbatched == pytest.approx(scorer.score(prompts, responses), abs=1e-5)


def test_http_server_speaks_openrlhf_remote_rm(tiny_scorer):
    """Moved from tests/test_scoring.py when the server moved to FastAPI; assertions unchanged."""
    scorer = rewardmodels.load_scorer(tiny_scorer)
    with serving(scorer) as (base, _):
        # OpenRLHF sends whole formatted texts in "query"
        texts = [scorer.tokenizer.decode(ids) for ids in scorer.encode(PROMPTS, RESPONSES)]
        body = call(f"{base}/get_reward", {"query": texts})[1]
        assert body["rewards"] == pytest.approx(scorer.score(PROMPTS, RESPONSES), abs=1e-4)
        assert body["scores"] == body["rewards"]
        body = call(f"{base}/get_reward", {"prompts": PROMPTS, "responses": RESPONSES})[1]
        assert body["rewards"] == pytest.approx(scorer.score(PROMPTS, RESPONSES), abs=1e-5)
        assert call(f"{base}/get_reward", {"query": "not a list"})[0] == 400


def test_bearer_token():
    with serving(LengthScorer(), token="s3cret") as (url, _):
        status, body, headers = call(f"{url}/get_reward", {"query": ["a"]})
        assert status == 401 and headers["WWW-Authenticate"] == "Bearer"
        assert call(f"{url}/get_reward", {"query": ["a"]}, headers={"Authorization": "Bearer nope"})[0] == 401
        assert call(f"{url}/metrics", method="GET")[0] == 401
        assert call(f"{url}/health", method="GET")[0] == 200  # probes need no token
        status, body, _ = call(
            f"{url}/get_reward", {"query": ["abc"]}, headers={"Authorization": "Bearer s3cret"}
        )
        assert status == 200 and body["rewards"] == [3.0]
