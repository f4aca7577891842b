"""Named evaluation suites over public preference sets (read from a data directory, converted by the data
layer) and the built-in synthetic suite.

HH-RLHF harmless and RMB are also training data: their suites are the held-out 20% of prompts
(rewardkit.data.catalog), and recipes train only on the other 80%. The other suites are evaluation-only.
Sections follow RewardBench v1: a section's score is the accuracy over all of its pairs (so subsets are
weighted by their size) and the suite's `section_average` is the plain mean of its sections.

The process suites (ProcessBench, PRMBench) need step scores (rewardkit.eval.process). ProcessBench's threshold is
chosen on a split that is not reported: by default the built-in arithmetic stepwise task's train templates
(ARITHMETIC_THRESHOLD_SPLIT: known first errors, half the solutions right), as the paper chose it on GSM8K for its
other subsets; a caller's split replaces it. PRMBench's PRMScore is at 0.5, as published.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rewardkit.data.catalog import default_data_dir, prmbench_part, split_set
from rewardkit.data.convert import convert
from rewardkit.data.io import iter_records, write_records
from rewardkit.data.synth import arithmetic_candidates, generate
from rewardkit.errors import ConfigError, DataError
from rewardkit.eval.evaluate import Dataset, ThresholdSplit, evaluate_datasets
from rewardkit.eval.scorers import as_scorer


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    load: Callable[[Path], list[dict]]
    needs: str | None = None                     # path under the data directory; None = built in
    section_of: Callable[[dict], str] | None = None
    threshold_split: ThresholdSplit | None = None  # where a process suite's ProcessBench threshold is chosen


ARITHMETIC_THRESHOLD_SPLIT = ThresholdSplit("arithmetic-stepwise-train (200 built-in solutions, seed 0)",
                                            lambda: generate("arithmetic", 200, 0, "train", "stepwise"))


def _hh(data: Path) -> list[dict]:
    return split_set("hh-harmless", data)[1]


def _rmb(data: Path) -> list[dict]:
    return split_set("rmb-pairwise", data)[1] + split_set("rmb-bon", data)[1]


def _synthetic(data: Path) -> list[dict]:
    """Held-out templates of every built-in task: pairs, best-of-4 rankings and noisy ratings."""
    return generate("mix", 400, 0, "test") + generate("arithmetic", 100, 0, "test", "ranking") + generate("ratings", 60, 0, "test")


def _processbench(subset: str) -> Callable[[Path], list[dict]]:
    return lambda data: list(convert("processbench", data / "processbench" / f"{subset}.json.gz"))


def _prmbench(data: Path) -> list[dict]:
    """The modified solutions of PRMBench's test files (two parts x eight error classes), the set its PRMScore is
    reported on. Rows naming an error step past the solution's end are left out (rejected by the converter; PRMBench's
    own evaluator keeps them and ignores that step)."""
    return prmbench_part(data, "test")


def _rmb_section(r: dict) -> str:
    parts = str(r.get("category", "")).split("/")
    return parts[1] if len(parts) > 1 else parts[0]


SUITES: dict[str, Suite] = {s.name: s for s in [
    Suite("synthetic", "built-in tasks on held-out templates: arithmetic, safety, instructions, length traps, "
          "rankings, ratings", _synthetic, section_of=lambda r: r.get("category", "other")),
    Suite("arithmetic-steps", "built in: 100 arithmetic problems on held-out templates, 4 stepwise solutions each "
          "(one right), for best-of-K by each step aggregate and first-error F1",
          lambda d: arithmetic_candidates(100, 0, "test", 4), threshold_split=ARITHMETIC_THRESHOLD_SPLIT),
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
    Suite("processbench-gsm8k", "ProcessBench GSM8K: find the first wrong step (F1 of accuracy on erroneous and correct "
          "solutions)", _processbench("gsm8k"), "processbench/gsm8k.json.gz", threshold_split=ARITHMETIC_THRESHOLD_SPLIT),
    Suite("processbench-math", "ProcessBench MATH: find the first wrong step (F1 of accuracy on erroneous and correct "
          "solutions)", _processbench("math"), "processbench/math.json.gz", threshold_split=ARITHMETIC_THRESHOLD_SPLIT),
    Suite("prmbench", "PRMBench test: step-level error detection in 8 error classes (PRMScore at 0.5)", _prmbench,
          "prmbench"),
]}


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




def evaluate_suites(model, suites: list[str], data_dir: Path | None = None, files: list[str] = (),
                    output: Path | None = None, max_records: int = 0, probes: int = 200, resamples: int = 1000,
                    seed: int = 0, about: dict | None = None, threshold_split: ThresholdSplit | None = None) -> dict:
    """Evaluate a model (loaded, a directory, or a Scorer) on named suites (or 'all' present) and record files;
    returns the report. With `output`, also writes report.json, report.html and the scored records there.
    `about` adds fields to the report (e.g. the command's configuration). `threshold_split`, when given, is where
    every set's ProcessBench threshold is chosen, in place of each suite's own (files: 0.5 without it)."""
    scorer = as_scorer(model)
    data_dir = data_dir or default_data_dir()
    chosen, skipped = resolve_suites(list(suites), data_dir) if suites else ([], [])
    datasets = [Dataset(s.name, s.description, lambda s=s: s.load(data_dir), s.section_of,
                        threshold_split or s.threshold_split) for s in chosen]
    datasets += [Dataset(Path(f).name, f"records from {f}", lambda f=f: list(iter_records(f)), None, threshold_split)
                 for f in files]
    if not datasets:
        raise ConfigError("nothing to evaluate: " + ("; ".join(skipped) if skipped else "no suite or file"))
    results, scored_by_suite = evaluate_datasets(scorer, datasets, max_records, probes, resamples, seed)
    report = {"model": {"name": scorer.name, "path": scorer.path, "info": scorer.info}, **(about or {}), "data_dir": str(data_dir),
              "skipped": skipped, **results}
    if output is not None:
        from rewardkit.eval.report import write_report

        for name, scored in scored_by_suite.items():
            write_records(Path(output) / "scored" / f"{name.replace('/', '_')}.jsonl", scored)
        write_report(report, scored_by_suite, Path(output))
    return report
