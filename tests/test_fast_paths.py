"""Speed techniques give the same numbers as the plain padded path: packing (left- and right-padded
references, every pooling), shared-prompt prefixes with multi-turn prompts, a prompt computed once for its
best-of-N candidates (a key/value cache), packed solutions whose prompt is shared (step rewards and training
gradients), bf16 within its tolerance, token-capped training chunks, and length-capped batches."""

from __future__ import annotations

import shutil

import pytest
import torch

from rewardkit.data.texts import Steps
from rewardkit.model.batching import length_batches
from rewardkit.model.packing import pack, plain_groups, shared_prefix_groups
from rewardkit.model.precision import compile_for_inference
from rewardkit.model.reward_model import RewardModel
from rewardkit.model.scoring import score

ITEMS = [("What is two plus two?", "four"), ("Say hello to the world, please.", "hello world, nice to meet you all"),
         ("", "an answer without a prompt"), ("Name a colour.", "blue"), ("Why is the sky blue?", "Rayleigh scattering " * 6)]
MULTI_TURN = [{"role": "user", "content": "Hi, can you help me with maths?"},
              {"role": "assistant", "content": "Of course. What is the problem?"},
              {"role": "user", "content": "What is 12 times 11?"}]
TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} [SEP] {% endfor %}"
            "{% if add_generation_prompt %}<|assistant|> {% endif %}")


def build(path, pooling=None, template=False) -> RewardModel:
    torch.manual_seed(0)
    model = RewardModel.build(str(path), max_length=64, pooling=pooling).eval()
    if template:
        model.tokenizer.chat_template = TEMPLATE
        model.encoder.use_template = True
    return model


@pytest.mark.parametrize("pooling", ["pooler", "mean", "first", "last"])
@pytest.mark.parametrize("side", ["right", "left"])
def test_packed_scores_equal_padded_scores_encoder(tiny_bert_no_dropout, pooling, side):
    model = build(tiny_bert_no_dropout, pooling)
    encoded = [model.encoder.encode(p, r) for p, r in ITEMS]
    with torch.no_grad():
        padded = model.score(model.encoder.collate(encoded, side))
        packed_batch = pack(plain_groups(encoded), model.tokenizer.pad_token_id, causal=False, row_tokens=48)
        packed = model.score(packed_batch)
    assert packed_batch["input_ids"].numel() < sum(len(e.input_ids) for e in encoded) + 48  # rows hold several sequences
    assert torch.allclose(padded, packed, atol=1e-5)


@pytest.mark.parametrize("pooling", ["last", "mean"])
@pytest.mark.parametrize("side", ["right", "left"])
def test_packed_scores_equal_padded_scores_decoder(tiny_llama, pooling, side):
    model = build(tiny_llama, pooling)
    encoded = [model.encoder.encode(p, r) for p, r in ITEMS]
    with torch.no_grad():
        padded = model.score(model.encoder.collate(encoded, side))
        packed = model.score(pack(plain_groups(encoded), model.tokenizer.pad_token_id, causal=True, row_tokens=48))
    assert torch.allclose(padded, packed, atol=1e-5)


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_prefix_sharing_equals_separate_sequences_with_multi_turn_prompts(tiny_llama, pooling):
    model = build(tiny_llama, pooling, template=True)
    responses = ["132.", "It is 121, since 11 times 11 is 121.", "I am not sure."]
    group = model.encoder.encode_group(MULTI_TURN, responses)
    other = model.encoder.encode_group("Another prompt", ["yes", "no"])
    sequences = group + other
    with torch.no_grad():
        separate = model.score(model.encoder.collate(sequences))
        groups = shared_prefix_groups(sequences, [3, 2])
        shared = model.score(pack(groups, model.tokenizer.pad_token_id, causal=True, row_tokens=64))
    assert len(groups[0][0].prefix) > 10  # the multi-turn prompt is computed once
    assert torch.allclose(separate, shared, atol=1e-5)


@pytest.mark.parametrize("template", [False, True])
def test_a_prompt_computed_once_scores_its_candidates_as_separate_sequences(tiny_llama, template):
    model = build(tiny_llama, "last", template)
    with torch.no_grad():
        model.head.weight.normal_()  # rewards of a few units, so a misread position shows
    candidates = [f"answer {i}: " + "and more " * (i % 4) for i in range(7)]
    items = ([(MULTI_TURN if template else "What is 12 times 11?", c) for c in candidates]
             + [("A lone prompt.", "alone")] + [("Pair?", "yes"), ("Pair?", "no, not at all")])
    plain = score(model, items, batch_size=4)
    shared = score(model, items, batch_size=3, share_prompts=True)  # a group of 7 in chunks of 3; groups of 1, 2
    assert shared.values == pytest.approx(plain.values, abs=1e-5)
    assert max(abs(v) for v in plain.values) > 0.1


def test_prompt_sharing_leaves_encoders_and_other_poolings_to_the_plain_path(tiny_bert_no_dropout, tiny_llama):
    from rewardkit.model.shared_prompt import can_share_prompts, prompt_groups

    assert prompt_groups(["a", "a", "b", "a"]) == [2, 1, 1]
    assert can_share_prompts(build(tiny_llama, "last"))
    assert not can_share_prompts(build(tiny_llama, "mean")) and not can_share_prompts(build(tiny_bert_no_dropout))
    model = build(tiny_bert_no_dropout)
    items = [("Same prompt", "one"), ("Same prompt", "two words")]
    assert score(model, items, share_prompts=True).values == score(model, items).values


def test_scoring_with_packing_and_bf16_matches_fp32(tiny_bert_no_dropout):
    model = build(tiny_bert_no_dropout)
    plain = torch.tensor(score(model, ITEMS * 3, batch_size=4).values)
    packed = torch.tensor(score(model, ITEMS * 3, batch_size=4, packing=True).values)
    assert torch.allclose(plain, packed, atol=1e-5)
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        bf16 = torch.tensor(score(model, ITEMS * 3, batch_size=4, precision="bf16").values)
        # bf16 keeps 8 bits of mantissa: scores agree to about 1% of their spread
        assert (bf16 - plain).abs().max() <= 0.05 * plain.std() + 1e-3


def test_training_losses_and_gradients_equal_across_layouts(tiny_llama, tmp_path):
    from rewardkit.train.config import TrainConfig
    from rewardkit.train.examples import collate, prepare_examples
    from rewardkit.train.objectives import batch_loss

    model = build(tiny_llama, template=True)
    records = [{"prompt": MULTI_TURN, "chosen": "132.", "rejected": "It is 121."},
               {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon, I believe, or maybe Nice."},
               {"prompt": "", "chosen": "fine", "rejected": "bad"}]
    from rewardkit.data.records import normalize_record

    examples = prepare_examples([normalize_record(r) for r in records], model).examples
    cfg = TrainConfig(train="unused")
    results = {}
    for layout in ("padded", "packed", "prefix"):
        model.zero_grad()
        loss, _, rewards = batch_loss(model, collate(examples, model, "left", layout), {"pairwise": "bt"}, cfg)
        loss.backward()
        results[layout] = (loss.detach(), rewards, [p.grad.clone() for p in model.parameters() if p.grad is not None])
    for layout in ("packed", "prefix"):
        assert torch.allclose(results[layout][0], results["padded"][0], atol=1e-5)
        assert torch.allclose(results[layout][1], results["padded"][1], atol=1e-5)
        for a, b in zip(results[layout][2], results["padded"][2], strict=True):
            assert torch.allclose(a, b, atol=1e-5)


SOLUTIONS = [("Tom has 3 apples and buys 4.", ["3 + 4 = 7.", "So 7."]), ("Name a colour.", ["Blue."]),
             ("Tom has 3 apples and buys 4.", ["3 + 4 = 8.", "So 8.", "Yes, 8 apples."]),
             ("Tom has 3 apples and buys 4.", ["Seven."])]


@pytest.mark.parametrize("backbone", ["tiny_bert_no_dropout", "tiny_llama"])
def test_packed_solutions_sharing_a_prompt_score_like_padded_ones(backbone, request):
    from rewardkit.model.steps import packed_step_batch, prompt_length, step_batch

    model = build(request.getfixturevalue(backbone), template=backbone == "tiny_llama")
    encoded = [model.encoder.encode_steps(p, s) for p, s in SOLUTIONS]
    pad, decoder = model.tokenizer.pad_token_id, model.spec.is_decoder
    with torch.no_grad():
        padded = model(step_batch(encoded, pad, decoder))
        one_row = packed_step_batch(encoded, pad, decoder, row_tokens=1000)
        assert one_row["input_ids"].shape == (1, sum(len(e.input_ids) for e in encoded) - 2 * prompt_length(encoded[0]))
        default = packed_step_batch(encoded, pad, decoder)  # rows no wider than the longest solution
        assert default["input_ids"].shape[1] == max(len(e.input_ids) for e in encoded)
        for batch in (one_row, default, packed_step_batch(encoded, pad, decoder, row_tokens=8)):  # 8: a row each
            assert torch.allclose(model(batch), padded, atol=1e-5)
    scores = score(model, [(p, Steps(s)) for p, s in SOLUTIONS], packing=True).steps
    assert [len(x) for x in scores] == [2, 1, 3, 1]
    assert torch.allclose(torch.tensor([x for row in scores for x in row]), padded.squeeze(1), atol=1e-5)


def test_training_on_packed_solutions_gives_the_padded_gradients(tiny_bert_no_dropout):
    from rewardkit.data.records import normalize_record
    from rewardkit.train.config import TrainConfig
    from rewardkit.train.examples import collate, prepare_examples
    from rewardkit.train.objectives import batch_loss

    model = build(tiny_bert_no_dropout)
    records = [normalize_record({"prompt": p, "steps": s, "labels": [0.9] + [0.0] * (len(s) - 1)}) for p, s in SOLUTIONS]
    examples = prepare_examples(records, model).examples
    results = {}
    for layout in ("padded", "packed"):
        model.zero_grad()
        loss, _, _ = batch_loss(model, collate(examples, model, "right", layout), {"stepwise": "step-bce"},
                                TrainConfig(train="unused"))
        loss.backward()
        results[layout] = (loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None])
    assert torch.allclose(results["packed"][0], results["padded"][0], atol=1e-6)
    for a, b in zip(results["packed"][1], results["padded"][1], strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_gradient_checkpointing_gives_the_same_gradients_on_a_decoder(tiny_llama):
    from rewardkit.data.records import normalize_record
    from rewardkit.model.backbone import enable_checkpointing
    from rewardkit.train.config import TrainConfig
    from rewardkit.train.examples import collate, prepare_examples
    from rewardkit.train.objectives import batch_loss

    model = build(tiny_llama).train()
    records = [normalize_record({"prompt": p, "steps": s, "labels": [1.0] + [0.0] * (len(s) - 1)}) for p, s in SOLUTIONS]
    batch = collate(prepare_examples(records, model).examples, model, "left")
    calls, mlp = [], model.backbone.layers[0].mlp  # a recomputed layer runs twice a step (hooks see it once)
    mlp.forward = lambda *args, forward=mlp.forward, **kwargs: calls.append(1) or forward(*args, **kwargs)
    grads, runs = [], []
    for checkpointing in (False, True):
        if checkpointing:
            enable_checkpointing(model.backbone)
        model.zero_grad()
        calls.clear()
        batch_loss(model, batch, {"stepwise": "step-bce"}, TrainConfig(train="unused"))[0].backward()
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
        runs.append(len(calls))
    assert runs == [1, 2] and len(grads[0]) == len(grads[1]) > 0
    for a, b in zip(*grads, strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_packed_epochs_put_the_solutions_of_a_prompt_side_by_side():
    from rewardkit.model.text import EncodedSteps
    from rewardkit.train.batches import epoch_batches
    from rewardkit.train.examples import Example

    def solution(prompt_id: int, steps: int) -> Example:
        return Example("stepwise", [EncodedSteps([prompt_id] + [9] * steps, None, {}, list(range(1, steps + 1)),
                                                 [-1] + list(range(steps)))])

    examples = [solution(i % 4, 2 + i % 3) for i in range(16)]
    for batch in epoch_batches(examples, 4, seed=0, epoch=0, group_by_length=True, by_prompt=True):
        assert len({examples[i].sequences[0].input_ids[0] for i in batch}) == 1


def test_length_batches_caps_rows_tokens_and_padding():
    lengths = [10, 100, 12, 95, 11, 50]
    batches = length_batches(lengths, batch_size=3, max_tokens=250, max_padding=0.25)
    assert sorted(i for b in batches for i in b) == list(range(6))
    for b in batches:
        longest = max(lengths[i] for i in b)
        assert len(b) <= 3 and longest * len(b) <= 250
        assert longest * len(b) - sum(lengths[i] for i in b) <= 0.25 * longest * len(b)
    assert length_batches([5, 5, 5, 5], batch_size=2) == [[0, 1], [2, 3]]


def test_prefix_sharing_is_refused_for_encoders(tiny_bert, tmp_path):
    from rewardkit.cli import main

    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n' * 4)
    assert main(["train", "--train", str(data), "--backbone", str(tiny_bert), "--prefix-sharing",
                 "--output", str(tmp_path / "o"), "--no-progress"]) == 2


def test_whole_training_run_is_the_same_packed_or_padded(tiny_bert_no_dropout, tmp_path):
    from rewardkit.data.io import write_records
    from rewardkit.data.synth import generate
    from rewardkit.errors import ConfigError
    from rewardkit.model.reward_model import RewardModel as RM
    from rewardkit.train.config import TrainConfig
    from rewardkit.train.trainer import train

    write_records(tmp_path / "t.jsonl", generate("mix", 48, seed=3, split="train"))
    weights = {}
    for name, extra in (("padded", {}), ("packed", {"packing": True}), ("chunked", {"max_batch_tokens": 64}),
                        ("checkpointed", {"gradient_checkpointing": True}), ("lora", {"lora_r": 4}),
                        ("lora-checkpointed", {"lora_r": 4, "gradient_checkpointing": True})):
        cfg = TrainConfig(train=str(tmp_path / "t.jsonl"), output=str(tmp_path / name), backbone=str(tiny_bert_no_dropout),
                          max_length=64, batch_size=8, epochs=1, lr=1e-3, eval_fraction=0.0, final_model="last",
                          progress=False, **extra)
        train(cfg)
        weights[name] = RM.load(tmp_path / name / "model").state_dict()
    for name, plain in (("packed", "padded"), ("chunked", "padded"), ("checkpointed", "padded"),
                        ("lora-checkpointed", "lora")):
        for key, value in weights[plain].items():
            assert torch.allclose(value, weights[name][key], atol=1e-4), (name, key)
    query = next(k for k in weights["lora"] if k.endswith("layer.0.attention.self.query.weight"))
    base = RM.build(str(tiny_bert_no_dropout)).state_dict()[query]
    assert not torch.allclose(weights["lora-checkpointed"][query], base, atol=1e-4)  # the adapters did train
    with pytest.raises(ConfigError, match="frozen backbone"):
        TrainConfig(train="t.jsonl", backbone=str(tiny_bert_no_dropout), freeze_backbone=True,
                    gradient_checkpointing=True).validate()


def test_cached_features_train_the_same_heads_as_a_frozen_backbone(tiny_bert_no_dropout, tmp_path):
    from rewardkit.data.io import write_records
    from rewardkit.data.synth import generate
    from rewardkit.model.reward_model import RewardModel as RM
    from rewardkit.train.config import TrainConfig
    from rewardkit.train.trainer import train

    write_records(tmp_path / "t.jsonl", generate("mix", 40, seed=4, split="train"))
    heads = {}
    for cached in (False, True):
        out = tmp_path / f"cached-{cached}"
        cfg = TrainConfig(train=str(tmp_path / "t.jsonl"), output=str(out), backbone=str(tiny_bert_no_dropout), max_length=64,
                          batch_size=8, epochs=3, lr=1e-3, freeze_backbone=True, cache_features=cached, eval_fraction=0.25,
                          final_model="last", progress=False)
        summary = train(cfg)
        heads[cached] = (RM.load(out / "model").head.weight, summary["eval"]["pairwise_accuracy"])
    assert torch.allclose(heads[False][0], heads[True][0], atol=1e-5)
    assert heads[False][1] == heads[True][1]
    with pytest.raises(Exception, match="freeze-backbone"):
        train(TrainConfig(train=str(tmp_path / "t.jsonl"), output=str(tmp_path / "x"), backbone=str(tiny_bert_no_dropout),
                          cache_features=True, progress=False))


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None, reason="torch.compile on CPU needs a C++ compiler")
def test_compiled_backbone_scores_like_eager_across_batch_shapes(tiny_bert_no_dropout):
    model = build(tiny_bert_no_dropout)
    eager = torch.tensor(score(model, ITEMS * 3, batch_size=4).values)
    compile_for_inference(model)
    assert model.backbone._compiled_call_impl is not None     # the backbone, in place: same weights, same names
    assert all(not name.startswith("_orig_mod") for name, _ in model.named_parameters())
    compiled = torch.tensor(score(model, ITEMS * 3, batch_size=4).values)  # several lengths and batch sizes
    assert torch.allclose(eager, compiled, atol=1e-4)


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None, reason="torch.compile on CPU needs a C++ compiler")
def test_compiled_hugging_face_scorer_scores_like_eager(tiny_bert_no_dropout, tmp_path):
    from rewardkit.eval.scorers import hf_scorer
    from rewardkit.model.export import export_hf

    export_hf(build(tiny_bert_no_dropout), tmp_path / "hf")
    eager = hf_scorer(tmp_path / "hf", batch_size=4, progress=False).score(ITEMS * 3).values
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled = hf_scorer(tmp_path / "hf", batch_size=4, progress=False, compile=True).score(ITEMS * 3).values
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0  # it did compile
    assert compiled == pytest.approx(eager, abs=1e-4)
