"""Each objective against values computed by hand."""

import math

import pytest
import torch

from rewardkit import losses
from rewardkit.data.annotators import standardize_by_annotator


def sig(x):
    return 1 / (1 + math.exp(-x))


def test_bradley_terry_hand_values():
    pos, neg = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0])
    expected = (-math.log(sig(1.0)) - math.log(sig(-1.0))) / 2
    assert losses.bradley_terry(pos, neg).item() == pytest.approx(expected, abs=1e-6)


def test_bradley_terry_with_per_pair_margin():
    pos, neg, m = torch.tensor([2.0, 3.0]), torch.tensor([1.0, 0.0]), torch.tensor([0.5, 4.0])
    expected = (-math.log(sig(0.5)) - math.log(sig(-1.0))) / 2
    assert losses.bradley_terry(pos, neg, m).item() == pytest.approx(expected, abs=1e-6)


def test_bradley_terry_label_smoothing_hand_values_and_bounded_optimum():
    pos, neg, eps = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0]), 0.1
    expected = sum(-(1 - eps) * math.log(sig(d)) - eps * math.log(sig(-d)) for d in (1.0, -1.0)) / 2
    assert losses.bradley_terry(pos, neg, label_smoothing=eps).item() == pytest.approx(expected, abs=1e-6)
    # the loss stops falling at d = log((1 - eps) / eps): beyond it, a larger margin costs more
    best = math.log((1 - eps) / eps)
    d = torch.tensor([best, best + 1.0], requires_grad=True)
    per_pair = [losses.bradley_terry(d[i:i + 1], torch.zeros(1), label_smoothing=eps) for i in range(2)]
    grads = [torch.autograd.grad(loss, d)[0][i].item() for i, loss in enumerate(per_pair)]
    assert grads[0] == pytest.approx(0.0, abs=1e-6) and grads[1] > 0.01
    # the ensemble loss is the same function per member
    weights = torch.ones(2, 1)
    assert losses.weighted_bradley_terry(pos[:, None], neg[:, None], weights, eps).item() == pytest.approx(expected, abs=1e-6)


def test_flip_robust_nll_hand_values_bounded_loss_and_reduction_to_bt():
    d = torch.tensor([0.0, math.log(3.0), math.log(3.0)])    # σ(d) = 0.5, 0.75, 0.75
    label = torch.tensor([1.0, 1.0, 0.25])
    # the teacher says "a" with probability q = 0.1 + 0.8·σ(d): 0.5, 0.7, 0.7
    expected = [math.log(2), -math.log(0.7), -0.25 * math.log(0.7) - 0.75 * math.log(0.3)]
    assert losses.flip_robust_nll(d, label, 0.1).tolist() == pytest.approx(expected, abs=1e-6)
    # a label the model is sure is wrong costs at most -log(flip) and no longer pulls on the model,
    # where label smoothing keeps pulling with slope 1 - eps
    far = torch.tensor([-40.0], requires_grad=True)
    loss = losses.flip_robust_nll(far, torch.ones(1), 0.1)
    assert loss.item() == pytest.approx(-math.log(0.1), abs=1e-6)
    assert torch.autograd.grad(loss.sum(), far)[0].item() == pytest.approx(0.0, abs=1e-6)
    smoothed = losses.preference_nll(far, 0.1)
    assert torch.autograd.grad(smoothed.sum(), far)[0].item() == pytest.approx(-0.9, abs=1e-6)
    # flip 0 is Bradley-Terry with the soft label
    assert losses.flip_robust_nll(d, label, 0.0).tolist() == pytest.approx(losses.preference_nll(d, 1 - label).tolist(), abs=1e-6)
    with pytest.raises(ValueError, match="flip"):
        losses.flip_robust_nll(d, label, 0.5)


def test_hinge_hand_values():
    pos, neg = torch.tensor([2.0, 0.5, 0.0]), torch.tensor([0.0, 0.0, 1.0])
    # margins 1: max(0, 1-2)=0, max(0, 1-0.5)=0.5, max(0, 1+1)=2
    assert losses.hinge(pos, neg, 1.0).item() == pytest.approx((0 + 0.5 + 2) / 3)


def test_listwise_softmax_hand_values_and_mask():
    r = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 99.0]])
    best = torch.tensor([2, 0])
    valid = torch.tensor([[True, True, True], [True, True, False]])
    first = -(3 - math.log(math.exp(1) + math.exp(2) + math.exp(3)))
    second = -math.log(0.5)  # the masked 99 must not count
    assert losses.listwise_softmax(r, best, valid).item() == pytest.approx((first + second) / 2, abs=1e-5)
    t = 2.0
    first_t = -(1.5 - math.log(math.exp(0.5) + math.exp(1) + math.exp(1.5)))
    assert losses.listwise_softmax(r[:1], best[:1], valid[:1], t).item() == pytest.approx(first_t, abs=1e-5)


def test_listwise_gradient_is_minus_grad_best_plus_expected_grad():
    """-(∇R_b − Σ_i P_i ∇R_i) for rewards R_i = w·x_i."""
    torch.manual_seed(0)
    x = torch.randn(4, 3)
    w = torch.randn(3, requires_grad=True)
    rewards = (x @ w).unsqueeze(0)
    best = torch.tensor([1])
    losses.listwise_softmax(rewards, best).backward()
    p = (x @ w).detach().softmax(0)
    expected = -(x[1] - (p.unsqueeze(1) * x).sum(0))
    assert torch.allclose(w.grad, expected, atol=1e-6)


def test_ranking_pairs_weighting_and_ties():
    r = torch.tensor([[3.0, 1.0, 2.0]])
    ranks = torch.tensor([[1, 3, 2]])  # order 0 > 2 > 1
    pairs = [(0, 1), (0, 2), (2, 1)]
    expected = sum(-math.log(sig(r[0, i].item() - r[0, j].item())) for i, j in pairs) / 3
    assert losses.ranking_pairs(r, ranks).item() == pytest.approx(expected, abs=1e-6)
    tied = torch.tensor([[1, 2, 2]])  # 1 and 2 tied: only (0,1) and (0,2) count, still / C(3,2)
    expected_tied = (-math.log(sig(2.0)) - math.log(sig(1.0))) / 3
    assert losses.ranking_pairs(r, tied).item() == pytest.approx(expected_tied, abs=1e-6)


def test_plackett_luce_hand_values():
    r = torch.tensor([[1.0, 2.0, 0.5]])
    ranks = torch.tensor([[2, 1, 3]])  # order: item1, item0, item2
    e = [math.exp(v) for v in (1.0, 2.0, 0.5)]
    expected = -(math.log(e[1] / sum(e)) + math.log(e[0] / (e[0] + e[2])))
    assert losses.plackett_luce(r, ranks).item() == pytest.approx(expected, abs=1e-5)


def test_plackett_luce_with_ties_uses_breslow():
    r = torch.tensor([[1.0, 2.0, 0.5]])
    ranks = torch.tensor([[1, 2, 2]])
    e = [math.exp(v) for v in (1.0, 2.0, 0.5)]
    expected = -(math.log(e[0] / sum(e)) + math.log(e[1] / (e[1] + e[2])) + math.log(e[2] / (e[1] + e[2])))
    assert losses.plackett_luce(r, ranks).item() == pytest.approx(expected, abs=1e-5)


def test_contrastive_with_temperature_and_reduction_to_bt():
    pos, neg = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    t = 0.5
    row0 = -math.log(math.exp(2) / (math.exp(2) + math.exp(0) + math.exp(4)))
    row1 = -math.log(math.exp(0) / (math.exp(0) + math.exp(0) + math.exp(4)))
    assert losses.contrastive(pos, neg, t).item() == pytest.approx((row0 + row1) / 2, abs=1e-5)
    one_pos, one_neg = torch.tensor([1.3]), torch.tensor([0.2])
    assert losses.contrastive(one_pos, one_neg).item() == pytest.approx(losses.bradley_terry(one_pos, one_neg).item(), abs=1e-6)


def test_regression_centering_l2_and_annotator_standardisation():
    assert losses.regression(torch.tensor([1.0, 3.0]), torch.tensor([2.0, 1.0])).item() == pytest.approx(2.5)
    assert losses.reward_centering(torch.tensor([1.0, -1.0]), torch.tensor([1.0, 0.0])).item() == pytest.approx((4 + 1) / 2)
    assert losses.l2_penalty([torch.tensor([1.0, 2.0]), torch.tensor([[3.0]])]).item() == pytest.approx(14.0)
    z = standardize_by_annotator([1, 3, 4, 4], ["a", "a", "b", "b"])
    assert z == pytest.approx([-1.0, 1.0, 0.0, 0.0])


def test_bradley_terry_with_a_soft_label_per_pair():
    import math

    from rewardkit.data.records import normalize_record
    from rewardkit.errors import DataError

    pos, neg = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    soft = losses.bradley_terry(pos, neg, label_smoothing=torch.tensor([0.25, 0.0]))

    def log_sigmoid(x):
        return -math.log1p(math.exp(-x))
    want = (-(0.75 * log_sigmoid(1.0) + 0.25 * log_sigmoid(-1.0)) - log_sigmoid(-2.0)) / 2
    assert soft.item() == pytest.approx(want, rel=1e-6)
    assert normalize_record({"prompt": "p", "chosen": "a", "rejected": "b", "probability": 0.8})["probability"] == 0.8
    with pytest.raises(DataError, match="probability"):
        normalize_record({"prompt": "p", "chosen": "a", "rejected": "b", "probability": 1.5})
