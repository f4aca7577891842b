"""rewardkit.control: teachers, query selection, the step reward model, the reward wrappers, the loop on SB3."""

from __future__ import annotations

import json
import math
from functools import partial

import numpy as np
import pytest
import torch

gym = pytest.importorskip("gymnasium")
pytest.importorskip("stable_baselines3")

from rewardkit.control.envs import INSTRUCTIONS, InstructedReach, LearnedReward, LearnedRewardVecEnv  # noqa: E402
from rewardkit.control.learn import fit_preferences, member_folds, pair_loss, pair_tensors  # noqa: E402
from rewardkit.control.queries import query_scores, select_queries  # noqa: E402
from rewardkit.control.reward import StepRewardModel, StepRewardSpec  # noqa: E402
from rewardkit.control.segments import Segment, read_pairs, write_pairs  # noqa: E402
from rewardkit.control.teachers import TEACHERS, Teacher, label_pairs, teacher_returns  # noqa: E402
from rewardkit.errors import DataError, ModelError  # noqa: E402

RNG = np.random.default_rng


# ------------------------------------------------------------------ teachers


def test_oracle_prefers_the_higher_return():
    a = np.array([[1.0, 1.0], [0.0, 0.0], [2.0, -1.0], [-5.0, -5.0]])
    b = np.array([[0.0, 0.0], [1.0, 0.5], [0.0, 0.5], [-6.0, -6.0]])
    labels = label_pairs(TEACHERS["oracle"], a, b, margin=1.0, floor=0.0, rng=RNG(0))
    assert labels.tolist() == [1.0, 0.0, 1.0, 1.0]  # never skips, whatever the returns' sign


def test_stochastic_teacher_follows_bradley_terry():
    """beta = 1 and a return difference of 1: a is chosen with probability sigmoid(1) = 0.731."""
    n = 20_000
    a, b = np.ones((n, 1)), np.zeros((n, 1))
    labels = label_pairs(TEACHERS["stoch"], a, b, margin=1.0, floor=0.0, rng=RNG(0))
    assert labels.mean() == pytest.approx(1 / (1 + math.exp(-1)), abs=0.015)


def test_mistaken_teacher_flips_one_label_in_ten():
    n = 20_000
    labels = label_pairs(TEACHERS["mistake"], np.ones((n, 3)), np.zeros((n, 3)), margin=1.0, floor=0.0, rng=RNG(1))
    assert (labels == 0).mean() == pytest.approx(0.1, abs=0.01)


def test_skip_and_equal_thresholds_scale_with_the_margin():
    # Returns measured from floor -1: a = [3, 0.2, 6], b = [2.9, 0.1, 2]; margin 5 -> thresholds 0.5.
    a = np.array([[0.5, 0.5], [-0.9, -0.9], [2.0, 2.0]])
    b = np.array([[0.45, 0.45], [-0.95, -0.95], [0.0, 0.0]])
    equal = label_pairs(Teacher(eps_equal=0.1), a, b, margin=5.0, floor=-1.0, rng=RNG(0))
    assert equal.tolist() == [0.5, 0.5, 1.0]
    skip = label_pairs(Teacher(eps_skip=0.1), a, b, margin=5.0, floor=-1.0, rng=RNG(0))
    assert skip[0] == 1.0 and math.isnan(skip[1]) and skip[2] == 1.0


def test_myopic_teacher_weighs_the_end_of_a_segment():
    """a: 1 at the start, b: 0.9 at the end; undiscounted a wins, with gamma 0.9 over 3 steps b wins
    (0.81 against 0.9)."""
    a, b = np.array([[1.0, 0.0, 0.0]]), np.array([[0.0, 0.0, 0.9]])
    assert teacher_returns(a, 0.9).tolist() == pytest.approx([0.81])
    assert label_pairs(TEACHERS["oracle"], a, b, 1.0, 0.0, RNG(0)).tolist() == [1.0]
    assert label_pairs(TEACHERS["myopic"], a, b, 1.0, 0.0, RNG(0)).tolist() == [0.0]


# ------------------------------------------------------------------ query selection


def test_query_selection_on_a_scripted_ensemble():
    """Three members' returns for four candidate pairs (rows: members; columns: pairs)."""
    returns_a = np.array([[2.0, 0.0, 3.0, 0.5], [2.0, 0.0, -2.0, 0.5], [2.0, 0.0, 0.0, 0.5]])
    returns_b = np.zeros((3, 4))
    # Pair 2: members disagree (P = 0.95, 0.12, 0.5; mean 0.52). Pair 1: all say 0.5 -> highest entropy, no spread.
    assert select_queries("disagreement", returns_a, returns_b, 2, RNG(0)).tolist()[0] == 2
    assert select_queries("entropy", returns_a, returns_b, 2, RNG(0)).tolist() == [1, 2]
    assert query_scores("disagreement", returns_a, returns_b)[[0, 1, 3]] == pytest.approx([0, 0, 0])
    uniform = select_queries("uniform", returns_a, returns_b, 4, RNG(0))
    assert sorted(uniform.tolist()) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="query selection"):
        query_scores("random", returns_a, returns_b)


# ------------------------------------------------------------------ the step reward model


def test_step_reward_depends_on_its_own_step_only():
    model = StepRewardModel(StepRewardSpec(obs_dim=3, action_dim=2)).eval()
    obs, act = torch.randn(2, 5, 3), torch.randn(2, 5, 2)
    base = model.step_rewards(obs, act)
    assert base.shape == (3, 2, 5)
    changed = obs.clone()
    changed[:, 3] += 1.0
    moved = model.step_rewards(changed, act)
    assert torch.equal(moved[:, :, [0, 1, 2, 4]], base[:, :, [0, 1, 2, 4]])
    assert not torch.equal(moved[:, :, 3], base[:, :, 3])
    returns = model.segment_returns(obs, act)
    assert torch.allclose(returns, base.sum(dim=2))


@pytest.mark.parametrize(("chunk", "instructed"), [(0, False), (3, False), (0, True)])
def test_numpy_fast_path_equals_torch(chunk, instructed):
    spec = StepRewardSpec(obs_dim=4, action_dim=2, chunk=chunk, hidden=32, instructed=instructed, instruction_dim=8)
    model = StepRewardModel(spec).eval()
    rng = RNG(0)
    obs, actions = rng.normal(3.0, 10.0, (7, 4)), rng.normal(-1.0, 0.1, (7, *spec.action_shape))
    emb = rng.normal(size=(7, 8))
    model.standardise_inputs(torch.tensor(2 * obs), torch.tensor(actions + 1))  # the statistics of other steps
    assert not torch.allclose(model.obs_std, torch.ones(4)) and not torch.allclose(model.action_mean, torch.zeros(2))
    as_tensor = partial(torch.tensor, dtype=torch.float32)
    with torch.no_grad():
        plain = model.step_rewards(as_tensor(obs).unsqueeze(1), as_tensor(actions).unsqueeze(1),
                                   as_tensor(emb) if instructed else None)[:, :, 0]
    x = np.concatenate([obs] + ([emb] if instructed else []) + [actions.reshape(7, -1)], axis=1).astype(np.float32)
    assert np.allclose(model.numpy_mlp()(x), plain.numpy(), atol=1e-5)


def test_fitting_does_not_depend_on_the_scale_of_an_input(tmp_path):
    """Inputs are standardised by the fitted steps' statistics: an observation dimension in other units (x 1000,
    shifted) trains the same model and ranks held-out steps the same; the statistics are saved with it, and a
    file without them loads as a model that reads its inputs as they are."""
    rng = RNG(0)
    train, test = labelled(linear_task(200, rng), rng), linear_task(50, rng)
    rescale = lambda seg: Segment(seg.observations * np.array([1000.0, 1.0], np.float32) + np.array([5.0, 0], np.float32), seg.actions)  # noqa: E731
    rewards = []
    for change in (lambda seg: seg, rescale):
        torch.manual_seed(0)
        model = StepRewardModel(StepRewardSpec(obs_dim=2, action_dim=1, hidden=32))
        fit_preferences(model, pair_tensors(model, [(change(a), change(b)) for a, b in train[0]], train[1]), epochs=5,
                        lr=1e-3, stop_accuracy=2.0)
        rewards.append(model.score_segments([change(seg) for seg in test]))
    assert np.allclose(rewards[0], rewards[1], atol=1e-3)
    model.save(tmp_path / "m")
    assert np.array_equal(StepRewardModel.load(tmp_path / "m").score_segments([rescale(seg) for seg in test]), rewards[1])
    from safetensors.torch import load_file, save_file

    weights = load_file(str(tmp_path / "m" / "model.safetensors"))
    save_file({k: v for k, v in weights.items() if not k.startswith(("obs_", "action_"))}, str(tmp_path / "m" / "model.safetensors"))
    assert torch.equal(StepRewardModel.load(tmp_path / "m").obs_std, torch.ones(2))


def test_chunk_transformer_reads_action_chunks(tmp_path):
    spec = StepRewardSpec(obs_dim=3, action_dim=2, chunk=4, architecture="chunk-transformer", members=2, layers=1)
    model = StepRewardModel(spec).eval()
    obs, chunks = np.zeros((5, 3), np.float32), np.random.default_rng(0).normal(size=(5, 4, 2)).astype(np.float32)
    rewards = model.reward(obs, chunks, members=True)
    assert rewards.shape == (2, 5) and np.all(np.abs(rewards) < 1)
    model.save(tmp_path / "m")
    assert np.array_equal(StepRewardModel.load(tmp_path / "m").reward(obs, chunks, members=True), rewards)
    with pytest.raises(ModelError, match="chunk"):
        StepRewardModel(StepRewardSpec(obs_dim=3, action_dim=2, architecture="chunk-transformer"))


def test_bad_steps_name_the_field():
    model = StepRewardModel(StepRewardSpec(obs_dim=3, action_dim=1)).eval()
    with pytest.raises(ModelError, match="observations: the model takes 3"):
        model.reward(np.zeros((2, 4)), np.zeros((2, 1)))
    with pytest.raises(ModelError, match="actions: the model takes actions of shape \\[1\\] per step, got \\[2\\]"):
        model.reward(np.zeros((2, 3)), np.zeros((2, 2)))
    obs = np.zeros((3, 3))
    obs[1, 2] = np.nan
    with pytest.raises(ModelError, match="observations: step 1 is NaN"):
        model.reward(obs, np.zeros((3, 1)))
    with pytest.raises(ModelError, match="trained without instructions"):
        model.reward(np.zeros((1, 3)), np.zeros((1, 1)), "reach the red target")


def test_pairs_file_round_trip_and_bad_records(tmp_path):
    rng = RNG(0)
    seg = lambda t: Segment(rng.normal(size=(t, 3)).astype(np.float32), rng.normal(size=(t, 1)).astype(np.float32))  # noqa: E731
    path = tmp_path / "pairs.jsonl"
    write_pairs(path, [(seg(4), seg(4)), (seg(4), seg(4))], np.array([1.0, 0.5]))
    pairs, labels = read_pairs(path)
    assert len(pairs) == 2 and labels.tolist() == [1.0, 0.5] and pairs[0][0].observations.shape == (4, 3)

    def bad(record: dict, message: str):
        p = tmp_path / "bad.jsonl"
        p.write_text(json.dumps(record) + "\n")
        with pytest.raises(DataError, match=message):
            read_pairs(p)

    good = {"a": seg(4).to_json(), "b": seg(4).to_json(), "label": 1}
    bad({**good, "b": seg(3).to_json()}, "record 1: segments a and b have different lengths \\(4 and 3")
    nan = seg(4).to_json()
    nan["observations"][2][0] = float("nan")
    bad({**good, "a": nan}, "record 1.a.observations: step 2 is NaN")
    bad({**good, "label": 1.5}, "record 1.label")
    bad({**good, "a": {"observations": [[0.0]]}}, "record 1.a.actions: missing")


# ------------------------------------------------------------------ learning from preferences


def linear_task(n: int, rng: np.random.Generator, instructed: bool = False):
    """Segments of 10 random steps; true step reward -x0^2 (or, instructed, +x0 / -x0 by the instruction)."""
    out = []
    for _ in range(n):
        obs = rng.normal(size=(10, 2)).astype(np.float32)
        act = rng.normal(size=(10, 1)).astype(np.float32)
        text = INSTRUCTIONS[rng.integers(2)] if instructed else None
        sign = 1.0 if text == INSTRUCTIONS[0] else -1.0
        rewards = sign * obs[:, 0] if instructed else -obs[:, 0] ** 2
        out.append(Segment(obs, act, text, rewards.astype(np.float32)))
    return out


def labelled(segments: list[Segment], rng):
    pairs = list(zip(segments[0::2], segments[1::2], strict=True))
    labels = label_pairs(TEACHERS["oracle"], np.stack([a.rewards for a, _ in pairs]),
                         np.stack([b.rewards for _, b in pairs]), 1.0, 0.0, rng)
    return pairs, labels


def held_out_accuracy(model, pairs, labels) -> float:
    data = pair_tensors(model, pairs, labels)
    with torch.no_grad():
        _, right = pair_loss(model, data, torch.arange(len(pairs)).expand(model.spec.members, -1))
    return float(right.float().mean())


def test_fit_learns_a_reward_from_oracle_preferences():
    rng = RNG(0)
    torch.manual_seed(0)
    train, test = labelled(linear_task(400, rng), rng), labelled(linear_task(200, rng), rng)
    model = StepRewardModel(StepRewardSpec(obs_dim=2, action_dim=1, hidden=32))
    before = held_out_accuracy(model, *test)
    fit = fit_preferences(model, pair_tensors(model, *train), epochs=40, lr=1e-3)
    assert model.version == 1 and fit["epochs"] <= 40
    assert held_out_accuracy(model, *test) > max(0.85, before + 0.2)
    # --label-flips reaches the loss: the flip-aware likelihood of each member's return margins
    from rewardkit.losses import flip_robust_nll

    data = pair_tensors(model, *test)
    index = torch.arange(len(data)).expand(model.spec.members, -1)
    with torch.no_grad():
        margins = model.segment_returns(data.obs[0], data.actions[0]) - model.segment_returns(data.obs[1], data.actions[1])
        flipped, _ = pair_loss(model, data, index, label_flips=0.1)
        plain, _ = pair_loss(model, data, index)
    assert flipped.item() == pytest.approx(flip_robust_nll(margins, data.labels, 0.1).mean().item(), abs=1e-6)
    assert abs(flipped.item() - plain.item()) > 1e-3
    with pytest.raises(DataError, match="label 1: must be P"):
        pair_tensors(model, train[0][:2], np.array([1.0, np.nan]))


def test_member_folds_hold_out_a_fold_per_member():
    """7 pairs, 3 members -> 5 folds (pair i in fold i mod 5); member m trains outside fold m, is checked on it."""
    train, validation = member_folds(7, 3, torch.Generator().manual_seed(0))
    assert [t.tolist() for t in train] == [[1, 2, 3, 4, 6], [0, 2, 3, 4, 5], [0, 1, 3, 4, 5, 6]]
    assert sorted(validation[0].tolist()) == [0, 5] and sorted(validation[1].tolist()) == [1, 6]
    assert validation[2].tolist() == [2, 2]  # a short fold padded by repeating its own pair


def test_held_out_stopping_keeps_the_best_pass_and_learns_fewer_wrong_labels():
    """A teacher who is wrong on 25% of the pairs: running every pass, the members learn many of the wrong answers;
    held-out stopping ends earlier, keeps the pass with the lowest loss on the held-out folds (the restored weights
    give exactly that loss) and agrees with fewer wrong labels and at least as well with the truth."""
    rng = RNG(2)
    pairs, truth = labelled(linear_task(240, rng), rng)
    noisy = np.where(rng.random(len(truth)) < 0.25, 1 - truth, truth)
    wrong = noisy != truth
    test = labelled(linear_task(200, rng), rng)
    results = {}
    for held_out in (False, True):
        torch.manual_seed(0)
        model = StepRewardModel(StepRewardSpec(obs_dim=2, action_dim=1, hidden=64))
        data = pair_tensors(model, pairs, noisy)
        fit = fit_preferences(model, data, epochs=150, lr=3e-3, stop_accuracy=2.0, held_out=held_out)
        learnt_wrong = held_out_accuracy(model, [pairs[i] for i in np.flatnonzero(wrong)], noisy[wrong])
        results[held_out] = (fit, learnt_wrong, held_out_accuracy(model, *test))
    (every, every_wrong, every_test), (stopped, stopped_wrong, stopped_test) = results[False], results[True]
    assert every["epochs"] == 150 and every["stop"] == "accuracy"
    assert stopped["stop"] == "held-out" and stopped["best_epoch"] < stopped["epochs"] < 150
    validation = member_folds(len(pairs), 3, torch.Generator().manual_seed(0))[1]
    with torch.no_grad():
        assert pair_loss(model, data, validation)[0].item() == pytest.approx(stopped["fold_loss"], abs=1e-6)
    assert stopped_wrong < every_wrong and stopped_test >= every_test


def test_instruction_is_what_tells_the_tasks_apart():
    """The instruction flips the sign of the true reward: a model that reads it learns the task; one that does
    not is near chance."""
    rng = RNG(1)
    train, test = labelled(linear_task(600, rng, True), rng), labelled(linear_task(200, rng, True), rng)
    scores = {}
    for instructed in (True, False):
        torch.manual_seed(0)
        model = StepRewardModel(StepRewardSpec(obs_dim=2, action_dim=1, hidden=32, instructed=instructed))
        strip = (lambda p: p) if instructed else (lambda p: [(Segment(a.observations, a.actions), Segment(b.observations, b.actions)) for a, b in p])
        fit_preferences(model, pair_tensors(model, strip(train[0]), train[1]), epochs=60, lr=1e-3, stop_accuracy=2.0)
        scores[instructed] = held_out_accuracy(model, strip(test[0]), test[1])
    assert scores[True] > 0.85 and scores[False] < 0.7


# ------------------------------------------------------------------ environments and the loop


def test_vec_wrapper_gives_the_model_reward_and_records_episodes():
    from stable_baselines3.common.vec_env import DummyVecEnv

    model = StepRewardModel(StepRewardSpec(obs_dim=3, action_dim=1, hidden=16)).eval()
    venv = LearnedRewardVecEnv(DummyVecEnv([lambda: gym.make("Pendulum-v1")] * 2), model)
    venv.seed(0)
    obs = venv.reset()
    rng = RNG(0)
    for _ in range(200):
        actions = rng.uniform(-2, 2, (2, 1)).astype(np.float32)
        new_obs, rewards, dones, infos = venv.step(actions)
        assert np.allclose(rewards, model.reward(obs, actions), atol=1e-5)
        assert all("true_reward" in info for info in infos)
        obs = new_obs
    assert len(venv.episodes) == 2 and venv.episodes[0].observations.shape == (200, 3)
    assert venv.true_returns[0] == pytest.approx(float(venv.episodes[0].rewards.sum()), rel=1e-5)

    single = LearnedReward(gym.make("Pendulum-v1"), model)
    obs, _ = single.reset(seed=0)
    _, reward, *_, info = single.step(np.array([0.5], np.float32))
    assert reward == pytest.approx(float(model.reward(obs, np.array([0.5]))), abs=1e-6) and "true_reward" in info


def test_episodes_of_different_lengths_are_recorded_step_for_step():
    from stable_baselines3.common.vec_env import DummyVecEnv

    model = StepRewardModel(StepRewardSpec(obs_dim=3, action_dim=1, hidden=16)).eval()
    lengths = (50, 70)
    venv = LearnedRewardVecEnv(DummyVecEnv([lambda n=n: gym.make("Pendulum-v1", max_episode_steps=n)
                                            for n in lengths]), model)
    venv.seed(0)
    obs = venv.reset()
    rng = RNG(1)
    seen: list[list] = [[], []]   # each environment's (observation, action, true reward) since its episode began
    expected = []
    for _ in range(1120):  # past the recorder's first trim of finished steps (at 1000)
        actions = rng.uniform(-2, 2, (2, 1)).astype(np.float32)
        new_obs, _, dones, infos = venv.step(actions)
        for i in range(2):
            seen[i].append((obs[i], actions[i], infos[i]["true_reward"]))
            if dones[i]:
                expected.append(seen[i])
                seen[i] = []
        obs = new_obs
    assert [len(e.rewards) for e in venv.episodes] == [len(e) for e in expected]
    assert len(expected) == 1120 // 50 + 1120 // 70
    for episode, steps in zip(venv.episodes, expected, strict=True):
        assert np.allclose(episode.observations, np.stack([s[0] for s in steps]))
        assert np.allclose(episode.actions, np.stack([s[1] for s in steps]))
        assert np.allclose(episode.rewards, [s[2] for s in steps])
    assert venv.true_returns == pytest.approx([sum(s[2] for s in steps) for steps in expected], rel=1e-5)
    assert len(venv.recorder._steps) < 1120
    venv.reset()  # unfinished episodes are dropped, finished ones kept
    venv.step(rng.uniform(-2, 2, (2, 1)).astype(np.float32))
    assert len(venv.episodes) == len(expected) and len(venv.recorder._steps) == 1


def test_instructed_reach_rewards_the_instructed_target():
    env = InstructedReach()
    obs, info = env.reset(seed=3)
    assert info["instruction"] in INSTRUCTIONS and obs.shape == (6,)
    goal = INSTRUCTIONS.index(info["instruction"])
    assert obs[4 + goal] == 1.0
    towards = np.sign(np.array([-0.6, 0.6]) if goal == 0 else np.array([0.6, 0.6])).astype(np.float32)
    rewards = [env.step(towards)[1] for _ in range(5)]
    assert rewards[-1] > rewards[0]


def test_relabelled_replay_buffer_holds_the_learned_reward():
    from stable_baselines3 import SAC

    from rewardkit.control.loop import relabel_replay_buffer

    model = StepRewardModel(StepRewardSpec(obs_dim=3, action_dim=1, hidden=16)).eval()
    sac = SAC("MlpPolicy", gym.make("Pendulum-v1"), learning_starts=300, seed=0, device="cpu")
    sac.learn(250)
    relabel_replay_buffer(sac, model, instructed=False)
    buffer = sac.replay_buffer
    env_actions = buffer.actions[:250, 0] * 2.0  # Pendulum's torque is in [-2, 2]; the buffer keeps [-1, 1]
    assert np.allclose(buffer.rewards[:250, 0], model.reward(buffer.observations[:250, 0], env_actions), atol=1e-5)


def test_epic_distance_ignores_scale_and_shaping():
    from rewardkit.control.quality import collect_episodes, epic_distance, pendulum_reward

    episodes = collect_episodes("Pendulum-v1", None, 2, seed=0)
    space = gym.make("Pendulum-v1").action_space
    scaled = lambda o, a, t: 3.0 * pendulum_reward(o, a) + 5.0  # noqa: E731
    assert epic_distance(pendulum_reward, pendulum_reward, episodes, space, RNG(0)) == pytest.approx(0, abs=1e-6)
    assert epic_distance(scaled, pendulum_reward, episodes, space, RNG(0)) == pytest.approx(0, abs=1e-6)
    opposite = lambda o, a, t: -pendulum_reward(o, a)  # noqa: E731
    assert epic_distance(opposite, pendulum_reward, episodes, space, RNG(0)) == pytest.approx(1, abs=1e-6)


def test_control_run_end_to_end(tmp_path, capsys):
    from rewardkit.cli import main
    from rewardkit.control.policy import load_policy

    out = tmp_path / "run"
    code = main(["control", "run", "--steps", "700", "--warmup", "300", "--queries", "6", "--rounds", "2",
                 "--segment", "20", "--hidden", "16", "--eval-episodes", "1", "--output", str(out), "--no-progress"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["labelled"] == 6 and set(summary["held_out"]) >= {"pearson", "spearman", "epic"}
    assert len(json.loads((out / "curve.json").read_text())) == 2 and (out / "curve.png").stat().st_size > 0
    pairs, labels = read_pairs(out / "queries.jsonl")
    assert len(pairs) == 6 and pairs[0][0].observations.shape == (20, 3)
    policy = load_policy(out / "policy")
    assert policy.predict(np.zeros(3, np.float32), deterministic=True)[0].shape == (1,)
    assert not (tmp_path / "run.partial").exists()
    assert main(["control", "fit", str(out / "queries.jsonl"), "--output", str(tmp_path / "fit"), "--epochs", "2",
                 "--hidden", "8"]) == 0
    assert StepRewardModel.load(tmp_path / "fit").spec.hidden == 8


def test_control_run_refuses_bad_settings(capsys):
    from rewardkit.cli import main

    assert main(["control", "run", "--queries", "3", "--rounds", "5", "--output", "/nonexistent/x"]) == 2
    assert "at least one query per round" in capsys.readouterr().err
    assert main(["control", "run", "--label-flips", "0.5", "--output", "/nonexistent/x"]) == 2
    assert "--label-flips must be in [0, 0.5)" in capsys.readouterr().err


def test_served_step_rewards_equal_the_model_and_refuse_bad_steps():
    pytest.importorskip("fastapi")
    import httpx

    from rewardkit.serve.app import ServeConfig, create_app
    from rewardkit.serve.background import BackgroundServer

    model = StepRewardModel(StepRewardSpec(obs_dim=3, action_dim=1, hidden=16)).eval()
    obs, actions = np.random.default_rng(0).normal(size=(2, 5, 3)), np.random.default_rng(1).normal(size=(5, 1))
    with BackgroundServer(create_app(model, ServeConfig(model="test"))) as server:
        ok = httpx.post(f"{server.url}/v1/step_rewards", json={"observations": obs[0].tolist(), "actions": actions.tolist()})
        assert ok.status_code == 200
        body = ok.json()
        assert np.allclose(body["rewards"], model.reward(obs[0], actions), atol=1e-6) and len(body["uncertainty"]) == 5
        bad = httpx.post(f"{server.url}/v1/step_rewards", json={"observations": [[0, 0]], "actions": [[0]]})
        assert bad.status_code == 422 and "observations: the model takes 3" in bad.json()["error"]
        nan = httpx.post(f"{server.url}/v1/step_rewards", content='{"observations": [[0, 0, NaN]], "actions": [[0]]}')
        assert nan.status_code == 422 and "step 0 is NaN" in nan.json()["error"]
        assert httpx.post(f"{server.url}/v1/score", json={"inputs": []}).status_code == 404


def test_frames_through_a_small_cnn(tmp_path):
    """The true step reward is a frame's brightness (the state says nothing): the model learns it from frames."""
    rng = RNG(2)

    def segment():
        brightness = rng.uniform(0, 1, 6).astype(np.float32)
        frames = (brightness[:, None, None, None] * np.ones((6, 1, 12, 12), np.float32)
                  + 0.05 * rng.normal(size=(6, 1, 12, 12)).astype(np.float32))
        return Segment(np.zeros((6, 2), np.float32), np.zeros((6, 1), np.float32), None, brightness, frames)

    train, test = labelled([segment() for _ in range(300)], rng), labelled([segment() for _ in range(100)], rng)
    torch.manual_seed(0)
    model = StepRewardModel(StepRewardSpec(obs_dim=2, action_dim=1, hidden=16, members=2, frame_shape=[1, 12, 12]))
    fit_preferences(model, pair_tensors(model, *train), epochs=30, lr=1e-3)
    assert held_out_accuracy(model, *test) > 0.8
    assert model.numpy_mlp() is None  # frames need the CNN: the env-loop fast path does not apply
    write_pairs(tmp_path / "p.jsonl", test[0][:2], test[1][:2])
    pairs, _ = read_pairs(tmp_path / "p.jsonl")
    assert pairs[0][0].frames.shape == (6, 1, 12, 12)
    model.save(tmp_path / "m")
    frames = pairs[0][0].frames
    assert np.allclose(StepRewardModel.load(tmp_path / "m").reward(np.zeros((6, 2)), np.zeros((6, 1)), frames=frames),
                       model.reward(np.zeros((6, 2)), np.zeros((6, 1)), frames=frames))
    with pytest.raises(ModelError, match="frames: the model needs a frame"):
        model.reward(np.zeros((6, 2)), np.zeros((6, 1)))
    with pytest.raises(DataError, match="frames: the model takes frames of shape \\[1, 12, 12\\]"):
        model.score_segments([Segment(np.zeros((6, 2), np.float32), np.zeros((6, 1), np.float32), None, None,
                                      np.zeros((6, 1, 8, 8), np.float32))])
    with pytest.raises(ModelError, match="state observations only"):
        LearnedReward(gym.make("Pendulum-v1"), model)


def test_ratings_and_success_labels_become_pairs(tmp_path):
    rng = RNG(3)
    seg = lambda t: Segment(rng.normal(size=(t, 2)).astype(np.float32), rng.normal(size=(t, 1)).astype(np.float32))  # noqa: E731
    s1, s2, s3, short = seg(4), seg(4), seg(4), seg(3)
    lines = [{"segment": s1.to_json(), "rating": 3}, {"segment": s2.to_json(), "rating": 5},
             {"segment": s3.to_json(), "rating": 3}, {"segment": short.to_json(), "rating": 1},
             {"segment": s1.to_json(), "success": True}, {"segment": s2.to_json(), "success": False},
             {"a": s3.to_json(), "b": s1.to_json(), "label": 0.5}]
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    pairs, labels = read_pairs(path)
    # the pair as given; ratings: s2 over s1, s2 over s3 (s1 = s3 tie, the short one has no partner); success: s1 over s2
    firsts = [(round(float(a.observations[0, 0]), 4), round(float(b.observations[0, 0]), 4)) for a, b in pairs]
    key = lambda s: round(float(s.observations[0, 0]), 4)  # noqa: E731
    assert firsts == [(key(s3), key(s1)), (key(s2), key(s1)), (key(s2), key(s3)), (key(s1), key(s2))]
    assert labels.tolist() == [0.5, 1.0, 1.0, 1.0]
    path.write_text(json.dumps({"segment": s1.to_json(), "success": "yes"}) + "\n")
    with pytest.raises(DataError, match="record 1: a record with a segment needs a rating"):
        read_pairs(path)


def test_instruction_centre_is_set_once_and_saved(tmp_path):
    model = StepRewardModel(StepRewardSpec(obs_dim=2, action_dim=1, hidden=8, instructed=True))
    before = model.embed_instructions(list(INSTRUCTIONS))
    assert torch.nn.functional.cosine_similarity(before[0], before[1], dim=0) > 0.5  # raw MiniLM: mostly shared
    model.center_instructions(list(INSTRUCTIONS))
    after = model.embed_instructions(list(INSTRUCTIONS))
    assert torch.nn.functional.cosine_similarity(after[0], after[1], dim=0) < -0.99  # two instructions: opposite
    centre = model.instruction_center.clone()
    model.center_instructions(["something else", "and another"])  # fixed once
    assert torch.equal(model.instruction_center, centre)
    model.save(tmp_path / "m")
    assert torch.equal(StepRewardModel.load(tmp_path / "m").instruction_center, centre)


def test_control_run_on_the_language_task_without_the_instruction(tmp_path):
    """A state-only reward model on an environment that gives instructions: it reads neither the instruction nor
    the policy's one-hot copy of it, and the held-out quality is measured without the instruction."""
    from rewardkit.cli import main

    out = tmp_path / "run"
    assert main(["control", "run", "--env", "rewardkit/InstructedReach-v0", "--steps", "500", "--warmup", "300",
                 "--queries", "4", "--rounds", "2", "--segment", "20", "--hidden", "8", "--eval-episodes", "1",
                 "--output", str(out), "--no-progress"]) == 0
    assert StepRewardModel.load(out / "reward").spec.obs_dim == 4
    assert "preference_accuracy" in json.loads((out / "summary.json").read_text())["held_out"]


def test_the_true_reward_reference_trains_the_same_algorithm_on_the_environment_reward():
    from rewardkit.control.loop import train_on_true_reward
    from rewardkit.control.settings import LoopSettings

    agent = train_on_true_reward(LoopSettings(env="Pendulum-v1", steps=60, warmup=20, seed=3))
    assert type(agent).__name__ == "SAC" and agent.num_timesteps == 60 and agent.learning_starts == 20
    assert agent.seed == 3 and agent.env.num_envs == 1
