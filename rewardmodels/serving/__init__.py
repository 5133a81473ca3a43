"""The reward server behind `rewardmodels serve`: a scorer over HTTP for RL loops (OpenRLHF's remote reward
model, or anything that POSTs texts), batched across requests, bounded and authenticated.

  requests  request bodies to checked values; every bad input a RequestError with its 4xx status
  batcher   the model worker: dynamic batching within a window, up to sequence and token budgets, bounded queue
  service   which scorer call a request needs (by capability), replies, the per-request timeout
  metrics   counters and latency percentiles for GET /metrics
  auth      loopback by default, bearer tokens elsewhere
  app       the FastAPI app and a background-thread runner (uvicorn)
  client    the server as a TRL reward function (async, over HTTP)

`docs/rl.md` shows it in use. FastAPI and uvicorn are imported only when an app is made or served.
"""

from rewardmodels.serving.requests import Limits, RequestError
from rewardmodels.serving.service import ScoringService, ServerSettings

__all__ = ["Limits", "RequestError", "ScoringService", "ServerSettings"]
