"""Recipes: the training mix is built from training splits only, de-duplicated across sources, with every
prompt of an evaluation suite removed; one command trains and evaluates."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest
import torch

from rewardkit.cli import main
from rewardkit.config import ConfigError
from rewardkit.train.recipe import SOURCES, RecipeConfig, build_mix, weighted_draw
from rewardkit.train.sweep import choose


def _hh_file(directory, n=50):
    (directory / "hh-rlhf").mkdir(parents=True)
    rows = [{"chosen": f"\n\nHuman: question {i}?\n\nAssistant: a kind answer {i}",
             "rejected": f"\n\nHuman: question {i}?\n\nAssistant: rude {i}"} for i in range(n)]
    rows.append(rows[0])  # an exact duplicate
    with gzip.open(directory / "hh-rlhf" / "harmless-base-test.jsonl.gz", "wt") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))


def test_mix_uses_training_split_dedups_and_removes_eval_prompts(tmp_path):
    _hh_file(tmp_path)
    (tmp_path / "llmbar").mkdir()
    # an LLMBar item whose prompt equals an HH training prompt: it must not be trained on
    (tmp_path / "llmbar" / "natural.json").write_text(json.dumps(
        [{"input": "question 3?", "output_1": "x", "output_2": "y", "label": 1}]))
    cfg = RecipeConfig(output=str(tmp_path / "out"), sources={"hh-harmless": 1.0, "synthetic": 1.0}, max_per_source=40,
                       validation_fraction=0.1)
    train, validation, report = build_mix(cfg, tmp_path)
    from rewardkit.data.texts import text_of
    from rewardkit.eval.suites import SUITES

    test_prompts = {text_of(r["prompt"]) for r in SUITES["hh-harmless"].load(tmp_path)}
    trained_prompts = {text_of(r["prompt"]) for r in train + validation if r["source"] == "hh-harmless"}
    assert not trained_prompts & test_prompts                     # only the training 80% of HH
    assert "user: question 3?" not in trained_prompts
    assert report["removed"]["prompt is in an evaluation suite"] >= 1
    assert report["sources"]["synthetic"]["records"] + report["removed"].get("duplicate across sources", 0) >= 40
    assert len(validation) == int((len(train) + len(validation)) * 0.1)


def test_category_weights_shift_the_draw_and_a_misspelt_category_is_an_error(tmp_path):
    records = [{"id": i, "category": f"Pairwise_set/{'Harmlessness' if i % 2 else 'Helpfulness'}/x"} for i in range(400)]
    harmless = [sum("Harmlessness" in r["category"] for r in weighted_draw(records, 100, w, random.Random(0)))
                for w in ({}, {"Harmlessness": 3.0}, {"Harmlessness": 0.0})]
    assert 35 <= harmless[0] <= 65 and harmless[1] >= 65 and harmless[2] == 0
    assert len({r["id"] for r in weighted_draw(records, 100, {"Helpfulness": 2.0}, random.Random(0))}) == 100  # no repeats
    _hh_file(tmp_path)
    cfg = RecipeConfig(output=str(tmp_path / "out"), sources={"hh-harmless": 1.0}, max_per_source=20,
                       category_weights={"Harmlesness": 0.5})
    with pytest.raises(ConfigError, match="match no record of the public sources"):
        build_mix(cfg, tmp_path)


def test_recipe_command_trains_and_evaluates(tiny_bert_no_dropout, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"output: {tmp_path / 'out'}\nsources: {{synthetic: 1.0}}\nmax_per_source: 48\n"
                      f"eval_suites: [synthetic]\neval_max_records: 60\nprobes: 0\n"
                      f"train:\n  backbone: {tiny_bert_no_dropout}\n  max_length: 64\n  batch_size: 8\n  lr: 1.0e-3\n"
                      f"  progress: false\n")
    # 'probes' is not a recipe option: a clear error, not a traceback
    assert main(["recipe", "--config", str(recipe)]) == 2
    recipe.write_text(recipe.read_text().replace("probes: 0\n", ""))
    assert main(["recipe", "--config", str(recipe)]) == 0
    summary = json.loads((tmp_path / "out" / "recipe_summary.json").read_text())
    assert 40 <= summary["balance"]["sources"]["synthetic"]["records"] <= 48  # less any duplicates the generator drew
    assert "synthetic" in summary["summary"] and (tmp_path / "out" / "eval" / "report.html").exists()
    by_source = summary["validation_by_source"]  # every validation pair scored once, under its source
    assert by_source["synthetic"]["records"] == by_source["all"]["records"] == summary["balance"]["validation_records"]


def test_a_process_recipe_chooses_its_threshold_on_validation_and_trains_an_orm_twin(tiny_bert_no_dropout, tmp_path):
    cfg = {"output": str(tmp_path / "out"), "sources": {"arithmetic-steps": 1.0}, "max_per_source": 40,
           "validation_fraction": 0.25, "eval_suites": ["arithmetic-steps"], "eval_max_records": 24, "orm_baseline": True,
           "train": {"backbone": str(tiny_bert_no_dropout), "max_length": 64, "batch_size": 8, "progress": False}}
    recipe = tmp_path / "prm.yaml"
    recipe.write_text(json.dumps(cfg))  # YAML is a superset of JSON
    assert main(["recipe", "--config", str(recipe)]) == 0
    summary = json.loads((tmp_path / "out" / "recipe_summary.json").read_text())
    report = json.loads((tmp_path / "out" / "eval" / "report.json").read_text())
    threshold = report["suites"]["arithmetic-steps"]["stepwise"]["threshold"]
    assert threshold["chosen_on"] == "the recipe's validation split (10 stepwise solutions)"
    assert "arithmetic-steps" in summary["orm_baseline"]["summary"] and (tmp_path / "out" / "orm" / "eval" / "report.html").exists()
    assert "last_step_only: true" in (tmp_path / "out" / "orm" / "run" / "train_config.yaml").read_text()
    with pytest.raises(ConfigError, match="stepwise source"):
        RecipeConfig(sources={"synthetic": 1.0}, orm_baseline=True).validate()


def test_sweep_can_choose_by_the_mean_or_the_worst_source():
    def row(run, accuracy, hh, rmb):
        return {"run": run, "validation_accuracy": accuracy, "validation_loss": 0.6,
                "validation_by_source": {"hh-harmless": {"accuracy": hh}, "rmb-pairwise": {"accuracy": rmb},
                                         "all": {"accuracy": accuracy}}}

    rows = [row("a", 0.80, 0.55, 0.90), row("b", 0.75, 0.65, 0.80), row("c", 0.78, 0.50, 1.00)]
    # means over sources: a 0.725, b 0.725, c 0.75; worst sources: a 0.55, b 0.65, c 0.50
    assert [choose(rows, by)["run"] for by in ("accuracy", "source_mean", "worst_source")] == ["a", "c", "b"]


def test_sweep_trains_each_combination_and_evaluates_only_the_validation_choice(tiny_bert_no_dropout, tmp_path):
    args = ["sweep", "--output", str(tmp_path / "sw"), "--sources", "synthetic=1", "--max-per-source", "48",
            "--train.backbone", str(tiny_bert_no_dropout), "--train.max-length", "64", "--train.batch-size", "8",
            "--validation-fraction", "0.25", "--eval-suites", "synthetic", "--eval-max-records", "40", "--train.no-progress"]
    assert main(args + ["--grid", "lr=1e-3", "max_per_source=10"]) == 2   # a data option is not a training axis
    assert main(args + ["--grid", "objective=bt,nonsense"]) == 2           # a bad value fails before any training
    assert main(args + ["--grid", "lr=1e-3", "--ensemble-models", "2"]) == 2  # a sweep trains single models
    assert main(args + ["--grid", "lr=1e-3", "--choose-by", "best_guess"]) == 2  # not one of the choices
    assert main(args + ["--grid", "lr=1e-6,3e-3", "objective=bt,hinge"]) == 0
    result = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert [(r["lr"], r["objective"]) for r in result["runs"]] == [(1e-6, "bt"), (1e-6, "hinge"), (3e-3, "bt"), (3e-3, "hinge")]
    best = max(result["runs"], key=lambda r: (r["validation_accuracy"], -r["validation_loss"]))
    assert result["chosen"] == best["run"] and best["lr"] == 3e-3  # a near-zero learning rate cannot win here
    assert "synthetic" in result["summary"] and (tmp_path / "sw" / "eval" / "report.html").exists()
    table = (tmp_path / "sw" / "sweep.md").read_text()
    assert table.count("\n") == 2 + 4 and f"{best['run']} (chosen)" in table and "val synthetic" in table
    validation_records = json.loads((tmp_path / "sw" / "data" / "balance.json").read_text())["validation_records"]
    assert all(r["validation_by_source"]["all"]["records"] == validation_records for r in result["runs"])


def test_recipe_with_ensemble_models_trains_each_seed_and_evaluates_the_ensemble(tiny_bert_no_dropout, tmp_path):
    out = tmp_path / "out"
    args = ["recipe", "--output", str(out), "--sources", "synthetic=1", "--max-per-source", "48",
            "--train.backbone", str(tiny_bert_no_dropout), "--train.max-length", "64", "--train.batch-size", "8",
            "--train.lr", "1e-3", "--validation-fraction", "0.25", "--eval-suites", "synthetic", "--eval-max-records", "40",
            "--train.no-progress"]
    assert main(args + ["--ensemble-models", "2", "--train.ensemble", "2"]) == 2  # K models or K heads, not both
    assert main(args + ["--ensemble-models", "2", "--train.seed", "5"]) == 0
    assert sorted(p.name for p in (out / "members").iterdir()) == ["seed-5", "seed-6"]
    from rewardkit.model.load import load_model

    assert len(load_model(str(out)).members) == 2  # a recipe's output directory loads as its model
    assert main(["calibrate", str(out), "--data", str(out / "data" / "train.jsonl")]) == 0  # calibrated in place
    assert "temperature" in json.loads((out / "run" / "model" / "ensemble.json").read_text())["calibration"]
    assert not (out / "ensemble.json").exists()
    manifest = json.loads((out / "run" / "model" / "ensemble.json").read_text())
    assert manifest["members"] == ["member-0", "member-1"] and manifest["aggregate"] == "mean"
    summary = json.loads((out / "recipe_summary.json").read_text())
    assert len(summary["train"]["eval"]["members"]) == 2 and 0 <= summary["validation_by_source"]["all"]["accuracy"] <= 1
    report = json.loads((out / "eval" / "report.json").read_text())
    assert "uncertainty_auroc" in report["summary"]["synthetic"]


def test_recipe_with_merge_members_saves_the_weight_average_of_its_seeds(tiny_bert_no_dropout, tmp_path):
    from rewardkit.model.load import load_model
    from rewardkit.model.reward_model import RewardModel

    out = tmp_path / "out"
    args = ["recipe", "--output", str(out), "--sources", "synthetic=1", "--max-per-source", "40",
            "--train.backbone", str(tiny_bert_no_dropout), "--train.max-length", "64", "--train.batch-size", "8",
            "--train.lr", "1e-3", "--validation-fraction", "0.25", "--eval-suites", "synthetic", "--eval-max-records", "20",
            "--train.no-progress"]
    assert main(args + ["--merge-members"]) == 2  # nothing to merge without ensemble_models
    assert main(args + ["--ensemble-models", "2", "--merge-members"]) == 0
    merged = load_model(str(out))
    assert isinstance(merged, RewardModel) and merged.spec.normalization["std"] > 0
    members = [RewardModel.load(out / "members" / f"seed-{s}" / "model").state_dict() for s in (0, 1)]
    head = next(k for k in merged.state_dict() if k.startswith("head") and k.endswith("weight"))
    assert not torch.allclose(members[0][head], members[1][head])
    assert torch.allclose(merged.state_dict()[head], (members[0][head] + members[1][head]) / 2, atol=1e-6)
    summary = json.loads((out / "recipe_summary.json").read_text())
    assert summary["recipe"]["merge_members"] and "synthetic" in summary["summary"]


ROOT = Path(__file__).parent.parent
RECIPES = sorted([*(ROOT / "examples" / "recipes").glob("*.yaml"), *(ROOT / "docs" / "reports" / "recipes").glob("*.yaml")])


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.parent.parent.name + "/" + p.name)
def test_every_shipped_recipe_is_a_valid_config_and_names_its_own_command(path):
    from rewardkit.config import load_yaml, parse
    from rewardkit.train.sweep import SweepConfig

    command = "sweep" if "grid" in load_yaml(path) else "recipe"
    cfg = parse(SweepConfig if command == "sweep" else RecipeConfig, ["--config", str(path)])  # checks the grid too
    recipe = cfg.recipe if command == "sweep" else cfg
    assert set(recipe.sources) <= set(SOURCES), f"{path.name}: unknown source in {sorted(recipe.sources)}"
    assert f"rewardkit {command} --config {path.relative_to(ROOT)}" in path.read_text()
