"""Pooling under left and right padding, truncation, save/load and Hugging Face export equality."""

import pytest
import torch

from rewardkit.errors import ModelError
from rewardkit.model.reward_model import RewardModel, pool
from rewardkit.model.scoring import score

ITEMS = [("What is the capital of France?", "Paris."), ("Say hi", "Hello there, how are you doing today?"),
         ([{"role": "user", "content": "hi"}], "hey"), ("", "no prompt at all")]


def test_pool_last_first_mean_under_both_padding_sides():
    states = torch.arange(2 * 4 * 1, dtype=torch.float32).view(2, 4, 1)
    right = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    left = torch.tensor([[0, 1, 1, 1], [0, 0, 1, 1]])
    assert pool(states, right, "last").flatten().tolist() == [2.0, 5.0]
    assert pool(states, left, "last").flatten().tolist() == [3.0, 7.0]
    assert pool(states, left, "first").flatten().tolist() == [1.0, 6.0]
    assert pool(states, right, "mean").flatten().tolist() == [1.0, 4.5]


@pytest.mark.parametrize("fixture, pooling", [("tiny_llama", "last"), ("tiny_bert", "pooler"), ("tiny_bert", "mean"),
                                              ("tiny_llama", "first")])
def test_scores_equal_under_left_and_right_padding(request, fixture, pooling):
    model = RewardModel.build(str(request.getfixturevalue(fixture)), pooling=pooling, max_length=64).eval()
    encoded = [model.encoder.encode(p, r) for p, r in ITEMS]
    with torch.no_grad():
        right = model.score(model.encoder.collate(encoded, "right"))
        left = model.score(model.encoder.collate(encoded, "left"))
        alone = torch.cat([model.score(model.encoder.collate([e])) for e in encoded])
    assert torch.allclose(right, left, atol=1e-5) and torch.allclose(right, alone, atol=1e-5)


def test_truncation_cuts_prompt_from_the_left_first_and_counts(tiny_bert):
    model = RewardModel.build(str(tiny_bert), max_length=16)
    prompt = "one two three four five six seven eight nine ten eleven twelve"
    chosen, rejected = model.encoder.encode_group(prompt, ["yes it is", "no it is not"])
    assert len(chosen.input_ids) <= 16 and len(rejected.input_ids) <= 16
    tok = model.tokenizer
    assert tok.decode(chosen.input_ids, skip_special_tokens=True).startswith("eleven") or "twelve" in tok.decode(chosen.input_ids)
    assert "one two" not in tok.decode(chosen.input_ids)
    assert chosen.input_ids != rejected.input_ids  # the difference survives
    stats = model.encoder.stats
    assert stats.prompt_truncated == 2 and stats.response_truncated == 0 and stats.groups_identical_after_truncation == 0
    # When the responses alone exceed the budget they are cut from the right, and counted.
    model.encoder.encode_group("p", ["a " * 40 + "x", "a " * 40 + "y"])
    assert stats.response_truncated == 2 and stats.groups_identical_after_truncation == 1


@pytest.mark.parametrize("fixture", ["tiny_bert", "tiny_llama"])
def test_save_load_round_trip_gives_same_scores(request, tmp_path, fixture):
    model = RewardModel.build(str(request.getfixturevalue(fixture)), heads=["help", "safe"], head_weights=[0.7, 0.3]).eval()
    before = score(model, ITEMS).values
    model.save(tmp_path / "m")
    assert not list((tmp_path / "m").glob("*.bin")) and not list((tmp_path / "m").glob("*.pt"))
    loaded = RewardModel.load(tmp_path / "m")
    assert loaded.spec.heads == ["help", "safe"]
    assert after_close(before, score(loaded, ITEMS).values)


def after_close(a, b, tol=1e-5):
    return all(abs(x - y) < tol for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("fixture", ["tiny_bert", "tiny_llama"])
def test_hf_export_gives_the_same_scores(request, tmp_path, fixture):
    from transformers import AutoModelForSequenceClassification

    from rewardkit.model.export import export_hf

    model = RewardModel.build(str(request.getfixturevalue(fixture))).eval()
    with torch.no_grad():
        model.head.weight.normal_()
        if model.spec.head_bias:
            model.head.bias.fill_(0.37)
    export_hf(model, tmp_path / "hf")
    hf = AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "hf")).eval()
    batch = model.encoder.collate([model.encoder.encode(p, r) for p, r in ITEMS], "right")
    with torch.no_grad():
        ours = model.score(batch)
        theirs = hf(**batch).logits.squeeze(-1)
    assert (ours - theirs).abs().max().item() < 1e-4


def test_export_refuses_layouts_that_would_change_scores(tiny_bert, tmp_path):
    from rewardkit.model.export import export_hf

    with pytest.raises(ModelError, match="pooler"):
        export_hf(RewardModel.build(str(tiny_bert), pooling="mean"), tmp_path / "x")


def test_missing_backbone_and_pickle_only_directory(tmp_path):
    with pytest.raises(ModelError, match="never downloads"):
        RewardModel.build("bert-base-uncased-not-here")
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ModelError, match="pickled"):
        RewardModel.build(str(tmp_path))


def test_mlp_scores_trajectories_as_sums_of_steps():
    model = RewardModel.build("mlp", mlp_input_dim=3).eval()
    steps = [[0.1, 0.2, 0.3], [0.0, -0.5, 1.0]]
    whole, first, second = score(model, [(None, steps), (None, steps[:1]), (None, steps[1:])]).values
    bias = model.head.bias.item()
    assert whole == pytest.approx(first + second - bias, abs=1e-5)  # bias once per trajectory


def test_score_records_accepts_raw_records_and_keeps_the_labelled_margin(tiny_bert):
    from rewardkit.model.scoring import score_records

    model = RewardModel.build(str(tiny_bert))
    raw = [{"prompt": "p", "chosen": "a", "rejected": "b", "margin": 2.0}, {"prompt": "p", "responses": ["x", "y"], "best": 0}]
    pair, ranking = score_records(model, raw)
    assert pair["margin"] == 2.0 and pair["score_margin"] == pytest.approx(pair["chosen_score"] - pair["rejected_score"])
    assert len(ranking["response_scores"]) == 2


def test_directory_swap_leaves_a_whole_directory(tmp_path):
    from rewardkit.model.reward_model import intact_directory, swap_in_directory

    target = tmp_path / "last"
    assert intact_directory(target) is None
    for version in ("1", "2"):
        (tmp_path / ".new").mkdir()
        (tmp_path / ".new" / "state").write_text(version)
        swap_in_directory(tmp_path / ".new", target)
    assert (target / "state").read_text() == "2" and sorted(p.name for p in tmp_path.iterdir()) == ["last"]
    target.rename(tmp_path / ".last.old")  # as if killed between the two renames of the next swap
    assert (intact_directory(target) / "state").read_text() == "2"
