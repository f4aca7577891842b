"""The public API end to end, the one scored-record schema that every scoring path writes, and the layering
rules the README states."""

import ast
import json
from pathlib import Path

import httpx
import pytest

import rewardkit as rk
from rewardkit.cli import main
from rewardkit.data.io import write_records

RECORDS = [
    {"prompt": "Name a colour.", "chosen": "Blue is a colour.", "rejected": "Seven.", "margin": 2.0},
    {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon, or maybe Nice."},
    {"prompt": "Pick the best.", "responses": ["A fine answer.", "No.", "Maybe."], "best": 0},
    {"prompt": "Rate this.", "response": "A decent answer.", "score": 3.0},
    {"prompt": "2 + 3 * 4?", "steps": ["3 * 4 = 12", "2 + 12 = 14"], "labels": [True, True]},
]
SCORED_FIELDS = {"pairwise": ("chosen_score", "rejected_score", "score_margin"), "ranking": ("response_scores",),
                 "rating": ("response_score",), "stepwise": ("response_score", "step_scores")}


@pytest.fixture(scope="module")
def model_dir(tiny_bert, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("api") / "model"
    rk.RewardModel.build(str(tiny_bert), max_length=64).save(path)
    return path


def test_public_api_trains_loads_scores_and_evaluates(tiny_bert, tmp_path):
    pairs = [{"prompt": f"q{i}", "chosen": f"a careful, helpful answer {i}.", "rejected": "no."} for i in range(24)]
    write_records(tmp_path / "pairs.jsonl", pairs)
    summary = rk.train_model(rk.TrainConfig(train=str(tmp_path / "pairs.jsonl"), output=str(tmp_path / "run"),
                                      backbone=str(tiny_bert), max_length=32, batch_size=8, progress=False))
    model = rk.load_model(tmp_path / "run")  # the run directory holds the model
    scores = rk.score(model, [(p["prompt"], p["chosen"]) for p in pairs[:3]])
    assert isinstance(scores, rk.Scores) and len(scores.values) == 3 and scores.members is None
    scored = rk.score_records(model, rk.read_records(tmp_path / "pairs.jsonl"))
    assert scored[0]["chosen_score"] == pytest.approx(scores.values[0], abs=1e-5)
    result = rk.evaluate(model, tmp_path / "pairs.jsonl", probes=0, resamples=50)
    assert result["pairwise"]["accuracy"]["pairs"] == 24
    assert summary["steps"] >= 1


def test_score_eval_and_server_write_one_schema(model_dir, tmp_path):
    from rewardkit.serve.app import ServeConfig, create_app
    from rewardkit.serve.background import BackgroundServer

    data = tmp_path / "mixed.jsonl"
    write_records(data, RECORDS)
    assert main(["score", str(model_dir), str(data), str(tmp_path / "scored.jsonl"), "--no-progress"]) == 0
    from_score = [json.loads(line) for line in (tmp_path / "scored.jsonl").read_text().splitlines()]
    assert main(["eval", str(model_dir), "--suite", "--input", str(data), "--output", str(tmp_path / "ev"),
                 "--probes", "0", "--no-progress"]) == 0
    (scored_file,) = (tmp_path / "ev" / "scored").glob("mixed*")
    from_eval = [json.loads(line) for line in scored_file.read_text().splitlines()]
    from_python = rk.score_records(rk.load_model(model_dir), RECORDS)
    for a, b, c in zip(from_score, from_eval, from_python, strict=True):
        for field in SCORED_FIELDS[a["kind"]]:
            assert a[field] == pytest.approx(b[field], abs=1e-5) == c[field]
    assert from_score[0]["margin"] == 2.0  # the labelled margin is left as it is
    model = rk.load_model(model_dir)
    inputs = [{"prompt": RECORDS[0]["prompt"], "response": RECORDS[0][k]} for k in ("chosen", "rejected")]
    with BackgroundServer(create_app(model, ServeConfig(model=str(model_dir)))) as server:
        raw = httpx.post(server.url + "/v1/score", json={"inputs": inputs}, timeout=60).json()["raw"]
    assert raw == pytest.approx([from_score[0]["chosen_score"], from_score[0]["rejected_score"]], abs=1e-5)


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n.startswith("rewardkit")}


PACKAGE = Path(rk.__file__).parent
RULES = {  # folder -> rewardkit packages its modules must not import
    "data": ("rewardkit.model", "rewardkit.train", "rewardkit.eval", "rewardkit.serve", "rewardkit.config"),
    "losses": ("rewardkit.data", "rewardkit.model", "rewardkit.train", "rewardkit.eval", "rewardkit.serve"),
    "model": ("rewardkit.train", "rewardkit.eval", "rewardkit.serve", "rewardkit.config", "rewardkit.options"),
    "eval": ("rewardkit.train", "rewardkit.serve"),
    "generation": ("rewardkit.train", "rewardkit.eval", "rewardkit.serve", "rewardkit.bon", "rewardkit.config"),
    "bon": ("rewardkit.train", "rewardkit.serve"),
    "judge": ("rewardkit.train", "rewardkit.serve", "rewardkit.bon", "rewardkit.eval"),
    "rl": ("rewardkit.train", "rewardkit.serve", "rewardkit.bon", "rewardkit.judge"),
    "control": ("rewardkit.train", "rewardkit.serve", "rewardkit.eval", "rewardkit.bon", "rewardkit.judge",
                "rewardkit.rl", "rewardkit.generation"),
    "label": ("rewardkit.train", "rewardkit.serve", "rewardkit.bon", "rewardkit.judge", "rewardkit.rl",
              "rewardkit.control.loop", "rewardkit.control.envs", "rewardkit.generation"),
}


@pytest.mark.parametrize("folder", sorted(RULES))
def test_layering_rules(folder):
    for path in (PACKAGE / folder).rglob("*.py"):
        if path.name == "cli.py":
            continue
        bad = [m for m in _imports(path) if m.startswith(RULES[folder])]
        assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


def test_only_the_top_level_command_imports_command_modules():
    for path in PACKAGE.rglob("*.py"):
        if path == PACKAGE / "cli.py":
            continue
        bad = [m for m in _imports(path) if m.endswith(".cli")]
        assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"
