"""`rewardkit data ...`: validate, stats, convert, check and synth."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from tyro.conf import Positional, arg

from rewardkit.config import Command, ConfigError
from rewardkit.data.convert import CONVERTERS, convert
from rewardkit.data.io import Reject, iter_records, read_records, write_records
from rewardkit.data.quality import check_records
from rewardkit.data.stats import dataset_stats
from rewardkit.data.synth import SPLITS, TASKS, generate
from rewardkit.model.backbone import make_token_counter

SourceLayout = Literal[tuple(CONVERTERS)]
Task = Literal[TASKS]
Split = Literal[SPLITS]


def _rejects_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.name.split(".")[0] + ".rejects.jsonl")


def _report_rejects(rejects: list[Reject], path: Path | None) -> None:
    if not rejects:
        return
    if path is not None:
        write_records(path, [r.as_dict() for r in rejects])
    by_reason = Counter(f"{r.field or '-'}: {r.reason}" for r in rejects)
    print(f"skipped {len(rejects)} invalid record(s)" + (f"; reasons and records in {path}" if path else ""))
    for reason, n in by_reason.most_common(5):
        print(f"  {n:>6}  {reason}")


@dataclass
class ValidateConfig:
    """Check every record of a file against its schema; exit 1 on the first error (or list them all)."""

    file: Positional[str]
    """records file (.jsonl/.json/.csv/.parquet, .gz, or a save_to_disk directory)"""
    all_errors: bool = False
    """list every invalid record instead of stopping at the first"""


def run_validate(cfg: ValidateConfig) -> int:
    rejects: list[Reject] = []
    kinds = Counter(r["kind"] for r in iter_records(cfg.file, skip_invalid=cfg.all_errors, rejects=rejects))
    for r in rejects[:50]:
        print(f"{r.source}: line {r.line}: field '{r.field}': {r.reason}")
    if len(rejects) > 50:
        print(f"... and {len(rejects) - 50} more")
    total = sum(kinds.values())
    print(f"{cfg.file}: {total} valid record(s) {dict(kinds)}; {len(rejects)} invalid")
    return 1 if rejects else 0


@dataclass
class StatsConfig:
    """Counts, kinds, categories and length distributions (in tokens of a chosen tokenizer)."""

    file: Positional[str]
    """records file"""
    tokenizer: str | None = None
    """tokenizer directory or GGUF file (None: whitespace words)"""
    max_length: int | None = None
    """also count sequences longer than this many tokens"""
    skip_invalid: bool = False
    """skip (and count) invalid records instead of stopping"""


def run_stats(cfg: StatsConfig) -> int:
    count, unit = make_token_counter(cfg.tokenizer)
    rejects: list[Reject] = []
    stats = dataset_stats(iter_records(cfg.file, cfg.skip_invalid, rejects), count, cfg.max_length)
    stats["length_unit"] = unit
    stats["invalid_skipped"] = len(rejects)
    print(json.dumps(stats, indent=2, ensure_ascii=False))
    return 0


@dataclass
class ConvertConfig:
    """Convert a public set's native layout into rewardkit records."""

    input: Positional[str]
    """input file or directory"""
    output: Positional[str]
    """output .jsonl/.json (optionally .gz); written only if the whole input converts"""
    from_format: Annotated[SourceLayout, arg(name="from")]
    """source layout"""
    skip_invalid: bool = False
    """skip invalid rows, write them with reasons to OUTPUT's .rejects.jsonl"""


def run_convert(cfg: ConvertConfig) -> int:
    rejects: list[Reject] = []
    notes: Counter = Counter()
    records = list(convert(cfg.from_format, cfg.input, cfg.skip_invalid, rejects, notes))
    n = write_records(cfg.output, records)
    print(f"wrote {n} record(s) {dict(Counter(r['kind'] for r in records))} to {cfg.output}")
    for note, count in notes.items():
        print(f"  note: {count} record(s): {note}")
    _report_rejects(rejects, _rejects_path(cfg.output) if rejects else None)
    return 0


@dataclass
class CheckConfig:
    """Report duplicates, degenerate and contradictory pairs, ties and annotator agreement."""

    file: Positional[str]
    """records file"""
    clean: str | None = None
    """write a cleaned copy here, and the removal log beside it"""
    near_threshold: float = 0.8
    """Jaccard similarity of word 3-grams above which records are near duplicates"""
    report: str | None = None
    """also write the report as JSON to this path"""
    skip_invalid: bool = False
    """skip (and count) invalid records instead of stopping"""


def run_check(cfg: CheckConfig) -> int:
    result = read_records(cfg.file, cfg.skip_invalid)
    report, drop = check_records(result.records, cfg.near_threshold)
    report["invalid_skipped"] = len(result.rejects)
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    if cfg.report:
        Path(cfg.report).write_text(text)
    if cfg.clean:
        kept = [r for i, r in enumerate(result.records) if i not in drop]
        log = [{"line": result.records[i].get("_line"), "id": result.records[i].get("id"), "reason": reason}
               for i, reason in sorted(drop.items())]
        write_records(cfg.clean, kept)
        log_path = _rejects_path(cfg.clean).with_name(Path(cfg.clean).name.split(".")[0] + ".removed.jsonl")
        write_records(log_path, log)
        print(f"wrote {len(kept)} record(s) to {cfg.clean}; removed {len(drop)} (log: {log_path})")
    return 0


@dataclass
class SynthConfig:
    """Generate preference data whose better response is fixed by a checkable rule (no download)."""

    output: Positional[str]
    """output .jsonl/.json (optionally .gz)"""
    task: Task = "mix"
    """what to generate"""
    n: int = 1000
    """number of records (ratings: responses, each rated by several annotators)"""
    seed: int = 0
    """random seed; the same seed gives the same file"""
    split: Split = "train"
    """template split: train and test use disjoint phrasing templates"""
    kind: Literal["pairwise", "ranking", "stepwise", "rating"] | None = None
    """record kind for arithmetic: pairwise, ranking (K=4) or stepwise"""


def run_synth(cfg: SynthConfig) -> int:
    try:
        records = generate(cfg.task, cfg.n, cfg.seed, cfg.split, cfg.kind)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    n = write_records(cfg.output, records)
    print(f"wrote {n} {cfg.task} record(s) ({cfg.split} templates, seed {cfg.seed}) to {cfg.output}")
    return 0


def register(commands: dict[str, Command]) -> None:
    """Add the `data` commands to the command table."""
    commands["data validate"] = Command(ValidateConfig, run_validate, "check every record of a file against its schema")
    commands["data stats"] = Command(StatsConfig, run_stats, "counts, kinds, categories and token lengths")
    commands["data convert"] = Command(ConvertConfig, run_convert, "convert a public set's layout into rewardkit records")
    commands["data check"] = Command(CheckConfig, run_check,
                                     "duplicates, contradictions, ties and annotator agreement (and a cleaned copy)")
    commands["data synth"] = Command(SynthConfig, run_synth, "generate preference data with known truth")
