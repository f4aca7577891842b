"""Each script in bench/ runs end to end on tiny inputs (tiny random models, a handful of records, a step or
two) and writes its JSON with the machine it ran on. A script runs in this process, as `python bench/NAME.py
ARGS` would run it, with the thread count, sys.path and environment restored afterwards. Scripts that read the
shared data directory or need the optional `bench` extra (TRL, aiohttp) are skipped when those are missing.

Deselect with `-m "not bench_smoke"`.
"""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest
import torch
from conftest import write_jsonl

from rewardkit.data.io import write_records
from rewardkit.data.synth import generate
from rewardkit.model.ensemble import ModelEnsemble
from rewardkit.model.reward_model import RewardModel

pytestmark = pytest.mark.bench_smoke

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "hh-rlhf").exists(), reason=f"needs the shared data directory {DATA}")


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """A private cache for the module's scripts, so the matmul timing behind machine_info() runs once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def tiny_model(tiny_bert, tmp_path_factory) -> Path:
    """A saved rewardkit model on the tiny BERT backbone (random head)."""
    return RewardModel.build(str(tiny_bert), max_length=64).save(tmp_path_factory.mktemp("model") / "model")


@pytest.fixture
def run_script(cache, monkeypatch, capsys):
    """run_script(NAME, *ARGS) runs bench/NAME as a script and fails with its output unless it exits 0."""
    monkeypatch.setenv("REWARDKIT_CACHE_DIR", str(cache))
    monkeypatch.setattr(sys, "path", list(sys.path))  # the scripts put the repository root first
    threads = torch.get_num_threads()

    def run(name: str, *args) -> None:
        path = ROOT / "bench" / name
        monkeypatch.setattr(sys, "argv", [str(path), *map(str, args)])
        try:
            with pytest.raises(SystemExit) as exited:
                runpy.run_path(str(path), run_name="__main__")
        finally:
            torch.set_num_threads(threads)
        out = capsys.readouterr()
        assert exited.value.code in (0, None), f"{name} exited {exited.value.code}\n{out.out[-3000:]}\n{out.err[-3000:]}"
        assert "skipped:" not in out.out, out.out

    return run


def assert_machine(machine: dict) -> None:
    assert machine["cpu"] and machine["torch"] and machine["torch_threads"] >= 1
    assert machine["matmul_gflop_per_second"]["fp32"] > 0


def pairs_with_margins(n: int, members: int = 0) -> list[dict]:
    """Pairwise records as `rewardkit eval` saves them scored: margins of both signs, optionally per member."""
    rows = []
    for i, r in enumerate(generate("safety", n, 0, "test")):
        row = {**r, "kind": "pairwise", "score_margin": (-1) ** i * (0.1 + i / n)}
        if members:
            row["chosen_members"] = [0.1 * i + m for m in range(members)]
            row["rejected_members"] = [0.05 * i * (-1) ** m for m in range(members)]
            row["preference_uncertainty"] = 0.01 * i
        rows.append(row)
    return rows


@needs_data
def test_check_converters(run_script, tmp_path):
    run_script("check_converters.py", "--data-dir", DATA, "--output", tmp_path / "out.json")
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["hh-rlhf"]["records"] > 0
    assert_machine(out["machine"])


def test_ensemble_diversity(run_script, tiny_bert, tmp_path):
    members = [RewardModel.build(str(tiny_bert), init="random", max_length=64) for _ in range(2)]
    for member in members:  # an ensemble standardises its members by the reward statistics training stores
        member.spec.normalization = {"mean": 0.0, "std": 1.0}
    ModelEnsemble(members).save(tmp_path / "ensemble")
    write_records(tmp_path / "pairs.jsonl", generate("safety", 6, 0, "test"))
    run_script("ensemble_diversity.py", tmp_path / "ensemble", tmp_path / "pairs.jsonl", "--max-pairs", 6,
               "--output", tmp_path / "out.json")
    result = json.loads((tmp_path / "out.json").read_text())[str(tmp_path / "ensemble")]
    assert result["members"] == 2 and result["pairs"] == 6
    assert_machine(result["machine"])


def test_feature_distance(run_script, tiny_model, tmp_path):
    (tmp_path / "eval" / "scored").mkdir(parents=True)
    write_jsonl(tmp_path / "eval" / "scored" / "synthetic.jsonl", pairs_with_margins(8))
    write_records(tmp_path / "train.jsonl", generate("safety", 12, 0, "train"))
    run_script("feature_distance.py", tiny_model, tmp_path / "eval", "--train", tmp_path / "train.jsonl",
               "--train-responses", 16, "--per-suite", 8, "--k", 2, "--output", tmp_path / "out.json")
    result = json.loads((tmp_path / "out.json").read_text())[str(tiny_model)]
    assert result["suites"]["synthetic"]["pairs"] == 8
    assert_machine(result["machine"])


def test_scaling(run_script, tiny_llama, tmp_path):
    run_script("scaling.py", "--backbone", tiny_llama, "--smoke", "--repeats", 1, "--threads", 1,
               "--output", tmp_path / "out.json")
    out = json.loads((tmp_path / "out.json").read_text())
    assert [row["k"] for row in out["rows"]] == [2, 4] and "prefix_shared" in out["rows"][0]
    assert_machine(out["machine"])


def test_score_vs_hf(run_script, tmp_path):
    # a data directory without RMB: the script scores its built-in synthetic sequences
    run_script("score_vs_hf.py", "--data-dir", tmp_path / "no-data", "--sequences", 8, "--batch-size", 4,
               "--max-length", 32, "--threads", 1, "--peak-sizes", 256, "--peak-seconds", 0.02, "--output", tmp_path / "out.json")
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["sequences"] == 8 and out["runs"]["rewardkit_fp32"]["speedup_vs_hf"] > 0
    assert_machine(out["machine"])


def test_serve_load(run_script, tiny_model, tmp_path):
    pytest.importorskip("aiohttp", reason="the load generator needs aiohttp (pip install -e '.[bench]')")
    pytest.importorskip("uvicorn", reason="the server needs the serve extra")
    run_script("serve_load.py", "--model", tiny_model, "--clients", 2, "--requests", 8, "--threads", 1,
               "--max-batch-size", 4, "--output", tmp_path / "out.json")
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["batching"]["requests"] == 8 and out["no_batching"]["requests"] == 8
    assert_machine(out["machine"])


@needs_data
def test_train_hh(run_script, tmp_path):
    # MiniLM, 16 training pairs, 32 tokens: two optimizer steps
    run_script("train_hh.py", "--data-dir", DATA, "--max-pairs", 16, "--max-length", 32, "--batch-size", 8,
               "--threads", 1, "--work", tmp_path / "work", "--output", tmp_path / "out.json")
    out = json.loads((tmp_path / "out.json").read_text())
    assert 0 <= out["held_out_accuracy"] <= 1
    assert_machine(out["machine"])


@needs_data
def test_train_vs_trl(run_script, tmp_path):
    pytest.importorskip("trl", reason="TRL is the bench extra's (pip install -e '.[bench]')")
    run_script("train_vs_trl.py", "--data-dir", DATA, "--steps", 1, "--train-pairs", 16, "--test-pairs", 4,
               "--max-length", 32, "--threads", 1, "--sides", "trl-fp32,rewardkit", "--peak-sizes", 256,
               "--peak-seconds", 0.02, "--output", tmp_path / "out.json")
    out = json.loads((tmp_path / "out.json").read_text())
    assert set(out["runs"]) == {"trl-fp32", "rewardkit"} and out["speedup_vs_trl_fp32"] > 0
    assert_machine(out["machine"])
    assert out["machine"]["trl"]


def test_train_prm_vs_trl(run_script, tiny_bert, tmp_path):
    # TRL removed PRMTrainer after 1.13: the script finds one (installed, --trl-path, $REWARDKIT_TRL_PRM_PATH or
    # ~/.cache/rewardkit-bench/trl-1.13.0) or the TRL side cannot run
    where, reason = runpy.run_path(str(ROOT / "bench" / "train_prm_vs_trl.py"))["trl_prm_location"](None)
    if where == "missing":
        pytest.skip(reason)
    run_script("train_prm_vs_trl.py", "--parts", "train", "--backbone", tiny_bert, "--train-records", 16,
               "--test-records", 6, "--steps", 2, "--batch-size", 8, "--max-length", 64, "--threads", 1,
               "--quiet-wait", 0, "--reruns", 0, "--output", tmp_path / "out.json")
    out = json.loads((tmp_path / "out.json").read_text())
    assert set(out["runs"]) == {"trl", "rewardkit"} and out["speedup_vs_trl"] > 0
    for run in out["runs"].values():
        assert run["steps_scored"] > 0 and 0 <= run["step_accuracy"] <= 1 and run["peak_rss_mb"] > 0
    assert_machine(out["machine"])


def test_train_prm_vs_trl_one_pass(run_script, tiny_bert, tiny_llama, tmp_path):
    # needs no TRL: one-pass step scores against each prefix scored alone, on an encoder and a decoder
    run_script("train_prm_vs_trl.py", "--parts", "one-pass", "--one-pass-backbones", f"{tiny_bert},{tiny_llama}",
               "--one-pass-t", "2,4", "--one-pass-solutions", 3, "--one-pass-decoder-solutions", 3,
               "--prompt-words", 5, "--step-words", 4, "--repeats", 1, "--threads", 1, "--quiet-wait", 0,
               "--one-pass-output", tmp_path / "out.json")
    out = json.loads((tmp_path / "out.json").read_text())
    decoder = out["backbones"][str(tiny_llama)]
    assert decoder["decoder"] and decoder["equal_within_1e-4"]  # causal: one pass = every prefix alone
    assert [row["steps_per_solution"] for row in decoder["rows"]] == [2, 4]
    assert all(row["speedup_one_pass"] > 0 for row in decoder["rows"])
    assert_machine(out["machine"])


def test_uncertainty_signals(run_script, tmp_path):
    (tmp_path / "eval" / "scored").mkdir(parents=True)
    write_jsonl(tmp_path / "eval" / "scored" / "synthetic.jsonl", pairs_with_margins(8, members=3))
    run_script("uncertainty_signals.py", tmp_path / "eval", "--output", tmp_path / "out.json")
    result = json.loads((tmp_path / "out.json").read_text())[str(tmp_path / "eval")]
    assert result["synthetic"]["pairs"] == 8 and "spread" in result["synthetic"]
    assert_machine(result["machine"])


def test_every_bench_script_has_a_smoke_test():
    tested = {name.removeprefix("test_") for name in globals() if name.startswith("test_")}
    scripts = {path.stem for path in (ROOT / "bench").glob("*.py")}
    assert scripts <= tested, f"bench scripts without a smoke test: {sorted(scripts - tested)}"


def test_bon_speed(run_script, tiny_llama, tmp_path):
    run_script("bon_speed.py", "--backbone", tiny_llama, "--n", "2,3", "--generate-n", "2", "--long-prompt-words", 20,
               "--short-response-words", 4, "--short-prompt-words", 4, "--long-response-words", 12,
               "--max-new-tokens", 3, "--max-length", 128, "--repeats", 1, "--threads", 1, "--output", tmp_path / "out.json")
    out = json.loads((tmp_path / "out.json").read_text())
    assert [r["n"] for r in out["score"]] == [2, 3, 2, 3] and all(r["max_abs_diff"] < 1e-4 for r in out["score"])
    assert out["generate"][0]["shared_tokens"] > 0
    assert_machine(out["machine"])


def test_overoptimisation(run_script, tiny_model, tmp_path):
    run_script("overoptimisation.py", "--model", f"tiny={tiny_model}", "--prompts", 3, "--m", 4, "--ns", "1,2,4",
               "--threads", 1, "--output", tmp_path / "out.json")
    out = json.loads((tmp_path / "out.json").read_text())
    rows = out["tasks"]["arithmetic"]["models"]["tiny"]["rows"]
    assert [r["n"] for r in rows] == [1, 2, 4] and all(r["gold_oracle"] >= r["gold"] - 1e-9 for r in rows)
    assert (tmp_path / "out_facts.png").exists()
    assert_machine(out["machine"])


def test_judge_eval(run_script, tiny_model, tmp_path):
    from test_generation import ChatServer

    server = ChatServer(lambda body: "Reasoning.\nVerdict: A")  # a judge that always picks the first position
    try:
        run_script("judge_eval.py", "--judge", f"{server.url}#fake", "--rm", tiny_model, "--pairs", 4, "--k", "1,2",
                   "--meta", tiny_model, "--threads", 1, "--output", tmp_path / "out.json")
    finally:
        server.close()
    out = json.loads((tmp_path / "out.json").read_text())
    assert [(r["k"], r["k_meta"]) for r in out["judge_runs"]] == [(1, 0), (2, 0), (2, 1)]
    assert all(r["position_flip_rate"] == 1.0 and r["accuracy_given_order_only"] == 1.0 for r in out["judge_runs"])
    assert out["scalar_rm"]["seconds_per_pair"] > 0
    assert_machine(out["machine"])


def test_control_reward_overhead(run_script, tmp_path):
    pytest.importorskip("stable_baselines3", reason="the control extra (pip install -e '.[control]')")
    run_script("control_reward_overhead.py", "--env", "Pendulum-v1,NoSuchEnv-v0", "--n-envs", "1,2", "--hidden", "8",
               "--steps", 20, "--repeats", 2, "--output", tmp_path / "out.json")
    out = json.loads((tmp_path / "out.json").read_text())
    assert [r["n_envs"] for r in out["runs"]] == [1, 2] and list(out["skipped"]) == ["NoSuchEnv-v0"]
    assert all(r["numpy"]["reward_share_of_env_step"] > 0 and "wrapper_overhead" in r["numpy"] for r in out["runs"])
    assert_machine(out["machine"])


def test_control_vs_imitation(run_script, tmp_path):
    pytest.importorskip("imitation", reason="installed by scripts/install.sh with the bench or test extra")
    # the language task (50-step episodes), and 20 queries: with fewer, imitation asks for too few steps to make a fragment
    run_script("control_vs_imitation.py", "--env", "rewardkit/InstructedReach-v0", "--queries", 20, "--rounds", 2,
               "--segment", 20, "--teachers", "oracle", "--seeds", 0, "--steps", 800,
               "--warmup", 400, "--eval-episodes", 1, "--jobs", 1, "--output", tmp_path / "out.json")
    out = json.loads((tmp_path / "out.json").read_text())
    assert {r["method"] for r in out["summary"]} == {"rewardkit", "imitation"}
    assert all("normalised_return" in r and -1 <= r["pearson"]["mean"] <= 1 for r in out["summary"])
    assert_machine(out["machine"])
    run_script("control_vs_imitation.py", "--plot", tmp_path / "curve.png", tmp_path / "out.json")
    assert (tmp_path / "curve.png").stat().st_size > 0
