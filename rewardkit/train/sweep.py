"""`rewardkit sweep`: a small hyper-parameter grid over a recipe, chosen on the recipe's validation split.

Every combination of the grid trains on the same mix (built once, as `rewardkit recipe` builds it) and is
scored on the mix's seeded validation split (as a whole and per source), never on the evaluation suites.
Only the combination chosen on validation (choose_by; ties: lower validation loss) is then evaluated on the
suites, so the suites stay a test set. Writes OUTPUT/data/, OUTPUT/runs/NN/ (one model per combination),
OUTPUT/sweep.json, a markdown table OUTPUT/sweep.md, and OUTPUT/eval/ for the chosen combination.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from rewardkit.config import FLAT, Checked, ConfigError, from_dict, yaml_value
from rewardkit.train.config import TrainConfig
from rewardkit.train.recipe import RecipeConfig, evaluate_on_suites, prepare_mix, validation_by_source

CHOOSE_BY = ("accuracy", "source_mean", "worst_source")


def _sweep_recipe() -> RecipeConfig:
    return RecipeConfig(output="runs/sweep")


@dataclass
class SweepConfig(Checked):
    """Train every combination of a small grid on a recipe's mix, pick one on the validation split, and
    evaluate only that one on the suites. A sweep is a recipe plus a grid: every `rewardkit recipe` option
    applies, spelled as there (--sources, --train.lr; a recipe YAML is a sweep YAML), and --grid names the axes.
    Usually: rewardkit sweep --config examples/recipes/NAME.yaml --grid lr=2e-5,5e-5 objective=bt,hinge"""

    recipe: Annotated[RecipeConfig, FLAT] = field(default_factory=_sweep_recipe)
    """the recipe whose mix every combination trains on"""
    grid: list[str] = field(default_factory=list)
    """axes as OPTION=V1,V2,... (any training option, without 'train.'), e.g. lr=2e-5,5e-5 objective=bt,hinge"""
    choose_by: Literal[CHOOSE_BY] = "accuracy"
    """validation score that picks the run: accuracy (the whole split), source_mean (the sources weigh equally) or worst_source (the least accurate source)"""

    def validate(self) -> None:
        """The grid's options and values, and the recipe options a sweep needs, are checked now, not mid-sweep."""
        parse_grid(self.grid, self.recipe.train)
        if self.recipe.validation_fraction <= 0:
            raise ConfigError("a sweep chooses on the validation split: set validation_fraction above 0")
        if self.recipe.ensemble_models:
            raise ConfigError("a sweep trains single models: choose the options here, then set ensemble_models in "
                              "the recipe")


def parse_grid(grid: list[str], base: TrainConfig) -> dict[str, list]:
    """{"lr": [2e-05, 5e-05], ...} from ["lr=2e-5,5e-5", ...]. Each value is checked as a YAML value of that
    training option, and `base` with it must be a valid training config."""
    axes: dict[str, list] = {}
    for axis in grid:
        name, sep, values = axis.partition("=")
        name = name.strip().replace("-", "_").removeprefix("train.")
        if not sep or not values.strip():
            raise ConfigError(f"grid axis {axis!r} must look like OPTION=V1,V2 (e.g. lr=2e-5,5e-5)")
        if name in {f.name for f in dataclasses.fields(RecipeConfig)}:
            raise ConfigError(f"grid axis {name!r} changes the data mix; sweep training options only")
        axes[name] = [getattr(from_dict(TrainConfig, {name: yaml_value(v.strip())}, f"grid axis {axis!r}", base), name)
                      for v in values.split(",")]
    if not axes:
        raise ConfigError("give at least one grid axis, e.g. --grid lr=2e-5,5e-5 epochs=1,2")
    return axes


def selection_score(row: dict, choose_by: str) -> float:
    """accuracy: the trainer's validation accuracy over the whole split; source_mean / worst_source: the mean / the
    minimum of the per-source accuracies, so that a small source the others outvote still counts. (A source of
    best-of-K lists has a lower chance level than one of pairs, 1/K against 1/2, which worst_source does not undo.)"""
    if choose_by == "accuracy":
        return row["validation_accuracy"]
    per_source = [v["accuracy"] for name, v in row["validation_by_source"].items() if name != "all"]
    return sum(per_source) / len(per_source) if choose_by == "source_mean" else min(per_source)


def choose(rows: list[dict], choose_by: str = "accuracy") -> dict:
    """The row with the best validation score; ties go to the lower validation loss."""
    return max(rows, key=lambda r: (selection_score(r, choose_by), -r["validation_loss"]))


def markdown_table(axes: dict[str, list], rows: list[dict]) -> str:
    sources = [name for name in rows[0]["validation_by_source"] if name != "all"]
    head = ["run", *axes, "steps", "train s", "val loss", "val pair acc", "val best-of-K", "val accuracy",
            *(f"val {name}" for name in sources)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["run"] + (" (chosen)" if r.get("chosen") else ""), *(str(r[a]) for a in axes), str(r["steps"]),
                 f"{r['train_seconds']:.0f}", *(f"{r[k]:.3f}" if r[k] == r[k] else "—"  # nan: no such records
                                                for k in ("validation_loss", "validation_pairwise_accuracy",
                                                          "validation_best_of_k", "validation_accuracy")),
                 *(f"{r['validation_by_source'][name]['accuracy']:.3f}" for name in sources)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_sweep(cfg: SweepConfig) -> int:
    from rewardkit.model.reward_model import RewardModel
    from rewardkit.train.trainer import train

    cfg.validate()  # also catches a config changed after it was made
    recipe = cfg.recipe
    axes = parse_grid(cfg.grid, recipe.train)
    output = Path(recipe.output)
    data_dir, training, _ = prepare_mix(recipe, output)
    combinations = [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]
    rows = []
    for i, combo in enumerate(combinations):
        run = f"{i:02d}"
        print(f"[sweep {i + 1}/{len(combinations)}] {combo}")
        summary = train(dataclasses.replace(training, **combo, output=str(output / "runs" / run)))
        ev = summary["eval"]
        rows.append({"run": run, **combo, "model": summary["model"], "steps": summary["steps"],
                     "train_seconds": summary["train_seconds"], "validation_loss": ev["loss"],
                     "validation_pairwise_accuracy": ev.get("pairwise_accuracy", float("nan")),
                     "validation_best_of_k": ev.get("best_of_k_accuracy", float("nan")),
                     "validation_accuracy": ev["accuracy"],
                     "validation_by_source": validation_by_source(RewardModel.load(summary["model"]),
                                                                  Path(training.eval), recipe)})
    best = choose(rows, cfg.choose_by)
    best["chosen"] = True
    table = markdown_table(axes, rows)
    (output / "sweep.md").write_text(table)
    result = {"sweep": dataclasses.asdict(cfg), "axes": axes, "runs": rows, "chosen": best["run"]}
    (output / "sweep.json").write_text(json.dumps(result, indent=2, default=str))
    print(table)
    if recipe.eval_suites:
        print(f"evaluating the chosen run {best['run']} ({ {a: best[a] for a in axes} }, by {cfg.choose_by}) on {', '.join(recipe.eval_suites)} ...")
        result["summary"] = evaluate_on_suites(recipe, Path(best["model"]).parent, output / "eval", data_dir,
                                               output / "data" / "validation.jsonl")
        (output / "sweep.json").write_text(json.dumps(result, indent=2, default=str))
    print(f"sweep done: {output / 'sweep.md'}, {output / 'sweep.json'}")
    return 0
