"""Whole-loop training on tiny models: learning, resume after SIGKILL, two processes, bad configs."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rewardkit.cli import main
from rewardkit.config import ConfigError
from rewardkit.data.io import write_records
from rewardkit.data.synth import generate
from rewardkit.model.reward_model import RewardModel, intact_directory
from rewardkit.train.config import TrainConfig
from rewardkit.train.trainer import train

PYTHON = sys.executable


def _data(tmp_path: Path, task: str, n_train: int, n_test: int, kind=None) -> tuple[str, str]:
    tr, te = tmp_path / f"{task}-train.jsonl", tmp_path / f"{task}-test.jsonl"
    write_records(tr, generate(task, n_train, 0, "train", kind))
    write_records(te, generate(task, n_test, 0, "test", kind))
    return str(tr), str(te)


def test_text_model_learns_held_out_templates_and_every_parameter_changes(tmp_path, tiny_bert):
    tr, te = _data(tmp_path, "safety", 600, 200)
    initial = RewardModel.build(str(tiny_bert))
    before = {k: v.clone() for k, v in initial.state_dict().items()}
    summary = train(TrainConfig(train=tr, eval=te, output=str(tmp_path / "run"), backbone=str(tiny_bert), epochs=2,
                                lr=1e-3, batch_size=32, max_length=64, progress=False, seed=0))
    assert summary["eval"]["pairwise_accuracy"] > 0.9
    losses = [json.loads(line)["loss"] for line in open(tmp_path / "run" / "metrics.jsonl") if '"loss"' in line]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5
    after = load_file(str(tmp_path / "run" / "model" / "model.safetensors"))
    # Untouched by design: embeddings of tokens never seen, and head.bias, whose gradient under a pairwise
    # loss is exactly zero (a constant offset cancels in r+ - r-).
    unchanged = [k for k, v in before.items() if torch.equal(v, after[k]) and "position_ids" not in k
                 and "token_type" not in k and "word_embeddings" not in k]
    assert unchanged == ["head.bias"]
    model = RewardModel.load(tmp_path / "run" / "model")
    assert model.spec.normalization["std"] > 0


def test_mlp_on_trajectories_recovers_the_teachers_preferences(tmp_path):
    tr, te = _data(tmp_path, "trajectories", 600, 200)
    summary = train(TrainConfig(train=tr, eval=te, output=str(tmp_path / "run"), backbone="mlp", epochs=5, lr=3e-3,
                                batch_size=32, progress=False))
    assert summary["eval"]["pairwise_accuracy"] > 0.9


@pytest.mark.parametrize("objective", ["hinge", "margin", "contrastive"])
def test_pairwise_objectives_train(tmp_path, objective):
    tr, te = _data(tmp_path, "trajectories", 300, 100)
    summary = train(TrainConfig(train=tr, eval=te, output=str(tmp_path / objective), backbone="mlp", epochs=4,
                                lr=3e-3, batch_size=32, objective=objective, progress=False))
    assert summary["eval"]["pairwise_accuracy"] > 0.8


def test_label_smoothing_learns_with_bounded_margins(tmp_path):
    from rewardkit.data.io import iter_records
    from rewardkit.model.scoring import score_records

    tr, te = _data(tmp_path, "trajectories", 300, 100)
    mean_margin = {}
    for eps in (0.0, 0.2):
        out = tmp_path / f"eps{eps}"
        summary = train(TrainConfig(train=tr, eval=te, output=str(out), backbone="mlp", epochs=6, lr=3e-3,
                                    batch_size=32, label_smoothing=eps, progress=False))
        assert summary["eval"]["pairwise_accuracy"] > 0.8
        scored = score_records(RewardModel.load(out / "model"), iter_records(te))
        mean_margin[eps] = sum(abs(r["score_margin"]) for r in scored) / len(scored)
    # smoothing at 0.2 stops pushing a pair once its margin passes log(0.8 / 0.2) = 1.39
    assert mean_margin[0.2] < 0.7 * mean_margin[0.0]
    with pytest.raises(ConfigError, match="label_smoothing must be in"):
        train(TrainConfig(train=tr, output=str(tmp_path / "bad"), backbone="mlp", label_smoothing=0.5, progress=False))


@pytest.mark.parametrize("objective", ["listwise", "ranking-pairs", "plackett-luce"])
def test_ranking_objectives_and_mixed_data(tmp_path, tiny_bert, objective):
    rows = generate("arithmetic", 200, 0, "train", "ranking") + generate("safety", 200, 0, "train")
    write_records(tmp_path / "mixed.jsonl", rows)
    summary = train(TrainConfig(train=str(tmp_path / "mixed.jsonl"), output=str(tmp_path / "run"), backbone=str(tiny_bert),
                                objective=objective, epochs=1, lr=1e-3, batch_size=16, max_length=96, progress=False,
                                mix_weights={"ranking": 1.0, "pairwise": 0.5}))
    assert summary["objectives"] == {"ranking": objective, "pairwise": "bt"}
    assert "best_of_k_accuracy" in summary["eval"] and "pairwise_accuracy" in summary["eval"]


def test_rating_regression_with_named_heads(tmp_path, tiny_bert):
    rows = [{"prompt": "q", "response": f"answer {i}", "scores": {"help": float(i % 5), "safe": 1.0}} for i in range(64)]
    write_records(tmp_path / "r.jsonl", rows)
    summary = train(TrainConfig(train=str(tmp_path / "r.jsonl"), output=str(tmp_path / "run"), backbone=str(tiny_bert),
                                heads=["help", "safe"], epochs=1, lr=1e-3, batch_size=16, eval_fraction=0, progress=False))
    assert summary["objectives"] == {"rating": "regression"} and summary["steps"] == 4


def _train_cmd(tr, out, backbone, extra=()):
    return [PYTHON, "-m", "rewardkit.cli", "train", "--train", tr, "--output", out, "--backbone", backbone,
            "--eval-fraction", "0", "--batch-size", "8", "--lr", "1e-3", "--max-length", "48", "--epochs", "1",
            "--no-progress", "--threads", "1", *extra]


def test_resume_after_sigkill_reproduces_the_uninterrupted_run(tmp_path, tiny_bert):
    tr, _ = _data(tmp_path, "safety", 160, 10)  # 20 steps
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    subprocess.run(_train_cmd(tr, str(tmp_path / "full"), str(tiny_bert)), check=True, env=env, capture_output=True)
    cmd = _train_cmd(tr, str(tmp_path / "killed"), str(tiny_bert), ["--save-every", "2"])
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = tmp_path / "killed" / "checkpoints" / "last"

    def step_saved() -> int:
        checkpoint = intact_directory(last)
        try:  # while the run is alive, a checkpoint can be swapped between finding and reading it
            return json.loads((checkpoint / "trainer_state.json").read_text())["step"] if checkpoint else 0
        except FileNotFoundError:
            return 0

    deadline = time.time() + 120
    while time.time() < deadline and step_saved() < 6:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    step_at_kill = step_saved()
    assert 6 <= step_at_kill < 20, "the run must be killed mid-way"
    saved = intact_directory(last)
    assert (saved / "optimizer.safetensors").exists() and not list(saved.glob("*.pt")), "nothing pickled"
    subprocess.run(cmd + ["--resume"], check=True, env=env, capture_output=True)
    full = load_file(str(tmp_path / "full" / "model" / "model.safetensors"))
    resumed = load_file(str(tmp_path / "killed" / "model" / "model.safetensors"))
    assert max((full[k] - resumed[k]).abs().max().item() for k in full) < 1e-6


def test_two_processes_match_one_process(tmp_path, tiny_bert_no_dropout):
    pytest.importorskip("accelerate")
    tr, _ = _data(tmp_path, "safety", 64, 10)
    one = _train_cmd(tr, str(tmp_path / "one"), str(tiny_bert_no_dropout))
    subprocess.run(one, check=True, capture_output=True)
    launch = [PYTHON, "-m", "accelerate.commands.launch", "--num_processes", "2", "--cpu", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "rewardkit.cli", *one[3:]]
    launch[launch.index(str(tmp_path / "one"))] = str(tmp_path / "two")
    result = subprocess.run(launch, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    a = load_file(str(tmp_path / "one" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "two" / "model" / "model.safetensors"))
    # Same global batches; only float summation order differs across processes.
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-4


def test_lora_and_frozen_backbone(tmp_path, tiny_bert):
    pytest.importorskip("peft")
    tr, _ = _data(tmp_path, "safety", 64, 10)
    frozen = RewardModel.build(str(tiny_bert)).backbone.state_dict()
    train(TrainConfig(train=tr, output=str(tmp_path / "lora"), backbone=str(tiny_bert), lora_r=4, epochs=1, lr=1e-3,
                      eval_fraction=0, progress=False))
    merged = RewardModel.load(tmp_path / "lora" / "model")
    assert merged.spec.lora is None
    changed = [k for k, v in merged.backbone.state_dict().items() if "query.weight" in k and not torch.equal(v, frozen[k])]
    assert changed  # adapters were merged into the weights
    train(TrainConfig(train=tr, output=str(tmp_path / "frozen"), backbone=str(tiny_bert), freeze_backbone=True,
                      epochs=1, eval_fraction=0, progress=False))
    head_only = RewardModel.load(tmp_path / "frozen" / "model").backbone.state_dict()
    assert all(torch.equal(head_only[k], frozen[k]) for k in frozen)


def test_bad_configs_fail_clearly(tmp_path, tiny_bert, capsys):
    tr, _ = _data(tmp_path, "safety", 20, 10)
    config = tmp_path / "c.yaml"
    config.write_text(f"train: {tr}\nlearning_rate: 0.1\n")
    assert main(["train", "--config", str(config)]) == 2
    assert "unknown option 'learning_rate'" in capsys.readouterr().err
    assert main(["train", "--train", tr, "--backbone", str(tmp_path / "nope")]) == 2
    assert "not a local directory" in capsys.readouterr().err
    assert main(["train", "--train", tr, "--backbone", str(tiny_bert), "--objective", "regression"]) == 2
    assert "needs rating records" in capsys.readouterr().err
    assert main(["train", "--train", tr, "--no-such-flag"]) == 2
    assert "--no-such-flag" in capsys.readouterr().err


def test_init_seed_gives_runs_of_other_seeds_the_same_starting_weights(tmp_path, tiny_bert):
    tr, _ = _data(tmp_path, "safety", 32, 0)

    def head_after_one_tiny_step(seed: int, init_seed: int | None) -> torch.Tensor:
        out = tmp_path / f"s{seed}-i{init_seed}"
        train(TrainConfig(train=tr, output=str(out), backbone=str(tiny_bert), init="random", eval_fraction=0, max_steps=1,
                          lr=1e-12, head_lr=1e-12, batch_size=8, max_length=48, progress=False, seed=seed, init_seed=init_seed))
        return RewardModel.load(out / "model").head.weight.detach()

    own = [head_after_one_tiny_step(s, None) for s in (1, 2)]
    shared = [head_after_one_tiny_step(s, 5) for s in (1, 2)]
    assert not torch.allclose(own[0], own[1])                    # --seed alone: other weights
    assert torch.allclose(shared[0], shared[1], atol=1e-9)       # a shared --init-seed: the same weights
    assert torch.equal(head_after_one_tiny_step(1, 1), own[0])   # init_seed = seed is the default run, bit for bit
