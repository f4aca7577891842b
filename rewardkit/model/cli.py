"""`rewardkit score`, `export`, `ensemble` and `merge`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tyro.conf import Positional

from rewardkit.config import Checked, Command, ConfigError
from rewardkit.data.io import Reject, iter_records, write_records
from rewardkit.errors import ModelError
from rewardkit.model.backbone import set_threads
from rewardkit.model.load import load_model
from rewardkit.model.precision import compile_for_inference
from rewardkit.options import Compile, Precision, Progress, ScoringBatchSize, Threads
from rewardkit.scores import pair_credit


@dataclass
class ScoreConfig:
    """Score records with a reward model: pairwise records get chosen_score, rejected_score and score_margin;
    ranking records response_scores[]; rating and stepwise records response_score (a stepwise solution scored
    whole); an ensemble adds each response's member scores and their spread (*_members, *_uncertainty)."""

    model: Positional[str]
    """rewardkit model directory (or a training output directory)"""
    input: Positional[str]
    """records to score"""
    output: Positional[str]
    """scored records (.jsonl/.json, optionally .gz)"""
    batch_size: ScoringBatchSize = 32
    normalize: bool = False
    """subtract the stored reward mean and divide by the stored std"""
    threads: Threads = 0
    precision: Precision = "fp32"
    compile: Compile = False
    packing: bool = False
    """pack several sequences per row instead of padding (same scores)"""
    skip_invalid: bool = False
    """skip (and count) invalid records instead of stopping"""
    progress: Progress = True


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
        correct = sum(pair_credit(r["score_margin"]) for r in pairs)
        line += f"; pairwise accuracy {correct / len(pairs):.3f} on {len(pairs)} pair(s)"
    print(line)
    if rejects:
        print(f"skipped {len(rejects)} invalid record(s)")
    return 0


@dataclass
class ExportConfig:
    """Export a rewardkit model to a Hugging Face layout: AutoModelForSequenceClassification (one reward per
    sequence), or for a decoder process reward model AutoModelForTokenClassification (a reward at every step end)."""

    model: Positional[str]
    """rewardkit model directory (or a training output directory)"""
    output: str
    """directory for the exported checkpoint"""
    format: Literal["hf", "prm"] = "hf"
    """export layout: hf = sequence classification; prm = token classification with labels (wrong, right) read at
    each step's separator, as TRL-trained PRMs and vLLM's STEP pooler expect"""


def run_export(cfg: ExportConfig) -> int:
    from rewardkit.model.ensemble import ModelEnsemble
    from rewardkit.model.export import export_hf, export_prm_hf

    model = load_model(cfg.model)
    if isinstance(model, ModelEnsemble):
        raise ModelError(f"{cfg.model} is an ensemble of {len(model.members)} models; the Hugging Face layout holds "
                         f"one, so export a member (e.g. {model.directory / model.names[0]})")
    if cfg.format == "prm":
        out = export_prm_hf(model, cfg.output)
        print(f"exported to {out} (load with transformers.AutoModelForTokenClassification.from_pretrained; "
              "step_tag_id and the separator are in config.json under 'rewardkit')")
        return 0
    out = export_hf(model, cfg.output)
    print(f"exported to {out} (load with transformers.AutoModelForSequenceClassification.from_pretrained)")
    return 0


def _check_members(members: list[str]) -> None:
    if len(members) < 2:
        raise ConfigError(f"--members needs at least 2 models, got {len(members)}")


@dataclass
class EnsembleConfig(Checked):
    """Combine separately trained reward models (other seeds, data or objectives) into one ensemble model:
    each member's score is standardised with its stored reward mean/std, the ensemble scores their mean
    (or min), and the spread across members is the uncertainty that score, eval and serve report."""

    members: list[str]
    """rewardkit model directories (or training output directories), at least 2"""
    output: str
    """directory for the ensemble (members are copied into it)"""
    aggregate: Literal["mean", "min"] = "mean"
    """ensemble score: mean of the members, or min (conservative)"""

    def validate(self) -> None:
        _check_members(self.members)


def run_ensemble(cfg: EnsembleConfig) -> int:
    from rewardkit.model.ensemble import ModelEnsemble

    ensemble = ModelEnsemble([load_model(m) for m in cfg.members], cfg.aggregate)
    ensemble.save(cfg.output)
    print(f"ensemble of {len(ensemble.members)} models ({cfg.aggregate}) -> {cfg.output}")
    return 0


@dataclass
class MergeConfig(Checked):
    """Average the weights of reward models fine-tuned from the same pretrained backbone (other seeds, data orders
    or learning rates) into one model of the same size (WARM: weight-averaged reward models). It scores at the cost
    of one model, but unlike an ensemble reports no uncertainty. Members trained from different pretrained weights
    cannot be merged meaningfully; names and shapes of every weight are checked, their origin is not."""

    members: list[str]
    """rewardkit model directories (or training output directories), at least 2"""
    output: str
    """directory for the merged model"""
    records: str = ""
    """records to store the merged model's reward mean/std from, e.g. the validation split (needed to serve normalised scores or to join an ensemble)"""
    batch_size: ScoringBatchSize = 32

    def validate(self) -> None:
        _check_members(self.members)


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


def register(commands: dict[str, Command]) -> None:
    """Add score, export, ensemble and merge to the command table."""
    commands["score"] = Command(ScoreConfig, run_score, "score records with a reward model")
    commands["export"] = Command(ExportConfig, run_export,
                                 "export to the Hugging Face sequence- (or, for a PRM, token-) classification layout")
    commands["ensemble"] = Command(EnsembleConfig, run_ensemble,
                                   "combine trained reward models into an ensemble with uncertainty")
    commands["merge"] = Command(MergeConfig, run_merge, "average the weights of fine-tuned reward models into one (WARM)")
