"""Named evaluation suites over public preference sets (read from a data directory, converted by the data
layer) and the built-in synthetic suite.

HH-RLHF harmless and RMB are also training data: their suites hold out a seeded 20% of prompts
(`held_out_split`), and recipes train only on the other 80%. The other suites are evaluation-only.
Sections follow RewardBench v1: a section's score is the accuracy over all of its pairs (so subsets are
weighted by their size) and the suite's `section_average` is the plain mean of its sections.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rewardkit.data.convert import convert
from rewardkit.data.records import DataError
from rewardkit.data.synth import generate


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    load: Callable[[Path], list[dict]]
    needs: str | None = None                     # path under the data directory; None = built in
    section_of: Callable[[dict], str] | None = None


def held_out_split(records: list[dict], fraction: float = 0.2, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(train, test) by prompt: a seeded shuffle of the distinct prompts, the first `fraction` held out."""
    prompts = sorted({json.dumps(r.get("prompt")) for r in records})
    random.Random(seed).shuffle(prompts)
    test_prompts = set(prompts[: int(len(prompts) * fraction + 1e-9)])
    train = [r for r in records if json.dumps(r.get("prompt")) not in test_prompts]
    test = [r for r in records if json.dumps(r.get("prompt")) in test_prompts]
    return train, test


def _hh(data: Path) -> list[dict]:
    return held_out_split(list(convert("hh-rlhf", data / "hh-rlhf" / "harmless-base-test.jsonl.gz")))[1]


def _rmb(data: Path) -> list[dict]:
    pairs = held_out_split(list(convert("rmb-pairwise", data / "rmb" / "pairwise")))[1]
    lists = held_out_split(list(convert("rmb-bon", data / "rmb" / "bon")))[1]
    return pairs + lists


def _synthetic(data: Path) -> list[dict]:
    """Held-out templates of every built-in task: pairs, best-of-4 rankings and noisy ratings."""
    return generate("mix", 400, 0, "test") + generate("arithmetic", 100, 0, "test", "ranking") + generate("ratings", 60, 0, "test")


def _rmb_section(r: dict) -> str:
    parts = str(r.get("category", "")).split("/")
    return parts[1] if len(parts) > 1 else parts[0]


SUITES: dict[str, Suite] = {s.name: s for s in [
    Suite("synthetic", "built-in tasks on held-out templates: arithmetic, safety, instructions, length traps, "
          "rankings, ratings", _synthetic, section_of=lambda r: r.get("category", "other")),
    Suite("hh-harmless", "Anthropic HH-RLHF harmless-base test file, the held-out 20% of prompts", _hh, "hh-rlhf"),
    Suite("llmbar", "LLMBar natural + adversarial instruction-following pairs", lambda d: list(convert("llmbar", d / "llmbar")),
          "llmbar", section_of=lambda r: "natural" if r.get("category") == "natural" else "adversarial"),
    Suite("offsetbias", "OffsetBias bias traps (length, concreteness, empty reference, ...)",
          lambda d: list(convert("offsetbias", d / "offsetbias" / "biasbench.json")), "offsetbias"),
    Suite("rm-bench", "RM-Bench: 3 chosen x 3 rejected style variants per prompt (style bias)",
          lambda d: list(convert("rm-bench", d / "rm-bench")), "rm-bench",
          section_of=lambda r: "safety" if str(r.get("category")).startswith("safety") else str(r.get("category"))),
    Suite("judgebench", "JudgeBench: hard knowledge, reasoning, math and coding pairs (objective labels)",
          lambda d: list(convert("judgebench", d / "judgebench")), "judgebench", section_of=lambda r: r.get("category") or "other"),
    Suite("rmb", "RMB pairwise + best-of-N, helpfulness and harmlessness, the held-out 20% of prompts", _rmb, "rmb",
          section_of=_rmb_section),
]}


def default_data_dir() -> Path:
    """$REWARDKIT_DATA_DIR, else ../shared/data from the working directory, else beside the source checkout."""
    if os.environ.get("REWARDKIT_DATA_DIR"):
        return Path(os.environ["REWARDKIT_DATA_DIR"])
    for candidate in (Path.cwd().parent / "shared" / "data", Path(__file__).resolve().parents[3] / "shared" / "data"):
        if candidate.exists():
            return candidate
    return Path.cwd().parent / "shared" / "data"


def resolve_suites(names: list[str], data_dir: Path) -> tuple[list[Suite], list[str]]:
    """The suites asked for (`all` = every suite whose data is present) and notes on those skipped."""
    wanted = list(SUITES) if "all" in names else names
    chosen, skipped = [], []
    for name in wanted:
        if name not in SUITES:
            raise DataError(f"unknown suite {name!r}; choose from {', '.join(SUITES)}, all")
        suite = SUITES[name]
        if suite.needs and not (data_dir / suite.needs).exists():
            if "all" in names:
                skipped.append(f"{name}: {data_dir / suite.needs} not found")
                continue
            raise DataError(f"suite {name!r} needs {data_dir / suite.needs}; pass --data-dir DIR (see ../shared/data/README.md)")
        chosen.append(suite)
    return chosen, skipped


def sample_records(records: list[dict], limit: int, seed: int = 0) -> list[dict]:
    """At most about `limit` records, sampled by prompt so that a prompt's records stay together."""
    if not limit or len(records) <= limit:
        return records
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(json.dumps(r.get("prompt")), []).append(r)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    out: list[dict] = []
    for key in keys:
        if len(out) >= limit:
            break
        out.extend(groups[key])
    return out
