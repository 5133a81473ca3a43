"""The ASGI application (FastAPI on uvicorn) and a runner that serves it from a background thread.

Every answer is JSON. Errors are `{"error": message}` with the status saying whose fault it is: 400 bad
body, 401 no or wrong token, 404/405 unknown path or method, 408 body not received in time, 413 body,
request or text over a cap, 503 queue full or shutting down (with Retry-After), 504 not scored within the
request timeout, 500 the scorer failed (that request only: the server keeps serving).

FastAPI and uvicorn are imported only here and in `rewardmodels.serve`, when a server is made.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time

from rewardmodels.serving.auth import OPEN_PATHS, authorized
from rewardmodels.serving.requests import RequestError, decode_body
from rewardmodels.serving.service import ScoringService

logger = logging.getLogger("rewardmodels.serve")

POST_ENDPOINTS = {"/get_reward": "get_reward", "/score": "score", "/score_steps": "score_steps"}


async def read_body(request, cap: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `cap` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise RequestError(400, f"Content-Length {declared!r} is not a number")
        if int(declared) > cap:
            raise RequestError(413, f"the body has {declared} bytes; this server takes at most {cap}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise RequestError(413, f"the body exceeds {cap} bytes, the most this server takes")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(service: ScoringService):
    """The FastAPI app for `service`; the batcher's worker starts and stops with the app's lifespan."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    settings, metrics = service.settings, service.metrics

    @asynccontextmanager
    async def lifespan(app):
        service.start()
        try:
            yield
        finally:
            await asyncio.to_thread(service.close)

    app = FastAPI(
        title="rewardmodels serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )

    def error(status: int, message: str, headers: dict | None = None):
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    def check_auth(request) -> None:
        if request.url.path not in OPEN_PATHS and not authorized(
            request.headers.get("authorization"), settings.token
        ):
            raise RequestError(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})

    async def handle(request, endpoint: str):
        started = time.monotonic()
        deadline = started + settings.request_timeout_s
        try:
            check_auth(request)
            try:
                raw = await asyncio.wait_for(
                    read_body(request, settings.max_body_bytes), settings.request_timeout_s
                )
            except asyncio.TimeoutError:
                raise RequestError(
                    408, f"the body did not arrive within {settings.request_timeout_s:g} s"
                ) from None
            response = JSONResponse(await service.answer(endpoint, decode_body(raw), deadline))
        except RequestError as e:
            response = error(e.status, e.message, e.headers)
        except Exception as e:  # a bug or a failed forward: this request fails, the server keeps serving
            logger.exception("%s failed", endpoint)
            response = error(500, f"scoring failed: {type(e).__name__}: {e}")
        metrics.record_request(endpoint, response.status_code, time.monotonic() - started)
        return response

    # Plain Starlette routes: the handler reads the request itself (no FastAPI parameter injection), so
    # every validation message is ours.
    def post_route(endpoint: str):
        async def route(request):
            return await handle(request, endpoint)

        return route

    for path, endpoint in POST_ENDPOINTS.items():
        app.add_route(path, post_route(endpoint), methods=["POST"], name=endpoint)

    async def health(request):
        return JSONResponse({"status": "ok", "kind": service.scorer.kind, "queue": service.batcher.depth()})

    async def metrics_endpoint(request):
        try:
            check_auth(request)
        except RequestError as e:
            return error(e.status, e.message, e.headers)
        return JSONResponse(metrics.snapshot(service.batcher.depth()))

    app.add_route("/health", health, methods=["GET"], name="health")
    app.add_route("/metrics", metrics_endpoint, methods=["GET"], name="metrics")

    @app.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException):
        metrics.record_request("other", exc.status_code, 0.0)
        allowed = sorted(POST_ENDPOINTS) + ["/health", "/metrics"]
        message = (
            exc.detail
            if exc.status_code != 404
            else f"no such path; this server answers {', '.join(allowed)}"
        )
        return error(exc.status_code, str(message), exc.headers)

    return app


class BackgroundServer:
    """uvicorn serving `app` from a daemon thread, on a socket bound before it starts (port 0: any free one).
    A context manager: entering waits until the server accepts connections, leaving shuts it down."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, **uvicorn_options):
        self.app, self.host, self.port = app, host, port
        self.options = {"log_level": "warning", **uvicorn_options}
        self.server = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def __enter__(self) -> BackgroundServer:
        import uvicorn

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(self.app, **self.options))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


__all__ = ["BackgroundServer", "create_app", "read_body"]
