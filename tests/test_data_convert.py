"""Every converter on a small fixture in the public set's native layout."""

import gzip
import json
from collections import Counter

import pytest

from rewardkit.data.convert import convert
from rewardkit.errors import DataError

MSG = [{"role": "user", "content": "hi", "language": "English"}]


def write(path, data, gz=False, lines=False):
    text = "".join(json.dumps(r) + "\n" for r in data) if lines else json.dumps(data)
    if gz:
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


def test_hh_rlhf_splits_at_last_assistant_turn(tmp_path):
    row = {"chosen": "\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant: good",
           "rejected": "\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant: bad"}
    diverged = {"chosen": "\n\nHuman: q\n\nAssistant: x\n\nHuman: more\n\nAssistant: y",
                "rejected": "\n\nHuman: q\n\nAssistant: z"}
    notes = Counter()
    out = list(convert("hh-rlhf", write(tmp_path / "hh.jsonl.gz", [row, diverged], gz=True, lines=True), notes=notes))
    assert out[0]["prompt"] == [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                                {"role": "user", "content": "c"}]
    assert (out[0]["chosen"], out[0]["rejected"]) == ("good", "bad")
    assert out[1]["prompt"] == [{"role": "user", "content": "q"}]  # split at the last shared turn, counted
    assert sum(notes.values()) == 1


def test_llmbar_label_two_and_category(tmp_path):
    out = list(convert("llmbar", write(tmp_path / "natural.json", [{"input": "i", "output_1": "x", "output_2": "y", "label": 2}])))
    assert (out[0]["chosen"], out[0]["rejected"], out[0]["category"]) == ("y", "x", "natural")


def test_offsetbias(tmp_path):
    data = {"length bias": [{"instruction": "i", "response1": "r1", "response2": "r2", "label": 1}]}
    (r,) = convert("offsetbias", write(tmp_path / "b.json", data))
    assert (r["chosen"], r["category"]) == ("r1", "length bias")


def test_rmb_pairwise_and_bon(tmp_path):
    pair = {"pair_uid": "7", "conversation_input": MSG, "chosen": {"answer": "c"}, "reject": {"answer": "r"},
            "category_path": "Harmlessness/S1"}
    (p,) = convert("rmb-pairwise", write(tmp_path / "p.json", [pair]))
    assert p["prompt"] == [{"role": "user", "content": "hi"}] and p["id"] == "7" and p["rejected"] == "r"
    bon = {"conversation_input": MSG, "bon_best": {"answer": "best"}, "loser_list": [{"answer": "l1"}, {"answer": "l2"}]}
    (b,) = convert("rmb-bon", write(tmp_path / "b.json", [bon]))
    assert b["kind"] == "ranking" and b["responses"] == ["best", "l1", "l2"] and b["best"] == 0 and b["ranking"] == [1, 2, 2]


def test_rm_bench_nine_pairs_with_styles(tmp_path):
    row = {"id": 1, "prompt": "p", "chosen": ["c0", "c1", "c2"], "rejected": ["r0", "r1", "r2"], "subset": "s"}
    out = list(convert("rm-bench", write(tmp_path / "chat.json.gz", [row], gz=True)))
    assert len(out) == 9
    assert {(r["chosen_style"], r["rejected_style"]) for r in out} >= {("concise", "detailed_markdown")}
    assert out[5]["chosen"] == "c1" and out[5]["rejected"] == "r2" and out[0]["category"] == "chat"


def test_judgebench_keeps_ties(tmp_path):
    rows = [{"question": "q", "response_A": "a", "response_B": "b", "label": "B>A", "source": "mmlu-pro-law"},
            {"question": "q2", "response_A": "a", "response_B": "b", "label": "A=B"}]
    out = list(convert("judgebench", write(tmp_path / "j.jsonl", rows, lines=True)))
    assert out[0]["chosen"] == "b" and out[0]["category"] == "knowledge" and out[1]["tie"] is True


def test_processbench_and_prmbench_step_labels(tmp_path):
    rows = [{"id": "g-0", "problem": "p", "steps": ["a", "b", "c"], "label": 1},
            {"id": "g-1", "problem": "p", "steps": ["a", "b"], "label": -1}]
    out = list(convert("processbench", write(tmp_path / "gsm8k.json", rows)))
    assert out[0]["labels"] == [True, False, False] and out[1]["labels"] == [True, True]
    prm = {"modified_question": "q", "modified_process": ["s1", "s2", "s3"], "error_steps": [2], "classification": "circular"}
    (r,) = convert("prmbench", write(tmp_path / "prm.jsonl", [prm], lines=True))
    assert r["labels"] == [True, False, True] and r["category"] == "circular"
    prm.update(original_question="q", original_process=["s1", "s2 as first written", "s3"])
    (o,) = convert("prmbench-original", write(tmp_path / "prm2.jsonl", [prm], lines=True))
    assert o["steps"] == prm["original_process"] and o["labels"] == [True] * 3 and o["category"] == "original"


def test_sharegpt_and_stack_exchange(tmp_path):
    row = {"conversations": [{"from": "system", "value": "be nice"}, {"from": "human", "value": "hi"}],
           "chosen": {"from": "gpt", "value": "hello"}, "rejected": {"from": "gpt", "value": "bye"}}
    (r,) = convert("sharegpt", write(tmp_path / "s.json", [row]))
    assert r["prompt"][1] == {"role": "user", "content": "hi"} and r["chosen"] == "hello"
    (s,) = convert("stack-exchange-paired", write(tmp_path / "se.json", [{"question": "q", "response_j": "j", "response_k": "k"}]))
    assert (s["chosen"], s["rejected"]) == ("j", "k")


def test_bad_source_row_names_line_and_skip_invalid_counts(tmp_path):
    rows = [{"input": "i", "output_1": "x", "output_2": "y", "label": 1}, {"input": "i", "output_1": "x", "label": 1},
            {"input": "i", "output_1": "x", "output_2": "y", "label": 3}]
    path = write(tmp_path / "l.json", rows)
    with pytest.raises(DataError) as err:
        list(convert("llmbar", path))
    assert err.value.line == 2 and err.value.field == "output_2"
    rejects = []
    out = list(convert("llmbar", path, skip_invalid=True, rejects=rejects))
    assert len(out) == 1 and [(r.line, r.field) for r in rejects] == [(2, "output_2"), (3, "label")]
