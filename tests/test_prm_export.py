"""PRMs outside rewardkit: the token-classification export and its equality with rewardkit's step scores, the CLI
command, the step formats of public PRMs (rendering and score positions), and the Hugging Face PRM scorer."""

from __future__ import annotations

import json

import pytest
import torch

import rewardkit as rk
from rewardkit.data.synth import generate
from rewardkit.data.texts import Steps
from rewardkit.errors import ConfigError, DataError, ModelError
from rewardkit.eval.scorers import hf_prm_scorer, load_scorer, score_items
from rewardkit.model.export import export_prm_hf
from rewardkit.model.reward_model import RewardModel
from rewardkit.model.step_formats import QWEN_TAG, StepOptions, render

PROMPT = "Tom has 3 apples and buys 4 more. He gives 2 away. How many are left?"
STEPS = ["Tom starts with 3 apples.", "He buys 4, so 3 + 4 = 7.", "He gives 2 away: 7 - 2 = 5.", "The answer is 5."]
SOLUTIONS = [(PROMPT, STEPS), ("Short?", ["Yes."]), (PROMPT, STEPS[:2])]
TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} [SEP] {% endfor %}"
            "{% if add_generation_prompt %}<|assistant|> {% endif %}")


def build(path, template: bool = False) -> RewardModel:
    torch.manual_seed(0)
    model = RewardModel.build(str(path), max_length=96).eval()
    with torch.no_grad():
        model.head.weight.normal_()  # step rewards of a few units, so a wrong column or sign shows
    if template:
        model.tokenizer.chat_template = TEMPLATE
        model.encoder.use_template = True
    return model


def tokenizer_of(path, template: bool = False):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if template:
        tokenizer.chat_template = TEMPLATE
    return tokenizer


# ---------------------------------------------------------------- export

@pytest.mark.parametrize("template", [False, True])
def test_transformers_reads_rewardkits_step_scores_from_the_export(tiny_llama, tmp_path, template):
    from transformers import AutoModelForTokenClassification

    model = build(tiny_llama, template)
    expected = rk.score_steps(model, SOLUTIONS)
    export_prm_hf(model, tmp_path / "hf")
    hf = AutoModelForTokenClassification.from_pretrained(str(tmp_path / "hf"), use_safetensors=True).eval()
    for (prompt, steps), ours in zip(SOLUTIONS, expected.steps, strict=True):
        encoded = model.encoder.encode_steps(prompt, steps, model.spec.step_separator)
        with torch.no_grad():
            logits = hf(input_ids=torch.tensor([encoded.input_ids])).logits[0, encoded.ends]
        assert logits[:, 1].tolist() == pytest.approx(ours, abs=1e-4)
        assert logits[:, 0].abs().max().item() == 0.0
        assert logits.softmax(-1)[:, 1].tolist() == pytest.approx(torch.sigmoid(torch.tensor(ours)).tolist(), abs=1e-5)
    assert max(abs(s) for row in expected.steps for s in row) > 0.1  # not a trivially zero head


def test_the_export_config_says_how_to_write_and_read_a_solution(tiny_llama, tmp_path):
    model = build(tiny_llama)
    model.spec.step_aggregate = "last"
    export_prm_hf(model, tmp_path / "hf")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    fields = config["rewardkit"]
    assert config["architectures"] == ["LlamaForTokenClassification"]
    assert config["id2label"] == {"0": "wrong", "1": "right"} and fields["returned_label"] == 1
    # "\n" is no WordPiece token, so rewardkit ends steps with [SEP]: the step tag is what the encoding really holds
    encoded = model.encoder.encode_steps(PROMPT, STEPS)
    assert fields["step_tag_id"] == model.tokenizer.sep_token_id == encoded.input_ids[encoded.ends[0]]
    assert fields["step_separator"] == "\n" and fields["separator_ids"] == [model.tokenizer.sep_token_id]
    assert fields["step_aggregate"] == "last" and fields["chat_template"] is False
    assert json.loads((tmp_path / "hf" / "rewardkit_export.json").read_text())["step_tag_id"] == fields["step_tag_id"]
    assert list((tmp_path / "hf").glob("*.safetensors")) and not list((tmp_path / "hf").glob("*.bin"))


def test_an_encoder_prm_is_refused_with_the_reason(tiny_bert_no_dropout, tmp_path):
    with pytest.raises(ModelError, match="block-causal"):
        export_prm_hf(RewardModel.build(str(tiny_bert_no_dropout)), tmp_path / "hf")


def test_export_command_with_format_prm(tiny_llama, tmp_path, capsys):
    from rewardkit.cli import main

    build(tiny_llama).save(tmp_path / "prm")
    assert main(["export", str(tmp_path / "prm"), "--output", str(tmp_path / "hf"), "--format", "prm"]) == 0
    assert "AutoModelForTokenClassification" in capsys.readouterr().out
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["rewardkit"]["step_format"] == "separator"


# ---------------------------------------------------------------- the Hugging Face PRM scorer

def test_hf_prm_scorer_round_trip_equals_rewardkit(tiny_llama, tmp_path):
    model = build(tiny_llama, template=True)
    model.spec.step_aggregate = "mean"
    expected = rk.score_steps(model, SOLUTIONS)
    export_prm_hf(model, tmp_path / "hf")
    scorer = load_scorer(tmp_path / "hf", batch_size=2, progress=False)  # the config says token classification
    assert scorer.steps and scorer.info["type"] == "huggingface-prm"
    got = score_items(scorer, [(p, Steps(s)) for p, s in SOLUTIONS] + [("Short?", "Yes.")])
    for ours, theirs in zip(expected.steps, got.steps, strict=False):
        assert theirs == pytest.approx(ours, abs=1e-4)
    assert got.values[:3] == pytest.approx(expected.values, abs=1e-4)  # the export's own aggregate: mean
    assert got.steps[3] is None and got.values[3] == pytest.approx(expected.steps[1][0], abs=1e-4)


def test_hf_prm_scorer_feeds_rewardkits_process_metrics(tiny_llama, tmp_path):
    model = build(tiny_llama)
    export_prm_hf(model, tmp_path / "hf")
    records = generate("arithmetic", 12, 0, "test", "stepwise")
    ours = rk.evaluate(model, records, probes=0, resamples=10)["stepwise"]
    theirs = rk.evaluate(hf_prm_scorer(tmp_path / "hf", progress=False), records, probes=0, resamples=10)["stepwise"]
    assert theirs["model"]["processbench"]["f1"] == pytest.approx(ours["model"]["processbench"]["f1"], abs=1e-6)


def test_hf_prm_scorer_reads_a_causal_lm_prm_at_its_good_and_bad_tokens(tiny_llama, tmp_path):
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=1, intermediate_size=64, max_position_embeddings=256, pad_token_id=0)
    lm = AutoModelForCausalLM.from_config(config).eval()
    lm.save_pretrained(str(tmp_path / "lm"), safe_serialization=True)
    tokenizer = tokenizer_of(tiny_llama)
    tokenizer.save_pretrained(str(tmp_path / "lm"))
    got = score_items(hf_prm_scorer(tmp_path / "lm", "math-shepherd", progress=False), [(PROMPT, Steps(STEPS))])
    rendered = render("math-shepherd", tokenizer, PROMPT, STEPS)
    with torch.no_grad():
        logits = lm(input_ids=torch.tensor([rendered.input_ids])).logits[0, rendered.positions]
    good, bad = rendered.columns
    assert got.steps[0] == pytest.approx((logits[:, good] - logits[:, bad]).tolist(), abs=1e-5)
    assert got.values[0] == pytest.approx(min(got.steps[0]), abs=1e-6)  # min over steps by default
    with pytest.raises(ModelError, match="causal LM"):
        hf_prm_scorer(tmp_path / "lm", "separator")
    # `rewardkit eval --step-format` reaches the same scorer: a causal LM is a PRM only when told its format
    told = score_items(load_scorer(tmp_path / "lm", progress=False, step_format="math-shepherd"), [(PROMPT, Steps(STEPS))])
    assert told.steps[0] == pytest.approx(got.steps[0], abs=1e-6)
    with pytest.raises(ModelError, match="one output label"):  # untold, a causal LM is no sequence reward model
        load_scorer(tmp_path / "lm", progress=False)


def test_eval_command_takes_a_step_format(tiny_llama, tmp_path):
    from rewardkit.cli import main

    model = build(tiny_llama)
    with pytest.raises(ConfigError, match="knows its own step layout"):
        load_scorer(model.save(tmp_path / "rk") or tmp_path / "rk", step_format="qwen")
    export_prm_hf(model, tmp_path / "hf")
    records = tmp_path / "steps.jsonl"
    rk.write_records(records, generate("arithmetic", 6, 0, "test", "stepwise"))
    assert main(["eval", str(tmp_path / "hf"), "--step-format", "separator", "--suite", "--input", str(records),
                 "--probes", "0", "--bootstrap", "10", "--output", str(tmp_path / "out"), "--no-progress"]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["model"]["info"]["step_format"] == "separator"


# ---------------------------------------------------------------- step formats

def test_separator_format_is_rewardkits_encoding(tiny_llama):
    model = build(tiny_llama)
    rendered = render("separator", model.tokenizer, PROMPT, STEPS, StepOptions(max_length=96))
    encoded = model.encoder.encode_steps(PROMPT, STEPS)
    assert rendered.input_ids == encoded.input_ids and rendered.positions == encoded.ends
    assert rendered.columns == (1, 0)


def test_qwen_format_reads_at_extra_0_tokens(tiny_llama):
    tokenizer = tokenizer_of(tiny_llama, template=True)
    tokenizer.add_special_tokens({"additional_special_tokens": [QWEN_TAG]})
    rendered = render("qwen", tokenizer, PROMPT, STEPS)
    assert [m["role"] for m in rendered.messages] == ["system", "user", "assistant"]
    assert rendered.messages[2]["content"] == "".join(s + QWEN_TAG for s in STEPS)
    tag = tokenizer.convert_tokens_to_ids(QWEN_TAG)
    assert len(rendered.positions) == 4 and all(rendered.input_ids[p] == tag for p in rendered.positions)
    assert rendered.columns == (1, 0)
    with pytest.raises(DataError, match="marker also occurs"):
        render("qwen", tokenizer, PROMPT, ["a step with <extra_0> inside", "b"])
    with pytest.raises(ModelError, match="no chat template"):
        render("qwen", tokenizer_of(tiny_llama), PROMPT, STEPS)


def test_math_shepherd_format_text_positions_and_truncation(tiny_llama):
    tokenizer = tokenizer_of(tiny_llama)
    rendered = render("math-shepherd", tokenizer, PROMPT, STEPS)
    assert rendered.text == f"{PROMPT} {STEPS[0]} ки\n{STEPS[1]} ки\n{STEPS[2]} ки\n{STEPS[3]} ки"
    tag = tokenizer("ки", add_special_tokens=False)["input_ids"][-1]
    assert len(rendered.positions) == 4 and all(rendered.input_ids[p] == tag for p in rendered.positions)
    assert rendered.columns == tuple(tokenizer("+ -", add_special_tokens=False)["input_ids"])
    cut = render("math-shepherd", tokenizer, PROMPT, STEPS, StepOptions(max_length=rendered.positions[1] + 1))
    assert cut.positions == rendered.positions[:2] and len(cut.input_ids) == rendered.positions[1] + 1


def test_rlhflow_format_reads_where_each_plus_is_predicted(tiny_llama):
    tokenizer = tokenizer_of(tiny_llama, template=True)
    rendered = render("rlhflow", tokenizer, PROMPT, STEPS)  # step 2 holds a '+' of its own
    assert [m["role"] for m in rendered.messages] == ["user", "assistant"] * 4
    assert rendered.messages[0]["content"] == f"{PROMPT} {STEPS[0]}" and rendered.messages[1]["content"] == "+"
    plus, minus = rendered.columns
    assert (plus, minus) == (tokenizer.convert_tokens_to_ids("+"), tokenizer.convert_tokens_to_ids("-"))
    assert len(rendered.positions) == 4 and all(rendered.input_ids[p + 1] == plus for p in rendered.positions)
    assert rendered.input_ids.count(plus) == 5  # the step's own '+' is not taken for a score position


def test_an_unknown_step_format_names_the_choices(tiny_llama):
    with pytest.raises(ConfigError, match="separator, qwen, math-shepherd, rlhflow"):
        render("prm800k", tokenizer_of(tiny_llama), PROMPT, STEPS)
