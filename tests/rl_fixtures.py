"""What the RL-loop tests share (reward functions, the server, the GRPO client): a PRM scorer directory from
one training step of the tiny Llama, and pure-Python scorers whose scores are worked out by hand."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_prm_scorer(tiny_llama, tmp_path_factory) -> Path:
    """A PRM scorer directory exported from one training step of the tiny Llama (plain text, "\\n\\n" steps)."""
    from rewardmodels.export import export_scorer
    from rewardmodels.prm.train import main as prm_main

    root = tmp_path_factory.mktemp("tiny-prm")
    prm_main([
        "--model_name_or_path", str(tiny_llama), "--train_data", "synthetic:n=16,seed=0",
        "--output_dir", str(root / "run"), "--max_steps", "1", "--per_device_train_batch_size", "4",
        "--save_strategy", "no", "--max_length", "128", "--learning_rate", "1e-2", "--report_to", "none",
    ])  # fmt: skip
    return export_scorer(root / "run", root / "scorer")


class LengthScorer:
    """score = number of characters of the response (its content for chat messages); normalize(s) = (s - 10) / 2.
    Token ids are the characters' code points, so `score_ids(ids) = len(ids)` matches `score` exactly."""

    kind = "length"
    max_length = 64

    def __init__(self, delay: float = 0.0):
        self.delay = delay  # seconds per score_ids call, to hold the worker busy in queue tests
        self.calls: list[int] = []  # sequences per score_ids call
        self.last_truncated: list[bool] = []

    @staticmethod
    def text_of(response) -> str:
        return response if isinstance(response, str) else "".join(m["content"] for m in response)

    def score(self, prompts, responses, batch_size: int = 16) -> list[float]:
        assert len(prompts) == len(responses)
        return [float(len(self.text_of(r))) for r in responses]

    def normalize(self, scores: list[float]) -> list[float]:
        return [(s - 10.0) / 2.0 for s in scores]

    def encode(self, prompts, responses) -> list[list[int]]:
        ids = [[ord(c) for c in self.text_of(r)] for r in responses]
        self.last_truncated = [len(x) > self.max_length for x in ids]
        return [x[-self.max_length :] for x in ids]

    def encode_rendered(self, texts) -> list[list[int]]:
        return self.encode(texts, texts)

    def score_ids(self, sequences, batch_size: int = 16) -> list[float]:
        self.calls.append(len(sequences))
        if self.delay:
            time.sleep(self.delay)
        return [float(len(s)) for s in sequences]


class StepScorer:
    """A step scorer with a hand-checkable rule: P(step correct) = 1 / (1 + number of words in the step);
    a step containing "CUT" is unscored (NaN), as a step beyond max_length is."""

    kind = "steps"
    response_step_split = "\n\n"

    def score_steps(self, prompts, steps, batch_size: int = 16) -> list[list[float]]:
        return [
            [math.nan if "CUT" in s else 1.0 / (1 + len(s.split())) for s in solution] for solution in steps
        ]

    def score(self, prompts, responses, batch_size: int = 16) -> list[float]:
        from rewardmodels.steps import aggregate, split_response

        steps = [split_response(r, self.response_step_split) for r in responses]
        return [aggregate(p, "min") for p in self.score_steps(prompts, steps)]
