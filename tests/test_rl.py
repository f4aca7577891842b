"""rewardkit.rl: every formula against values worked out by hand, padding on either side, and the bad inputs
(NaN, empty responses, G = 1, all-equal groups, mismatched shapes)."""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import sys
import types
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from rewardkit.rl import (
    RewardMonitor,
    combine_rewards,
    discounted_returns,
    gae,
    grpo_advantages,
    kl_per_token,
    last_token_index,
    process_advantages,
    reinforce_pp_advantages,
    rloo_advantages,
    step_token_rewards,
    token_rewards,
    whiten,
)

T = torch.tensor
def close(actual: torch.Tensor, expected, atol: float = 1e-5) -> bool:
    return torch.allclose(actual.float(), torch.tensor(expected, dtype=torch.float32), atol=atol)


RIGHT = T([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.bool)   # right padding
LEFT = T([[0, 1, 1, 1], [0, 0, 1, 1]], dtype=torch.bool)    # the same responses, left padded


def test_kl_estimators_by_hand():
    logp, ref = T([[-1.0, -2.0]]), T([[-1.5, -1.0]])  # r = ref - logp = [-0.5, 1.0]
    mask = T([[True, True]])
    assert close(kl_per_token(logp, ref, mask, "k1"), [[0.5, -1.0]])
    assert close(kl_per_token(logp, ref, mask, "k2"), [[0.125, 0.5]])
    k3 = [math.exp(-0.5) - 1 + 0.5, math.exp(1.0) - 1 - 1.0]
    assert close(kl_per_token(logp, ref, mask, "k3"), [k3])
    assert kl_per_token(T([[0.0]]), T([[-50.0]]), T([[True]]), "k1").item() == 10.0  # clamped like OpenRLHF / verl
    assert close(kl_per_token(logp, ref, T([[True, False]]), "k2"), [[0.125, 0.0]])
    with pytest.raises(ValueError, match="k1, k2, k3"):
        kl_per_token(logp, ref, mask, "k4")


def test_the_score_lands_on_the_last_response_token_under_either_padding():
    assert last_token_index(RIGHT).tolist() == [2, 1] and last_token_index(LEFT).tolist() == [3, 3]
    right = token_rewards(T([2.0, -1.0]), RIGHT)
    left = token_rewards(T([2.0, -1.0]), LEFT)
    assert right.tolist() == [[0, 0, 2.0, 0], [0, -1.0, 0, 0]]
    assert left.tolist() == [[0, 0, 0, 2.0], [0, 0, 0, -1.0]]
    with pytest.raises(ValueError, match=r"responses \[1\] have no tokens"):
        token_rewards(T([1.0, 1.0]), T([[True], [False]]))


def test_kl_penalty_per_token_or_summed_clipping_and_missing_eos():
    kl = T([[0.1, 0.2, 0.3, 9.0], [0.5, 0.5, 9.0, 9.0]])  # padding KL must never count
    per_token = token_rewards(T([1.0, 0.0]), RIGHT, kl, beta=0.1)
    assert close(per_token, [[-0.01, -0.02, 1 - 0.03, 0], [-0.05, -0.05, 0, 0]])
    summed = token_rewards(T([1.0, 0.0]), RIGHT, kl, beta=0.1, kl_placement="sequence")
    assert close(summed, [[0, 0, 1 - 0.06, 0], [0, -0.1, 0, 0]])
    clipped = token_rewards(T([50.0, -50.0]), RIGHT, clip=10.0, ended=T([True, False]), missing_eos_penalty=1.0)
    assert clipped[0, 2].item() == 10.0 and clipped[1, 1].item() == -11.0
    with pytest.raises(ValueError, match="NaN or infinite in rows \\[1\\]"):
        token_rewards(T([1.0, float("nan")]), RIGHT)
    with pytest.raises(ValueError, match="needs the per-token KL"):
        token_rewards(T([1.0, 0.0]), RIGHT, beta=0.1)


def test_step_rewards_sit_at_step_ends_and_returns_sum_what_follows():
    placed = step_token_rewards(T([[0.5, -1.0], [2.0, 0.0]]), T([[0, 2], [1, -1]]), RIGHT)
    assert placed.tolist() == [[0.5, 0, -1.0, 0], [0, 2.0, 0, 0]]
    assert discounted_returns(placed, RIGHT).tolist() == [[-0.5, -1.0, -1.0, 0], [2.0, 2.0, 0, 0]]
    assert discounted_returns(placed, RIGHT, gamma=0.5)[0].tolist() == [0.5 - 0.25, -0.5, -1.0, 0]
    with pytest.raises(ValueError, match="outside its response"):
        step_token_rewards(T([[1.0]]), T([[3]]), T([[True, True, True, False]]))


def test_grpo_rloo_and_dr_grpo_by_hand():
    scores = T([1.0, 0.0, 0.0, 3.0, 3.0, 3.0])  # two groups of 3; the second all equal
    std = math.sqrt(1 / 3)  # unbiased std of [1, 0, 0]
    a = grpo_advantages(scores, 3)
    assert a.tolist() == pytest.approx([(2 / 3) / (std + 1e-4), (-1 / 3) / (std + 1e-4), (-1 / 3) / (std + 1e-4), 0, 0, 0])
    assert grpo_advantages(scores, 3, "none").tolist() == pytest.approx([2 / 3, -1 / 3, -1 / 3, 0, 0, 0])
    batch_std = scores.std().item()
    assert grpo_advantages(scores, 3, "batch").tolist() == pytest.approx([(2 / 3) / (batch_std + 1e-4), (-1 / 3) / (batch_std + 1e-4), (-1 / 3) / (batch_std + 1e-4), 0, 0, 0])
    assert rloo_advantages(scores, 3).tolist() == pytest.approx([1.0, -0.5, -0.5, 0, 0, 0])
    for bad, match in [((scores, 1), "G >= 2"), ((scores, 4), "groups of 4"), ((T([1.0, float("inf")]), 2), "NaN or infinite")]:
        with pytest.raises(ValueError, match=match):
            grpo_advantages(*bad)


def test_process_supervision_normalises_over_the_group_and_sums_later_steps():
    # one group of two responses: steps rewards [1, 0] and [2] -> mean 1, unbiased std 1
    step_rewards, step_ends = T([[1.0, 0.0], [2.0, 0.0]]), T([[0, 2], [1, -1]])
    adv = process_advantages(step_rewards, step_ends, RIGHT, group_size=2, eps=1e-9)
    assert close(adv, [[-1.0, -1.0, -1.0, 0], [1.0, 1.0, 0, 0]])
    left = process_advantages(step_rewards, T([[1, 3], [3, -1]]), LEFT, group_size=2, eps=1e-9)
    assert close(left, [[0, -1.0, -1.0, -1.0], [0, 0, 1.0, 1.0]])
    with pytest.raises(ValueError, match="G >= 2"):
        process_advantages(step_rewards, step_ends, RIGHT, group_size=1)


def test_gae_whitening_and_reinforce_pp_by_hand():
    rewards, values = T([[0.0, 1.0], [2.0, 0.0]]), T([[0.5, 0.5], [1.0, 9.0]])
    mask = T([[True, True], [True, False]])
    adv, ret = gae(rewards, values, mask, gamma=1.0, lam=1.0)
    # row 0: A1 = 1 - 0.5 = 0.5, A0 = 0 + 0.5 - 0.5 + 0.5 = 0.5; row 1: one token, A = 2 - 1 = 1
    assert close(adv, [[0.5, 0.5], [1.0, 0.0]]) and close(ret, [[1.0, 1.0], [2.0, 0.0]])
    adv, _ = gae(rewards, values, mask, gamma=0.5, lam=0.5)
    d0 = 0 + 0.5 * 0.5 - 0.5  # -0.25; d1 = 1 - 0.5 = 0.5; A0 = d0 + 0.25 * 0.5
    assert adv[0].tolist() == pytest.approx([d0 + 0.25 * 0.5, 0.5])
    w = whiten(T([[1.0, 3.0], [5.0, 100.0]]), mask)
    assert w[0].tolist() == pytest.approx([-1.0, 0.0], abs=1e-6) and w[1].tolist() == pytest.approx([1.0, 0.0], abs=1e-6)
    # returns [[1, 1], [2, -]]: mean 4/3, unbiased std sqrt(1/3)
    assert close(reinforce_pp_advantages(rewards, mask), [[-1 / math.sqrt(3), -1 / math.sqrt(3)], [2 / math.sqrt(3), 0.0]])


def test_combining_reward_functions():
    rewards = T([[1.0, 10.0], [0.0, 10.0], [1.0, 0.0], [1.0, 20.0]])
    assert combine_rewards(rewards, [1.0, 0.5]).tolist() == [6.0, 5.0, 1.0, 11.0]
    z = combine_rewards(rewards, [1.0, 1.0], "normalize_then_sum", group_size=2)
    assert z.mean().item() == pytest.approx(0.0, abs=1e-6) and z.std().item() == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(ValueError, match="2 weights for 2|3 weights"):
        combine_rewards(rewards, [1.0, 1.0, 1.0])


NAN = float("nan")
GOOD = T([[0.5, -1.0, 2.0, 0.0], [1.0, 0.3, 0.0, 0.0]])
WITH_NAN = T([[0.5, NAN, 2.0, 0.0], [1.0, 0.3, 0.0, 0.0]])
NAN_IN_PADDING = T([[0.5, -1.0, 2.0, NAN], [1.0, 0.3, NAN, 0.0]])  # never read: allowed


@pytest.mark.parametrize(("call", "message", "masked"), [
    (lambda x: kl_per_token(x, GOOD, RIGHT), "logprobs is NaN or infinite in rows \\[0\\]", True),
    (lambda x: kl_per_token(GOOD, x, RIGHT, "k3"), "ref_logprobs is NaN", True),
    (lambda x: token_rewards(T([1.0, 2.0]), RIGHT, x, beta=0.1), "kl is NaN", True),
    (lambda x: discounted_returns(x, RIGHT), "rewards is NaN", True),
    (lambda x: reinforce_pp_advantages(x, RIGHT), "rewards is NaN", True),
    (lambda x: whiten(x, RIGHT), "values is NaN", True),
    (lambda x: gae(x, GOOD, RIGHT), "rewards is NaN", True),
    (lambda x: gae(GOOD, x, RIGHT), "values is NaN", True),
    # steps: columns 1-2, so WITH_NAN has NaN in a step that exists and NAN_IN_PADDING only in the missing one
    (lambda x: step_token_rewards(x[:, 1:3], T([[0, 2], [1, -1]]), RIGHT), "step rewards is NaN", True),
    (lambda x: process_advantages(x[:, 1:3], T([[0, 2], [1, -1]]), RIGHT, 2), "step rewards is NaN", True),
    (lambda x: rloo_advantages(x.flatten(), 4), "scores is NaN", False),
    (lambda x: combine_rewards(x.T), "rewards is NaN", False),
])
def test_non_finite_inputs_are_errors_naming_the_input_and_rows_but_padding_is_never_read(call, message, masked):
    with pytest.raises(ValueError, match=message):
        call(WITH_NAN)
    if masked:
        result = call(NAN_IN_PADDING)
        assert torch.isfinite(result[0] if isinstance(result, tuple) else result).all()


def test_bad_shapes_options_and_degenerate_groups_are_errors_or_documented_results():
    with pytest.raises(ValueError, match="one shape"):
        kl_per_token(GOOD, GOOD[:, :3], RIGHT)
    with pytest.raises(ValueError, match="mask's shape"):
        gae(GOOD[:, :3], GOOD[:, :3], RIGHT)
    with pytest.raises(ValueError, match="must be \\[B\\]"):
        token_rewards(T([1.0, 2.0, 3.0]), RIGHT)
    with pytest.raises(ValueError, match="ended"):
        token_rewards(T([1.0, 2.0]), RIGHT, ended=T([True]))
    with pytest.raises(ValueError, match="step_rewards"):
        step_token_rewards(T([[1.0]]), T([[0, 1]]), RIGHT)
    with pytest.raises(ValueError, match="kl_placement"):
        token_rewards(T([1.0, 2.0]), RIGHT, GOOD, beta=0.1, kl_placement="prompt")
    with pytest.raises(ValueError, match="unknown KL estimator"):
        kl_per_token(GOOD, GOOD, RIGHT, "k4")
    with pytest.raises(ValueError, match="scale must be"):
        grpo_advantages(T([1.0, 2.0]), 2, scale="prompt")
    with pytest.raises(ValueError, match="how must be"):
        combine_rewards(T([[1.0], [2.0]]), how="max")
    with pytest.raises(ValueError, match="at least two"):
        whiten(GOOD, T([[1, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.bool))
    for call in (lambda: rloo_advantages(T([1.0, 2.0]), 1), lambda: combine_rewards(T([[1.0], [2.0]]), how="normalize_then_sum")):
        with pytest.raises(ValueError, match="G >= 2"):  # G = 1 (normalize_then_sum's default group_size 0 too)
            call()
    for call in (lambda: grpo_advantages(T([1.0, 1.0]), 2, eps=0.0), lambda: whiten(GOOD, RIGHT, eps=0.0),
                 lambda: process_advantages(T([[1.0], [1.0]]), T([[0], [0]]), RIGHT, 2, eps=0.0)):
        with pytest.raises(ValueError, match="eps must be above 0"):
            call()
    # all-equal groups: advantage 0, never NaN (process supervision: every step reward of the group equal)
    assert close(process_advantages(T([[1.0], [1.0]]), T([[0], [0]]), RIGHT, 2), [[0.0] * 4, [0.0] * 4])
    assert close(combine_rewards(T([[1.0, 2.0], [1.0, 2.0]]), how="normalize_then_sum", group_size=2), [0.0, 0.0])
    # a row with no response tokens: zeros from the token-level estimators, an error where a score needs a token
    empty = T([[1, 1, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    advantages, returns = gae(GOOD, GOOD, empty)
    assert (advantages[1] == 0).all() and (returns[1] == 0).all()
    assert (reinforce_pp_advantages(GOOD, empty)[1] == 0).all()
    assert (process_advantages(T([[1.0], [0.0]]), T([[1], [-1]]), empty, 2)[1] == 0).all()
    with pytest.raises(ValueError, match="no tokens"):
        token_rewards(T([1.0, 2.0]), empty)


def test_the_monitor_flags_clips_and_penalises_out_of_range_rewards():
    reference = [i / 100 for i in range(100)]  # 0 .. 0.99
    flag = RewardMonitor(reference, "flag", low=0.0, high=1.0)
    assert flag([0.5, 3.0, -1.0], texts=["fine", "too good", "too bad"], step=7) == [0.5, 3.0, -1.0]
    assert flag.summary()["share_above"] == pytest.approx(1 / 3)
    assert flag.summary()["examples"]["above"] == [{"step": 7, "reward": 3.0, "text": "too good"}]
    assert RewardMonitor(reference, "clip", low=0.0, high=1.0)([0.5, 3.0, -1.0]) == [0.5, 0.99, 0.0]
    penalise = RewardMonitor(reference, "penalise", low=0.0, high=1.0, spread_limit=0.2)
    assert penalise([0.5, 0.6], spreads=[0.1, 0.5]) == [0.5, 0.0]  # the uncertain one gains nothing
    assert penalise.summary()["share_uncertain"] == 0.5
    assert flag.drift()["share_above_reference_max"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="non-finite"):
        flag([float("nan")])
    with pytest.raises(ValueError, match="at least 20"):
        RewardMonitor([0.0, 1.0])


def test_gold_rules_by_hand():
    from rewardkit.data.rules import gold, rule_prompts

    assert gold("answer", "42", "so 40 + 2 = 42.") == 1.0 and gold("answer", "42", "42 or 43") == 0.0
    assert gold("answer", "1200", "It is 1,200.") == 1.0 and gold("answer", "7", "no number") == 0.0
    assert gold("uppercase", "", "THE SEA IS BLUE.") == 1.0 and gold("uppercase", "", "The SEA") == 0.0
    assert gold("uppercase", "", "OK") == 0.0  # too few letters to count as obeying
    assert gold("max_words", "3", "one two three") == 1.0 and gold("max_words", "3", "one two three four") == 0.0
    assert gold("keyword", "vivid", "A Vivid sunset.") == 1.0 and gold("keyword", "vivid", "vividly") == 0.0
    assert gold("no_commas", "", "Calm and blue.") == 1.0 and gold("no_commas", "", "Calm, blue.") == 0.0
    assert gold("one_word", "", "Coffee.") == 1.0 and gold("one_word", "", "Hot coffee") == 0.0
    with pytest.raises(ValueError, match="unknown rule"):
        gold("rhymes", "", "x")
    rows = rule_prompts("mix", 10, seed=3)
    assert [r["task"] for r in rows[:2]] == ["arithmetic", "instructions"] and all(isinstance(r["arg"], str) for r in rows)
    assert rows == rule_prompts("mix", 10, seed=3)


def test_running_normalisation_equals_the_statistics_of_everything_seen():
    from rewardkit.rl import RunningNormalizer

    torch.manual_seed(0)
    batches = [torch.randn(n) * 3 + 2 for n in (5, 1, 17, 8)]
    norm = RunningNormalizer()
    for b in batches:
        norm.update(b)
    every = torch.cat(batches).double()
    assert norm.mean == pytest.approx(every.mean().item()) and norm.std == pytest.approx(every.std(unbiased=False).item())
    resumed = RunningNormalizer.from_state_dict(norm.state_dict())
    assert resumed(T([5.0]), update=False).item() == pytest.approx((5.0 - norm.mean) / norm.std, rel=1e-6)
    seeded = RunningNormalizer.from_model_statistics({"mean": 1.0, "std": 2.0})
    assert seeded(T([3.0]), update=False).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="NaN or infinite"):
        norm.update(T([1.0, float("nan")]))


class Placeholder(types.ModuleType):
    """Stands in for a module a framework imports at the top for its training stack (deepspeed, ray, tensordict);
    the functions under test never use it."""

    __path__: list[str] = []

    def __getattr__(self, name: str) -> type:
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (), {})


def framework_package(name: str, version: str) -> Path:
    """The package folder scripts/install.sh puts a framework's wheel in (or $REWARDKIT_<NAME>_PATH): off the import
    path, because these wheels ship a top-level `tests` package that would shadow ours."""
    root = Path(os.environ.get(f"REWARDKIT_{name.upper()}_PATH") or Path(sys.prefix) / "extra" / f"{name}-{version}")
    if not (root / name).is_dir():
        pytest.skip(f"{name}'s source is not at {root} (bash scripts/install.sh '[test]' puts it there)")
    return root / name


@contextmanager
def placeholders(*names: str):
    """Placeholder modules for `names` while a framework's file loads; sys.modules and the environment as they were
    afterwards (verl sets TORCHINDUCTOR_CACHE_DIR and warning filters when imported, and its imports use deprecated
    torch.jit calls)."""
    environ = set(os.environ)
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for name in names:
            patch.setitem(sys.modules, name, Placeholder(name))
        yield patch
    for key in set(os.environ) - environ:
        del os.environ[key]


def openrlhf_functions():
    """OpenRLHF's own compute_approx_kl and compute_reward, read from openrlhf/models/utils.py: it imports deepspeed
    at the top, which these two functions never touch."""
    path = framework_package("openrlhf", "0.11.2") / "models" / "utils.py"
    with placeholders("deepspeed"):
        module_spec = importlib.util.spec_from_file_location("openrlhf_models_utils", path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def verl():
    """verl's own verl/trainer/ppo/core_algos.py (advantage estimators, KL penalties). It imports verl's utilities
    and config classes, so the package is loaded from its folder without running verl/__init__.py (which starts
    with ray); ray, tensordict, codetiming and orjson are imported at the top and never used by these functions."""
    package = framework_package("verl", "0.9.1")
    with placeholders("ray", "tensordict", "tensordict.tensorclass", "codetiming", "orjson") as patch:
        root = types.ModuleType("verl")
        root.__path__ = [str(package)]
        patch.setitem(sys.modules, "verl", root)
        module = importlib.import_module("verl.trainer.ppo.core_algos")
        for name in [name for name in sys.modules if name.startswith("verl.")]:
            del sys.modules[name]
    return module


@pytest.mark.parametrize("estimator", ["k1", "k2", "k3"])
def test_kl_and_per_token_rewards_equal_openrlhfs(estimator):
    utils = openrlhf_functions()
    torch.manual_seed(0)
    logp, ref = -torch.rand(3, 6) * 4, -torch.rand(3, 6) * 4
    ref[0, 1] = logp[0, 1] + 30.0  # a token far off the reference: both clamp its KL at 10
    mask = T([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]], dtype=torch.bool)  # OpenRLHF pads right
    ours = kl_per_token(logp, ref, mask, estimator)
    theirs = utils.compute_approx_kl(logp, ref, kl_estimator=estimator)
    assert torch.allclose(ours, theirs * mask, atol=1e-5)
    scores = T([3.0, -12.0, 0.5])
    rewards = token_rewards(scores, mask, ours, beta=0.05, kl_placement="token", clip=10.0)
    expected = utils.compute_reward(scores, 0.05, theirs * mask, action_mask=mask, reward_clip_range=(-10.0, 10.0))
    assert torch.allclose(rewards, expected, atol=1e-5)


def right_padded(lengths: list[int], width: int) -> torch.Tensor:
    return torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]


@pytest.mark.parametrize(("estimator", "verl_name", "clamp"), [("k1", "kl", None), ("k2", "mse", None),
                                                               ("k3", "low_var_kl", 10.0)])
def test_kl_and_per_token_rewards_equal_verls(verl, estimator, verl_name, clamp):
    torch.manual_seed(1)
    logp, ref = -torch.rand(3, 5) * 4, -torch.rand(3, 5) * 4
    ref[1, 0] = logp[1, 0] + 30.0  # verl cuts k3 at 10 and leaves k1, k2 as they are
    mask = right_padded([5, 3, 1], 5)  # verl pads responses on the right
    ours = kl_per_token(logp, ref, mask, estimator, clamp=clamp)
    assert torch.allclose(ours, verl.kl_penalty(logp, ref, verl_name) * mask, atol=1e-5)
    scores = T([2.0, -1.0, 0.5])
    at_last_token = token_rewards(scores, mask)  # what verl's reward manager writes: the score at the last token
    if estimator == "k1":  # verl's compute_rewards (reward-side KL) uses k1
        expected = verl.compute_rewards(at_last_token, logp * mask, ref * mask, 0.1)
        assert torch.allclose(token_rewards(scores, mask, ours, beta=0.1), expected, atol=1e-5)


@pytest.mark.parametrize("scale", ["group", "none"])
def test_grpo_and_rloo_advantages_equal_verls(verl, scale):
    scores = T([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0, 0.3, -1.2, 4.0, 0.7])  # group 2: all equal
    mask = right_padded([3, 5, 1, 4, 2, 5, 5, 3, 1, 2, 4, 5], 5)
    uid = np.repeat(np.array(["a", "b", "c"], dtype=object), 4)
    at_last_token = token_rewards(scores, mask)
    theirs, _ = verl.compute_grpo_outcome_advantage(at_last_token, mask.float(), uid, epsilon=1e-6,
                                                    norm_adv_by_std_in_grpo=scale == "group")
    assert torch.allclose(grpo_advantages(scores, 4, scale, eps=1e-6)[:, None] * mask, theirs, atol=1e-5)
    theirs, _ = verl.compute_rloo_outcome_advantage(at_last_token, mask.float(), uid)
    assert torch.allclose(rloo_advantages(scores, 4)[:, None] * mask, theirs, atol=1e-5)


def test_reinforce_pp_and_gae_equal_verls(verl):
    torch.manual_seed(2)
    mask = right_padded([6, 4, 2, 5], 6)
    rewards = torch.where(mask, torch.randn(4, 6), 0.0)  # a score at the end and -beta * KL on every token
    values = torch.randn(4, 6)
    theirs, _ = verl.compute_reinforce_plus_plus_outcome_advantage(rewards, mask.float(), types.SimpleNamespace(gamma=0.9))
    assert torch.allclose(reinforce_pp_advantages(rewards, mask, gamma=0.9), theirs, atol=1e-5)
    advantages, returns = gae(rewards, values, mask, gamma=0.95, lam=0.9)
    their_advantages, their_returns = verl.compute_gae_advantage_return(rewards, values, mask.float(), 0.95, 0.9)
    assert torch.allclose(whiten(advantages, mask), their_advantages * mask, atol=1e-5)  # verl whitens, we leave it
    assert torch.allclose(returns * mask, their_returns * mask, atol=1e-5)


def openrlhf_experience_methods():
    """OpenRLHF's get_advantages_and_returns and get_cumulative_returns, compiled from the source of
    openrlhf/trainer/ppo_utils/experience_maker.py: methods that never read `self`, in a module that imports ray,
    vllm and deepspeed at the top, so only these two definitions are taken from it."""
    import ast

    path = framework_package("openrlhf", "0.11.2") / "trainer" / "ppo_utils" / "experience_maker.py"
    wanted = {"get_advantages_and_returns", "get_cumulative_returns"}
    methods = [node for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.FunctionDef) and node.name in wanted]
    assert {m.name for m in methods} == wanted, "OpenRLHF renamed them: read the file again"
    for m in methods:
        m.decorator_list = []
    namespace = {"torch": torch, "Tuple": tuple}
    exec(compile(ast.Module(body=methods, type_ignores=[]), str(path), "exec"), namespace)
    return namespace


def test_discounted_returns_and_gae_equal_openrlhfs():
    openrlhf = openrlhf_experience_methods()
    torch.manual_seed(3)
    mask = right_padded([6, 4, 1, 5], 6)  # OpenRLHF's action mask pads on the right
    rewards, values = torch.randn(4, 6), torch.randn(4, 6)
    theirs = openrlhf["get_cumulative_returns"](None, rewards, mask.float(), 0.9)
    assert torch.allclose(discounted_returns(rewards, mask, gamma=0.9), theirs * mask, atol=1e-5)
    their_advantages, their_returns = openrlhf["get_advantages_and_returns"](None, values, rewards, mask.float(), 0.95, 0.9)
    advantages, returns = gae(rewards, values, mask, gamma=0.95, lam=0.9)
    assert torch.allclose(advantages, their_advantages * mask, atol=1e-5)
    assert torch.allclose(returns * mask, their_returns * mask, atol=1e-5)


def test_running_normalisation_equals_stable_baselines3s_running_mean_std():
    """SB3's RunningMeanStd (what VecNormalize keeps) starts from mean 0, variance 1, counted as epsilon = 1e-4
    observations; the same prior given to RunningNormalizer gives the same statistics batch after batch."""
    from stable_baselines3.common.running_mean_std import RunningMeanStd

    from rewardkit.rl import RunningNormalizer

    theirs, ours = RunningMeanStd(epsilon=1e-4), RunningNormalizer(mean=0.0, std=1.0, count=1e-4)
    rng = np.random.default_rng(4)
    for n in (3, 1, 50, 7):
        batch = rng.normal(5.0, 2.0, n)
        theirs.update(batch)
        ours.update(torch.from_numpy(batch))
        assert ours.mean == pytest.approx(float(theirs.mean), rel=1e-9)
        assert ours.std == pytest.approx(float(np.sqrt(theirs.var)), rel=1e-9)

