"""`rewardkit data ...`: validate, stats, convert, check and synth."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rewardkit.config import add_arguments, option, parse_config
from rewardkit.data.convert import CONVERTERS, convert
from rewardkit.data.io import Reject, iter_records, read_records, write_records
from rewardkit.data.quality import check_records
from rewardkit.data.stats import dataset_stats, make_token_counter
from rewardkit.data.synth import SPLITS, TASKS, generate


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

    file: str = option(help="records file (.jsonl/.json/.csv/.parquet, .gz, or a save_to_disk directory)", positional=True)
    all_errors: bool = option(False, help="list every invalid record instead of stopping at the first")


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

    file: str = option(help="records file", positional=True)
    tokenizer: str | None = option(None, help="tokenizer directory or GGUF file (default: whitespace words)")
    max_length: int | None = option(None, help="also count sequences longer than this many tokens")
    skip_invalid: bool = option(False, help="skip (and count) invalid records instead of stopping")


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

    input: str = option(help="input file or directory", positional=True)
    output: str = option(help="output .jsonl/.json (optionally .gz); written only if the whole input converts", positional=True)
    from_format: str = option(help="source layout", choices=tuple(CONVERTERS), flag="--from")
    skip_invalid: bool = option(False, help="skip invalid rows, write them with reasons to OUTPUT's .rejects.jsonl")


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

    file: str = option(help="records file", positional=True)
    clean: str | None = option(None, help="write a cleaned copy here, and the removal log beside it")
    near_threshold: float = option(0.8, help="Jaccard similarity of word 3-grams above which records are near duplicates")
    report: str | None = option(None, help="also write the report as JSON to this path")
    skip_invalid: bool = option(False, help="skip (and count) invalid records instead of stopping")


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

    output: str = option(help="output .jsonl/.json (optionally .gz)", positional=True)
    task: str = option("mix", help="what to generate", choices=TASKS)
    n: int = option(1000, help="number of records (ratings: responses, each rated by several annotators)")
    seed: int = option(0, help="random seed; the same seed gives the same file")
    split: str = option("train", help="template split: train and test use disjoint phrasing templates", choices=SPLITS)
    kind: str | None = option(None, help="record kind for arithmetic: pairwise, ranking (K=4) or stepwise",
                              choices=("pairwise", "ranking", "stepwise", "rating"))


def run_synth(cfg: SynthConfig) -> int:
    try:
        records = generate(cfg.task, cfg.n, cfg.seed, cfg.split, cfg.kind)
    except ValueError as err:
        from rewardkit.config import ConfigError

        raise ConfigError(str(err)) from None
    n = write_records(cfg.output, records)
    print(f"wrote {n} {cfg.task} record(s) ({cfg.split} templates, seed {cfg.seed}) to {cfg.output}")
    return 0


COMMANDS = {
    "validate": (ValidateConfig, run_validate),
    "stats": (StatsConfig, run_stats),
    "convert": (ConvertConfig, run_convert),
    "check": (CheckConfig, run_check),
    "synth": (SynthConfig, run_synth),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="validate, inspect, convert, check and generate feedback data",
                                 description="Work with feedback records (pairwise, ranking, rating, stepwise).")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    for name, (cls, run) in COMMANDS.items():
        doc = (cls.__doc__ or "").strip()
        p = data_sub.add_parser(name, help=doc.splitlines()[0], description=doc)
        add_arguments(p, cls)
        p.set_defaults(func=lambda ns, cls=cls, run=run: run(parse_config(cls, ns)))

