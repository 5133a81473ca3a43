"""`rewardmodels serve`: an HTTP reward server compatible with OpenRLHF's remote reward-model API.

POST /get_reward with {"query": [full text, ...]} returns {"rewards": [...], "scores": [...]}, as OpenRLHF's
`--remote_rm_url` expects: each query is the whole prompt + response, already formatted. Requests that send
{"prompts": [...], "responses": [...]} instead are formatted with the scorer's own chat template.
GET /health returns {"status": "ok", "kind": ...}. Only the standard library is used.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from rewardmodels.cli_common import ArgumentParser, HelpFormatter
from rewardmodels.scorers.capabilities import ScoresTokenIds


def score_request(scorer, payload: dict, batch_size: int = 16) -> dict:
    """Rewards for one request body; raises ValueError with a message the client can act on."""
    if "prompts" in payload and "responses" in payload:
        rewards = scorer.score(payload["prompts"], payload["responses"], batch_size)
    elif "query" in payload:
        queries = payload["query"]
        if not isinstance(queries, list) or not all(isinstance(q, str) for q in queries):
            raise ValueError("'query' must be a list of strings")
        if not isinstance(scorer, ScoresTokenIds):
            # A PRM reads its head at step separators inside the response, which a pre-formatted text hides.
            raise ValueError(
                f"this {scorer.kind} scorer cannot score pre-formatted 'query' texts; send "
                "{'prompts': [...], 'responses': [...]} so that it can find the steps"
            )
        # A query is already the formatted prompt + response: token ids as they are, cut from the left.
        tokenized = scorer.tokenizer(queries, add_special_tokens=False)["input_ids"]
        ids = [q[-scorer.max_length :] for q in tokenized]
        rewards = scorer.score_ids(ids, batch_size)
    else:
        raise ValueError("send {'query': [...]} (OpenRLHF) or {'prompts': [...], 'responses': [...]}")
    return {"rewards": rewards, "scores": rewards, "extra_logs": {"reward": rewards}}


def make_server(scorer, host: str, port: int, batch_size: int = 16) -> ThreadingHTTPServer:
    lock = threading.Lock()  # one forward at a time; the model is not re-entrant across threads

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802
            if self.path == "/health":
                self._reply(200, {"status": "ok", "kind": scorer.kind})
            else:
                self._reply(404, {"error": "unknown path"})

        def do_POST(self):  # noqa: N802
            if self.path not in ("/get_reward", "/score"):
                return self._reply(404, {"error": "POST /get_reward"})
            try:
                payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with lock:
                    body = score_request(scorer, payload, batch_size)
            except (ValueError, json.JSONDecodeError) as e:
                return self._reply(400, {"error": str(e)})
            self._reply(200, body)

        def log_message(self, fmt, *args):
            pass

    return ThreadingHTTPServer((host, port), Handler)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="rewardmodels serve", description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("scorer", help="Scorer directory written by `rewardmodels export`.")
    parser.add_argument("--host", default="127.0.0.1", help="Address to bind (default 127.0.0.1).")
    parser.add_argument("--port", type=int, default=5000, help="Port to bind (default 5000).")
    parser.add_argument("--batch-size", type=int, default=16, help="Sequences per forward pass.")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available).")
    parser.add_argument("--dtype", default=None, help="float32, bfloat16 or float16.")
    args = parser.parse_args(argv)
    from rewardmodels.scorers import load_scorer

    scorer = load_scorer(args.scorer, device=args.device, dtype=args.dtype)
    server = make_server(scorer, args.host, args.port, args.batch_size)
    print(f"serving {args.scorer} on http://{args.host}:{args.port}/get_reward", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
