"""Reading and writing record files.

Readers stream where the format allows (JSON Lines, CSV, Parquet row groups, Arrow record batches)
and raise only `DataError`, naming the file and line. Writers are atomic: they write a temporary
file beside the target and rename it, so a failed command never leaves a partial output.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewardkit.data.records import normalize_record
from rewardkit.errors import DataError

TEXT_SUFFIXES = (".jsonl", ".json", ".csv")
# Cells of a CSV are strings; these columns hold JSON values (numbers, lists, objects) instead.
CSV_JSON_COLUMNS = {"margin", "score", "scores", "best", "ranking", "labels", "steps", "responses", "tie",
                    "annotator_labels", "chosen_score", "rejected_score"}


def _format_of(path: Path) -> str:
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "state.json").exists():
            return "arrow-dir"
        raise DataError("is a directory but not one written by datasets.Dataset.save_to_disk", source=str(path))
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for suffix in (".jsonl", ".json", ".csv", ".parquet"):
        if name.endswith(suffix):
            return suffix[1:]
    raise DataError("unknown file type; expected .jsonl, .json, .csv (optionally .gz), .parquet or a "
                    "datasets.save_to_disk directory", source=str(path))


@contextmanager
def _open_text(path: Path):
    try:
        raw = gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")
    except FileNotFoundError:
        raise DataError("file not found", source=str(path)) from None
    except OSError as err:
        raise DataError(f"cannot open: {err.strerror or err}", source=str(path)) from None
    with raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
        yield text


def iter_raw(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield (line or record number, raw value) from a file, 1-based, without validating."""
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", source=str(path))
    fmt = _format_of(path)
    try:
        if fmt == "jsonl":
            yield from _iter_jsonl(path)
        elif fmt == "json":
            yield from _iter_json(path)
        elif fmt == "csv":
            yield from _iter_csv(path)
        elif fmt == "parquet":
            yield from _iter_parquet(path)
        else:
            yield from _iter_arrow_dir(path)
    except DataError:
        raise
    except (UnicodeDecodeError, EOFError, zlib.error, gzip.BadGzipFile, OSError, csv.Error) as err:
        raise DataError(f"cannot read {fmt}: {err}", source=str(path)) from None
    except Exception as err:  # pyarrow raises many types; report them as data errors, not tracebacks
        if type(err).__module__.startswith("pyarrow"):
            raise DataError(f"cannot read {fmt}: {err}", source=str(path)) from None
        raise


def _iter_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    with _open_text(path) as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield n, json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"invalid JSON: {err.msg} at column {err.colno}", source=str(path), line=n) from None


def _iter_json(path: Path) -> Iterator[tuple[int, Any]]:
    with _open_text(path) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as err:
            raise DataError(f"invalid JSON: {err.msg}", source=str(path), line=err.lineno) from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]  # {"data": [...]} is a common wrapper
    if not isinstance(data, list):
        raise DataError("a .json file must hold a list of records (or {\"data\": [...]})", source=str(path))
    yield from enumerate(data, start=1)


def _iter_csv(path: Path) -> Iterator[tuple[int, Any]]:
    with _open_text(path) as f:
        reader = csv.DictReader(f)
        for row in reader:
            n = reader.line_num
            if None in row:
                raise DataError("row has more cells than the header", source=str(path), line=n)
            record = {}
            for key, cell in row.items():
                if cell is None or cell == "":
                    continue
                if key in CSV_JSON_COLUMNS or cell.lstrip().startswith("[{"):
                    try:
                        cell = json.loads(cell)
                    except json.JSONDecodeError:
                        if key in CSV_JSON_COLUMNS:
                            raise DataError(f"cell is not valid JSON: {cell[:40]!r}", source=str(path), line=n,
                                            field=key) from None
                record[key] = cell
            yield n, record


def _iter_parquet(path: Path) -> Iterator[tuple[int, Any]]:
    import pyarrow.parquet as pq

    n = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            n += 1
            yield n, row


def _iter_arrow_dir(path: Path) -> Iterator[tuple[int, Any]]:
    """Directories from datasets.Dataset.save_to_disk hold Arrow stream files listed in state.json."""
    import pyarrow as pa

    state_file = path / "state.json"
    if state_file.exists():
        state = json.loads(state_file.read_text())
        files = [path / f["filename"] for f in state.get("_data_files", [])]
    else:
        files = sorted(path.glob("*.arrow"))
    if not files:
        raise DataError("no .arrow data files in the dataset directory", source=str(path))
    n = 0
    for file in files:
        with pa.memory_map(str(file)) as source:
            for batch in pa.ipc.open_stream(source):
                for row in batch.to_pylist():
                    n += 1
                    yield n, row


# ---------------------------------------------------------------- validated reading

@dataclass
class Reject:
    source: str
    line: int | None
    field: str | None
    reason: str
    record: Any

    def as_dict(self) -> dict:
        return {"source": self.source, "line": self.line, "field": self.field, "reason": self.reason,
                "record": self.record}


@dataclass
class ReadResult:
    """The valid records of a file (iterate over it for them) and the invalid ones skipped with skip_invalid."""

    records: list[dict]
    rejects: list[Reject] = field(default_factory=list)

    def __iter__(self) -> Iterator[dict]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)


def iter_records(path: str | Path, skip_invalid: bool = False, rejects: list[Reject] | None = None) -> Iterator[dict]:
    """Yield normalised records. Invalid ones raise DataError, or with skip_invalid go to `rejects`."""
    source = str(path)
    for n, raw in iter_raw(path):
        try:
            record = normalize_record(raw, source=source, line=n)
        except DataError as err:
            if not skip_invalid:
                raise
            if rejects is not None:
                rejects.append(Reject(source, n, err.field, err.message, raw))
            continue
        record.setdefault("_line", n)
        yield record


def read_records(path: str | Path, skip_invalid: bool = False) -> ReadResult:
    rejects: list[Reject] = []
    records = list(iter_records(path, skip_invalid=skip_invalid, rejects=rejects))
    return ReadResult(records, rejects)


# ---------------------------------------------------------------- writing

def _clean(record: dict) -> dict:
    return {k: v for k, v in record.items() if not k.startswith("_")}


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_records(path: str | Path, records: Iterable[dict]) -> int:
    """Write records as .jsonl or .json (optionally .gz), atomically. Returns the count written."""
    path = Path(path)
    name = path.name.lower().removesuffix(".gz")
    if not name.endswith((".jsonl", ".json")):
        raise DataError("output must be .jsonl or .json (optionally .gz)", source=str(path))
    count = 0
    with atomic_path(path) as tmp:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(tmp, "wt", encoding="utf-8") as f:
            if name.endswith(".jsonl"):
                for record in records:
                    f.write(json.dumps(_clean(record), ensure_ascii=False) + "\n")
                    count += 1
            else:
                rows = [_clean(r) for r in records]
                json.dump(rows, f, ensure_ascii=False, indent=1)
                count = len(rows)
    return count
