"""The public sets that both training and evaluation read, and the splits that keep them apart.

HH-RLHF harmless and RMB are training data and evaluation suites at once: a seeded 20% of each set's prompts
is held out (rewardkit.data.prompts.split_by_prompt); the evaluation suites score that part and recipes train
on the rest, so a recipe never trains on a prompt it is scored on. PRMBench comes split by its authors: its
train files are training data, its test files an evaluation suite.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from rewardkit.data.convert import convert
from rewardkit.data.prompts import split_by_prompt
from rewardkit.errors import DataError

HELD_OUT_FRACTION = 0.2

# name -> (converter, path under the data directory)
SPLIT_SETS = {
    "hh-harmless": ("hh-rlhf", "hh-rlhf/harmless-base-test.jsonl.gz"),
    "rmb-pairwise": ("rmb-pairwise", "rmb/pairwise"),
    "rmb-bon": ("rmb-bon", "rmb/bon"),
}


def default_data_dir() -> Path:
    """$REWARDKIT_DATA_DIR, else ../shared/data from the working directory, else beside the source checkout."""
    if os.environ.get("REWARDKIT_DATA_DIR"):
        return Path(os.environ["REWARDKIT_DATA_DIR"])
    for candidate in (Path.cwd().parent / "shared" / "data", Path(__file__).resolve().parents[3] / "shared" / "data"):
        if candidate.exists():
            return candidate
    return Path.cwd().parent / "shared" / "data"


def split_set(name: str, data_dir: Path) -> tuple[list[dict], list[dict]]:
    """(training part, held-out part) of a public set, by prompt."""
    converter, relative = SPLIT_SETS[name]
    path = data_dir / relative
    if not path.exists():
        raise DataError(f"the public set {name!r} is not in the data directory; pass --data-dir "
                        "(see ../shared/data/README.md)", source=str(path))
    return split_by_prompt(list(convert(converter, path)), HELD_OUT_FRACTION)


def prmbench_part(data_dir: Path, part: str, rejects: list | None = None, originals: bool = False) -> list[dict]:
    """PRMBench's stepwise records from its 'train' or 'test' files (prm800k_{part}_*.jsonl.gz): the solutions with
    injected errors and, with `originals`, each distinct solution they were made from (every step right; without
    them a model trained on PRMBench never sees a solution with no error). About 1.6% of its rows name an error step
    past the end of their solution; they are skipped into `rejects` (counted by the caller; PRMBench's own evaluator
    keeps them and ignores that step); so is an original solution with an empty step."""
    files = sorted((data_dir / "prmbench").glob(f"prm800k_{part}_*.jsonl*"))
    if not files:
        raise DataError(f"no PRMBench {part} files; pass --data-dir (see ../shared/data/README.md)",
                        source=str(data_dir / "prmbench"))
    rejects = rejects if rejects is not None else []
    records = [r for f in files for r in convert("prmbench", f, skip_invalid=True, rejects=rejects)]
    if originals:
        distinct = {json.dumps([r["prompt"], r["steps"]]): r for f in files
                    for r in convert("prmbench-original", f, skip_invalid=True, rejects=rejects)}
        records += distinct.values()
    return records
