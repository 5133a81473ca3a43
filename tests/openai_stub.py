"""A scripted OpenAI-compatible server on 127.0.0.1 (ephemeral port, own thread) for the HTTP sampling tests.

Each request takes the next reply from the script; the last reply repeats once the script runs out. A reply
is (status, JSON payload) or (status, payload, seconds to wait before answering), or (status, payload, delay,
headers). Every request is recorded as (path, headers, decoded JSON body)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StubServer:
    def __init__(self, replies: list[tuple]):
        self.replies = list(replies)
        self.requests: list[tuple[str, dict, dict]] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with stub._lock:
                    stub.requests.append((self.path, dict(self.headers), body))
                    reply = stub.replies.pop(0) if len(stub.replies) > 1 else stub.replies[0]
                status, payload = reply[0], reply[1]
                delay = reply[2] if len(reply) > 2 else 0.0
                headers = reply[3] if len(reply) > 3 else {}
                if delay:
                    time.sleep(delay)
                data = json.dumps(payload).encode()
                with contextlib.suppress(OSError):  # the client may have given up (timeout tests)
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)

            def log_message(self, *args):  # keep test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def chat_reply(*texts: str, logprobs: list | None = None) -> dict:
    """A chat-completions answer body with one choice per text, as vLLM returns it."""
    return {
        "object": "chat.completion",
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": t},
                "finish_reason": "stop",
                "logprobs": logprobs[i] if logprobs else None,
            }
            for i, t in enumerate(texts)
        ],
    }


def completions_reply(*texts: str, order: list[int] | None = None) -> dict:
    """A completions answer body; `order` lists the choices' indices in the order the body holds them."""
    order = order or list(range(len(texts)))
    return {
        "object": "text_completion",
        "choices": [
            {"index": i, "text": texts[i], "finish_reason": "length", "logprobs": None} for i in order
        ],
    }
