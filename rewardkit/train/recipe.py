"""`rewardkit recipe RECIPE.yaml`: build a training mix from the public sets, train, and evaluate, in one command.

A recipe holds a training config (`train`: every `rewardkit train` option) and says where its data comes from:
- sources: {source: weight}; a source contributes round(weight x max_per_source) records, drawn with
  train.seed; category_weights ({category: weight}) make a public set's categories more or less likely to be
  drawn (RMB's Helpfulness / Harmlessness, ...). Sources are the *training* parts of the sets: hh-harmless and
  rmb-pairwise / rmb-bon are the 80% of prompts that their eval suites do not hold out; prmbench is PRMBench's
  train files (stepwise: the solutions with injected errors and the error-free ones they came from); synthetic and arithmetic-steps are the built-in tasks' training templates.
- Before training, records are de-duplicated across sources, and any record whose prompt occurs in an
  evaluation suite is removed (counted), so a recipe never trains on what it is scored on.
- A seeded share (validation_fraction) of the mix is the validation split used to pick the checkpoint; its
  stepwise solutions are also where the process suites' ProcessBench threshold is chosen (never on a suite).
- With orm_baseline, the same model is trained again on the same mix with train.last_step_only (an outcome
  reward model, OUTPUT/orm) and evaluated beside the PRM: the "ORM from the same data" baseline.
- With ensemble_models K, K models are trained on the same mix with seeds train.seed .. train.seed+K-1
  (OUTPUT/members/seed-S) and combined into one ensemble model (rewardkit.model.ensemble) that is evaluated in
  their place.
Writes OUTPUT/data/{train,validation}.jsonl, OUTPUT/data/balance.json, OUTPUT/run (the model), OUTPUT/eval
(report.json, report.html), OUTPUT/orm/{run,eval} with orm_baseline, and OUTPUT/recipe_summary.json.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rewardkit.config import Checked, ConfigError
from rewardkit.data.catalog import default_data_dir, prmbench_part, split_set
from rewardkit.data.io import iter_records, write_records
from rewardkit.data.kinds import KINDS
from rewardkit.data.prompts import comparable_forms
from rewardkit.data.synth import generate
from rewardkit.data.texts import text_of
from rewardkit.scores import pair_credit
from rewardkit.train.config import TrainConfig

SOURCES = ("hh-harmless", "rmb-pairwise", "rmb-bon", "synthetic", "prmbench", "arithmetic-steps")
GENERATED = ("synthetic", "arithmetic-steps")  # built-in tasks: generated for the recipe, never in a suite


def _recipe_training() -> TrainConfig:
    return TrainConfig(train="")  # the recipe sets the data: its own mix


@dataclass
class RecipeConfig(Checked):
    """Train a reward model on a documented mix of public preference data and evaluate it on the suites.
    Usually: rewardkit recipe --config examples/recipes/NAME.yaml. The options below say where the data comes
    from and how the model is evaluated; `train` holds every `rewardkit train` option (--train.lr 1e-4, or in
    the YAML train: {lr: 1.0e-4}) except the data and output, which the recipe sets."""

    output: str = "runs/recipe"
    """output directory: data/, run/, eval/, recipe_summary.json (a sweep's: data/, runs/, eval/, sweep.json, sweep.md)"""
    train: TrainConfig = field(default_factory=_recipe_training)
    """the training options; train.seed also seeds the draw of the mix and its validation split"""
    sources: dict[str, float] = field(default_factory=lambda: {"hh-harmless": 1.0, "synthetic": 1.0})
    """training sources and weights (a source of weight w contributes w x max_per_source records); sources: hh-harmless, rmb-pairwise, rmb-bon, synthetic, prmbench (its train files, stepwise), arithmetic-steps (the built-in stepwise task)"""
    max_per_source: int = 1000
    """records drawn from a source of weight 1"""
    category_weights: dict[str, float] = field(default_factory=dict)
    """relative weight of the public sets' records by category, matched against any part of the category path (Harmlessness=0.5 halves RMB's harmlessness share; 0 leaves it out)"""
    validation_fraction: float = 0.05
    """seeded share of the mix used for checkpoint selection"""
    data_dir: str = ""
    """directory of the public sets (empty: $REWARDKIT_DATA_DIR or ../shared/data)"""
    eval_suites: list[str] = field(default_factory=lambda: ["all"])
    """suites to evaluate the trained model on"""
    eval_max_records: int = 2000
    """records per suite in the evaluation (sampled by prompt)"""
    ensemble_models: int = 0
    """train K models (seeds train.seed ..+K-1), evaluated as one ensemble whose spread is the uncertainty (0 = one; K >= 2 needs a validation split, not train.ensemble)"""
    merge_members: bool = False
    """with ensemble_models: save the average of the K models' weights (WARM: one forward pass, no uncertainty) instead of an ensemble; the runs then share their init_seed"""
    orm_baseline: bool = False
    """also train the same model on the same mix with train.last_step_only (an outcome reward model) and evaluate it beside, as the process suites' ORM baseline (OUTPUT/orm)"""

    def validate(self) -> None:
        """Recipe options that do not fit; the training options check themselves."""
        if self.train.train or self.train.eval:
            raise ConfigError("a recipe trains on its own mix (OUTPUT/data/train.jsonl, validation.jsonl): remove "
                              "train.train and train.eval")
        unknown = sorted(set(self.sources) - set(SOURCES))
        if unknown:
            raise ConfigError(f"unknown source(s) {', '.join(unknown)}; choose from {', '.join(SOURCES)}")
        if any(w < 0 for w in [*self.sources.values(), *self.category_weights.values()]):
            raise ConfigError(f"source and category weights must not be negative: {self.sources}, {self.category_weights}")
        if not 0 <= self.validation_fraction < 1:
            raise ConfigError(f"validation_fraction must be in [0, 1), got {self.validation_fraction}")
        if self.ensemble_models and (self.ensemble_models < 2 or self.train.ensemble or self.validation_fraction <= 0):
            raise ConfigError("ensemble_models needs K >= 2 and a validation split (validation_fraction > 0), and "
                              "cannot be combined with train.ensemble (K heads in one model)")
        if self.orm_baseline and (self.ensemble_models or self.train.last_step_only
                                  or not {"prmbench", "arithmetic-steps"} & set(self.sources)):
            raise ConfigError("orm_baseline trains a last-step-only twin of a process reward model: it needs a "
                              "stepwise source (prmbench, arithmetic-steps), one model (no ensemble_models) and "
                              "train.last_step_only off")
        if self.merge_members and not self.ensemble_models:
            raise ConfigError("merge_members averages the models of ensemble_models: set ensemble_models: K (K >= 2)")


def category_weight(record: dict, weights: dict[str, float]) -> float:
    """The product of the weights of the parts of a record's category path ('Pairwise_set/Harmlessness/S2'); 1 if none match."""
    weight = 1.0
    for part in str(record.get("category") or "").split("/"):
        weight *= weights.get(part, 1.0)
    return weight


def weighted_draw(records: list[dict], n: int, weights: dict[str, float], rng: random.Random) -> list[dict]:
    """n records without replacement, each with probability proportional to its category weight
    (Efraimidis-Spirakis: keep the n largest u^(1/w)); weight 0 never drawn."""
    keyed = [(rng.random() ** (1.0 / w), i) for i, r in enumerate(records) if (w := category_weight(r, weights)) > 0]
    return [records[i] for _, i in sorted(keyed, reverse=True)[:n]]


def source_pool(name: str, data_dir: Path, n: int, seed: int) -> list[dict]:
    """The training part of a source in a seeded random order (a built-in task: n records generated for it)."""
    if name == "synthetic":
        return generate("mix", n, seed, "train")
    if name == "arithmetic-steps":
        return generate("arithmetic", n, seed, "train", "stepwise")
    if name == "prmbench":
        rejects: list = []
        pool = prmbench_part(data_dir, "train", rejects, originals=True)
        fields = ", ".join(f"{n} in {field}" for field, n in Counter(r.field for r in rejects).items())
        print(f"      prmbench: skipped {len(rejects)} invalid row(s) ({fields}: an error step past the end, an empty step)")
    else:
        pool = split_set(name, data_dir)[0]
    random.Random(f"{name}:{seed}").shuffle(pool)
    return pool


def eval_prompts(data_dir: Path) -> set[str]:
    """Prompt keys of every evaluation suite whose data is present."""
    from rewardkit.eval.suites import SUITES

    keys: set[str] = set()
    for suite in SUITES.values():
        if suite.needs is None or (data_dir / suite.needs).exists():
            for r in suite.load(data_dir):
                keys |= comparable_forms(r.get("prompt", ""))
    return keys


def top_category(record: dict) -> str:
    """The part of a category path a balance report counts: 'Pairwise_set/Harmlessness/S2' -> 'Harmlessness'."""
    parts = [p for p in str(record.get("category") or "").split("/") if p and not p.endswith("_set")]
    return parts[0] if parts else "(none)"


def _key(r: dict) -> str:
    return json.dumps([r.get("prompt"), KINDS[r["kind"]].responses(r)], sort_keys=True, default=str)


def build_mix(cfg: RecipeConfig, data_dir: Path) -> tuple[list[dict], list[dict], dict]:
    from rewardkit.data.records import normalize_record

    held_out = eval_prompts(data_dir)
    seen: set[str] = set()
    mix: list[dict] = []
    report: dict = {"sources": {}, "removed": Counter()}
    categories: set[str] = set()  # of the public sets' pools, to catch a misspelt category weight
    for name, weight in cfg.sources.items():
        n = round(weight * cfg.max_per_source)
        pool = source_pool(name, data_dir, n, cfg.train.seed)
        if name not in GENERATED and cfg.category_weights:
            categories |= {part for r in pool for part in str(r.get("category") or "").split("/")}
            pool = weighted_draw(pool, n, cfg.category_weights, random.Random(f"{name}:{cfg.train.seed}:categories"))
        records = [normalize_record(r) if "kind" not in r else r for r in pool[:n]]
        kept = []
        for r in records:
            key = _key(r)
            if key in seen:
                report["removed"]["duplicate across sources"] += 1
            elif name not in GENERATED and comparable_forms(r.get("prompt", "")) & held_out:
                report["removed"]["prompt is in an evaluation suite"] += 1
            else:
                seen.add(key)
                kept.append({**r, "source": name})
        pairs = [r for r in kept if r["kind"] == "pairwise"]
        longer = sum(len(text_of(r["chosen"])) > len(text_of(r["rejected"])) for r in pairs)
        report["sources"][name] = {"weight": weight, "records": len(kept), "kinds": dict(Counter(r["kind"] for r in kept)),
                                   "chosen_longer_share": round(longer / len(pairs), 3) if pairs else None,
                                   "categories": dict(Counter(top_category(r) for r in kept).most_common())}
        mix += kept
    unmatched = sorted(set(cfg.category_weights) - categories)
    if unmatched:  # a misspelt category would otherwise change nothing, silently
        raise ConfigError(f"category_weights {unmatched} match no record of the public sources; categories include "
                          f"{', '.join(sorted(c for c in categories if c)[:12])}")
    random.Random(cfg.train.seed).shuffle(mix)
    n_val = int(len(mix) * cfg.validation_fraction)
    report["removed"] = dict(report["removed"])
    report["train_records"], report["validation_records"] = len(mix) - n_val, n_val
    return mix[n_val:], mix[:n_val], report


def prepare_mix(cfg: RecipeConfig, output: Path) -> tuple[Path, TrainConfig, dict]:
    """Build and write the mix; returns the data directory, the training config that points at it (trains into
    OUTPUT/run), and the balance report."""
    data_dir = Path(cfg.data_dir) if cfg.data_dir else default_data_dir()
    train_rows, validation_rows, balance = build_mix(cfg, data_dir)
    write_records(output / "data" / "train.jsonl", train_rows)
    write_records(output / "data" / "validation.jsonl", validation_rows)
    (output / "data" / "balance.json").write_text(json.dumps(balance, indent=2))
    print(f"mix: {balance['train_records']} train / {balance['validation_records']} validation records; "
          f"removed {balance['removed'] or 'nothing'}")
    for name, s in balance["sources"].items():
        print(f"      {name:<14} {s['records']:>6}  {s['kinds']}  chosen longer: {s['chosen_longer_share']}")
        if len(s["categories"]) > 1:
            print(f"      {'':<14} {'':>6}  {s['categories']}")
    training = dataclasses.replace(cfg.train, train=str(output / "data" / "train.jsonl"),
                                   eval=str(output / "data" / "validation.jsonl"), output=str(output / "run"))
    return data_dir, training, balance


def threshold_split(validation: Path):
    """The validation split's stepwise solutions, where the process suites' ProcessBench threshold is chosen (None
    when it holds none)."""
    from rewardkit.eval.evaluate import ThresholdSplit

    solutions = [r for r in iter_records(validation) if r["kind"] == "stepwise"] if validation.exists() else []
    if not solutions:
        return None
    return ThresholdSplit(f"the recipe's validation split ({len(solutions)} stepwise solutions)", lambda: solutions)


def evaluate_on_suites(cfg: RecipeConfig, run_dir: Path, eval_dir: Path, data_dir: Path, validation: Path) -> dict:
    """Evaluate a trained run on the recipe's suites (report in eval_dir); returns the per-suite summary."""
    from rewardkit.eval.scorers import load_scorer
    from rewardkit.eval.suites import evaluate_suites

    scorer = load_scorer(run_dir, progress=cfg.train.progress, precision=cfg.train.precision)
    report = evaluate_suites(scorer, cfg.eval_suites, data_dir, output=eval_dir, max_records=cfg.eval_max_records,
                             about={"recipe": str(cfg.output)}, threshold_split=threshold_split(validation))
    return report["summary"]


def validation_by_source(model, validation: Path, cfg: RecipeConfig) -> dict:
    """Validation accuracy per source of the mix (pairs: chosen above rejected; lists: best on top; solutions: the
    share of their steps on the right side of 0), and over the whole split. The split's average is dominated by the
    largest source and can hide one that the others outvote (HH-harmless's "shorter is safer" against RMB
    helpfulness's "longer is better"), so a recipe reports both."""
    from rewardkit.eval.metrics import best_of_k
    from rewardkit.model.scoring import score_records

    credits: dict[str, list[float]] = {}
    for r in score_records(model, iter_records(validation), cfg.train.batch_size, precision=cfg.train.precision):
        if r["kind"] == "pairwise" and not r.get("tie"):
            credit = pair_credit(r["score_margin"])
        elif r["kind"] == "ranking" and r.get("best") is not None:
            credit = best_of_k(r["response_scores"], r["best"])
        elif r["kind"] == "stepwise" and r.get("step_scores"):  # the share of its scored steps on the right side
            scored = [(s > 0) == (y >= 0.5) for s, y in zip(r["step_scores"], r["labels"], strict=True) if s is not None]
            credit = sum(scored) / len(scored)
        else:
            continue
        credits.setdefault(r.get("source") or "(none)", []).append(credit)
    out = {name: {"records": len(c), "accuracy": sum(c) / len(c)} for name, c in sorted(credits.items())}
    every = [x for c in credits.values() for x in c]
    out["all"] = {"records": len(every), "accuracy": sum(every) / len(every) if every else float("nan")}
    return out


def print_by_source(by_source: dict) -> None:
    print("      validation accuracy: " + ", ".join(f"{name} {v['accuracy']:.3f} ({v['records']})"
                                                  for name, v in by_source.items()))


def train_ensemble(cfg: RecipeConfig, training: TrainConfig, output: Path) -> dict:
    """Train cfg.ensemble_models models that differ only in their seed, and save them in OUTPUT/run/model as one
    ensemble, or with merge_members as their weight average (its reward mean/std from the validation split).
    Returns a training summary with each member's validation metrics (the combined model's own come from
    validation_by_source)."""
    from rewardkit.model.ensemble import ModelEnsemble
    from rewardkit.model.merge import merge_models, reward_statistics
    from rewardkit.model.reward_model import RewardModel
    from rewardkit.train.trainer import train

    # Weight averaging needs members that start from the same weights (WARM); an ensemble gains from different ones.
    init_seed = training.seed if cfg.merge_members and training.init_seed is None else training.init_seed
    seeds = range(training.seed, training.seed + cfg.ensemble_models)
    members = []
    for i, seed in enumerate(seeds):
        print(f"      member seed {seed} ({i + 1}/{cfg.ensemble_models})")
        members.append(train(dataclasses.replace(training, seed=seed, init_seed=init_seed,
                                                 output=str(output / "members" / f"seed-{seed}"))))
    trained = [RewardModel.load(m["model"]) for m in members]
    if cfg.merge_members:
        combined = merge_models(trained, [f"seed-{seed}" for seed in seeds])
        combined.spec.normalization = reward_statistics(combined, iter_records(training.eval), training.batch_size,
                                                        training.precision)
    else:
        combined = ModelEnsemble(trained, "mean" if training.aggregate == "weighted" else "min")
    combined.save(output / "run" / "model")
    member_accuracy = [m["eval"].get("pairwise_accuracy", float("nan")) for m in members]
    print(f"      validation pairwise accuracy of the members: {' / '.join(f'{a:.3f}' for a in member_accuracy)}")
    return {"steps": sum(m["steps"] for m in members), "train_seconds": round(sum(m["train_seconds"] for m in members), 2),
            "eval": {"members": [m["eval"] for m in members]}}


def run_recipe(cfg: RecipeConfig) -> int:
    from rewardkit.model.load import load_model
    from rewardkit.train.trainer import train

    cfg.validate()  # also catches a config changed after it was made
    output = Path(cfg.output)
    print("[1/3] building the mix ...")
    data_dir, training, balance = prepare_mix(cfg, output)
    print("[2/3] training ...")
    summary = train_ensemble(cfg, training, output) if cfg.ensemble_models else train(training)
    by_source = {}
    if balance["validation_records"]:
        by_source = validation_by_source(load_model(output / "run"), Path(training.eval), cfg)
        print_by_source(by_source)
    print(f"[3/3] evaluating on {', '.join(cfg.eval_suites)} ...")
    validation = output / "data" / "validation.jsonl"
    suites = evaluate_on_suites(cfg, output / "run", output / "eval", data_dir, validation)
    orm = {}
    if cfg.orm_baseline:
        print("[+] the ORM baseline: the same model trained on the last step of each solution ...")
        orm_summary = train(dataclasses.replace(training, last_step_only=True, output=str(output / "orm" / "run")))
        orm = {"train": {k: orm_summary[k] for k in ("steps", "train_seconds", "eval")},
               "summary": evaluate_on_suites(cfg, output / "orm" / "run", output / "orm" / "eval", data_dir, validation)}
    (output / "recipe_summary.json").write_text(json.dumps(
        {"recipe": dataclasses.asdict(cfg), "balance": balance, "train": {k: summary[k] for k in ("steps", "train_seconds", "eval")},
         "validation_by_source": by_source, "summary": suites, **({"orm_baseline": orm} if orm else {})},
        indent=2, default=str))
    print(f"recipe done: {output / 'recipe_summary.json'}, report {output / 'eval' / 'report.html'}")
    return 0
