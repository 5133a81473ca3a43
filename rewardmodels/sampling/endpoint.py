"""The HTTP backend: an OpenAI-compatible server (vLLM, SGLang, ...) samples, the standard library asks.

Text prompts go to `<base>/completions`, chat prompts to `<base>/chat/completions`; a chat ending in an
assistant message is sent with `continue_final_message: true, add_generation_prompt: false` (vLLM's and
SGLang's extension), so the server continues that message instead of opening a new turn. The rows of one
prompt are one request with `n` and the first row's seed; servers do not promise that sample j of a request
is independent of `n`, so unlike the local backend a sample here may depend on how many were asked at once.

Connection errors, timeouts, 429 and 5xx answers are retried `max_retries` times, waiting
`backoff * 2**attempt` seconds (or the server's numeric Retry-After, at most 60 s); any other 4xx is an
`EndpointError` naming the URL and the server's message. The API key is sent as a bearer token and never
logged or shown.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass

from rewardmodels.sampling.core import (
    Prompt,
    SamplingParams,
    continues_final_message,
    math_prompt,
    prompt_identity,
)

logger = logging.getLogger("rewardmodels")

MAX_RETRY_AFTER_S = 60.0


class EndpointError(RuntimeError):
    """The server refused a request, answered something that is not a completion, or never answered."""


@dataclass(frozen=True)
class Completion:
    """One choice of a server's answer; `logprobs` as the server returned it (None when not asked)."""

    text: str
    finish_reason: str | None = None
    logprobs: dict | None = None


def top_logprobs(completion: Completion) -> list[dict[str, float]]:
    """Per generated token, its top alternatives {token: log-prob}, from either answer format: completions
    (`logprobs.top_logprobs`, a dict per token) or chat (`logprobs.content[t].top_logprobs`, a list)."""
    lp = completion.logprobs or {}
    if "content" in lp:
        return [
            {alt["token"]: alt["logprob"] for alt in tok.get("top_logprobs") or []}
            for tok in lp["content"] or []
        ]
    return [dict(alts or {}) for alts in lp.get("top_logprobs") or []]


def api_key_from_env(variable: str | None) -> str | None:
    """The API key held by environment variable `variable` (None: no key); a named but unset variable is an
    error, so a typo does not silently send unauthenticated requests."""
    if not variable:
        return None
    value = os.environ.get(variable)
    if not value:
        raise ValueError(f"--api-key-env {variable}: that environment variable is not set (or is empty)")
    return value


def normalise_base_url(url: str) -> str:
    """`http://host:8000` -> `http://host:8000/v1`; a URL with a path is kept as given, less a trailing /."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"--endpoint must be an http(s) URL such as http://127.0.0.1:8000/v1, got {url!r}")
    url = url.rstrip("/")
    return url + "/v1" if parsed.path in ("", "/") else url


def _error_detail(error: urllib.error.HTTPError) -> str:
    """The server's message from an error answer: OpenAI's {"error": {"message"}}, FastAPI's {"detail"}, or
    the body itself, shortened."""
    try:
        body = error.read().decode("utf-8", "replace")
    except OSError:
        return error.reason or ""
    try:
        data = json.loads(body)
    except ValueError:
        return body[:500]
    if isinstance(data, dict):
        inner = data.get("error", data)
        message = inner.get("message") if isinstance(inner, dict) else inner
        return str(message or data.get("detail") or data)[:500]
    return body[:500]


class EndpointGenerator:
    """Samples from a model served behind an OpenAI-compatible API."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = 300.0,
        max_retries: int = 3,
        backoff: float = 1.0,
    ):
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.base_url = normalise_base_url(base_url)
        self.model = model
        self._api_key = api_key
        self.timeout, self.max_retries, self.backoff = timeout, max_retries, backoff
        self.fingerprint = f"{self.base_url}#{model}"

    def __repr__(self) -> str:  # the key stays out of logs and tracebacks
        return f"EndpointGenerator({self.base_url!r}, model={self.model!r})"

    def build_prompt(self, problem: str, prefix: Sequence[str], params: SamplingParams) -> Prompt:
        return math_prompt(problem, prefix, params.instruction)

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams, seeds: Sequence[int]) -> list[str]:
        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        rows_of: dict[str, list[int]] = {}
        for r, prompt in enumerate(prompts):
            rows_of.setdefault(json.dumps(prompt_identity(prompt), sort_keys=True), []).append(r)
        out: list[str] = [""] * len(prompts)
        for rows in rows_of.values():
            # Greedy decoding gives one answer however often it is asked.
            n = 1 if params.temperature == 0 else len(rows)
            texts = [c.text for c in self.complete(prompts[rows[0]], params, n=n, seed=seeds[rows[0]])]
            for j, r in enumerate(rows):
                out[r] = texts[j % n]
        return out

    def complete(
        self,
        prompt: Prompt,
        params: SamplingParams,
        *,
        n: int = 1,
        seed: int | None = None,
        top_logprobs: int | None = None,
    ) -> list[Completion]:
        """n choices for one prompt, in the server's index order; with `top_logprobs` = k, each carries the
        top-k log-probs of every generated token (read them with `top_logprobs(completion)`)."""
        prompt_identity(prompt)  # a malformed chat fails here, naming the message
        body: dict = {
            "model": self.model,
            "n": n,
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if seed is not None:
            body["seed"] = seed
        if params.stop:
            body["stop"] = list(params.stop)
        chat = not isinstance(prompt, str)
        if chat:
            body["messages"] = prompt
            if continues_final_message(prompt):
                body.update(continue_final_message=True, add_generation_prompt=False)
            if top_logprobs:
                body.update(logprobs=True, top_logprobs=top_logprobs)
        else:
            body["prompt"] = prompt
            if top_logprobs:
                body["logprobs"] = top_logprobs
        url = f"{self.base_url}/{'chat/completions' if chat else 'completions'}"
        return self._choices(url, self._post(url, body), n, chat)

    def _choices(self, url: str, payload, n: int, chat: bool) -> list[Completion]:
        choices = payload.get("choices") if isinstance(payload, dict) else None
        if not isinstance(choices, list) or len(choices) != n:
            got = len(choices) if isinstance(choices, list) else "no"
            raise EndpointError(f"{url}: expected {n} choices in the answer, got {got}: {str(payload)[:300]}")
        out = []
        for j, choice in enumerate(sorted(choices, key=lambda c: c.get("index", 0))):
            text = (choice.get("message") or {}).get("content") if chat else choice.get("text")
            if not isinstance(text, str):
                field = "message.content" if chat else "text"
                raise EndpointError(f"{url}: choice {j} has no text in '{field}': {str(choice)[:300]}")
            out.append(Completion(text, choice.get("finish_reason"), choice.get("logprobs")))
        return out

    def _post(self, url: str, body: dict):
        """The decoded JSON answer to a POST, with the retries described in the module docstring."""
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        data = json.dumps(body).encode()
        failure = ""
        for attempt in range(self.max_retries + 1):
            wait = self.backoff * 2**attempt
            try:
                request = urllib.request.Request(url, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    raw = response.read()
                try:
                    return json.loads(raw)
                except ValueError:
                    raise EndpointError(f"{url}: the answer is not JSON: {raw[:300]!r}") from None
            except urllib.error.HTTPError as error:
                if error.code != 429 and error.code < 500:
                    raise EndpointError(f"{url} answered HTTP {error.code}: {_error_detail(error)}") from None
                failure = f"HTTP {error.code}: {_error_detail(error)}"
                retry_after = error.headers.get("Retry-After") if error.headers else None
                if retry_after and retry_after.strip().replace(".", "", 1).isdigit():
                    wait = min(float(retry_after), MAX_RETRY_AFTER_S)
            except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as error:
                reason = getattr(error, "reason", None) or error
                failure = f"{type(error).__name__}: {reason}"
                if isinstance(reason, TimeoutError) or isinstance(error, TimeoutError):
                    failure = f"no answer within {self.timeout:g} s ({failure})"
            if attempt < self.max_retries:
                logger.warning(
                    "%s: %s; retry %d of %d in %.1f s", url, failure, attempt + 1, self.max_retries, wait
                )
                time.sleep(wait)
        raise EndpointError(f"{url}: no answer after {self.max_retries + 1} attempts (last: {failure})")
