"""Process reward models: a reward per step from one pass, step visibility, the step loss and its options, soft
labels, truncation that counts what it drops, scoring, and the bad inputs of stepwise records."""

from __future__ import annotations

import math

import pytest
import torch

import rewardkit as rk
from rewardkit import losses
from rewardkit.data.io import write_records
from rewardkit.data.kinds.stepwise import after_first_error, counted_steps
from rewardkit.data.records import normalize_record
from rewardkit.data.synth import generate
from rewardkit.data.texts import Steps
from rewardkit.errors import DataError
from rewardkit.model.reward_model import RewardModel
from rewardkit.model.scoring import score
from rewardkit.model.steps import aggregate_steps

PROMPT = "Tom has 3 apples and buys 4 more. He gives 2 away. How many are left?"
STEPS = ["Tom starts with 3 apples.", "He buys 4, so 3 + 4 = 7.", "He gives 2 away: 7 - 2 = 5.", "The answer is 5."]
TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} [SEP] {% endfor %}"
            "{% if add_generation_prompt %}<|assistant|> {% endif %}")


def build(path, template=False, max_length=96) -> RewardModel:
    torch.manual_seed(0)
    model = RewardModel.build(str(path), max_length=max_length).eval()
    if template:
        model.tokenizer.chat_template = TEMPLATE
        model.encoder.use_template = True
    return model


def step_scores(model, prompt, steps, **kw) -> list[float]:
    return score(model, [(prompt, Steps(steps))], **kw).steps[0]


def test_step_bce_hand_values_with_soft_labels_and_a_mask():
    rewards, labels = torch.tensor([[2.0, -1.0, 0.5]]), torch.tensor([[1.0, 0.3, 0.0]])
    mask = torch.tensor([[True, True, False]])
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    expected = (-math.log(sig(2.0)) - (0.3 * math.log(sig(-1.0)) + 0.7 * math.log(1 - sig(-1.0)))) / 2
    assert losses.step_bce(rewards, labels, mask).item() == pytest.approx(expected, abs=1e-6)


def test_which_steps_count_after_the_first_error_and_for_the_last_step_only():
    labels = torch.tensor([[1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 0.2, math.nan]])
    valid = torch.tensor([[True] * 4, [True, True, True, False]])
    assert after_first_error(labels, valid).tolist() == [[False, False, True, True], [False, False, False, False]]
    assert counted_steps(labels, valid, False, "ignore").tolist() == [[True, True, False, False], [True, True, True, False]]
    assert counted_steps(labels, valid, True, "as-labelled").tolist() == [[False, False, False, True], [False, False, True, False]]


def test_step_aggregates_hand_values():
    rewards, mask = torch.tensor([[1.0, -2.0, 3.0], [0.5, 4.0, 0.0]]), torch.tensor([[True, True, True], [True, True, False]])
    assert aggregate_steps(rewards, mask, "min").tolist() == [-2.0, 0.5]
    assert aggregate_steps(rewards, mask, "last").tolist() == [3.0, 4.0]
    assert aggregate_steps(rewards, mask, "mean").tolist() == pytest.approx([2 / 3, 2.25])
    product = math.log(1 / (1 + math.exp(-0.5))) + math.log(1 / (1 + math.exp(-4.0)))
    assert aggregate_steps(rewards, mask, "product")[1].item() == pytest.approx(product, abs=1e-6)


@pytest.mark.parametrize("template", [False, True])
def test_decoder_one_pass_equals_scoring_each_prefix_alone(tiny_llama, template):
    model = build(tiny_llama, template)
    one_pass = step_scores(model, PROMPT, STEPS)
    for j in range(len(STEPS)):  # the prefix's last step reward is its reward at step j
        assert step_scores(model, PROMPT, STEPS[: j + 1])[-1] == pytest.approx(one_pass[j], abs=1e-5)


@pytest.mark.parametrize("backbone", ["tiny_bert_no_dropout", "tiny_llama"])
def test_a_later_step_never_changes_an_earlier_steps_reward(backbone, request):
    model = build(request.getfixturevalue(backbone))
    before = step_scores(model, PROMPT, STEPS)
    after = step_scores(model, PROMPT, STEPS[:2] + ["He gives 2 away: 7 - 2 = 9, which is a lot of apples.", "It is 9."])
    assert after[:2] == pytest.approx(before[:2], abs=1e-5)
    assert after[2] != pytest.approx(before[2], abs=1e-4)


@pytest.mark.parametrize("backbone", ["tiny_bert_no_dropout", "tiny_llama"])
def test_left_and_right_padding_and_batching_give_the_same_step_scores(backbone, request):
    model = build(request.getfixturevalue(backbone))
    items = [(PROMPT, Steps(STEPS)), ("Short?", Steps(["Yes."])), (PROMPT, Steps(STEPS[:2]))]
    alone = [score(model, [item]).steps[0] for item in items]
    batched = score(model, items, batch_size=3)
    for a, b in zip(alone, batched.steps, strict=True):
        assert a == pytest.approx(b, abs=1e-5)
    from rewardkit.model.batching import model_inputs
    encoded = [model.encoder.encode_steps(p, s) for p, s in items]
    right = model(model_inputs(model, encoded, padding_side="right"))
    left = model(model_inputs(model, encoded, padding_side="left"))
    assert torch.allclose(left, right, atol=1e-5)


def test_truncation_drops_whole_trailing_steps_and_counts_them(tiny_llama):
    model = build(tiny_llama, max_length=40)
    record = {"prompt": PROMPT, "steps": STEPS * 3, "labels": [True] * 12}
    scored = rk.score_records(model, [record])[0]
    kept = [s for s in scored["step_scores"] if s is not None]
    assert 0 < len(kept) < 12 and scored["steps_dropped"] == 12 - len(kept)
    assert scored["step_scores"][len(kept):] == [None] * (12 - len(kept))


def test_stepwise_loss_in_the_trainer_is_the_pure_step_loss(tiny_llama):
    from types import SimpleNamespace

    from rewardkit.train.examples import collate, prepare_examples
    from rewardkit.train.objectives import batch_loss

    model = build(tiny_llama)
    records = [normalize_record({"prompt": PROMPT, "steps": STEPS, "labels": [1, 1, 0.25, 0]}),
               normalize_record({"prompt": "Short?", "steps": ["Yes.", "No."], "labels": [True, False]})]
    batch = collate(prepare_examples(records, model).examples, model)
    options = SimpleNamespace(mix_weights={}, l2_weight=0.0, last_step_only=False, after_first_error="as-labelled")
    loss, metrics, rewards = batch_loss(model, batch, {"stepwise": "step-bce"}, options)
    grouped = rewards[batch["index"]]
    assert loss.item() == pytest.approx(losses.step_bce(grouped, batch["labels"], batch["valid"]).item(), abs=1e-6)
    assert metrics["steps"] == 6 and batch["labels"][0, 2].item() == 0.25  # a soft label stays soft


def test_a_process_reward_model_trains_saves_loads_and_scores_steps(tiny_llama, tmp_path):
    write_records(tmp_path / "steps.jsonl", generate("arithmetic", 48, 0, "train", "stepwise")
                  + generate("mix", 16, 0, "train"))  # stepwise records mixed with pairs in one run
    summary = rk.train_model(rk.TrainConfig(train=str(tmp_path / "steps.jsonl"), output=str(tmp_path / "prm"),
                                            backbone=str(tiny_llama), init="random", max_length=96, batch_size=8,
                                            lr=1e-3, step_aggregate="last", progress=False))
    assert summary["objectives"] == {"pairwise": "bt", "stepwise": "step-bce"}
    assert "step_accuracy" in summary["eval"]
    model = rk.load_model(tmp_path / "prm")
    assert model.spec.step_aggregate == "last"
    result = score(model, [(PROMPT, Steps(STEPS))])
    assert result.values[0] == pytest.approx(result.steps[0][-1], abs=1e-6)  # 'last' aggregate


@pytest.mark.parametrize("record, field", [
    ({"prompt": "p", "steps": ["a", "b"], "labels": [True]}, "labels"),
    ({"prompt": "p", "steps": ["a", "  "], "labels": [True, True]}, "steps"),
    ({"prompt": "p", "steps": ["a"], "labels": [1.5]}, "labels"),
    ({"prompt": "p", "steps": ["a"], "labels": [True], "first_error": 3}, "first_error"),
])
def test_bad_stepwise_records_name_the_field(record, field):
    with pytest.raises(DataError) as err:
        normalize_record(record, source="steps.jsonl", line=7)
    assert err.value.field == field and "steps.jsonl: line 7" in str(err.value)


def test_a_separator_inside_a_step_is_text_of_that_step(tiny_llama):
    model = build(tiny_llama)
    encoded = model.encoder.encode_steps(PROMPT, ["first line\nsecond line", "next"])
    assert len(encoded.ends) == 2  # steps are tokenised one by one: a newline inside a step ends nothing


def test_server_scores_steps_like_the_library(tiny_llama):
    import httpx

    from rewardkit.serve.app import ServeConfig, create_app
    from rewardkit.serve.background import BackgroundServer

    model = build(tiny_llama)
    expected = rk.score_steps(model, [(PROMPT, STEPS), ("Short?", ["Yes."])])
    inputs = [{"prompt": PROMPT, "steps": STEPS}, {"prompt": "Short?", "steps": ["Yes."]}]
    with BackgroundServer(create_app(model, ServeConfig(model="prm"))) as server:
        body = httpx.post(server.url + "/v1/steps", json={"inputs": inputs}, timeout=60).json()
        bad = httpx.post(server.url + "/v1/steps", json={"inputs": [{"prompt": "p", "steps": ["a", ""]}]}, timeout=60)
    assert body["step_scores"][0] == pytest.approx(expected.steps[0], abs=1e-5)
    assert body["scores"] == pytest.approx(expected.values, abs=1e-5) and body["aggregate"] == "min"
    assert bad.status_code == 422 and "inputs[0].steps[1]" in bad.json()["error"]


def test_rl_adapters_return_process_rewards_locally_and_through_the_server(tiny_llama, tmp_path, monkeypatch):
    from rewardkit.data.texts import text_steps
    from rewardkit.serve.adapters import TRLReward, compute_score, openrlhf_reward
    from rewardkit.serve.app import ServeConfig, create_app
    from rewardkit.serve.background import BackgroundServer

    model = build(tiny_llama)
    model.save(tmp_path / "prm")
    completion = "\n".join(STEPS) + "\n"
    assert text_steps(completion) == STEPS and text_steps("") == [" "]
    expected = rk.score_steps(rk.load_model(tmp_path / "prm"), [(PROMPT, STEPS)])
    local = TRLReward(str(tmp_path / "prm"), process=True)
    assert local([PROMPT], [completion]) == pytest.approx(expected.values, abs=1e-5)
    probs = [1 / (1 + math.exp(-x)) for x in expected.steps[0]]
    weak = next((float(j) for j, p in enumerate(probs) if p < 0.5), -1.0)
    with BackgroundServer(create_app(rk.load_model(tmp_path / "prm"), ServeConfig(model="prm"))) as server:
        remote = TRLReward(server.url, process=True)
        assert remote([PROMPT], [completion]) == pytest.approx(expected.values, abs=1e-5)
        for target in (server.url, str(tmp_path / "prm")):  # OpenRLHF: one number per sample, steps as statistics
            out = openrlhf_reward([PROMPT + completion], [PROMPT], None, target, step_separator="\n")
            assert out["rewards"].tolist() == pytest.approx(expected.values, abs=1e-5)
            assert out["scores"].tolist() == pytest.approx([min(probs)], abs=1e-5)  # sigmoid of the min aggregate
            logs = {k: v.tolist() for k, v in out["extra_logs"].items()}
            assert logs["steps"] == [4.0] and logs["first_weak_step"] == [weak]
            assert logs["lowest_step_probability"] == pytest.approx([min(probs)], abs=1e-5)
    monkeypatch.setenv("REWARDKIT_MODEL", str(tmp_path / "prm"))
    out = compute_score("math", completion, extra_info={"prompt": PROMPT}, process=True)
    assert out["score"] == pytest.approx(expected.values[0], abs=1e-5)  # verl: numbers only, stacked over the batch
    assert out["steps"] == 4.0 and out["first_weak_step"] == weak
    assert out["lowest_step_probability"] == pytest.approx(min(probs), abs=1e-5)


def test_arithmetic_candidates_have_one_right_solution_per_prompt_and_known_first_errors():
    from rewardkit.data.synth import arithmetic_candidates

    records = [normalize_record(r) for r in arithmetic_candidates(20, seed=3, k=4)]
    by_prompt: dict[str, list[dict]] = {}
    for r in records:
        by_prompt.setdefault(r["prompt"], []).append(r)
    assert len(by_prompt) == 20 and all(len(group) == 4 for group in by_prompt.values())
    assert all(sum(all(r["labels"]) for r in group) == 1 for group in by_prompt.values())
    for r in records:
        first = r["first_error"]
        assert r["labels"] == [first == -1 or i < first for i in range(len(r["steps"]))]


def byte_level_tokenizer():
    """A small byte-level BPE tokenizer trained here on the test's own text (a policy's tokenizer keeps newlines,
    which the bundled MiniLM WordPiece one does not)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<eos>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator([PROMPT, *STEPS] * 20, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<eos>", pad_token="<eos>")


def test_process_rewards_land_on_the_last_token_of_each_step(tiny_llama, tmp_path):
    from rewardkit.serve.adapters import RewardBackend, process_token_rewards, step_token_ends

    tokenizer = byte_level_tokenizer()
    ids = tokenizer("\n".join(STEPS) + "\n")["input_ids"]
    steps, ends = step_token_ends(tokenizer, ids)
    assert steps == STEPS and ends == sorted(ends) and ends[-1] < len(ids)
    for step, end in zip(STEPS, ends, strict=True):  # the step's text is complete at its end token, not before
        assert tokenizer.decode(ids[: end + 1]).rstrip("\n").endswith(step)
        assert not tokenizer.decode(ids[:end]).rstrip("\n").endswith(step)
    assert step_token_ends(tokenizer, tokenizer("\n\n")["input_ids"])[1] == [1]  # no text: one step at the end

    build(tiny_llama).save(tmp_path / "prm")
    backend = RewardBackend(str(tmp_path / "prm"))
    short = tokenizer("\n".join(STEPS[:2]))["input_ids"]
    width = len(ids) + 2
    eos = tokenizer.eos_token_id
    responses = torch.tensor([ids + [eos] * 2, [eos] * (width - len(short)) + short])  # right, then left padded
    mask = torch.tensor([[1] * len(ids) + [0, 0], [0] * (width - len(short)) + [1] * len(short)], dtype=torch.bool)
    rewards = process_token_rewards(backend, tokenizer, [PROMPT, PROMPT], responses, mask)
    expected = rk.score_steps(rk.load_model(tmp_path / "prm"), [(PROMPT, STEPS), (PROMPT, STEPS[:2])]).steps
    assert rewards[0, ends].tolist() == pytest.approx(expected[0], abs=1e-5)
    left_ends = [width - len(short) + e for e in step_token_ends(tokenizer, short)[1]]
    assert rewards[1, left_ends].tolist() == pytest.approx(expected[1], abs=1e-5)
    assert (rewards != 0).sum() == 6  # nothing anywhere else


def test_the_verl_reward_manager_puts_step_rewards_at_step_ends(tiny_llama, tmp_path, monkeypatch):
    """rewardkit/serve/verl_process_rewards.py on verl 0.9.1's own RewardManagerBase (read from the wheel; the
    modules it imports for distributed runs are placeholders, as in tests/test_rl.py), with a batch laid out as
    verl lays it out: left-padded prompts, right-padded responses, one attention mask over both."""
    import asyncio
    import importlib.util
    import sys
    import types
    from pathlib import Path

    import numpy as np

    from rewardkit.serve.adapters import step_token_ends
    from tests.test_rl import framework_package, placeholders

    base_file = framework_package("verl", "0.9.1") / "experimental" / "reward_loop" / "reward_manager" / "base.py"
    build(tiny_llama).save(tmp_path / "prm")
    monkeypatch.setenv("REWARDKIT_MODEL", str(tmp_path / "prm"))
    tokenizer = byte_level_tokenizer()
    with placeholders("verl", "verl.utils", "verl.utils.ray_utils") as patch:
        def load(name: str, path):
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            patch.setitem(sys.modules, name, module)
            spec.loader.exec_module(module)
            return module

        load("verl.experimental.reward_loop.reward_manager.base", base_file)
        manager_module = load("rewardkit_verl_process_rewards", Path(rk.__file__).parent / "serve" / "verl_process_rewards.py")
        manager = manager_module.ProcessRewardManager(config=None, tokenizer=tokenizer, compute_score=None)
    manager.loop = asyncio.new_event_loop()  # what verl's get_event_loop gives outside a running loop
    prompt = tokenizer(PROMPT)["input_ids"]
    texts = ["\n".join(STEPS), "\n".join(STEPS[:3])]
    answers = [tokenizer(t)["input_ids"] for t in texts]
    R, eos = max(map(len, answers)) + 3, tokenizer.eos_token_id
    prompts = torch.tensor([[eos] * 2 + prompt] * 2)
    responses = torch.tensor([a + [eos] * (R - len(a)) for a in answers])
    attention = torch.tensor([[0, 0] + [1] * len(prompt) + [1] * len(a) + [0] * (R - len(a)) for a in answers])
    data = types.SimpleNamespace(batch={"prompts": prompts, "responses": responses, "attention_mask": attention},
                                 non_tensor_batch={"extra_info": np.array([{"prompt": PROMPT}] * 2, dtype=object)})
    rm_scores = manager_module.ProcessRewardManager.assemble_rm_scores(data, [0.0, 0.0])
    assert rm_scores.shape == (2, R)
    expected = rk.score_steps(rk.load_model(tmp_path / "prm"), [(PROMPT, STEPS), (PROMPT, STEPS[:3])])
    for row, (answer, steps) in enumerate(zip(answers, expected.steps, strict=True)):
        _, ends = step_token_ends(tokenizer, answer)
        assert rm_scores[row, ends].tolist() == pytest.approx(steps, abs=1e-5) and (rm_scores[row] != 0).sum() == len(steps)
    single = types.SimpleNamespace(batch={k: v[1:] for k, v in data.batch.items()},
                                   non_tensor_batch={"extra_info": data.non_tensor_batch["extra_info"][1:]})
    out = manager.loop.run_until_complete(manager.run_single(single))
    assert out["reward_score"] == pytest.approx(expected.values[1], abs=1e-5) and out["reward_extra_info"]["steps"] == 3.0
    manager.loop.close()
