"""The server as a TRL reward function (`rewardmodels.serving.client`): same values as the in-process
function, async by default, tokens sent, 503 retried after Retry-After, other errors raised with the
server's message."""

import asyncio
import inspect

import pytest

from rewardmodels.scorers.reward_funcs import reward_function
from rewardmodels.serving import ScoringService, ServerSettings
from rewardmodels.serving.app import BackgroundServer, create_app
from rewardmodels.serving.client import RemoteScoringError, remote_reward_func, remote_scores
from tests.rl_fixtures import LengthScorer
from tests.test_serve import serving

PROMPTS = [[{"role": "user", "content": "Say hi."}], [{"role": "user", "content": "Say bye."}]]
COMPLETIONS = [[{"role": "assistant", "content": "hi there"}], [{"role": "assistant", "content": "bye"}]]


def test_remote_reward_func_equals_the_in_process_one():
    with serving(LengthScorer()) as (url, _):
        remote = remote_reward_func(url, token="")
        assert inspect.iscoroutinefunction(remote)  # what TRL's is_async_callable checks for a function
        assert remote.__name__ == "remote_rm"
        got = asyncio.run(
            remote(prompts=PROMPTS, completions=COMPLETIONS, completion_ids=None, trainer_state=None)
        )
        assert got == reward_function(LengthScorer())(PROMPTS, COMPLETIONS) == [8.0, 3.0]
        sync = remote_reward_func(url, token="", asynchronous=False)
        assert sync(PROMPTS, COMPLETIONS) == [8.0, 3.0]


def test_token_and_errors():
    with serving(LengthScorer(), token="s3cret") as (url, _):
        assert remote_reward_func(url, token="s3cret", asynchronous=False)(["p"], ["abcd"]) == [4.0]
        with pytest.raises(RemoteScoringError, match="answered HTTP 401: missing or wrong bearer token"):
            remote_reward_func(url, token="nope", asynchronous=False)(["p"], ["abcd"])
    with serving(LengthScorer()) as (url, _):
        with pytest.raises(RemoteScoringError, match="HTTP 400: responses\\[0\\] must be a string"):
            remote_scores(url, ["p"], [3], token=None, timeout=5, retries=0, backoff=0)


def test_a_busy_server_is_retried_and_a_dead_one_gives_up():
    service = ScoringService(LengthScorer(), ServerSettings())
    service.batcher.max_queue = 0  # every request finds the queue full: 503 + Retry-After
    with BackgroundServer(create_app(service)) as server:
        with pytest.raises(RemoteScoringError, match="gave no scores after 2 attempts; last: HTTP 503"):
            remote_scores(server.url, ["p"], ["a"], token=None, timeout=5, retries=1, backoff=0)
        requests = service.metrics.snapshot({})["requests"]["score"]
    assert requests == {"503": 2}
    with pytest.raises(RemoteScoringError, match="gave no scores after 3 attempts"):
        remote_scores("http://127.0.0.1:9", ["p"], ["a"], token=None, timeout=2, retries=2, backoff=0.01)
