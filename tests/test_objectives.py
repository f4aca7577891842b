"""The trainer's loss for each record kind and objective equals the pure loss on the same rewards, so a switch
cannot silently fall back to Bradley-Terry; and the batching and schedule helpers on hand values."""

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from rewardkit import losses
from rewardkit.data.kinds import KINDS, choose_objectives
from rewardkit.train.batches import epoch_batches, token_chunks
from rewardkit.train.examples import Example
from rewardkit.train.loop import lr_factor
from rewardkit.train.objectives import batch_loss


class FixedRewards(nn.Module):
    """A 'model' whose per-head rewards are given in the batch, so each loss can be computed by hand."""

    def __init__(self, heads=("reward",), ensemble=0):
        super().__init__()
        self.spec = SimpleNamespace(heads=list(heads), ensemble=ensemble, aggregate="weighted")
        self.head = nn.Linear(1, len(heads))
        self.register_buffer("head_weights", torch.ones(len(heads)) / len(heads))

    def forward(self, inputs):
        return inputs["rewards"]

    def aggregate(self, per_head):
        return per_head @ self.head_weights


def cfg(**overrides):
    base = dict(margin=1.0, label_smoothing=0.0, temperature=1.0, center_weight=0.0, length_penalty=0.0,
                length_penalty_kind="correlation", mix_weights={}, l2_weight=0.0)
    return SimpleNamespace(**{**base, **overrides})


def batch_of(kind: str, rewards: torch.Tensor, targets: list[dict], sizes: list[int], lengths=None) -> dict:
    """A collated single-kind batch over flat rewards [N, H], as train.examples.collate lays it out."""
    k = max(sizes)
    valid = torch.tensor([[i < n for i in range(k)] for n in sizes])
    offsets = torch.tensor([sum(sizes[:b]) for b in range(len(sizes))]).unsqueeze(1)
    batch = {"inputs": {"rewards": rewards}, "kind": kind, "valid": valid,
             "index": torch.where(valid, offsets + torch.arange(k), torch.zeros(1, dtype=torch.long)),
             "head": torch.full((len(sizes),), -1),
             "lengths": torch.tensor(lengths or [float(i) for i in range(rewards.shape[0])])}
    batch.update(KINDS[kind].collate(targets, sizes, rewards.shape[1]))
    return batch


PAIR_REWARDS = torch.tensor([[2.0], [1.0], [0.5], [1.5], [3.0], [-1.0]])   # chosen, rejected of three pairs
POS, NEG = PAIR_REWARDS[0::2, 0], PAIR_REWARDS[1::2, 0]
MARGINS = [{"margin": 0.5}, {"margin": None}, {"margin": 2.0}]


@pytest.mark.parametrize("objective, expected", [
    ("bt", lambda: losses.bradley_terry(POS, NEG)),
    ("margin", lambda: losses.bradley_terry(POS, NEG, torch.tensor([0.5, 1.0, 2.0]))),  # no margin -> cfg.margin
    ("hinge", lambda: losses.hinge(POS, NEG, torch.tensor([0.5, 1.0, 2.0]))),
    ("contrastive", lambda: losses.contrastive(POS, NEG, 1.0)),
])
def test_pairwise_objectives_are_their_pure_losses(objective, expected):
    batch = batch_of("pairwise", PAIR_REWARDS, MARGINS, [2, 2, 2])
    loss, metrics, rewards = batch_loss(FixedRewards(), batch, {"pairwise": objective}, cfg())
    assert loss.item() == pytest.approx(expected().item(), abs=1e-6)
    assert metrics == {"examples": 3, "correct": 2.0}  # the second pair is ranked wrong
    assert torch.equal(rewards, PAIR_REWARDS[:, 0])


def test_pairwise_regularisers_and_mix_weight_add_up():
    batch = batch_of("pairwise", PAIR_REWARDS, MARGINS, [2, 2, 2], lengths=[5.0, 1.0, 2.0, 8.0, 3.0, 3.0])
    options = cfg(center_weight=0.1, length_penalty=0.2, mix_weights={"pairwise": 0.5})
    loss, _, _ = batch_loss(FixedRewards(), batch, {"pairwise": "bt"}, options)
    expected = 0.5 * (losses.bradley_terry(POS, NEG) + 0.1 * losses.reward_centering(POS, NEG)
                      + 0.2 * losses.length_penalty(PAIR_REWARDS[:, 0], batch["lengths"]))
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)


def test_ensemble_members_get_bootstrap_weighted_bradley_terry():
    members = torch.tensor([[2.0, 0.0], [1.0, 1.0], [0.5, 2.0], [1.5, -1.0]])     # [N, K]
    batch = batch_of("pairwise", members, MARGINS[:2], [2, 2])
    batch["boot"] = torch.tensor([[1.0, 0.0], [2.0, 1.0]])
    loss, _, _ = batch_loss(FixedRewards(("m0", "m1"), ensemble=2), batch, {"pairwise": "bt"}, cfg())
    expected = losses.weighted_bradley_terry(members[0::2], members[1::2], batch["boot"])
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)


RANK_REWARDS = torch.tensor([[0.1], [2.0], [1.0], [0.5], [3.0]])   # a list of 3, then a list of 2
RANK_TARGETS = [{"ranks": [3, 1, 2], "best": 1}, {"ranks": [2, 1], "best": 1}]


@pytest.mark.parametrize("objective, pure", [
    ("listwise", lambda r, v, t: losses.listwise_softmax(r, t["best"], v)),
    ("ranking-pairs", lambda r, v, t: losses.ranking_pairs(r, t["ranks"], v)),
    ("plackett-luce", lambda r, v, t: losses.plackett_luce(r, t["ranks"], v)),
])
def test_ranking_objectives_are_their_pure_losses(objective, pure):
    batch = batch_of("ranking", RANK_REWARDS, RANK_TARGETS, [3, 2])
    loss, metrics, _ = batch_loss(FixedRewards(), batch, {"ranking": objective}, cfg())
    grouped = RANK_REWARDS[:, 0][batch["index"]]
    assert loss.item() == pytest.approx(pure(grouped, batch["valid"], batch).item(), abs=1e-6)
    assert metrics["correct"] == 2.0


def test_rating_regression_fits_the_score_and_each_named_head():
    rewards = torch.tensor([[1.0, 3.0], [0.0, -1.0]])                   # two responses, heads help / safe
    targets = [{"target": 2.0, "head_targets": {}}, {"target": None, "head_targets": {1: 1.0}}]
    batch = batch_of("rating", rewards, targets, [1, 1])
    loss, metrics, _ = batch_loss(FixedRewards(("help", "safe")), batch, {"rating": "regression"}, cfg())
    # aggregate of the first (mean of heads: 2.0) against 2.0, head 'safe' of the second (-1.0) against 1.0
    assert loss.item() == pytest.approx(losses.regression(torch.tensor([2.0, -1.0]), torch.tensor([2.0, 1.0])).item())
    assert metrics == {"examples": 2, "squared_error": 4.0, "targets": 2}


def test_objectives_per_kind_default_and_explicit():
    assert choose_objectives({"pairwise", "rating", "stepwise"}, "auto") == {"pairwise": "bt", "rating": "regression",
                                                                          "stepwise": "step-bce"}
    assert choose_objectives({"pairwise", "ranking"}, "plackett-luce") == {"pairwise": "bt", "ranking": "plackett-luce"}
    with pytest.raises(ValueError, match="needs ranking records"):
        choose_objectives({"pairwise"}, "listwise")


def _examples(kinds_and_lengths):
    return [Example(kind=k, sequences=[[0.0]] * n) for k, n in kinds_and_lengths]


def test_epoch_batches_are_seeded_single_kind_and_cover_every_example():
    examples = _examples([("pairwise", 2)] * 10 + [("rating", 1)] * 5)
    first = epoch_batches(examples, 4, seed=3, epoch=0)
    assert first == epoch_batches(examples, 4, seed=3, epoch=0)
    assert first != epoch_batches(examples, 4, seed=3, epoch=1)
    assert sorted(i for b in first for i in b) == list(range(15))
    assert all(len({examples[i].kind for i in b}) == 1 for b in first)


def test_token_chunks_cap_padded_tokens_and_keep_contrastive_batches_whole():
    enc = lambda n: SimpleNamespace(input_ids=[0] * n)  # noqa: E731
    examples = [Example("pairwise", [enc(n), enc(n)]) for n in (10, 10, 30, 30)]
    chunks = token_chunks([0, 1, 2, 3], examples, max_batch_tokens=120)
    assert sorted(i for c in chunks for i in c) == [0, 1, 2, 3]
    assert all(max(len(examples[i].sequences[0].input_ids) for i in c) * 2 * len(c) <= 120 for c in chunks)
    assert token_chunks([0, 1, 2, 3], examples, 120, whole=True) == [[0, 1, 2, 3]]


def test_learning_rate_schedule_hand_values():
    assert [lr_factor(s, 10, 0.2, "linear") for s in (0, 1, 2, 6, 10)] == pytest.approx([1 / 3, 2 / 3, 1.0, 0.5, 0.0])
    assert lr_factor(6, 10, 0.2, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_factor(9, 10, 0.2, "constant") == 1.0
