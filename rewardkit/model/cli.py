"""`rewardkit score` and `rewardkit export`."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from rewardkit.config import add_arguments, option, parse_config
from rewardkit.data.io import Reject, iter_records, write_records
from rewardkit.model.backbone import set_threads
from rewardkit.model.precision import compile_for_inference, compile_option, precision_option


def load_model(path: str):
    """A rewardkit model directory, or a training OUTPUT directory holding model/."""
    from rewardkit.model.reward_model import SPEC_FILE, RewardModel

    directory = Path(path)
    if not (directory / SPEC_FILE).exists() and (directory / "model" / SPEC_FILE).exists():
        directory = directory / "model"
    return RewardModel.load(directory)


@dataclass
class ScoreConfig:
    """Score records with a reward model: pairwise records get chosen_score, rejected_score and margin;
    rating records model_score; ranking records scores[]; stepwise records the score of the whole solution."""

    model: str = option(help="rewardkit model directory (or a training output directory)", positional=True)
    input: str = option(help="records to score", positional=True)
    output: str = option(help="scored records (.jsonl/.json, optionally .gz)", positional=True)
    batch_size: int = option(32, help="sequences per forward pass (sorted by length)")
    normalize: bool = option(False, help="subtract the stored reward mean and divide by the stored std")
    threads: int = option(0, help="CPU threads (0 = torch's default)")
    precision: str = precision_option()
    compile: bool = compile_option()
    packing: bool = option(False, help="pack several sequences per row instead of padding (same scores)")
    skip_invalid: bool = option(False, help="skip (and count) invalid records instead of stopping")
    progress: bool = option(True, help="show a progress bar")


def run_score(cfg: ScoreConfig) -> int:
    set_threads(cfg.threads)
    from rewardkit.model.scoring import score_records

    model = load_model(cfg.model)
    if cfg.compile:
        compile_for_inference(model)
    rejects: list[Reject] = []
    records = list(iter_records(cfg.input, cfg.skip_invalid, rejects))
    scored = score_records(model, records, cfg.batch_size, cfg.progress, cfg.normalize, cfg.precision, cfg.packing)
    n = write_records(cfg.output, scored)
    pairs = [r for r in scored if r["kind"] == "pairwise" and not r.get("tie")]
    line = f"scored {n} record(s) -> {cfg.output}"
    if pairs:
        correct = sum((r["margin"] > 0) + 0.5 * (r["margin"] == 0) for r in pairs)
        line += f"; pairwise accuracy {correct / len(pairs):.3f} on {len(pairs)} pair(s)"
    print(line)
    if rejects:
        print(f"skipped {len(rejects)} invalid record(s)")
    return 0


@dataclass
class ExportConfig:
    """Export a rewardkit model to the Hugging Face AutoModelForSequenceClassification layout."""

    model: str = option(help="rewardkit model directory (or a training output directory)", positional=True)
    output: str = option(help="directory for the exported checkpoint")
    format: str = option("hf", help="export layout", choices=("hf",))


def run_export(cfg: ExportConfig) -> int:
    from rewardkit.model.export import export_hf

    out = export_hf(load_model(cfg.model), cfg.output)
    print(f"exported to {out} (load with transformers.AutoModelForSequenceClassification.from_pretrained)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    for name, cls, run, short in (("score", ScoreConfig, run_score, "score records with a reward model"),
                                  ("export", ExportConfig, run_export, "export to the Hugging Face sequence-classification layout")):
        doc = (cls.__doc__ or "").strip()
        p = subparsers.add_parser(name, help=short, description=doc)
        add_arguments(p, cls)
        p.set_defaults(func=lambda ns, cls=cls, run=run: run(parse_config(cls, ns)))
