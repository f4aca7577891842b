"""Reward-quality tools: length de-biasing (penalty, ODIN length head, balanced sampling) and ensembles
with uncertainty, from the loss functions up to scoring, evaluation and serving."""

from __future__ import annotations

import math

import httpx
import pytest
import torch

from rewardkit import losses
from rewardkit.data.io import write_records
from rewardkit.model.reward_model import RewardModel
from rewardkit.train.config import TrainConfig
from rewardkit.train.trainer import train


def test_weighted_bradley_terry_by_hand():
    pos = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    neg = torch.zeros(2, 2)
    w = torch.tensor([[1.0, 0.0], [1.0, 2.0]])
    # member 0: mean of -log σ(1), -log σ(0); member 1: only pair 2, -log σ(2)
    m0 = (-math.log(1 / (1 + math.exp(-1))) - math.log(0.5)) / 2
    m1 = -math.log(1 / (1 + math.exp(-2)))
    assert losses.weighted_bradley_terry(pos, neg, w).item() == pytest.approx((m0 + m1) / 2)


def test_length_penalty_is_squared_correlation():
    lengths = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert losses.length_penalty(lengths * 3 + 1, lengths).item() == pytest.approx(1.0)
    assert losses.length_penalty(torch.tensor([1.0, -1.0, -1.0, 1.0]), lengths).item() == pytest.approx(0.0, abs=1e-7)
    assert losses.correlation(-lengths, lengths).item() == pytest.approx(-1.0)
    # ensemble members [N, K]: each member's penalty, averaged; members whose length signals cancel in their
    # mean are still penalised, and a length-free member adds 0
    members = torch.stack([lengths, -lengths, torch.tensor([1.0, -1.0, -1.0, 1.0])], dim=1)
    assert losses.length_penalty(members.mean(dim=1), lengths).item() == pytest.approx(0.0, abs=1e-7)
    assert losses.length_penalty(members, lengths).item() == pytest.approx(2 / 3)


def test_covariance_length_penalty_is_in_reward_units_and_fades_with_the_rewards_spread():
    lengths = torch.tensor([10.0, 20.0, 30.0])          # standardised (std 10): -1, 0, 1
    rewards = torch.tensor([1.0, 2.0, 3.0])
    # cov(r, z) = mean((r - 2) * z) = (1 + 0 + 1) / 3, squared
    assert losses.length_penalty(rewards, lengths, "covariance").item() == pytest.approx(4 / 9)
    assert losses.length_penalty(rewards * 3, lengths, "covariance").item() == pytest.approx(4)
    assert losses.length_penalty(rewards * 3, lengths).item() == pytest.approx(1.0)  # correlation ignores scale

    def gradient_norm(scale: float, kind: str) -> float:
        r = (scale * torch.tensor([0.3, -1.0, 0.8, 0.1])).requires_grad_()
        losses.length_penalty(r, torch.tensor([5.0, 9.0, 2.0, 7.0]), kind).backward()
        return float(r.grad.norm())

    # Rewards that barely spread yet (a new head): the correlation's gradient is 100x larger, the covariance's 100x smaller.
    assert gradient_norm(0.01, "correlation") == pytest.approx(100 * gradient_norm(1.0, "correlation"), rel=1e-3)
    assert gradient_norm(0.01, "covariance") == pytest.approx(gradient_norm(1.0, "covariance") / 100, rel=1e-3)


def _length_biased_pairs(n=48):
    """The chosen response is the longer one in 3 of 4 pairs, and always says 'good'."""
    rows = []
    for i in range(n):
        good, bad = "good answer", "bad answer"
        if i % 4:
            good += " with many more words here" * 2
        else:
            bad += " with many more words here" * 2
        rows.append({"prompt": f"question {i}", "chosen": good, "rejected": bad})
    return rows


@pytest.fixture(scope="module")
def biased_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("lb") / "train.jsonl"
    write_records(path, _length_biased_pairs())
    return path


def _train(data, backbone, out, **extra):
    settings = {"max_length": 64, "batch_size": 8, "epochs": 2, "lr": 1e-3, "eval_fraction": 0.0, "final_model": "last",
                "progress": False, **extra}
    cfg = TrainConfig(train=str(data), output=str(out), backbone=str(backbone), **settings)
    return train(cfg)


def test_balance_length_repeats_the_rarer_kind(biased_data, tiny_bert_no_dropout, tmp_path, capsys):
    _train(biased_data, tiny_bert_no_dropout, tmp_path / "b", balance_length=True, max_steps=1)
    assert "36 pairs with the longer response chosen, 12 with the shorter; repeating 24" in capsys.readouterr().out


def test_length_head_is_trained_and_left_out_at_inference(biased_data, tiny_bert_no_dropout, tmp_path):
    _train(biased_data, tiny_bert_no_dropout, tmp_path / "odin", length_head=True, length_penalty=1.0)
    model = RewardModel.load(tmp_path / "odin" / "model")
    assert model.spec.heads == ["reward", "length"] and model.spec.head_weights == [1.0, 0.0]
    batch = model.encoder.collate([model.encoder.encode("q", "good answer"), model.encoder.encode("q", "bad answer " * 5)])
    with torch.no_grad():
        per_head = model(batch)
        assert torch.allclose(model.score(batch), per_head[:, 0])
        assert per_head[1, 1] > per_head[0, 1]  # the length head learned that the second response is longer


def test_ensemble_members_differ_and_give_uncertainty(biased_data, tiny_bert_no_dropout, tmp_path):
    from rewardkit.model.scoring import score_records
    from rewardkit.serve.app import ServeConfig, create_app
    from rewardkit.serve.background import BackgroundServer

    _train(biased_data, tiny_bert_no_dropout, tmp_path / "ens", ensemble=3, eval_fraction=0.25)  # eval has no bootstrap
    model = RewardModel.load(tmp_path / "ens" / "model")
    assert model.spec.ensemble == 3 and model.spec.heads == ["member0", "member1", "member2"]
    weights = model.head.weight.detach()
    assert not torch.allclose(weights[0], weights[1])
    scored = score_records(model, _length_biased_pairs(8))
    assert all(r["chosen_uncertainty"] > 0 and r["rejected_uncertainty"] > 0 for r in scored)
    # min aggregate is never above the mean
    batch = model.encoder.collate([model.encoder.encode("q", "good answer")])
    with torch.no_grad():
        mean = model.score(batch)
        model.spec.aggregate = "min"
        assert model.score(batch) <= mean + 1e-6
        model.spec.aggregate = "weighted"
    with BackgroundServer(create_app(model, ServeConfig(model="ens"))) as server:
        body = httpx.post(server.url + "/v1/score", json={"inputs": [{"prompt": "q", "response": "good answer"}]}).json()
    assert len(body["uncertainty"]) == 1 and body["uncertainty"][0] > 0


def test_eval_reports_whether_uncertainty_marks_errors():
    from rewardkit.data.kinds import preference_uncertainty
    from rewardkit.eval.evaluate import uncertainty_results

    def pair(margin, disagreement, shifts=(5.0, -3.0)):
        # two members whose margins are margin ± disagreement, each with its own (irrelevant) shift for the prompt
        chosen = [margin + disagreement + shifts[0], margin - disagreement + shifts[1]]
        return {"score_margin": margin, "preference_uncertainty": preference_uncertainty(chosen, list(shifts))}

    pairs = [pair(m, d) for m, d in [(1.0, 0.1), (2.0, 0.2), (-1.0, 0.9), (0.5, 0.3), (-0.5, 0.8), (1.5, 0.05)]]
    out = uncertainty_results(pairs)
    assert out["auroc_wrong"] == 1.0  # the two wrong pairs are the two most uncertain
    assert out["accuracy_most_certain_half"] == 1.0 and out["accuracy_least_certain_half"] == pytest.approx(1 / 3)
    # members that differ only in their shift for a prompt agree about the pair: no uncertainty
    assert uncertainty_results([pair(1.0, 0.0), pair(-2.0, 0.0)])["mean_uncertainty"] == pytest.approx(0.0)
    # the same disagreement in margin matters less on a pair every member finds easy
    easy, close = uncertainty_results([pair(6.0, 1.0)]), uncertainty_results([pair(0.0, 1.0)])
    assert easy["mean_uncertainty"] < close["mean_uncertainty"] / 5


def test_length_penalty_reduces_length_correlation(biased_data, tiny_bert_no_dropout, tmp_path):
    from rewardkit.eval.metrics import pearson
    from rewardkit.model.scoring import score

    texts = [("q", "good answer" + " with many more words here" * k) for k in range(4)]
    texts += [("q", "bad answer" + " with many more words here" * k) for k in range(4)]
    corr = {}
    for weight in (0.0, 5.0):
        _train(biased_data, tiny_bert_no_dropout, tmp_path / f"lp{weight}", length_penalty=weight, epochs=3)
        scores = score(RewardModel.load(tmp_path / f"lp{weight}" / "model"), texts).values
        corr[weight] = abs(pearson(scores, [len(r) for _, r in texts]))
    assert corr[5.0] < corr[0.0]
