"""The resumable evaluation journal: append and read back, torn and corrupt lines, settings fingerprints."""

from __future__ import annotations

import json

import pytest

from rewardmodels.eval.journal import Journal, settings_path_for


def key(record: dict) -> tuple[str, str]:
    return record["subset"], record["id"]


def test_appended_records_are_read_back_by_key(tmp_path):
    path = tmp_path / "j.jsonl"
    journal = Journal(path, {"scorer": "a"}, key)
    assert len(journal) == 0 and settings_path_for(path).exists()
    journal.append([{"id": "1", "subset": "s", "v": 0.5}, {"id": "2", "subset": "s", "v": float("nan")}])
    journal.append([{"id": "1", "subset": "t", "v": 2.0}])
    assert ("s", "1") in journal and ("t", "1") in journal
    again = Journal(path, {"scorer": "a"}, key)
    assert sorted(again.done) == [("s", "1"), ("s", "2"), ("t", "1")]
    assert again.done[("s", "1")] == {"id": "1", "subset": "s", "v": 0.5}
    assert len(path.read_text().splitlines()) == 3


def test_a_torn_last_line_is_cut_off_and_a_corrupt_one_is_an_error(tmp_path):
    path = tmp_path / "j.jsonl"
    Journal(path, {}, key).append([{"id": "1", "subset": "s"}])
    with open(path, "a") as f:
        f.write('{"id": "2", "sub')  # the process died mid-write
    journal = Journal(path, {}, key)
    assert list(journal.done) == [("s", "1")]
    assert path.read_text() == json.dumps({"id": "1", "subset": "s"}) + "\n"  # the torn bytes are gone
    journal.append([{"id": "2", "subset": "s"}])
    assert len(Journal(path, {}, key)) == 2

    with open(path, "a") as f:
        f.write('{"no key": 1}\n')
    with pytest.raises(ValueError, match=r"line 3 is corrupt"):
        Journal(path, {}, key)


def test_other_settings_are_refused_unless_overwrite(tmp_path):
    path = tmp_path / "j.jsonl"
    Journal(path, {"scorer": "a", "options": (1, 2)}, key).append([{"id": "1", "subset": "s"}])
    # the same settings as JSON stores them (a tuple comes back as a list; key order does not matter)
    assert len(Journal(path, {"options": [1, 2], "scorer": "a"}, key)) == 1
    with pytest.raises(ValueError, match="different evaluation"):
        Journal(path, {"scorer": "b", "options": [1, 2]}, key)
    fresh = Journal(path, {"scorer": "b"}, key, overwrite=True)
    assert len(fresh) == 0 and not path.exists()
    assert json.loads(settings_path_for(path).read_text()) == {"scorer": "b"}


def test_a_journal_without_settings_is_not_taken_over(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_text(json.dumps({"id": "1", "subset": "s"}) + "\n")
    with pytest.raises(ValueError, match="not written by this tool"):
        Journal(path, {}, key)
    assert len(Journal(path, {}, key, overwrite=True)) == 0


def test_settings_can_live_elsewhere(tmp_path):
    path, settings = tmp_path / "examples.jsonl", tmp_path / ".run.json"
    Journal(path, {"m": 1}, key, settings_path=settings).append([{"id": 1, "subset": "s"}])
    assert settings.exists() and not settings_path_for(path).exists()
    assert len(Journal(path, {"m": 1}, key, settings_path=settings)) == 1
