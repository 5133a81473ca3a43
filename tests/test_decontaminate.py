"""Decontamination: exact prompt match and word 13-gram overlap against evaluation files (planted overlaps)."""

from __future__ import annotations

import json

import pytest

from rewardmodels.data_builders.decontaminate import (
    build_index,
    detect_prompt_field,
    ngram_texts,
    normalise,
    resolve_evals,
    words,
)
from rewardmodels.errors import InputError

# Three evaluation prompts, each longer than 13 words.
EVAL_EXACT = "What is the capital city of France, and why did it become the capital of the country?"
EVAL_GRAM = (
    "A farmer has seventeen sheep and all but nine run away through a hole in the old wooden fence; "
    "how many sheep does the farmer have left at the end of the day?"
)
EVAL_TWELVE = (
    "Explain in plain words how a rainbow forms after the summer storm passes over the quiet green valley "
    "near the river"
)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_words_and_ngrams_normalise_case_and_punctuation():
    assert words("Hello,   WORLD! it's 3.5") == ["hello", "world", "it", "s", "3", "5"]
    assert normalise("  Hello\n\tWORLD  ") == "hello world"
    # 4 words give 4 - 3 + 1 = 2 trigrams, and none of 5 words
    assert ngram_texts(["a", "b", "c", "d"], 3) == ["a b c", "b c d"]
    assert ngram_texts(["a", "b"], 5) == []


def test_planted_overlaps_are_found_and_a_twelve_gram_is_not(tmp_path):
    evals = write_jsonl(
        tmp_path / "bench.jsonl",
        [{"prompt": EVAL_EXACT}, {"prompt": EVAL_GRAM}, {"prompt": EVAL_TWELVE}],
    )
    index = build_index(resolve_evals([str(evals)], tmp_path))
    twelve = words(EVAL_TWELVE)[3:15]  # "words how a rainbow ... passes over the": 15 - 3 = 12 words
    assert len(twelve) == 12
    thirteen = words(EVAL_GRAM)[5:18]  # 13 words from the middle of the second prompt
    pairs = [
        # 0: the first evaluation prompt with other case, spacing and line breaks: an exact match
        {
            "prompt": "  what is the CAPITAL city of france,\nand why did it become the capital of the country?"
        },
        # 1: 13 consecutive words of the second one, inside a longer prompt of other words
        {"prompt": "Here is my homework question. " + " ".join(thirteen) + " Please help me quickly today."},
        # 2: only 12 consecutive words of the third, with different words on both sides: no match
        {"prompt": "Tell me: " + " ".join(twelve) + " mountain lake, please."},
        # 3: shares no long run with any of them
        {"prompt": "Write a haiku about the sea."},
    ]
    found = [index.find({**p, "chosen": "x", "rejected": "y"}) for p in pairs]
    assert [len(f) for f in found] == [1, 1, 0, 0]
    assert (found[0][0].kind, found[0][0].eval, found[0][0].eval_row) == ("exact", "bench", 1)
    assert (found[1][0].kind, found[1][0].eval_row, found[1][0].field) == ("13-gram", 2, "prompt")
    assert found[1][0].matched == " ".join(thirteen)
    # the 12-gram row does match once n is 12: the test above fails for the right reason
    assert len(build_index(resolve_evals([str(evals)], tmp_path), n=12).find(pairs[2])) == 1


def test_chat_message_prompts_and_responses(tmp_path):
    evals = write_jsonl(
        tmp_path / "bench.jsonl",
        [{"problem": "Short one.", "solution": EVAL_GRAM, "chosen": ["first answer", "second answer"]}],
    )
    sources = resolve_evals([str(evals)], tmp_path)
    pair = {
        "prompt": [{"role": "user", "content": "short ONE."}],  # messages: their text is matched
        "chosen": "I recall: " + EVAL_GRAM,
        "rejected": "Second   answer",
    }
    found = build_index(sources, with_responses=True).find(pair, check_responses=True)
    assert sorted((o.field, o.kind) for o in found) == [
        ("chosen", "13-gram"),
        ("prompt", "exact"),
        ("rejected", "exact"),
    ]
    # responses are checked only when asked
    assert [o.field for o in build_index(sources).find(pair)] == ["prompt"]


def test_builtin_names_resolve_in_the_eval_folder(tmp_path):
    write_jsonl(
        tmp_path / "rewardbench_sample.jsonl", [{"prompt": EVAL_EXACT, "chosen": "a", "rejected": "b"}]
    )
    # a RewardBench v2 file in its published format: chosen and rejected are lists of strings
    write_jsonl(
        tmp_path / "reward-bench-2.jsonl",
        [{"id": "1", "prompt": EVAL_GRAM, "chosen": ["c"], "rejected": ["r1", "r2", "r3"], "subset": "Math"}],
    )
    (tmp_path / "math500.jsonl").write_text(json.dumps({"problem": EVAL_TWELVE}) + "\n")
    sources = resolve_evals(["rewardbench", "math500"], tmp_path)
    assert [(s.name, s.path.name) for s in sources] == [
        ("rewardbench", "reward-bench-2.jsonl"),
        ("rewardbench", "rewardbench_sample.jsonl"),
        ("math500", "math500.jsonl"),
    ]
    index = build_index(sources)
    assert index.rows == {"rewardbench": 2, "math500": 1}
    assert [o.eval for o in index.find({"prompt": EVAL_TWELVE})] == ["math500"]
    with pytest.raises(InputError, match="no file for the built-in evaluation set 'processbench'"):
        resolve_evals(["processbench"], tmp_path)
    with pytest.raises(InputError, match="not a built-in evaluation set"):
        resolve_evals(["nothing-here.jsonl"], tmp_path)


def test_eval_files_without_a_prompt_are_refused_by_name(tmp_path):
    bad = write_jsonl(tmp_path / "odd.jsonl", [{"text": "hello"}])
    with pytest.raises(
        InputError, match=r"odd.jsonl: no prompt field: expected one of prompt, problem, question"
    ):
        build_index(resolve_evals([str(bad)], tmp_path))
    gap = write_jsonl(tmp_path / "gap.jsonl", [{"question": "fine"}, {"question": None}])
    with pytest.raises(InputError) as e:
        build_index(resolve_evals([str(gap)], tmp_path))
    assert (e.value.line, e.value.field) == (2, "question")
    assert detect_prompt_field([{"problem": "p", "question": "q"}], "f") == "problem"
