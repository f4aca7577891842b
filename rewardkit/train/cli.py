"""`rewardkit train` and `rewardkit demo`."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from rewardkit.config import Command
from rewardkit.options import Threads
from rewardkit.train.config import TrainConfig


def run_train(cfg: TrainConfig) -> int:
    from rewardkit.train.trainer import train

    summary = train(cfg)
    ev = summary.get("eval") or {}
    print(f"model: {summary['model']}  steps: {summary['steps']}  records/s: {summary['records_per_second']}"
          + (f"  eval accuracy: {ev['accuracy']:.4f}" if ev.get("accuracy") == ev.get("accuracy") and ev else ""))
    return 0


@dataclass
class DemoConfig:
    """The main job on built-in defaults: generate data, train a MiniLM reward model, evaluate on held-out
    templates, save it, score a few examples, and print where everything went."""

    output: str = "demo-output"
    """where the data, model and reports go"""
    backbone: str = "minilm"
    """backbone (minilm: the bundled all-MiniLM-L6-v2)"""
    train_records: int = 1600
    """training pairs to generate"""
    test_records: int = 400
    """test pairs to generate, from held-out templates"""
    epochs: float = 1.0
    """passes over the training pairs"""
    max_length: int = 128
    """maximum tokens per sequence"""
    threads: Threads = 0
    seed: int = 0
    """random seed"""


def run_demo(cfg: DemoConfig) -> int:
    from rewardkit.data.io import write_records
    from rewardkit.data.synth import generate
    from rewardkit.model.load import load_model
    from rewardkit.model.scoring import score_records
    from rewardkit.train.trainer import train

    started = time.perf_counter()
    out = Path(cfg.output)
    data = out / "data"
    train_file, test_file = data / "train.jsonl", data / "test.jsonl"
    write_records(train_file, generate("mix", cfg.train_records, cfg.seed, "train"))
    write_records(test_file, generate("mix", cfg.test_records, cfg.seed, "test"))
    print(f"[1/5] generated {cfg.train_records} training and {cfg.test_records} held-out-template pairs in {data}")
    print(f"[2/5] training a reward model on {cfg.backbone} ...")
    summary = train(TrainConfig(train=str(train_file), eval=str(test_file), output=str(out / "run"),
                                backbone=cfg.backbone, max_length=cfg.max_length, epochs=cfg.epochs, lr=5e-5,
                                batch_size=16, threads=cfg.threads, seed=cfg.seed))
    ev = summary["eval"]
    print(f"[3/5] held-out accuracy (unseen templates): {ev['pairwise_accuracy']:.3f} on {ev['examples']} pairs")
    model = load_model(summary["model"])
    from rewardkit.data.io import read_records

    examples = read_records(test_file).records[:4]
    scored = score_records(model, examples)
    write_records(out / "scored_examples.jsonl", scored)
    print("[4/5] scores on a few held-out examples (chosen should beat rejected):")
    for r in scored:
        print(f"  {r['category']:<22} chosen {r['chosen_score']:+.3f}  rejected {r['rejected_score']:+.3f}  "
              f"prompt: {str(r['prompt'])[:60]!r}")
    print("[5/5] evaluating on the synthetic suite (agreement, calibration, length bias, reward-hacking probes) ...")
    from rewardkit.eval.report import summary_table, text_table
    from rewardkit.eval.scorers import model_scorer
    from rewardkit.eval.suites import evaluate_suites

    report = evaluate_suites(model_scorer(model, progress=False), ["synthetic"], output=out / "eval",
                             probes=100, seed=cfg.seed)
    print(text_table(summary_table(report["summary"])))
    seconds = time.perf_counter() - started
    (out / "demo_summary.json").write_text(json.dumps({"seconds": round(seconds, 1), "eval": ev,
                                                       "model": summary["model"]}, indent=2))
    print(f"\ndone in {seconds:.0f}s. Everything is in {out}/:\n"
          f"  data/train.jsonl, data/test.jsonl   built-in data (train / held-out templates)\n"
          f"  run/model/                          the reward model (safetensors + config + tokenizer)\n"
          f"  run/checkpoints/{{best,last}}/        checkpoints; run/metrics.jsonl, run/train_summary.json\n"
          f"  scored_examples.jsonl               the scored examples above\n"
          f"  eval/report.html, eval/report.json  evaluation report with plots\n"
          f"next: rewardkit eval {out}/run --suite all     (public suites, when ../shared/data is present)\n"
          f"      rewardkit serve {out}/run                (a scoring server for RL loops)")
    return 0


def register(commands: dict[str, Command]) -> None:
    """Add train, recipe, sweep and demo to the command table."""
    from rewardkit.train.recipe import RecipeConfig, run_recipe
    from rewardkit.train.sweep import SweepConfig, run_sweep

    commands["train"] = Command(TrainConfig, run_train, "train a reward model on feedback records")
    commands["recipe"] = Command(RecipeConfig, run_recipe,
                                 "build a training mix from the public sets, train and evaluate in one command")
    commands["sweep"] = Command(SweepConfig, run_sweep,
                                "a small hyper-parameter grid over a recipe, chosen on its validation split")
    commands["demo"] = Command(DemoConfig, run_demo, "the main job on built-in defaults (no arguments needed)")
