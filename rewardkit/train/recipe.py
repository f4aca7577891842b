"""`rewardkit recipe RECIPE.yaml`: build a training mix from the public sets, train, and evaluate, in one command.

A recipe is a training config (every `rewardkit train` option) plus where its data comes from:
- sources: {source: weight}; a source contributes round(weight x max_per_source) records, drawn with the
  recipe's seed; category_weights ({category: weight}) make a public set's categories more or less likely to be
  drawn (RMB's Helpfulness / Harmlessness, ...). Sources are the *training* parts of the sets: hh-harmless and
  rmb-pairwise / rmb-bon are the 80% of prompts that their eval suites do not hold out; synthetic is the
  built-in tasks' training templates.
- Before training, records are de-duplicated across sources, and any record whose prompt occurs in an
  evaluation suite is removed (counted), so a recipe never trains on what it is scored on.
- A seeded share (validation_fraction) of the mix is the validation split used to pick the checkpoint.
- With ensemble_models K, K models are trained on the same mix with seeds seed .. seed+K-1 (OUTPUT/members/seed-S)
  and combined into one ensemble model (rewardkit.model.ensemble) that is evaluated in their place.
Writes OUTPUT/data/{train,validation}.jsonl, OUTPUT/data/balance.json, OUTPUT/run (the model), OUTPUT/eval
(report.json, report.html) and OUTPUT/recipe_summary.json.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rewardkit.config import ConfigError, option
from rewardkit.data.records import DataError, text_of
from rewardkit.train.config import TrainConfig

SOURCES = ("hh-harmless", "rmb-pairwise", "rmb-bon", "synthetic")


@dataclass
class RecipeConfig(TrainConfig):
    """Train a reward model on a documented mix of public preference data and evaluate it on the suites.
    Every `rewardkit train` option applies; the options below say where the data comes from."""

    train: str = option("", help="(set by the recipe: OUTPUT/data/train.jsonl)")
    output: str = option("runs/recipe", help="output directory: data/, run/, eval/, recipe_summary.json")
    sources: dict[str, float] = option({"hh-harmless": 1.0, "synthetic": 1.0},
                                       help=f"training sources and weights; sources: {', '.join(SOURCES)}")
    max_per_source: int = option(1000, help="records drawn from a source of weight 1")
    category_weights: dict[str, float] = option({}, help="relative weight of the public sets' records by category, matched "
                                                "against any part of a record's category path (e.g. Harmlessness=0.5 "
                                                "halves RMB's harmlessness share of the drawn records; 0 leaves them out)")
    validation_fraction: float = option(0.05, help="seeded share of the mix used for checkpoint selection")
    data_dir: str = option("", help="directory of the public sets (default: $REWARDKIT_DATA_DIR or ../shared/data)")
    eval_suites: list[str] = option(["all"], help="suites to evaluate the trained model on")
    eval_max_records: int = option(2000, help="records per suite in the evaluation (sampled by prompt)")
    ensemble_models: int = option(0, help="train K separate models (seeds seed .. seed+K-1) and evaluate them as one "
                                  "ensemble whose spread is the uncertainty (0 = one model)")
    merge_members: bool = option(False, help="with ensemble_models: average the K models' weights into one model "
                                 "(WARM; one forward pass, no uncertainty) instead of keeping them as an ensemble; the "
                                 "K runs then start from the same weights (init_seed = seed) and differ in data order")


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
    """The training part of a source in a seeded random order (synthetic: n records generated for it)."""
    from rewardkit.data.convert import convert
    from rewardkit.data.synth import generate
    from rewardkit.eval.suites import held_out_split

    if name == "synthetic":
        return generate("mix", n, seed, "train")
    where = {"hh-harmless": ("hh-rlhf", data_dir / "hh-rlhf" / "harmless-base-test.jsonl.gz"),
             "rmb-pairwise": ("rmb-pairwise", data_dir / "rmb" / "pairwise"),
             "rmb-bon": ("rmb-bon", data_dir / "rmb" / "bon")}
    if name not in where:
        raise ConfigError(f"unknown source {name!r}; choose from {', '.join(SOURCES)}")
    fmt, path = where[name]
    if not path.exists():
        raise DataError(f"source {name!r} needs {path}; pass --data-dir", source=str(path))
    pool = held_out_split(list(convert(fmt, path)))[0]
    random.Random(f"{name}:{seed}").shuffle(pool)
    return pool


def prompt_keys(prompt) -> set[str]:
    """Comparable forms of a prompt: all its text, and its last user turn, without roles, case or spacing,
    so that 'How do I ...?' in one set matches [{"role": "user", "content": "How do I ...?"}] in another."""
    def norm(text: str) -> str:
        return " ".join(str(text).lower().split())

    if isinstance(prompt, list):
        keys = {norm(" ".join(str(m.get("content", "")) for m in prompt))}
        users = [m for m in prompt if m.get("role") == "user"]
        if users:
            keys.add(norm(users[-1].get("content", "")))
        return keys - {""}
    return {norm(prompt)} - {""}


def eval_prompts(data_dir: Path) -> set[str]:
    """Prompt keys of every evaluation suite whose data is present."""
    from rewardkit.eval.suites import SUITES

    keys: set[str] = set()
    for suite in SUITES.values():
        if suite.needs is None or (data_dir / suite.needs).exists():
            for r in suite.load(data_dir):
                keys |= prompt_keys(r.get("prompt", ""))
    return keys


def top_category(record: dict) -> str:
    """The part of a category path a balance report counts: 'Pairwise_set/Harmlessness/S2' -> 'Harmlessness'."""
    parts = [p for p in str(record.get("category") or "").split("/") if p and not p.endswith("_set")]
    return parts[0] if parts else "(none)"


def _key(r: dict) -> str:
    responses = [r["chosen"], r["rejected"]] if r["kind"] == "pairwise" else r.get("responses") or [r.get("response")]
    return json.dumps([r.get("prompt"), responses], sort_keys=True, default=str)


def build_mix(cfg: RecipeConfig, data_dir: Path) -> tuple[list[dict], list[dict], dict]:
    from rewardkit.data.records import normalize_record

    if any(w < 0 for w in cfg.category_weights.values()):
        raise ConfigError(f"category_weights must not be negative: {cfg.category_weights}")
    held_out = eval_prompts(data_dir)
    seen: set[str] = set()
    mix: list[dict] = []
    report: dict = {"sources": {}, "removed": Counter()}
    categories: set[str] = set()  # of the public sets' pools, to catch a misspelt category weight
    for name, weight in cfg.sources.items():
        n = round(weight * cfg.max_per_source)
        pool = source_pool(name, data_dir, n, cfg.seed)
        if name != "synthetic" and cfg.category_weights:
            categories |= {part for r in pool for part in str(r.get("category") or "").split("/")}
            pool = weighted_draw(pool, n, cfg.category_weights, random.Random(f"{name}:{cfg.seed}:categories"))
        records = [normalize_record(r) if "kind" not in r else r for r in pool[:n]]
        kept = []
        for r in records:
            key = _key(r)
            if key in seen:
                report["removed"]["duplicate across sources"] += 1
            elif name != "synthetic" and prompt_keys(r.get("prompt", "")) & held_out:
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
    random.Random(cfg.seed).shuffle(mix)
    n_val = int(len(mix) * cfg.validation_fraction)
    report["removed"] = dict(report["removed"])
    report["train_records"], report["validation_records"] = len(mix) - n_val, n_val
    return mix[n_val:], mix[:n_val], report


def prepare_mix(cfg: RecipeConfig, output: Path) -> tuple[Path, dict, dict]:
    """Build and write the mix; returns the data directory, the train options that point at it, and the balance report."""
    from rewardkit.data.io import write_records
    from rewardkit.eval.suites import default_data_dir

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
    train_fields = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(TrainConfig)}
    train_fields.update(train=str(output / "data" / "train.jsonl"), eval=str(output / "data" / "validation.jsonl"),
                        output=str(output / "run"))
    return data_dir, train_fields, balance


def evaluate_on_suites(cfg: RecipeConfig, run_dir: Path, eval_dir: Path, data_dir: Path) -> dict:
    """Evaluate a trained run on the recipe's suites; returns the report's per-suite summary."""
    from rewardkit.eval.cli import EvalConfig, run_eval

    run_eval(EvalConfig(model=str(run_dir), suite=cfg.eval_suites, data_dir=str(data_dir), output=str(eval_dir),
                        max_records=cfg.eval_max_records, precision=cfg.precision, threads=cfg.threads, progress=cfg.progress))
    return json.loads((eval_dir / "report.json").read_text())["summary"]


def validation_by_source(model, validation: Path, cfg: RecipeConfig) -> dict:
    """Validation accuracy per source of the mix (pairs: chosen above rejected; lists: best on top), and over the
    whole split. The split's average is dominated by the largest source and can hide one that the others outvote
    (HH-harmless's "shorter is safer" against RMB helpfulness's "longer is better"), so a recipe reports both."""
    from rewardkit.data.io import iter_records
    from rewardkit.eval.metrics import best_of_k, pair_credit
    from rewardkit.model.scoring import score_records

    credits: dict[str, list[float]] = {}
    for r in score_records(model, iter_records(validation), cfg.batch_size, precision=cfg.precision):
        if r["kind"] == "pairwise" and not r.get("tie"):
            credit = pair_credit(r["margin"])
        elif r["kind"] == "ranking" and r.get("best") is not None:
            credit = best_of_k(r["scores"], r["best"])
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


def train_ensemble(cfg: RecipeConfig, train_fields: dict, output: Path) -> dict:
    """Train cfg.ensemble_models models that differ only in their seed, and save them in OUTPUT/run/model as one
    ensemble, or with merge_members as their weight average (its reward mean/std from the validation split).
    Returns a training summary with each member's validation metrics (the combined model's own come from
    validation_by_source)."""
    from rewardkit.data.io import iter_records
    from rewardkit.model.ensemble import ModelEnsemble
    from rewardkit.model.merge import merge_models, reward_statistics
    from rewardkit.model.reward_model import RewardModel
    from rewardkit.train.trainer import train

    # Weight averaging needs members that start from the same weights (WARM); an ensemble gains from different ones.
    init_seed = cfg.seed if cfg.merge_members and cfg.init_seed is None else cfg.init_seed
    members = []
    for seed in range(cfg.seed, cfg.seed + cfg.ensemble_models):
        print(f"      member seed {seed} ({seed - cfg.seed + 1}/{cfg.ensemble_models})")
        members.append(train(TrainConfig(**{**train_fields, "seed": seed, "init_seed": init_seed,
                                            "output": str(output / "members" / f"seed-{seed}")})))
    trained = [RewardModel.load(m["model"]) for m in members]
    if cfg.merge_members:
        combined = merge_models(trained, [f"seed-{seed}" for seed in range(cfg.seed, cfg.seed + cfg.ensemble_models)])
        combined.spec.normalization = reward_statistics(combined, iter_records(train_fields["eval"]), cfg.batch_size, cfg.precision)
    else:
        combined = ModelEnsemble(trained, "mean" if cfg.aggregate == "weighted" else "min")
    combined.save(output / "run" / "model")
    member_accuracy = [m["eval"].get("pairwise_accuracy", float("nan")) for m in members]
    print(f"      validation pairwise accuracy of the members: {' / '.join(f'{a:.3f}' for a in member_accuracy)}")
    return {"steps": sum(m["steps"] for m in members), "train_seconds": round(sum(m["train_seconds"] for m in members), 2),
            "eval": {"members": [m["eval"] for m in members]}}


def run_recipe(cfg: RecipeConfig) -> int:
    from rewardkit.model.cli import load_model
    from rewardkit.train.trainer import train

    if cfg.ensemble_models and (cfg.ensemble_models < 2 or cfg.ensemble or cfg.validation_fraction <= 0):
        raise ConfigError("ensemble_models needs K >= 2 and a validation split (validation_fraction > 0), and cannot "
                          "be combined with ensemble (K heads in one model)")
    if cfg.merge_members and not cfg.ensemble_models:
        raise ConfigError("merge_members averages the models of ensemble_models: set ensemble_models: K (K >= 2)")
    output = Path(cfg.output)
    print("[1/3] building the mix ...")
    data_dir, train_fields, balance = prepare_mix(cfg, output)
    print("[2/3] training ...")
    summary = train_ensemble(cfg, train_fields, output) if cfg.ensemble_models else train(TrainConfig(**train_fields))
    by_source = {}
    if balance["validation_records"]:
        by_source = validation_by_source(load_model(output / "run"), Path(train_fields["eval"]), cfg)
        print_by_source(by_source)
    print(f"[3/3] evaluating on {', '.join(cfg.eval_suites)} ...")
    suites = evaluate_on_suites(cfg, output / "run", output / "eval", data_dir)
    (output / "recipe_summary.json").write_text(json.dumps(
        {"recipe": dataclasses.asdict(cfg), "balance": balance, "train": {k: summary[k] for k in ("steps", "train_seconds", "eval")},
         "validation_by_source": by_source, "summary": suites}, indent=2, default=str))
    print(f"recipe done: {output / 'recipe_summary.json'}, report {output / 'eval' / 'report.html'}")
    return 0
