"""Readers for every format, errors that name file/line/field, atomic writes, and a fuzzer."""

import csv
import gzip
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewardkit.data.io import iter_raw, read_records, write_records
from rewardkit.data.records import normalize_record
from rewardkit.errors import DataError

PAIR = {"prompt": "What is 2+2?", "chosen": "4", "rejected": "5", "category": "math"}
RANKING = {"prompt": "Pick one", "responses": ["a", "b", "c"], "ranking": [2, 1, 2]}
RATING = {"prompt": "Rate", "response": "ok", "score": 3, "annotator": "x"}
STEPWISE = {"prompt": "2*3+1?", "steps": ["2*3=6", "6+1=8"], "labels": [True, False]}


def test_jsonl_json_and_gzip(tmp_path):
    rows = [PAIR, RANKING, RATING, STEPWISE]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "a.json").write_text(json.dumps(rows))
    with gzip.open(tmp_path / "a.jsonl.gz", "wt") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))
    for name in ("a.jsonl", "a.json", "a.jsonl.gz"):
        records = read_records(tmp_path / name).records
        assert [r["kind"] for r in records] == ["pairwise", "ranking", "rating", "stepwise"]
        assert records[1]["best"] == 1  # derived from the single rank-1 response


def test_csv_decodes_json_columns(tmp_path):
    path = tmp_path / "a.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["prompt", "chosen", "rejected", "margin"])
        w.writerow(["q", "good, with a comma", "bad", "1.5"])
    (record,) = read_records(path).records
    assert record["chosen"] == "good, with a comma" and record["margin"] == 1.5


def test_parquet_and_save_to_disk_directory(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list([PAIR, {**PAIR, "chosen": "four"}])
    ds.to_parquet(str(tmp_path / "a.parquet"))
    ds.save_to_disk(str(tmp_path / "saved"))
    for path in (tmp_path / "a.parquet", tmp_path / "saved"):
        records = read_records(path).records
        assert [r["chosen"] for r in records] == ["4", "four"]


def test_conversations_and_implicit_prompt():
    conv = normalize_record({
        "chosen": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello!"}],
        "rejected": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "go away"}]})
    assert conv["prompt"] == [{"role": "user", "content": "hi"}]
    assert conv["chosen"] == [{"role": "assistant", "content": "hello!"}]
    text = normalize_record({"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "\n\nHuman: hi\n\nAssistant: no"})
    assert text["prompt"] == "\n\nHuman: hi\n\nAssistant:" and text["chosen"] == " hello"


@pytest.mark.parametrize("row, field, words", [
    ({"prompt": "p", "chosen": "a"}, "rejected", "missing"),
    ({"prompt": "p", "chosen": 3, "rejected": "b"}, "chosen", "string or a list"),
    ({"prompt": "p", "chosen": "a", "rejected": "b", "margin": "big"}, "margin", "number"),
    ({"prompt": "p", "responses": ["a", "b"], "best": 2}, "best", "index"),
    ({"prompt": "p", "responses": ["a", "b"], "ranking": [1, 1, 2]}, "ranking", "one rank per response"),
    ({"prompt": "p", "response": "r"}, "score", "needs 'score'"),
    ({"prompt": "p", "steps": ["a", "b"], "labels": [True]}, "labels", "one label per step"),
    ({"prompt": "p", "chosen": [{"role": "robot", "content": "x"}], "rejected": "b"}, "chosen", "role"),
])
def test_errors_name_file_line_and_field(tmp_path, row, field, words):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(PAIR) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(DataError) as err:
        read_records(path)
    assert err.value.line == 2 and err.value.field == field
    assert str(path) in str(err.value) and "line 2" in str(err.value) and words in str(err.value)


def test_invalid_json_and_unknown_format(tmp_path):
    (tmp_path / "x.jsonl").write_text(json.dumps(PAIR) + "\n{oops\n")
    with pytest.raises(DataError, match="line 2: invalid JSON"):
        read_records(tmp_path / "x.jsonl")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(DataError, match="unknown file type"):
        read_records(tmp_path / "x.txt")
    with pytest.raises(DataError, match="file not found"):
        read_records(tmp_path / "missing.jsonl")


def test_skip_invalid_counts_every_reject(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join([json.dumps(PAIR), json.dumps({"chosen": "a"}), json.dumps(RATING), "[1]"]) + "\n")
    result = read_records(path, skip_invalid=True)
    assert len(result.records) == 2
    assert [(r.line, r.field) for r in result.rejects] == [(2, "rejected"), (4, None)]


def test_write_is_atomic_on_failure(tmp_path):
    out = tmp_path / "out.jsonl"

    def records():
        yield PAIR
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_records(out, records())
    assert not out.exists() and list(tmp_path.iterdir()) == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".jsonl", ".json", ".csv", ".jsonl.gz", ".parquet"]))
def test_fuzz_readers_raise_only_data_error(tmp_path, data, suffix):
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    try:
        for n, raw in iter_raw(path):
            normalize_record(raw, str(path), n)
    except DataError:
        pass


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)
keys = st.sampled_from(["prompt", "chosen", "rejected", "responses", "ranking", "best", "response", "score", "scores",
                        "steps", "labels", "margin", "tie", "kind", "annotator_labels", "role", "content"])


@settings(max_examples=400, deadline=None)
@given(record=st.dictionaries(keys, json_values, max_size=6))
def test_fuzz_schema_raises_only_data_error(record):
    try:
        normalize_record(record, "fuzz", 1)
    except DataError as err:
        assert err.line == 1
