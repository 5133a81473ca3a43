"""`rewardmodels calibrate` end to end on a tiny random BT scorer, and the stored fit in use: the fit equals
`fit_temperature` of the journalled raw scores, and `as_reward_func(calibrated=True)`, `score --calibrated`
and the server's /score and /get_reward all return sigmoid(a * s + b) of the raw scores, computed here by
hand. Plus the refusals, the resume, --dry-run, and a step fit through a pure-Python step scorer."""

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import rewardmodels
from rewardmodels.cli import main as cli_main
from rewardmodels.eval import calibrate
from rewardmodels.eval.calibrate_data import split_rows
from rewardmodels.eval.calibration_fit import fit_temperature
from rewardmodels.io import write_json
from rewardmodels.scorers.reward_funcs import RewardOptions, reward_function
from rewardmodels.serving import ServerSettings
from rewardmodels.serving.client import remote_reward_func
from tests import rl_fixtures
from tests.rl_fixtures import StepScorer
from tests.test_serve import call, serving


@pytest.fixture(scope="module")
def bt_dir(tiny_llama, tmp_path_factory) -> Path:
    """A BT scorer directory around a tiny random Llama (no training: only the scores' plumbing is tested)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_llama, num_labels=1)
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    model.config.pad_token_id = tokenizer.pad_token_id
    out = tmp_path_factory.mktemp("calib-bt")
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    write_json(out / "reward_model.json", {"kind": "bt", "base_model": "tiny", "max_length": 64})
    return out


def fresh_copy(bt_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(bt_dir, tmp_path / "scorer"))


def outcome_rows(n_prompts: int = 16) -> list[dict]:
    """Two answers per prompt; labels drawn at random (seeded), so that the scores do not separate them."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n_prompts):
        a, b = i % 7 + 1, i % 5 + 2
        for answer in (a + b, a + b + 1 + i % 3):
            rows.append({"prompt": f"Compute {a} + {b}.", "completion": f"{a} + {b} = {answer}",
                         "label": int(rng.random() < 0.5)})  # fmt: skip
    return rows


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run_calibrate(scorer_dir: Path, dataset: Path, out: Path, *extra: str) -> dict:
    assert calibrate.main([str(scorer_dir), "--dataset", str(dataset), "--output-dir", str(out),
                           "--no-progress", *extra]) == 0  # fmt: skip
    return json.loads((out / "results.json").read_text())


def journal_scores(out: Path) -> dict[int, list[float]]:
    lines = (out / calibrate.JOURNAL_NAME).read_text().splitlines()
    return {r["row"]: r["scores"] for r in map(json.loads, lines)}


def by_hand(a: float, b: float, scores: list[float]) -> list[float]:
    return [1.0 / (1.0 + math.exp(-(a * s + b))) for s in scores]


def test_calibrate_stores_the_fit_and_every_path_returns_sigmoid_of_it(bt_dir, tmp_path, capsys):
    scorer_dir = fresh_copy(bt_dir, tmp_path)
    rows = outcome_rows()
    dataset = write_rows(tmp_path / "outcomes.jsonl", rows)
    results = run_calibrate(scorer_dir, dataset, tmp_path / "out")

    # the fit is fit_temperature of the journalled raw scores of the fit rows (z = s: a BT score is a logit)
    raw = journal_scores(tmp_path / "out")

    fit_rows, held_rows = split_rows(rows, "responses", 0.5, 0)
    fit_prompts = {rows[i]["prompt"] for i in fit_rows}
    assert fit_prompts.isdisjoint(rows[i]["prompt"] for i in held_rows)
    expected = fit_temperature([raw[i][0] for i in fit_rows], [rows[i]["label"] for i in fit_rows])
    a, b = results["fit"]["scale"], results["fit"]["bias"]
    assert (a, b) == (expected.scale, expected.bias)
    assert results["fitted_on"]["fit_rows"] == len(fit_rows) and results["fitted_on"]["heldout_rows"] == len(
        held_rows
    )
    assert results["score_scale"] == "logit" and results["score_scale_from"] == "declared by the scorer"
    assert (tmp_path / "out" / "calibration.png").stat().st_size > 0

    manifest = json.loads((scorer_dir / "reward_model.json").read_text())
    stored = manifest["calibration"]
    assert (stored["scale"], stored["bias"], stored["target"], stored["score"]) == (a, b, "response", "logit")
    assert stored["fitted_on"]["sha256"] == calibrate.file_sha256(dataset)
    assert stored["ece_before"] == results["heldout"]["before"]["ece"]
    assert stored["ece_after"] == results["heldout"]["after"]["ece"]

    # every path that returns calibrated rewards returns sigmoid(a s + b) of the raw scores
    scorer = rewardmodels.load_scorer(scorer_dir, device="cpu")
    prompts, completions = [r["prompt"] for r in rows[:6]], [r["completion"] for r in rows[:6]]
    raw_scores = scorer.score(prompts, completions)
    expected_p = by_hand(a, b, raw_scores)
    assert scorer.as_reward_func(calibrated=True)(prompts, completions) == pytest.approx(
        expected_p, abs=1e-12
    )

    scored = tmp_path / "scored.jsonl"
    write_rows(
        tmp_path / "in.jsonl",
        [{"prompt": p, "response": c} for p, c in zip(prompts, completions, strict=True)],
    )
    assert (
        cli_main(
            ["score", str(scorer_dir), "-i", str(tmp_path / "in.jsonl"), "-o", str(scored), "--calibrated"]
        )
        == 0
    )
    from_cli = [json.loads(line)["score"] for line in scored.read_text().splitlines()]
    assert from_cli == pytest.approx(expected_p, abs=1e-6)  # another batch layout: float rounding only

    with serving(scorer, options=RewardOptions(calibrated=True)) as (url, _):
        status, body, _ = call(f"{url}/score", {"prompts": prompts, "responses": completions})
        assert status == 200 and body["scores"] == pytest.approx(expected_p, abs=1e-6)
        texts = [scorer.tokenizer.decode(ids) for ids in scorer.encode(prompts, completions)]
        status, body, _ = call(f"{url}/get_reward", {"query": texts})
        assert status == 200 and body["rewards"] == pytest.approx(expected_p, abs=1e-5)
        # a request may ask for the raw scores of a calibrated server
        status, body, _ = call(
            f"{url}/score", {"prompts": prompts, "responses": completions, "calibrated": False}
        )
        assert body["scores"] == pytest.approx(raw_scores, abs=1e-5)
    with serving(scorer) as (url, _):  # an uncalibrated server: the request field alone
        status, body, _ = call(
            f"{url}/score", {"prompts": prompts, "responses": completions, "calibrated": True}
        )
        assert status == 200 and body["scores"] == pytest.approx(expected_p, abs=1e-6)
        status, body, _ = call(
            f"{url}/score", {"prompts": prompts, "responses": completions, "calibrated": 1}
        )
        assert status == 400 and "'calibrated' must be true or false" in body["error"]
        remote = remote_reward_func(url, calibrated=True, asynchronous=False)  # TRL through the server
        assert remote(prompts, completions) == pytest.approx(expected_p, abs=1e-6)


def test_pairs_fit_the_scale_alone_and_a_rerun_resumes_from_the_journal(bt_dir, tmp_path, monkeypatch):
    scorer_dir = fresh_copy(bt_dir, tmp_path)
    rows = [{"prompt": f"Compute {i} + 1.", "chosen": f"{i} + 1 = {i + 1}", "rejected": f"{i} + 1 = {i + 2 + i % 4}"}
            for i in range(20)]  # fmt: skip
    dataset = write_rows(tmp_path / "pairs.jsonl", rows)
    out = tmp_path / "out"
    results = run_calibrate(scorer_dir, dataset, out, "--seed", "1")
    raw = journal_scores(out)
    fit_rows, _ = split_rows(rows, "pairs", 0.5, 1)
    expected = fit_temperature([raw[i][0] - raw[i][1] for i in fit_rows], [1] * len(fit_rows), fit_bias=False)
    assert results["target"] == "pair" and results["fit"]["bias"] == 0.0
    assert results["fit"]["scale"] == expected.scale
    assert results["heldout"]["after"]["n"] == 2 * results["fitted_on"]["heldout_points"]  # both orders

    # a rerun scores nothing: every row is in the journal; --dry-run leaves the manifest as it is
    before = (scorer_dir / "reward_model.json").read_bytes()
    monkeypatch.setattr(
        calibrate, "score_chunk", lambda *a, **k: pytest.fail("a journalled row was re-scored")
    )
    again = run_calibrate(scorer_dir, dataset, out, "--seed", "1", "--dry-run")
    assert again["fit"] == results["fit"] and again["manifest"].startswith("not written (--dry-run)")
    assert (scorer_dir / "reward_model.json").read_bytes() == before


def test_refusals(bt_dir, tmp_path, capsys):
    scorer = rewardmodels.load_scorer(bt_dir, device="cpu")  # no calibration in its manifest
    with pytest.raises(ValueError, match="no `calibration`; fit one first with `rewardmodels calibrate"):
        scorer.as_reward_func(calibrated=True)
    scorer.manifest = {**scorer.manifest, "calibration": {"scale": 1.0, "bias": 0.0, "score": "logit",
                                                           "target": "response"}}  # fmt: skip
    with pytest.raises(ValueError, match="calibrated and normalize exclude each other"):
        scorer.as_reward_func(calibrated=True, normalize=True)
    write_rows(tmp_path / "in.jsonl", [{"prompt": "p", "response": "r"}])
    code = cli_main(["score", str(bt_dir), "-i", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "o.jsonl"),
                     "--calibrated"])  # fmt: skip
    assert (
        code == 2
        and "field 'calibration': calibrated: this bt scorer's manifest has no" in capsys.readouterr().err
    )
    with serving(rewardmodels.load_scorer(bt_dir, device="cpu")) as (url, _):
        status, body, _ = call(f"{url}/score", {"prompts": ["p"], "responses": ["r"], "calibrated": True})
        assert status == 400 and "no `calibration`" in body["error"]
    with pytest.raises(ValueError, match="squash them twice"):  # sigmoid of a probability
        ServerSettings(options=RewardOptions(calibrated=True), openrlhf_scores="sigmoid").check()


def test_a_bad_row_is_reported_before_the_scorer_loads(tmp_path, capsys):
    # a manifest without weights: loading it would fail, so an error naming the row proves the rows came first
    (tmp_path / "scorer").mkdir()
    write_json(tmp_path / "scorer" / "reward_model.json", {"kind": "bt"})
    rows = [{"prompt": "p", "completion": "c", "label": 1}, {"prompt": "q", "completion": "c", "label": 0.3}]
    dataset = write_rows(tmp_path / "d.jsonl", rows)
    code = cli_main(["calibrate", str(tmp_path / "scorer"), "--dataset", str(dataset), "--output-dir",
                     str(tmp_path / "out")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and f"{dataset}, line 2, field 'label': soft label" in err


class CalibratedSteps(StepScorer):
    """StepScorer (P(step) = 1 / (1 + words)) with a stored step fit: a = 2, b = 0 on z = logit(p)."""

    step_score_scale = "probability"
    manifest = {"calibration": {"scale": 2.0, "bias": 0.0, "score": "probability", "target": "step"}}


def test_a_step_fit_calibrates_steps_and_their_min():
    # steps "one two" (p = 1/3) and "three" (p = 1/2): z = log(1/2) and 0; a = 2 -> sigmoid(2 log(1/2)) = 1/5
    # and sigmoid(0) = 1/2. min of the calibrated steps = 1/5 = calibrated min.
    scorer = CalibratedSteps()
    reward = reward_function(scorer, aggregation="min", calibrated=True)
    assert reward(["p"], ["one two\n\nthree"]) == pytest.approx([1 / 5], abs=1e-12)
    with pytest.raises(ValueError, match="fitted on step scores"):
        reward_function(scorer, calibrated=True)  # the response score is another quantity
    with pytest.raises(ValueError, match="min or last"):
        reward_function(scorer, aggregation="mean", calibrated=True)
    with serving(scorer, options=RewardOptions(aggregation="min", calibrated=True)) as (url, _):
        status, body, _ = call(f"{url}/score_steps", {"prompts": ["p"], "steps": [["one two", "three"]],
                                                      "aggregation": "prod"})  # fmt: skip
        # calibrated steps 1/5 and 1/2, then aggregated: prod = 1/10
        assert status == 200 and body["calibrated"] is True
        assert body["step_scores"] == [pytest.approx([1 / 5, 1 / 2], abs=1e-12)]
        assert body["scores"] == pytest.approx([1 / 10], abs=1e-12)
        status, body, _ = call(f"{url}/score", {"prompts": ["p"], "responses": ["one two\n\nthree"]})
        assert body["scores"] == pytest.approx([1 / 5], abs=1e-12)


tiny_prm_scorer = rl_fixtures.tiny_prm_scorer  # the fixture, for this module


def test_processbench_rows_fit_a_prm_on_its_step_probabilities(tiny_prm_scorer, tmp_path):
    scorer_dir = fresh_copy(tiny_prm_scorer, tmp_path)
    rows = [{"problem": f"Compute {i} + {j}.", "steps": [f"{i} + {j} = {i + j + k}", f"Answer: {i + j + k}"],
             "label": [-1, 0, 1][(i + j) % 3]} for i in range(6) for j in range(2) for k in (0, 2)]  # fmt: skip
    dataset = write_rows(tmp_path / "pb.jsonl", rows)
    results = run_calibrate(scorer_dir, dataset, tmp_path / "out")
    assert (results["target"], results["source"], results["score_scale"]) == (
        "step",
        "score_steps",
        "probability",
    )
    # the fit is fit_temperature of logit(p) of the labelled steps of the fit rows: 1 before the error, 0 at it
    raw = journal_scores(tmp_path / "out")
    fit_rows, _ = split_rows(rows, "processbench", 0.5, 0)
    z, y = [], []
    for i in fit_rows:
        label = rows[i]["label"]
        for k, p in enumerate(raw[i][: len(rows[i]["steps"]) if label == -1 else label + 1]):
            z.append(math.log(p / (1 - p)))
            y.append(int(label == -1 or k < label))
    expected = fit_temperature(z, y)
    a, b = results["fit"]["scale"], results["fit"]["bias"]
    assert (a, b) == pytest.approx((expected.scale, expected.bias), abs=1e-9)

    # a step fit rewards through min: sigmoid(a logit(min_k p_k) + b), as the server's /score gives it
    scorer = rewardmodels.load_scorer(scorer_dir, device="cpu")
    prompts, responses = ["Compute 1 + 2."] * 2, ["1 + 2 = 3\n\nAnswer: 3", "1 + 2 = 4\n\nAnswer: 4"]
    steps_min = [min(s) for s in scorer.score_steps(prompts, [r.split("\n\n") for r in responses])]
    expected_p = by_hand(a, b, [math.log(p / (1 - p)) for p in steps_min])
    reward = scorer.as_reward_func(aggregation="min", calibrated=True)
    assert reward(prompts, responses) == pytest.approx(expected_p, abs=1e-6)
    with serving(scorer, options=RewardOptions(aggregation="min", calibrated=True)) as (url, _):
        status, body, _ = call(f"{url}/score", {"prompts": prompts, "responses": responses})
        assert status == 200 and body["scores"] == pytest.approx(expected_p, abs=1e-6)


def test_a_fit_with_a_negative_scale_is_reported_not_stored(bt_dir, tmp_path):
    """Labels that fall as the score rises: the fitted scale is < 0, and storing it would make a calibrated
    reward invert the scorer, so the manifest keeps no fit and results.json says why."""
    scorer_dir = fresh_copy(bt_dir, tmp_path)
    rows = outcome_rows()
    probe = run_calibrate(
        scorer_dir, write_rows(tmp_path / "probe.jsonl", rows), tmp_path / "probe", "--dry-run"
    )
    raw = journal_scores(tmp_path / "probe")
    order = sorted(range(len(rows)), key=lambda i: raw[i][0])
    for rank, i in enumerate(order):  # the lower half labelled 1, every fourth rank flipped (not separable)
        rows[i]["label"] = int((rank < len(rows) // 2) != (rank % 4 == 1))
    before = (scorer_dir / "reward_model.json").read_bytes()
    results = run_calibrate(scorer_dir, write_rows(tmp_path / "inverse.jsonl", rows), tmp_path / "out")
    assert probe["fit"]["scale"] != results["fit"]["scale"]
    assert results["fit"]["scale"] < 0.0
    assert results["manifest"].startswith("not written: the fitted scale")
    assert (scorer_dir / "reward_model.json").read_bytes() == before
