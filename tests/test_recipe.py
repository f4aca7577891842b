"""Recipes: the training mix is built from training splits only, de-duplicated across sources, with every
prompt of an evaluation suite removed; one command trains and evaluates."""

from __future__ import annotations

import gzip
import json

from rewardkit.cli import main
from rewardkit.train.recipe import RecipeConfig, build_mix


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
    from rewardkit.data.records import text_of
    from rewardkit.eval.suites import SUITES

    test_prompts = {text_of(r["prompt"]) for r in SUITES["hh-harmless"].load(tmp_path)}
    trained_prompts = {text_of(r["prompt"]) for r in train + validation if r["source"] == "hh-harmless"}
    assert not trained_prompts & test_prompts                     # only the training 80% of HH
    assert "user: question 3?" not in trained_prompts
    assert report["removed"]["prompt is in an evaluation suite"] >= 1
    assert report["sources"]["synthetic"]["records"] + report["removed"].get("duplicate across sources", 0) >= 40
    assert len(validation) == int((len(train) + len(validation)) * 0.1)


def test_recipe_command_trains_and_evaluates(tiny_bert_no_dropout, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"output: {tmp_path / 'out'}\nsources: {{synthetic: 1.0}}\nmax_per_source: 48\n"
                      f"backbone: {tiny_bert_no_dropout}\nmax_length: 64\nbatch_size: 8\nlr: 1.0e-3\n"
                      f"eval_suites: [synthetic]\neval_max_records: 60\nprogress: false\nprobes: 0\n")
    # 'probes' is not a recipe option: a clear error, not a traceback
    assert main(["recipe", "--config", str(recipe)]) == 2
    recipe.write_text(recipe.read_text().replace("probes: 0\n", ""))
    assert main(["recipe", "--config", str(recipe)]) == 0
    summary = json.loads((tmp_path / "out" / "recipe_summary.json").read_text())
    assert 40 <= summary["balance"]["sources"]["synthetic"]["records"] <= 48  # less any duplicates the generator drew
    assert "synthetic" in summary["summary"] and (tmp_path / "out" / "eval" / "report.html").exists()


def test_sweep_trains_each_combination_and_evaluates_only_the_validation_choice(tiny_bert_no_dropout, tmp_path):
    args = ["sweep", "--output", str(tmp_path / "sw"), "--sources", "synthetic=1", "--max-per-source", "48",
            "--backbone", str(tiny_bert_no_dropout), "--max-length", "64", "--batch-size", "8",
            "--validation-fraction", "0.25", "--eval-suites", "synthetic", "--eval-max-records", "40", "--no-progress"]
    assert main(args + ["--grid", "lr=1e-3", "max_per_source=10"]) == 2   # a data option is not a training axis
    assert main(args + ["--grid", "objective=bt,nonsense"]) == 2           # a bad value fails before any training
    assert main(args + ["--grid", "lr=1e-6,3e-3", "objective=bt,hinge"]) == 0
    result = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert [(r["lr"], r["objective"]) for r in result["runs"]] == [(1e-6, "bt"), (1e-6, "hinge"), (3e-3, "bt"), (3e-3, "hinge")]
    best = max(result["runs"], key=lambda r: (r["validation_accuracy"], -r["validation_loss"]))
    assert result["chosen"] == best["run"] and best["lr"] == 3e-3  # a near-zero learning rate cannot win here
    assert "synthetic" in result["summary"] and (tmp_path / "sw" / "eval" / "report.html").exists()
    table = (tmp_path / "sw" / "sweep.md").read_text()
    assert table.count("\n") == 2 + 4 and f"{best['run']} (chosen)" in table
