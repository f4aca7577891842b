"""Converters from the native layouts of public preference sets to rewardkit records.

Each converter reads one file (or a directory of files) and yields (location, raw record) pairs; the
caller validates them with `normalize_record`, so a malformed source row is reported with its location
like any other bad input. Special cases that change nothing silently are counted in `notes`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rewardkit.data.io import Reject, _open_text, iter_raw
from rewardkit.data.records import normalize_record
from rewardkit.errors import DataError

RawRows = Iterator[tuple[int, Any]]
HH_ASSISTANT = "\n\nAssistant:"
RM_BENCH_STYLES = ("concise", "detailed_plain", "detailed_markdown")
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "system": "system", "function_call": "assistant", "observation": "tool"}


def _files(path: Path) -> list[Path]:
    """A file, or every .json/.jsonl(.gz) file under a directory in a stable order."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith((".json", ".jsonl", ".json.gz", ".jsonl.gz")))
        if not files:
            raise DataError("no .json/.jsonl files in the directory", source=str(path))
        return files
    return [path]


# ---------------------------------------------------------------- one function per layout
# Each takes one source row and its file, and returns the rewardkit records it becomes. They raise
# DataError (without location; the caller adds it) for rows they cannot convert.

def _fields(row: Any, *keys: str) -> dict:
    if not isinstance(row, dict):
        raise DataError(f"expected a JSON object, got {type(row).__name__}")
    for key in keys:
        if key not in row:
            raise DataError("is missing", field=key)
    return row


def _answer(value: Any, field: str) -> str:
    if isinstance(value, dict) and isinstance(value.get("answer"), str):
        return value["answer"]
    raise DataError("must be an object with a string 'answer'", field=field)


def _messages(conversation: Any, field: str) -> list[dict]:
    if not isinstance(conversation, list) or not conversation or not all(isinstance(m, dict) for m in conversation):
        raise DataError("must be a non-empty list of message objects", field=field)
    return [{"role": m.get("role"), "content": m.get("content")} for m in conversation]


def _better_worse(label: Any, first: str, second: str) -> tuple[str, str]:
    if label not in (1, 2):
        raise DataError(f"must be 1 or 2, got {label!r}", field="label")
    return (first, second) if label == 1 else (second, first)


def hh_transcript_to_messages(transcript: str) -> list[dict]:
    """'\\n\\nHuman: a\\n\\nAssistant: b' -> [{user: a}, {assistant: b}]."""
    messages: list[dict] = []
    for chunk in transcript.split("\n\nHuman:")[1:] if "\n\nHuman:" in transcript else [transcript]:
        human, *assistant_turns = chunk.split(HH_ASSISTANT)
        messages.append({"role": "user", "content": human.strip()})
        messages.extend({"role": "assistant", "content": turn.strip()} for turn in assistant_turns)
    return messages


def hh_rlhf(row: Any, file: Path, notes: Counter) -> list[dict]:
    """Anthropic HH-RLHF: whole transcripts; the prompt ends at the last '\\n\\nAssistant:'."""
    row = _fields(row, "chosen", "rejected")
    chosen, rejected = row["chosen"], row["rejected"]
    if not isinstance(chosen, str) or not isinstance(rejected, str):
        raise DataError("chosen and rejected must be transcripts (strings)", field="chosen")
    cut = chosen.rfind(HH_ASSISTANT)
    if cut < 0:
        raise DataError("no '\\n\\nAssistant:' turn in the transcript", field="chosen")
    prompt = chosen[: cut + len(HH_ASSISTANT)]
    if not rejected.startswith(prompt):
        # The transcripts diverge before the last turn: split at the last assistant turn they share.
        notes["prompt differs between chosen and rejected: split at the last shared turn"] += 1
        shared = 0
        while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
            shared += 1
        cut = chosen[:shared].rfind(HH_ASSISTANT)
        if cut < 0:
            raise DataError("chosen and rejected share no assistant turn", field="rejected")
        prompt = chosen[: cut + len(HH_ASSISTANT)]
    return [{"prompt": hh_transcript_to_messages(prompt[: -len(HH_ASSISTANT)]),
             "chosen": chosen[len(prompt):].strip(), "rejected": rejected[len(prompt):].strip()}]


def llmbar(row: Any, file: Path, notes: Counter) -> list[dict]:
    """LLMBar: input, output_1, output_2, label (1 or 2). Category = file name (natural, adversarial-*)."""
    row = _fields(row, "input", "output_1", "output_2", "label")
    better, worse = _better_worse(row["label"], "output_1", "output_2")
    return [{"prompt": row["input"], "chosen": row[better], "rejected": row[worse],
             "category": file.name.split(".")[0]}]


def offsetbias(row: Any, file: Path, notes: Counter) -> list[dict]:
    """OffsetBias biasbench: {bias type: [instruction, response1, response2, label]} (flattened by its reader)."""
    row = _fields(row, "instruction", "response1", "response2", "label")
    better, worse = _better_worse(row["label"], "response1", "response2")
    return [{"prompt": row["instruction"], "chosen": row[better], "rejected": row[worse], "category": row.get("bias")}]


def rmb_pairwise(row: Any, file: Path, notes: Counter) -> list[dict]:
    """RMB pairwise: conversation_input, chosen{answer}, reject{answer}, category_path."""
    row = _fields(row, "conversation_input", "chosen", "reject")
    return [{"prompt": _messages(row["conversation_input"], "conversation_input"),
             "chosen": _answer(row["chosen"], "chosen"), "rejected": _answer(row["reject"], "reject"),
             "category": row.get("category_path", file.name.split(".")[0]), "id": row.get("pair_uid")}]


def rmb_bon(row: Any, file: Path, notes: Counter) -> list[dict]:
    """RMB best-of-N: the best answer and 2-6 losers -> a ranking record with best = 0, losers tied."""
    row = _fields(row, "conversation_input", "bon_best", "loser_list")
    losers = row["loser_list"]
    if not isinstance(losers, list) or not losers:
        raise DataError("must be a non-empty list", field="loser_list")
    responses = [_answer(row["bon_best"], "bon_best")] + [_answer(x, f"loser_list[{i}]") for i, x in enumerate(losers)]
    return [{"prompt": _messages(row["conversation_input"], "conversation_input"), "responses": responses,
             "best": 0, "ranking": [1] + [2] * len(losers),
             "category": row.get("category_path", file.name.split(".")[0]), "id": row.get("bon_uid")}]


def rm_bench(row: Any, file: Path, notes: Counter) -> list[dict]:
    """RM-Bench: 3 chosen x 3 rejected style variants -> 9 pairs, each labelled with both styles."""
    row = _fields(row, "prompt", "chosen", "rejected")
    for field in ("chosen", "rejected"):
        if not isinstance(row[field], list) or len(row[field]) != 3:
            raise DataError("must list 3 style variants", field=field)
    domain = file.name.split(".")[0]
    return [{"prompt": row["prompt"], "chosen": chosen, "rejected": rejected,
             "chosen_style": RM_BENCH_STYLES[i], "rejected_style": RM_BENCH_STYLES[j],
             "category": domain, "subset": row.get("subset"), "id": f"{domain}:{row.get('id')}:{i}{j}"}
            for i, chosen in enumerate(row["chosen"]) for j, rejected in enumerate(row["rejected"])]


def judgebench(row: Any, file: Path, notes: Counter) -> list[dict]:
    """JudgeBench: question, response_A, response_B, label 'A>B' / 'B>A' (a tie 'A=B' is kept as a tie)."""
    row = _fields(row, "question", "response_A", "response_B", "label")
    label = row["label"]
    if label not in ("A>B", "B>A", "A=B", "B=A"):
        raise DataError(f"must be 'A>B', 'B>A' or 'A=B', got {label!r}", field="label")
    better, worse = ("response_B", "response_A") if label == "B>A" else ("response_A", "response_B")
    record = {"prompt": row["question"], "chosen": row[better], "rejected": row[worse],
              "category": _judgebench_category(str(row.get("source", ""))), "id": row.get("pair_id")}
    if "=" in label:
        record["tie"] = True
        notes["ties kept as tie: true"] += 1
    return [record]


def _judgebench_category(source: str) -> str | None:
    """JudgeBench's four categories from its `source` field (mmlu-pro-* = knowledge, livecodebench = coding)."""
    if source.startswith("mmlu-pro"):
        return "knowledge"
    if source.startswith("livebench-"):
        return source.split("-", 1)[1]  # reasoning or math
    return "coding" if source.startswith("livecodebench") else source or None


def processbench(row: Any, file: Path, notes: Counter) -> list[dict]:
    """ProcessBench: label = index of the first wrong step (-1: all right) -> one label per step.

    Steps from the first error on are labelled false (later steps build on the error); `first_error`
    keeps the original index.
    """
    row = _fields(row, "problem", "steps", "label")
    steps, first = row["steps"], row["label"]
    if not isinstance(steps, list):
        raise DataError("must be a list", field="steps")
    if isinstance(first, bool) or not isinstance(first, int) or not -1 <= first < len(steps):
        raise DataError(f"must be -1 or a step index in 0..{len(steps) - 1}, got {first!r}", field="label")
    return [{"prompt": row["problem"], "steps": steps, "labels": [first == -1 or i < first for i in range(len(steps))],
             "first_error": first, "category": file.name.split(".")[0], "id": row.get("id")}]


def prmbench(row: Any, file: Path, notes: Counter) -> list[dict]:
    """PRMBench: modified_process with error_steps (1-based) -> labels false at the erroneous steps."""
    row = _fields(row, "modified_process", "error_steps")
    steps, errors = row["modified_process"], row["error_steps"]
    if not isinstance(steps, list) or not isinstance(errors, list):
        raise DataError("modified_process and error_steps must be lists", field="error_steps")
    for e in errors:
        if isinstance(e, bool) or not isinstance(e, int) or not 1 <= e <= len(steps):
            raise DataError(f"error step {e!r} is not in 1..{len(steps)}", field="error_steps")
    return [{"prompt": row.get("modified_question") or row.get("question"), "steps": steps,
             "labels": [i + 1 not in errors for i in range(len(steps))], "category": row.get("classification")}]


def prmbench_original(row: Any, file: Path, notes: Counter) -> list[dict]:
    """PRMBench: original_process, the solution its errors were injected into -> every step right (PRMBench takes
    these PRM800K solutions as correct)."""
    row = _fields(row, "original_process")
    if not isinstance(row["original_process"], list):
        raise DataError("must be a list of steps", field="original_process")
    steps = row["original_process"]
    return [{"prompt": row.get("original_question") or row.get("question"), "steps": steps,
             "labels": [True] * len(steps), "category": "original"}]


def sharegpt(row: Any, file: Path, notes: Counter) -> list[dict]:
    """LLaMA-Factory pairwise ShareGPT: conversations[{from, value}], chosen{from, value}, rejected{...}."""
    row = _fields(row, "conversations", "chosen", "rejected")
    turns = row["conversations"]
    if not isinstance(turns, list) or not turns:
        raise DataError("must be a non-empty list", field="conversations")
    prompt = []
    for m in turns:
        role = SHAREGPT_ROLES.get(m.get("from")) if isinstance(m, dict) else None
        if role is None:
            raise DataError(f"unknown speaker in {m!r:.60}", field="conversations")
        prompt.append({"role": role, "content": m.get("value")})
    out: dict = {"prompt": prompt}
    for field in ("chosen", "rejected"):
        if not isinstance(row[field], dict) or not isinstance(row[field].get("value"), str):
            raise DataError("must be an object {from, value}", field=field)
        out[field] = row[field]["value"]
    return [out]


def stack_exchange_paired(row: Any, file: Path, notes: Counter) -> list[dict]:
    """stack-exchange-paired: question, response_j (preferred), response_k."""
    row = _fields(row, "question", "response_j", "response_k")
    return [{"prompt": row["question"], "chosen": row["response_j"], "rejected": row["response_k"]}]


def _offsetbias_rows(file: Path) -> RawRows:
    with _open_text(file) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as err:
            raise DataError(f"invalid JSON: {err.msg}", source=str(file), line=err.lineno) from None
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise DataError("expected an object {bias type: [records]}", source=str(file))
    n = 0
    for bias, rows in data.items():
        for row in rows:
            n += 1
            yield n, ({"bias": bias, **row} if isinstance(row, dict) else row)


CONVERTERS: dict[str, Callable[[Any, Path, Counter], list[dict]]] = {
    "hh-rlhf": hh_rlhf,
    "llmbar": llmbar,
    "offsetbias": offsetbias,
    "rmb-pairwise": rmb_pairwise,
    "rmb-bon": rmb_bon,
    "rm-bench": rm_bench,
    "judgebench": judgebench,
    "processbench": processbench,
    "prmbench": prmbench,
    "prmbench-original": prmbench_original,
    "sharegpt": sharegpt,
    "stack-exchange-paired": stack_exchange_paired,
}
READERS: dict[str, Callable[[Path], RawRows]] = {"offsetbias": _offsetbias_rows}


def convert(fmt: str, path: str | Path, skip_invalid: bool = False, rejects: list[Reject] | None = None,
            notes: Counter | None = None) -> Iterator[dict]:
    """Yield validated rewardkit records from a public set's native layout (a file or a directory)."""
    if fmt not in CONVERTERS:
        raise DataError(f"unknown format {fmt!r}; choose from {', '.join(CONVERTERS)}")
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", source=str(path))
    notes = notes if notes is not None else Counter()
    row_to_records, read = CONVERTERS[fmt], READERS.get(fmt, iter_raw)
    for file in _files(path):
        for n, row in read(file):
            try:
                out = [normalize_record(r) for r in row_to_records(row, file, notes)]
            except DataError as err:
                if not skip_invalid:
                    raise DataError(err.message, source=str(file), line=n, field=err.field) from None
                if rejects is not None:
                    rejects.append(Reject(str(file), n, err.field, err.message, row))
                continue
            for i, record in enumerate(out):
                if record.get("id") is None:
                    record["id"] = f"{file.name}:{n}" + (f":{i}" if len(out) > 1 else "")
                else:
                    record["id"] = str(record["id"])
                yield record
