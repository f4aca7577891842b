"""rewardkit inside TRL's GRPOTrainer: the example runs end to end on tiny models (2 steps), logs proxy, gold,
KL, the monitor and the reward side's time share; and TRL's GRPO advantages equal rewardkit.rl.grpo_advantages on
the same rewards (the convention test)."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("trl")

from rewardkit.rl import RewardMonitor, grpo_advantages  # noqa: E402
from tests.conftest import make_tiny_causal_lm  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHAT = "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} {% endfor %}{% if add_generation_prompt %}<|assistant|> {% endif %}"


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory) -> Path:
    return make_tiny_causal_lm(tmp_path_factory.mktemp("tiny-policy"), CHAT)


@pytest.fixture(scope="module")
def tiny_rm(tiny_bert, tmp_path_factory) -> Path:
    from rewardkit.model.reward_model import RewardModel

    return RewardModel.build(str(tiny_bert), max_length=64).save(tmp_path_factory.mktemp("rm") / "model")


def test_the_grpo_example_runs_and_logs_proxy_gold_kl_and_the_monitor(tiny_policy, tiny_rm, tmp_path, monkeypatch):
    out = tmp_path / "grpo"
    monkeypatch.setattr(sys, "argv", ["grpo_trl.py", "--policy", str(tiny_policy), "--reward", str(tiny_rm),
                                      "--prompts", "8", "--steps", "2", "--num-generations", "2",
                                      "--max-completion-length", "4", "--threads", "1", "--output", str(out)])
    monkeypatch.setattr(sys, "path", list(sys.path))
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(ROOT / "examples" / "rl" / "grpo_trl.py"), run_name="__main__")
    assert exited.value.code == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    for key in ("rewards/proxy/mean", "rewards/gold/mean", "kl", "completions/mean_length", "reward_side_share",
                "monitor/share_above", "monitor/ks_recent"):
        assert all(r.get(key) is not None for r in rows), key
    assert all(isinstance(r["top_completion"], str) for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["monitor"]["rewards"] == 2 * 2 * 2 and (out / "curves.png").exists()


def test_trl_grpo_advantages_equal_rewardkits(tiny_policy, tiny_rm, tmp_path):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from rewardkit.rl.trl import MonitoredReward
    from rewardkit.serve.adapters import TRLReward

    seen = []

    class Recording(GRPOTrainer):
        def _compute_loss(self, model, inputs):
            seen.append(inputs["advantages"].detach().clone())
            return super()._compute_loss(model, inputs)

    rm = TRLReward(str(tiny_rm), normalize=False)
    reference = rm(["q"] * 40, [f"answer number {i}" for i in range(40)])
    proxy = MonitoredReward(rm, RewardMonitor(reference))
    data = Dataset.from_list([{"prompt": f"Question {i}?"} for i in range(6)])
    config = GRPOConfig(output_dir=str(tmp_path / "trl"), max_steps=1, num_generations=3, per_device_train_batch_size=6,
                        max_completion_length=4, logging_steps=1, save_strategy="no", report_to="none", use_cpu=True,
                        gradient_checkpointing=False, disable_tqdm=True, temperature=1.5)
    Recording(model=str(tiny_policy), reward_funcs=[proxy], args=config, train_dataset=data).train()
    ours = grpo_advantages(torch.tensor(proxy.last), group_size=3, scale="group", eps=1e-4)
    theirs = torch.cat(seen)
    assert sorted(theirs.tolist()) == pytest.approx(sorted(ours.tolist()), abs=1e-5)


@pytest.mark.parametrize("aggregation", ["sum_then_normalize", "normalize_then_sum"])
def test_trl_multi_reward_advantages_equal_rewardkits_combination(aggregation, tiny_policy, tiny_rm, tmp_path):
    """Two weighted reward functions: TRL's sum_then_normalize is combine_rewards('sum') then GRPO's group step;
    its normalize_then_sum (GDPO) is combine_rewards('normalize_then_sum')."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from rewardkit.rl import combine_rewards
    from rewardkit.rl.trl import MonitoredReward, completion_text
    from rewardkit.serve.adapters import TRLReward

    seen = []

    class Recording(GRPOTrainer):
        def _compute_loss(self, model, inputs):
            seen.append(inputs["advantages"].detach().clone())
            return super()._compute_loss(model, inputs)

    proxy = MonitoredReward(TRLReward(str(tiny_rm), normalize=False))
    length = MonitoredReward(lambda prompts, completions, **kw: [float(len(completion_text(c))) for c in completions],
                             name="length")
    data = Dataset.from_list([{"prompt": f"Question {i}?"} for i in range(6)])
    config = GRPOConfig(output_dir=str(tmp_path / "trl"), max_steps=1, num_generations=3, per_device_train_batch_size=6,
                        max_completion_length=4, logging_steps=1, save_strategy="no", report_to="none", use_cpu=True,
                        gradient_checkpointing=False, disable_tqdm=True, temperature=1.5, reward_weights=[1.0, 0.5],
                        multi_objective_aggregation=aggregation)
    Recording(model=str(tiny_policy), reward_funcs=[proxy, length], args=config, train_dataset=data).train()
    rewards = torch.tensor([proxy.last, length.last]).T                                      # [B, 2]
    if aggregation == "sum_then_normalize":
        ours = grpo_advantages(combine_rewards(rewards, [1.0, 0.5]), group_size=3, scale="group", eps=1e-4)
    else:
        ours = combine_rewards(rewards, [1.0, 0.5], "normalize_then_sum", group_size=3, eps=1e-4)
    assert sorted(torch.cat(seen).tolist()) == pytest.approx(sorted(ours.tolist()), abs=1e-5)


def test_trl_rloo_advantages_equal_rewardkits(tiny_policy, tiny_rm, tmp_path):
    from datasets import Dataset
    from trl import RLOOConfig, RLOOTrainer

    from rewardkit.rl import rloo_advantages
    from rewardkit.rl.trl import MonitoredReward
    from rewardkit.serve.adapters import TRLReward

    seen = []

    class Recording(RLOOTrainer):
        def compute_loss(self, model, inputs, *args, **kwargs):
            seen.append(inputs["advantages"].detach().clone())
            return super().compute_loss(model, inputs, *args, **kwargs)

    proxy = MonitoredReward(TRLReward(str(tiny_rm), normalize=False))
    data = Dataset.from_list([{"prompt": f"Question {i}?"} for i in range(6)])
    config = RLOOConfig(output_dir=str(tmp_path / "trl"), max_steps=1, num_generations=3, per_device_train_batch_size=6,
                        max_completion_length=4, logging_steps=1, save_strategy="no", report_to="none", use_cpu=True,
                        gradient_checkpointing=False, disable_tqdm=True, temperature=1.5, beta=0.0)
    Recording(model=str(tiny_policy), reward_funcs=[proxy], args=config, train_dataset=data).train()
    ours = rloo_advantages(torch.tensor(proxy.last), group_size=3)
    assert sorted(torch.cat(seen).tolist()) == pytest.approx(sorted(ours.tolist()), abs=1e-5)


def test_the_monitored_reward_passes_an_ensembles_spreads_to_the_monitor():
    from rewardkit.rl.trl import MonitoredReward

    class Ensemble:  # what TRLReward exposes for a local ensemble
        last_spreads = None

        def __call__(self, prompts, completions, **kwargs):
            self.last_spreads = [0.1, 2.0]
            return [0.5, 0.5]

    monitor = RewardMonitor([i / 100 for i in range(100)], "penalise", low=0.0, high=1.0, reference_spreads=[0.1] * 50)
    proxy = MonitoredReward(Ensemble(), monitor)
    assert proxy(["q", "q"], ["sure", "risky"]) == [0.5, 0.0]  # the one the members disagree on gains nothing
    assert monitor.summary()["examples"]["uncertain"][0]["text"] == "risky"


def test_trl_reward_exposes_an_ensembles_spreads(tiny_bert, tmp_path):
    from rewardkit.model.ensemble import ModelEnsemble
    from rewardkit.model.reward_model import RewardModel
    from rewardkit.serve.adapters import TRLReward

    members = [RewardModel.build(str(tiny_bert), init="random", max_length=32) for _ in range(2)]
    for member in members:  # an ensemble standardises its members by the statistics training stores
        member.spec.normalization = {"mean": 0.0, "std": 1.0}
    ModelEnsemble(members).save(tmp_path / "ensemble")
    members[0].save(tmp_path / "single")
    reward = TRLReward(str(tmp_path / "ensemble"), normalize=False)
    reward(["q", "q"], ["a", "b c"])
    assert len(reward.last_spreads) == 2 and all(s >= 0 for s in reward.last_spreads)
    single = TRLReward(str(tmp_path / "single"), normalize=False)
    single(["q"], ["a"])
    assert single.last_spreads is None  # a single model has no members
    pytest.importorskip("fastapi")
    from rewardkit.model.load import load_model
    from rewardkit.serve.app import ServeConfig, create_app
    from rewardkit.serve.background import BackgroundServer

    with BackgroundServer(create_app(load_model(tmp_path / "ensemble"), ServeConfig(model="test"))) as server:
        remote = TRLReward(server.url, normalize=False)  # the spreads come through the server too
        remote(["q", "q"], ["a", "b c"])
        assert remote.last_spreads == pytest.approx(reward.last_spreads, abs=1e-5)
