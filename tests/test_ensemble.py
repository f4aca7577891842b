"""Ensembles of separately trained models: standardised members, mean/min aggregation, the spread as
uncertainty, and the same loading path for score, eval, calibrate and serve; and weight averaging (merge)."""

from __future__ import annotations

import copy
import json
import shutil

import httpx
import pytest
import torch

from rewardkit.cli import main
from rewardkit.data.io import write_records
from rewardkit.errors import ModelError
from rewardkit.model.ensemble import ModelEnsemble
from rewardkit.model.load import load_model
from rewardkit.model.merge import merge_models
from rewardkit.model.reward_model import RewardModel
from rewardkit.model.scoring import score

ITEMS = [("q", "a short answer"), ("q", "a much longer answer with several more words"), ("why?", "because")]


def _member(backbone, seed: int, mean: float, std: float, tmp_path=None) -> RewardModel:
    torch.manual_seed(seed)
    model = RewardModel.build(str(backbone), init="random", max_length=64).eval()
    model.spec.normalization = {"mean": mean, "std": std}
    if tmp_path is not None:
        model.save(tmp_path / f"m{seed}")
    return model


def _raw(model: RewardModel) -> torch.Tensor:
    return torch.tensor(score(model, ITEMS).values)


def test_members_are_standardised_then_averaged_and_their_std_is_the_uncertainty(tiny_bert_no_dropout):
    a, b, c = (_member(tiny_bert_no_dropout, s, mean, std) for s, mean, std in ((1, 0.5, 2.0), (2, -1.0, 0.5), (3, 0.0, 1.0)))
    z = torch.stack([(_raw(a) - 0.5) / 2.0, (_raw(b) + 1.0) / 0.5, _raw(c)], dim=1)   # by hand
    ensemble = ModelEnsemble([a, b, c])
    result = score(ensemble, ITEMS)
    assert torch.allclose(torch.tensor(result.values), z.mean(dim=1), atol=1e-5)
    assert torch.allclose(torch.tensor(result.members), z, atol=1e-5)
    assert torch.allclose(torch.tensor(result.spreads), z.std(dim=1), atol=1e-5)
    assert ensemble.spec.ensemble == 3 and ensemble.spec.heads == ["member-0", "member-1", "member-2"]
    minimum = ModelEnsemble([a, b, c], aggregate="min")
    assert torch.allclose(torch.tensor(score(minimum, ITEMS).values), z.min(dim=1).values, atol=1e-5)


def test_a_members_offset_does_not_change_the_ensemble(tiny_bert_no_dropout):
    a, b = _member(tiny_bert_no_dropout, 1, 0.0, 1.0), _member(tiny_bert_no_dropout, 2, 0.0, 1.0)
    before = score(ModelEnsemble([a, b]), ITEMS).values
    with torch.no_grad():
        b.head.bias += 7.0  # a Bradley-Terry reward is only defined up to a shift
    b.spec.normalization = {"mean": 7.0, "std": 1.0}  # ... which training stores with the model
    assert score(ModelEnsemble([a, b]), ITEMS).values == pytest.approx(before, abs=1e-5)


def test_members_that_cannot_be_combined_are_refused_by_name(tiny_bert_no_dropout, tiny_llama):
    a, b = _member(tiny_bert_no_dropout, 1, 0.0, 1.0), _member(tiny_bert_no_dropout, 2, 0.0, 1.0)
    b.spec.normalization = None
    with pytest.raises(ModelError, match="member-1 stores no reward mean/std"):
        ModelEnsemble([a, b])
    with pytest.raises(ModelError, match="at least 2 members"):
        ModelEnsemble([a])
    llama = _member(tiny_llama, 3, 0.0, 1.0)
    with pytest.raises(ModelError, match="member-1 differs from member-0 in is_decoder"):
        ModelEnsemble([a, llama])
    with pytest.raises(ModelError, match="itself an ensemble"):
        ModelEnsemble([a, ModelEnsemble([a, _member(tiny_bert_no_dropout, 4, 0.0, 1.0)])])


def test_ensemble_command_score_eval_calibrate_and_export(tiny_bert_no_dropout, tmp_path, capsys):
    for seed in (1, 2):
        _member(tiny_bert_no_dropout, seed, 0.1 * seed, 1.0, tmp_path)
    assert main(["ensemble", "--members", str(tmp_path / "m1"), str(tmp_path / "m2"), "--output", str(tmp_path / "ens")]) == 0
    loaded = load_model(str(tmp_path / "ens"))
    direct = ModelEnsemble([RewardModel.load(tmp_path / "m1"), RewardModel.load(tmp_path / "m2")])
    assert isinstance(loaded, ModelEnsemble)
    assert score(loaded, ITEMS).values == pytest.approx(score(direct, ITEMS).values, abs=1e-5)

    pairs = [{"prompt": f"q{i}", "chosen": "a helpful and complete answer " * (i % 3 + 1), "rejected": f"no {i}"}
             for i in range(24)]
    write_records(tmp_path / "pairs.jsonl", pairs)
    assert main(["score", str(tmp_path / "ens"), str(tmp_path / "pairs.jsonl"), str(tmp_path / "scored.jsonl"), "--no-progress"]) == 0
    scored = [json.loads(line) for line in (tmp_path / "scored.jsonl").read_text().splitlines()]
    assert all(r["chosen_uncertainty"] > 0 and r["preference_uncertainty"] > 0 for r in scored)
    direct_members = score(direct, [(pairs[0]["prompt"], pairs[0]["chosen"]), (pairs[0]["prompt"], pairs[0]["rejected"])]).members
    chosen, rejected = torch.tensor(direct_members)
    preference = torch.sigmoid(chosen - rejected)  # each member's P(chosen beats rejected)
    assert scored[0]["preference_uncertainty"] == pytest.approx(float(preference.std()), abs=1e-4)

    assert main(["eval", str(tmp_path / "ens"), "--suite", "synthetic", "--max-records", "40", "--input", str(tmp_path / "pairs.jsonl"), "--probes", "0",
                 "--output", str(tmp_path / "ev"), "--no-progress"]) == 0
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    uncertainty = json.dumps(report)
    assert '"auroc_wrong"' in uncertainty and report["model"]["info"]["heads"] == ["member-0", "member-1"]

    assert main(["calibrate", str(tmp_path / "ens"), "--data", str(tmp_path / "pairs.jsonl")]) == 0
    assert "temperature" in json.loads((tmp_path / "ens" / "ensemble.json").read_text())["calibration"]
    assert load_model(str(tmp_path / "ens")).spec.calibration["pairs"] == 24

    capsys.readouterr()
    assert main(["export", str(tmp_path / "ens"), "--output", str(tmp_path / "hf")]) == 2
    assert "export a member" in capsys.readouterr().err

    shutil.copytree(tmp_path / "ens", tmp_path / "bad")
    (tmp_path / "bad" / "ensemble.json").write_text(json.dumps({"members": ["member-0", "../m1"]}))
    with pytest.raises(ModelError, match="must be a sub-directory"):
        load_model(str(tmp_path / "bad"))


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None, reason="torch.compile on CPU needs a C++ compiler")
def test_server_compiles_an_ensemble_before_serving_and_returns_its_uncertainty(tiny_bert_no_dropout):
    from rewardkit.serve.app import ServeConfig, create_app
    from rewardkit.serve.background import BackgroundServer

    members = [_member(tiny_bert_no_dropout, s, 0.0, 1.0) for s in (1, 2)]
    eager = score(ModelEnsemble(members), ITEMS)
    eager_scores, eager_spread = eager.values, eager.spreads
    ensemble = ModelEnsemble(members)
    app = create_app(ensemble, ServeConfig(model="ens", compile=True))  # compiles and warms up here
    assert all(m.backbone._compiled_call_impl is not None for m in ensemble.members)
    inputs = [{"prompt": p, "response": r} for p, r in ITEMS]
    with BackgroundServer(app) as server:
        body = httpx.post(server.url + "/v1/score", json={"inputs": inputs}, timeout=120).json()
    assert body["raw"] == pytest.approx(eager_scores, abs=1e-4)
    assert body["uncertainty"] == pytest.approx(eager_spread, abs=1e-4)


def test_merging_averages_every_weight_and_refuses_models_that_do_not_match(tiny_bert_no_dropout, tiny_llama):
    a, b = _member(tiny_bert_no_dropout, 1, 0.0, 1.0), _member(tiny_bert_no_dropout, 2, 0.0, 1.0)
    merged = merge_models([a, b])
    for key, value in merged.state_dict().items():
        expected = (a.state_dict()[key].float() + b.state_dict()[key].float()) / 2 if value.is_floating_point() else a.state_dict()[key]
        assert torch.allclose(value.float(), expected.float(), atol=1e-6), key
    assert merged.spec.normalization is None and merged.spec.backbone.startswith("weight average of 2")
    assert a.spec.normalization == {"mean": 0.0, "std": 1.0}  # the members are left as they were
    # The average of a model with itself is that model; two different random models average to a third one.
    assert score(merge_models([a, copy.deepcopy(a)]), ITEMS).values == pytest.approx(score(a, ITEMS).values, abs=1e-5)
    assert score(merged, ITEMS).values != pytest.approx(score(a, ITEMS).values, abs=1e-3)

    with pytest.raises(ModelError, match="member-1 differs from member-0 in is_decoder"):
        merge_models([a, _member(tiny_llama, 3, 0.0, 1.0)])
    wider = RewardModel.build(str(tiny_bert_no_dropout), init="random", max_length=64, heads=["reward", "safety"])
    with pytest.raises(ModelError, match="differs from member-0 in heads"):
        merge_models([a, wider])
    with pytest.raises(ModelError, match="member-1 is itself an ensemble"):
        merge_models([a, ModelEnsemble([a, b])])
    reshaped = copy.deepcopy(b)
    width = reshaped.backbone.pooler.dense.in_features
    reshaped.backbone.pooler.dense = torch.nn.Linear(width, width + 1)  # same weight names, another shape
    with pytest.raises(ModelError, match=r"member-1 weight backbone\.pooler\.dense\.weight has shape"):
        merge_models([a, reshaped])


def test_merge_command_stores_the_reward_statistics_of_the_given_records(tiny_bert_no_dropout, tmp_path):
    for seed in (1, 2):
        _member(tiny_bert_no_dropout, seed, 0.0, 1.0, tmp_path)
    pairs = [{"prompt": f"q{i}", "chosen": "a full answer " * (i % 4 + 1), "rejected": f"no {i}"} for i in range(12)]
    write_records(tmp_path / "pairs.jsonl", pairs)
    assert main(["merge", "--members", str(tmp_path / "m1"), str(tmp_path / "m2"), "--output", str(tmp_path / "merged"),
                 "--records", str(tmp_path / "pairs.jsonl")]) == 0
    merged = load_model(str(tmp_path / "merged"))
    raw = torch.tensor(score(merged, [(r["prompt"], r[k]) for r in pairs for k in ("chosen", "rejected")]).values)
    assert merged.spec.normalization["mean"] == pytest.approx(float(raw.mean()), abs=1e-4)
    assert merged.spec.normalization["std"] == pytest.approx(float(raw.std()), abs=1e-4)
    # With statistics it can join an ensemble, like any trained model.
    assert ModelEnsemble([merged, RewardModel.load(tmp_path / "m1")]).spec.ensemble == 2
