"""A running `rewardmodels serve` as a TRL reward function: the policy trains on one machine, the reward
model is served on another (or shared by several trainers), and GRPO calls it like a local scorer.

`remote_reward_func(url)` POSTs each batch to the server's /score and returns its scores, with the same call
contract as `reward_funcs.reward_function` (keywords accepted and not read, None for unscorable samples).
By default it is `async def`, so TRL awaits it concurrently with its other async reward functions while the
server batches this trainer's requests with everyone else's. A 503 is retried after the server's
Retry-After (at most `retries` times, at most 60 s each), as are refused connections; any other error
status raises with the server's message. `calibrated=True` (or False) asks for the server's calibrated
probabilities (or raw scores) whatever its --calibrated says. `reference_column="reference"` sends that
dataset column (TRL passes every column as a keyword) as /score's `references`, for a server that scores
against a reference answer (RLPR's `reference_probability` kind). Only the standard library is used.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from rewardmodels.scorers.reward_funcs import TRAINER_KEYWORDS, make_reward_func
from rewardmodels.serving.auth import TOKEN_ENV, read_token


class RemoteScoringError(RuntimeError):
    """The server refused a request, or could not be reached within the retries."""


def post_json(url: str, body: dict, token: str | None, timeout: float) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def server_message(error: urllib.error.HTTPError) -> str:
    try:
        return json.loads(error.read()).get("error", "")
    except (ValueError, AttributeError):
        return ""


def remote_scores(
    url: str,
    prompts: list,
    completions: list,
    *,
    token: str | None,
    timeout: float,
    retries: int,
    backoff: float,
    calibrated: bool | None = None,
    references: list | None = None,
) -> list[float | None]:
    """The server's /score scores for prompts and completions (see the module docstring for retries)."""
    endpoint = url.rstrip("/") + "/score"
    body = {"prompts": prompts, "responses": completions}
    if calibrated is not None:
        body["calibrated"] = calibrated
    if references is not None:
        body["references"] = references
    last = ""
    for attempt in range(retries + 1):
        try:
            return post_json(endpoint, body, token, timeout)["scores"]
        except urllib.error.HTTPError as e:
            message = server_message(e)
            if e.code != 503:
                raise RemoteScoringError(f"{endpoint} answered HTTP {e.code}: {message}") from None
            retry_after = e.headers.get("Retry-After", "")
            wait = float(retry_after) if retry_after.isdigit() else backoff * 2**attempt
            last = f"HTTP 503: {message}"
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            wait, last = backoff * 2**attempt, str(getattr(e, "reason", e))
        if attempt < retries:
            time.sleep(min(wait, 60.0))
    raise RemoteScoringError(f"{endpoint} gave no scores after {retries + 1} attempts; last: {last}")


def remote_reward_func(
    url: str,
    *,
    name: str = "remote_rm",
    token: str | None = None,
    token_env: str = TOKEN_ENV,
    timeout: float = 180.0,
    retries: int = 5,
    backoff: float = 1.0,
    asynchronous: bool = True,
    calibrated: bool | None = None,
    reference_column: str | None = None,
) -> Callable:
    """A TRL reward function scoring through the server at `url`; the token defaults to `$RM_SERVE_TOKEN`;
    `calibrated` None leaves it to the server's --calibrated; `reference_column` names the dataset column
    sent as `references` (a call without it raises a ValueError naming the column and those present)."""
    token = token if token is not None else read_token(token_env)

    def score(prompts: list, completions: list, columns: dict) -> list[float]:
        references = None
        if reference_column is not None:
            if reference_column not in columns:
                present = ", ".join(sorted(k for k in columns if k not in TRAINER_KEYWORDS)) or "none"
                raise ValueError(
                    f"{name}: no {reference_column!r} column to send as references; columns: {present}"
                )
            references = list(columns[reference_column])
        values = remote_scores(url, prompts, completions, token=token, timeout=timeout, retries=retries,
                               backoff=backoff, calibrated=calibrated, references=references)  # fmt: skip
        return [float("nan") if v is None else v for v in values]

    return make_reward_func(score, name, asynchronous, pass_columns=True)


__all__ = ["RemoteScoringError", "remote_reward_func", "remote_scores"]
