"""`rewardkit eval`, `rewardkit calibrate` and `rewardkit shift`."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tyro.conf import Positional

from rewardkit.config import Command, ConfigError
from rewardkit.data.io import iter_records
from rewardkit.errors import DataError
from rewardkit.model.backbone import set_threads
from rewardkit.options import Compile, Precision, Progress, ScoringBatchSize, Threads


@dataclass
class EvalConfig:
    """Evaluate a reward model: agreement with human labels (accuracy, Kendall tau, Spearman rho, best-of-K,
    NDCG) with bootstrap intervals, calibration, length and style bias, reward-hacking probes, per-category
    and per-section tables. Writes OUTPUT/report.json, OUTPUT/report.html (with plots) and the scored records.
    Suites: synthetic (built in), hh-harmless, llmbar, offsetbias, rm-bench, judgebench, rmb (from --data-dir),
    or all. `--compare A.json B.json` puts saved reports side by side instead."""

    model: Positional[str] = ""
    """rewardkit model directory, training output directory, or a local Hugging Face sequence-classification reward model"""
    suite: list[str] = field(default_factory=lambda: ["synthetic"])
    """suites to run, or 'all' (every suite whose data is present)"""
    input: list[str] = field(default_factory=list)
    """record files to evaluate as extra suites, named by file name"""
    data_dir: str = ""
    """directory of the public sets (empty: $REWARDKIT_DATA_DIR or ../shared/data)"""
    output: str = "eval-report"
    """directory for report.json, report.html and scored records"""
    max_records: int = 0
    """evaluate at most about this many records per suite, sampled by prompt (0 = all)"""
    probes: int = 200
    """pairs to perturb for the reward-hacking probes (0 = no probes)"""
    bootstrap: int = 1000
    """bootstrap resamples for the 95% intervals"""
    batch_size: ScoringBatchSize = 32
    max_length: int = 0
    """maximum tokens per sequence (0 = the model's own)"""
    step_format: Literal["", "separator", "qwen", "math-shepherd", "rlhflow"] = ""
    """for a Hugging Face process reward model trained elsewhere: how its steps are written (separator = TRL's PRMTrainer, qwen = <extra_0>, math-shepherd = ки with +/- logits, rlhflow = chat turns); empty = separator for a token-classification model"""
    judge_max_new_tokens: int = 0
    """for a generative judge as the model (judge:local:MODEL[@k] or judge:URL#MODEL[@k]): the longest critique a
    vote may write (0 = the judge's default, 384)"""
    precision: Precision = "fp32"
    compile: Compile = False
    threads: Threads = 0
    seed: int = 0
    """seed for sampling, probes and bootstrap"""
    progress: Progress = True
    compare: list[str] = field(default_factory=list)
    """report.json files to compare side by side (no model needed)"""


def run_compare(paths: list[str], output: Path) -> int:
    """Print and save the headline numbers of saved reports side by side."""
    from rewardkit.eval.report import compare_reports, markdown_table, text_table

    if len(paths) < 2:
        raise ConfigError("--compare needs at least two report.json files")
    reports = []
    for path in paths:
        try:
            reports.append(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as err:
            raise DataError(f"cannot read the report: {err}", source=path) from None
        if "summary" not in reports[-1]:
            raise DataError("not a rewardkit eval report (no 'summary')", source=path)
    rows = compare_reports(reports, [Path(p).parent.name or Path(p).stem for p in paths])
    print(text_table(rows))
    output.mkdir(parents=True, exist_ok=True)
    (output / "compare.md").write_text(markdown_table(rows) + "\n\n* = the 95% intervals do not overlap\n")
    print(f"\nsaved {output / 'compare.md'} (* = the 95% intervals do not overlap)")
    return 0


def run_eval(cfg: EvalConfig) -> int:
    from rewardkit.eval.report import summary_table, text_table
    from rewardkit.eval.scorers import load_scorer
    from rewardkit.eval.suites import evaluate_suites

    output = Path(cfg.output)
    if cfg.compare:
        return run_compare(cfg.compare, output)
    if not cfg.model:
        raise ConfigError("give a model directory to evaluate (or --compare A.json B.json)")
    set_threads(cfg.threads)
    scorer = load_scorer(cfg.model, cfg.batch_size, cfg.max_length, cfg.progress, cfg.precision, cfg.compile,
                         cfg.step_format, cfg.judge_max_new_tokens)
    about = {"config": {k: v for k, v in vars(cfg).items() if k != "compare"}}
    report = evaluate_suites(scorer, cfg.suite, Path(cfg.data_dir) if cfg.data_dir else None, cfg.input, output,
                             cfg.max_records, cfg.probes, cfg.bootstrap, cfg.seed, about)
    print()
    print(text_table(summary_table(report["summary"])))
    for note in report["skipped"]:
        print(f"skipped {note}")
    print(f"\nreport: {output / 'report.html'}\nnumbers: {output / 'report.json'}")
    return 0


@dataclass
class CalibrateConfig:
    """Fit the temperature T (and, for position-ordered data, bias b) of P(a > b) = sigmoid((r_a - r_b) / T + b)
    on held-out pairwise records, and store them in the model. Reports log-loss and ECE before and after,
    measured by two-fold cross-fitting so that the 'after' numbers are not in-sample."""

    model: Positional[str]
    """rewardkit model directory (or a training output directory)"""
    data: list[str]
    """held-out pairwise record files (not the training data)"""
    output: str = ""
    """write a calibrated copy here instead of updating the model in place"""
    batch_size: ScoringBatchSize = 32
    threads: Threads = 0
    seed: int = 0
    """seed of the two-fold split"""


def run_calibrate(cfg: CalibrateConfig) -> int:
    import numpy as np

    from rewardkit.eval.metrics import calibration, fit_calibration
    from rewardkit.model.ensemble import ModelEnsemble
    from rewardkit.model.load import load_model, model_directory
    from rewardkit.model.scoring import score_records

    set_threads(cfg.threads)
    model = load_model(cfg.model)
    records = [r for f in cfg.data for r in iter_records(f) if r["kind"] == "pairwise" and not r.get("tie")]
    if len(records) < 20:
        raise DataError(f"calibration needs at least 20 strict pairwise records, found {len(records)}", source=", ".join(cfg.data))
    margins = np.array([r["score_margin"] for r in score_records(model, records, cfg.batch_size, progress=True)])
    folds = np.array(random.Random(cfg.seed).choices([0, 1], k=len(margins)))
    before = calibration(margins)
    after_parts = []
    for fold in (0, 1):
        temperature, bias = fit_calibration(margins[folds != fold])
        after_parts.append((margins[folds == fold], temperature, bias))
    cross = [calibration(m, t, b) for m, t, b in after_parts if len(m)]
    weights = [c["pairs"] for c in cross]
    temperature, bias = fit_calibration(margins)
    model.spec.calibration = {"temperature": temperature, "bias": bias, "pairs": len(margins), "data": cfg.data}
    ensemble = isinstance(model, ModelEnsemble)
    target = Path(cfg.output) if cfg.output else model.directory if ensemble else model_directory(cfg.model)
    if cfg.output or ensemble:  # an ensemble rewrites only its manifest in place
        model.save(target)
    else:
        model.save_spec(target)
    after = {k: float(np.average([c[k] for c in cross], weights=weights)) for k in ("log_loss", "brier", "ece")}
    print(f"pairs: {len(margins)}   temperature: {temperature:.4f}   bias: {bias:+.4f}")
    print(f"before: log-loss {before['log_loss']:.4f}  Brier {before['brier']:.4f}  ECE {before['ece']:.4f}")
    print(f"after (2-fold cross-fitted): log-loss {after['log_loss']:.4f}  Brier {after['brier']:.4f}  ECE {after['ece']:.4f}")
    print(f"stored in {target}")
    return 0


@dataclass
class ShiftConfig:
    """Compare the score distribution of new responses (e.g. policy samples during RL) with a reference
    (e.g. the reward model's training or validation data): mean/std, KS statistic, share of scores outside
    the reference range. Files hold scored records (from `rewardkit score`), {"score": x} / {"reward": x}
    rows, or, with --model, records or {"prompt", "response"} rows to score first."""

    reference: Positional[str]
    """reference file"""
    current: Positional[str]
    """file of new responses or scores"""
    model: str = ""
    """score both files with this model first"""
    output: str = ""
    """write the comparison as JSON here"""
    max_ks: float = 0.0
    """exit with status 3 when the KS statistic exceeds this (0 = never): a monitor for RL"""
    batch_size: ScoringBatchSize = 32


def run_shift(cfg: ShiftConfig) -> int:
    from rewardkit.eval.bias import score_shift, scores_in
    from rewardkit.eval.scorers import load_scorer

    scorer = load_scorer(cfg.model, cfg.batch_size) if cfg.model else None
    reference, current = scores_in(cfg.reference, scorer), scores_in(cfg.current, scorer)
    try:
        result = score_shift(reference, current)
    except ValueError as err:
        raise DataError(str(err), source=cfg.reference) from None
    ref, cur = result["reference"], result["current"]
    print(f"reference: n={ref['count']} mean {ref['mean']:+.4f} std {ref['std']:.4f} [{ref['min']:+.3f}, {ref['max']:+.3f}]")
    print(f"current:   n={cur['count']} mean {cur['mean']:+.4f} std {cur['std']:.4f} [{cur['min']:+.3f}, {cur['max']:+.3f}]")
    print(f"mean shift {result['mean_shift_in_reference_std']:+.2f} reference std;  KS {result['ks_statistic']:.4f} "
          f"(p = {result['ks_p_value']:.3g});  above reference max {result['share_above_reference_max']:.1%};  "
          f"outside reference 1-99% band {result['share_outside_reference_p1_p99']:.1%}")
    if cfg.output:
        Path(cfg.output).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.output).write_text(json.dumps(result, indent=2))
    if cfg.max_ks and result["ks_statistic"] > cfg.max_ks:
        print(f"ALERT: KS statistic {result['ks_statistic']:.4f} exceeds --max-ks {cfg.max_ks}")
        return 3
    return 0


def register(commands: dict[str, Command]) -> None:
    """Add eval, calibrate and shift to the command table."""
    commands["eval"] = Command(EvalConfig, run_eval, "evaluate a reward model on suites or files (JSON + HTML report)")
    commands["calibrate"] = Command(CalibrateConfig, run_calibrate,
                                    "fit and store the temperature of preference probabilities")
    commands["shift"] = Command(ShiftConfig, run_shift, "compare two score distributions (a reward-hacking monitor for RL)")
