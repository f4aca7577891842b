"""`rewardkit score`, `export`, `ensemble` and `merge`."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from rewardkit.config import add_arguments, option, parse_config
from rewardkit.data.io import Reject, iter_records, write_records
from rewardkit.model.backbone import ModelError, set_threads
from rewardkit.model.precision import compile_for_inference, compile_option, precision_option


def model_directory(path: str | Path) -> Path | None:
    """The rewardkit model or ensemble directory at `path`, in `path`/model/ (a training output) or in
    `path`/run/model/ (a recipe output); None if none."""
    from rewardkit.model.ensemble import ENSEMBLE_FILE
    from rewardkit.model.reward_model import SPEC_FILE

    for directory in (Path(path), Path(path) / "model", Path(path) / "run" / "model"):
        if (directory / SPEC_FILE).exists() or (directory / ENSEMBLE_FILE).exists():
            return directory
    return None


def load_model(path: str):
    """A rewardkit model or ensemble directory, or a training or recipe output directory holding one."""
    from rewardkit.model.ensemble import ENSEMBLE_FILE, ModelEnsemble
    from rewardkit.model.reward_model import RewardModel

    directory = model_directory(path) or Path(path)  # RewardModel.load explains what is missing
    if (directory / ENSEMBLE_FILE).exists():
        return ModelEnsemble.load(directory)
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
    from rewardkit.model.ensemble import ModelEnsemble
    from rewardkit.model.export import export_hf

    model = load_model(cfg.model)
    if isinstance(model, ModelEnsemble):
        raise ModelError(f"{cfg.model} is an ensemble of {len(model.members)} models; the Hugging Face layout holds "
                         f"one, so export a member (e.g. {model.directory / model.names[0]})")
    out = export_hf(model, cfg.output)
    print(f"exported to {out} (load with transformers.AutoModelForSequenceClassification.from_pretrained)")
    return 0


@dataclass
class EnsembleConfig:
    """Combine separately trained reward models (other seeds, data or objectives) into one ensemble model:
    each member's score is standardised with its stored reward mean/std, the ensemble scores their mean
    (or min), and the spread across members is the uncertainty that score, eval and serve report."""

    members: list[str] = option(help="rewardkit model directories (or training output directories), at least 2")
    output: str = option(help="directory for the ensemble (members are copied into it)")
    aggregate: str = option("mean", help="ensemble score: mean of the members, or min (conservative)", choices=("mean", "min"))


def run_ensemble(cfg: EnsembleConfig) -> int:
    from rewardkit.model.ensemble import ModelEnsemble

    ensemble = ModelEnsemble([load_model(m) for m in cfg.members], cfg.aggregate)
    ensemble.save(cfg.output)
    print(f"ensemble of {len(ensemble.members)} models ({cfg.aggregate}) -> {cfg.output}")
    return 0


@dataclass
class MergeConfig:
    """Average the weights of reward models fine-tuned from the same pretrained backbone (other seeds, data orders
    or learning rates) into one model of the same size (WARM: weight-averaged reward models). It scores at the cost
    of one model, but unlike an ensemble reports no uncertainty. Members trained from different pretrained weights
    cannot be merged meaningfully; names and shapes of every weight are checked, their origin is not."""

    members: list[str] = option(help="rewardkit model directories (or training output directories), at least 2")
    output: str = option(help="directory for the merged model")
    records: str = option("", help="records to store the merged model's reward mean/std from, e.g. the validation split "
                          "(needed to serve normalised scores or to join an ensemble)")
    batch_size: int = option(32, help="batch size for scoring --records")


def run_merge(cfg: MergeConfig) -> int:
    from rewardkit.model.merge import merge_models, reward_statistics

    merged = merge_models([load_model(m) for m in cfg.members], cfg.members)
    if cfg.records:
        merged.spec.normalization = reward_statistics(merged, iter_records(cfg.records), cfg.batch_size)
        stats = merged.spec.normalization
        print(f"reward mean {stats['mean']:.3f}, std {stats['std']:.3f} over {stats['source']} of {cfg.records}")
    else:
        print("no --records: the merged model stores no reward mean/std (scores are served raw)")
    merged.save(cfg.output)
    print(f"weight average of {len(cfg.members)} models -> {cfg.output}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    for name, cls, run, short in (("score", ScoreConfig, run_score, "score records with a reward model"),
                                  ("export", ExportConfig, run_export, "export to the Hugging Face sequence-classification layout"),
                                  ("ensemble", EnsembleConfig, run_ensemble, "combine trained reward models into an ensemble with uncertainty"),
                                  ("merge", MergeConfig, run_merge, "average the weights of fine-tuned reward models into one (WARM)")):
        doc = (cls.__doc__ or "").strip()
        p = subparsers.add_parser(name, help=short, description=doc)
        add_arguments(p, cls)
        p.set_defaults(func=lambda ns, cls=cls, run=run: run(parse_config(cls, ns)))
