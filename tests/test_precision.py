"""`--precision auto` picks the precision that measures faster on this machine: the decision from timings, the
per-machine cache of those timings, and the precision that autocast and the trainer then run in."""

from __future__ import annotations

import json
import math
import os

import pytest
import torch

from rewardkit.data.io import write_records
from rewardkit.data.synth import generate
from rewardkit.model import attention, machine, precision
from rewardkit.model.attention import use_faster_training_attention
from rewardkit.model.backbone import load_hf_backbone
from rewardkit.model.flops import matmul_seconds
from rewardkit.model.machine import MatmulTimings, machine_info, machine_key, matmul_timings
from rewardkit.model.precision import autocast, choose_cpu_precision, resolve_precision


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A private cache directory (matmul and attention timings), and `auto` decided afresh in each test (and after it, for later tests)."""
    monkeypatch.setenv("REWARDKIT_CACHE_DIR", str(tmp_path / "cache"))
    precision._auto_precision.cache_clear()
    yield
    precision._auto_precision.cache_clear()


def fake_timings(monkeypatch, fp32_seconds: float, bf16_seconds: float | None) -> list[int]:
    """Replace the measurement with fixed timings; returns a list that grows by one per measurement."""
    calls: list[int] = []

    def measure() -> MatmulTimings:
        calls.append(1)
        return MatmulTimings(fp32_seconds, bf16_seconds)

    monkeypatch.setattr(machine, "measure_matmul_timings", measure)
    return calls


@pytest.mark.parametrize(("fp32", "bf16", "expected"), [
    (0.010, 0.0167, "fp32"),   # bf16 at 0.6x fp32 (AVX512-BF16 without AMX)
    (0.010, 0.005, "bf16"),    # bf16 2x faster
    (0.010, 0.0025, "bf16"),   # bf16 4x faster (AMD EPYC)
    (0.010, 0.0095, "fp32"),   # within noise
    (0.010, 0.0085, "fp32"),   # 1.18x: still within what noise and the casts can eat
    (0.010, None, "fp32"),     # bf16 could not be timed
])
def test_decision_from_timings(fp32, bf16, expected):
    assert choose_cpu_precision(fp32, bf16) == expected


def test_timings_are_cached_per_machine_and_reused(tmp_path, monkeypatch):
    calls = fake_timings(monkeypatch, 0.010, 0.005)
    first = matmul_timings()
    second = matmul_timings()
    assert len(calls) == 1 and not first.cached and second.cached
    assert (second.fp32_seconds, second.bf16_seconds) == (0.010, 0.005)
    saved = json.loads((tmp_path / "cache" / machine.TIMINGS_FILE).read_text())
    assert saved[machine_key()]["bf16_seconds"] == 0.005
    assert "threads" in machine_key() and torch.__version__ in machine_key()


def test_a_damaged_cache_is_measured_again(tmp_path, monkeypatch):
    calls = fake_timings(monkeypatch, 0.010, 0.005)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / machine.TIMINGS_FILE).write_text("{not json")
    assert not matmul_timings().cached and len(calls) == 1
    assert matmul_timings().cached and len(calls) == 1


def test_auto_resolves_once_from_the_cache_and_says_so(monkeypatch, capsys):
    calls = fake_timings(monkeypatch, 0.010, 0.0167)
    assert resolve_precision("auto") == "fp32"
    assert resolve_precision("auto") == "fp32"
    said = capsys.readouterr().err
    assert said.count("precision auto -> fp32") == 1 and "0.60x fp32" in said
    precision._auto_precision.cache_clear()  # a new process: the timings come from the cache file
    assert resolve_precision("auto") == "fp32" and len(calls) == 1
    assert "cached in" in capsys.readouterr().err


def test_explicit_precisions_pass_through_and_bad_ones_fail(monkeypatch):
    calls = fake_timings(monkeypatch, 0.010, 0.005)
    assert resolve_precision("fp32") == "fp32" and resolve_precision("bf16") == "bf16"
    assert not calls
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("fp16")


@pytest.mark.parametrize(("bf16_seconds", "bf16"), [(0.005, True), (0.0167, False)])
def test_autocast_runs_in_the_resolved_precision(monkeypatch, bf16_seconds, bf16):
    fake_timings(monkeypatch, 0.010, bf16_seconds)
    with autocast("auto"):
        assert torch.is_autocast_enabled("cpu") == bf16
        out = torch.nn.functional.linear(torch.randn(2, 4), torch.randn(3, 4))
    assert out.dtype == (torch.bfloat16 if bf16 else torch.float32)


@pytest.mark.parametrize(("bf16_seconds", "bf16"), [(0.005, True), (0.0167, False)])
def test_trainer_runs_its_forward_passes_in_the_resolved_precision(tmp_path, monkeypatch, bf16_seconds, bf16):
    from rewardkit.train import loop
    from rewardkit.train.config import TrainConfig
    from rewardkit.train.trainer import train

    fake_timings(monkeypatch, 0.010, bf16_seconds)
    seen: list[bool] = []
    real_batch_loss = loop.batch_loss

    def spy(*args, **kwargs):
        seen.append(torch.is_autocast_enabled("cpu"))
        return real_batch_loss(*args, **kwargs)

    monkeypatch.setattr(loop, "batch_loss", spy)
    write_records(tmp_path / "train.jsonl", generate("trajectories", 64, 0, "train"))
    train(TrainConfig(train=str(tmp_path / "train.jsonl"), output=str(tmp_path / "run"), backbone="mlp",
                      max_steps=2, batch_size=16, eval_fraction=0.0, precision="auto", progress=False))
    assert seen and set(seen) == {bf16}


def test_real_measurement_and_machine_info():
    seconds = matmul_seconds(torch.float32, (64, 64, 64))
    assert 0 < seconds < 1
    info = machine_info()
    assert info["cpu"] and info["torch"] == torch.__version__ and info["torch_threads"] == torch.get_num_threads()
    assert math.isfinite(info["matmul_gflop_per_second"]["fp32"]) and info["matmul_gflop_per_second"]["fp32"] > 0
    assert resolve_precision("auto") in ("fp32", "bf16")


# ---------------------------------------------------------------- attention precision under bf16 autocast

def fake_attention_timings(monkeypatch, fp32_seconds: float, bf16_seconds: float | None) -> list[tuple]:
    """Replace the attention measurement with fixed timings; returns the shapes it was asked to time."""
    asked: list[tuple] = []

    def seconds(dtype, rows, heads, length, head_dim, repeats=3):
        asked.append((dtype, rows, heads, length, head_dim))
        return fp32_seconds if dtype == torch.float32 else bf16_seconds

    monkeypatch.setattr(attention, "attention_seconds", seconds)
    return asked


def spy_attention_dtypes(monkeypatch) -> list[torch.dtype]:
    """The query dtype of every scaled-dot-product attention call from now on."""
    seen: list[torch.dtype] = []
    real = torch.nn.functional.scaled_dot_product_attention

    def spy(query, *args, **kwargs):
        seen.append(query.dtype)
        return real(query, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    return seen


@pytest.mark.parametrize(("bf16_seconds", "expected"), [(0.020, "fp32"), (0.0095, "fp32"), (0.005, "bf16")])
def test_attention_precision_follows_its_timings(tiny_bert, monkeypatch, bf16_seconds, expected):
    asked = fake_attention_timings(monkeypatch, 0.010, bf16_seconds)
    backbone = load_hf_backbone(str(tiny_bert))
    assert use_faster_training_attention(backbone, length=70, batch_tokens=1024) == expected
    assert backbone.config._attn_implementation == (attention.FP32_SDPA if expected == "fp32" else "sdpa")
    # Timed at the head shape of the model, a length rounded up to a multiple of 64, and as many rows as fit.
    assert asked[0][1:] == (8, 2, 128, 16)


def test_attention_timings_are_cached_per_shape(monkeypatch):
    asked = fake_attention_timings(monkeypatch, 0.010, 0.020)
    assert attention.attention_timings(8, 2, 64, 16) == (0.010, 0.020, False)
    assert attention.attention_timings(8, 2, 64, 16) == (0.010, 0.020, True)
    assert attention.attention_timings(8, 2, 128, 16)[2] is False
    assert len(asked) == 4  # fp32 and bf16, for each of the two shapes


def test_backbones_off_sdpa_are_left_alone(tiny_bert, monkeypatch):
    asked = fake_attention_timings(monkeypatch, 0.010, 0.020)
    backbone = load_hf_backbone(str(tiny_bert))
    backbone.set_attn_implementation("eager")
    assert use_faster_training_attention(backbone, 70, 1024) == "bf16"
    assert backbone.config._attn_implementation == "eager" and not asked


def test_real_attention_measurement():
    fp32, bf16, cached = attention.attention_timings(2, 2, 64, 16)
    assert 0 < fp32 < 1 and not cached and (bf16 is None or 0 < bf16 < 1)


@pytest.mark.parametrize("backbone", ["tiny_bert", "tiny_llama"])
def test_fp32_attention_changes_only_the_attention_dtype(backbone, request, monkeypatch):
    """In fp32 the switched model is the same function (step rewards equal, the step mask of an encoder
    included); under bf16 autocast its attention alone runs in fp32."""
    import rewardkit as rk
    from rewardkit.model.reward_model import RewardModel

    torch.manual_seed(0)
    model = RewardModel.build(str(request.getfixturevalue(backbone)), max_length=96).eval()
    solutions = [("What is 2 + 3 - 1?", ["2 + 3 = 5.", "5 - 1 = 4.", "The answer is 4."]), ("1 + 1?", ["2."])]
    before = rk.score_steps(model, solutions, precision="fp32")
    fake_attention_timings(monkeypatch, 0.010, 0.020)
    use_faster_training_attention(model.backbone, 32, 256)
    after = rk.score_steps(model, solutions, precision="fp32")
    for a, b in zip(before.steps, after.steps, strict=True):
        assert a == pytest.approx(b, abs=1e-6)
    seen = spy_attention_dtypes(monkeypatch)
    ids = torch.tensor([[101, 2054, 2003, 1016, 102]])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model.backbone(input_ids=ids, attention_mask=torch.ones_like(ids))
    assert seen and set(seen) == {torch.float32}


def test_a_bf16_run_reports_its_attention_precision_and_saves_plain_sdpa(tiny_bert, tmp_path, monkeypatch):
    from rewardkit.model.reward_model import RewardModel
    from rewardkit.train.config import TrainConfig
    from rewardkit.train.trainer import train

    fake_attention_timings(monkeypatch, 0.010, 0.020)
    seen = spy_attention_dtypes(monkeypatch)
    write_records(tmp_path / "train.jsonl", generate("arithmetic", 16, 0, "train", "stepwise"))
    summary = train(TrainConfig(train=str(tmp_path / "train.jsonl"), output=str(tmp_path / "run"),
                                backbone=str(tiny_bert), max_steps=2, batch_size=8, max_length=96, eval_fraction=0.0,
                                precision="bf16", progress=False))
    assert summary["precision"] == "bf16" and summary["attention_precision"] == "fp32"
    # 2 steps x 2 layers trained with fp32 attention; the final evaluation scores the saved model, on plain sdpa.
    assert seen[:4] == [torch.float32] * 4 and set(seen[4:]) == {torch.bfloat16}
    saved = RewardModel.load(summary["model"])
    assert saved.backbone.config._attn_implementation == "sdpa"


def test_training_bounds_the_onednn_kernel_cache_unless_told(tmp_path, monkeypatch):
    from rewardkit.train.config import TrainConfig
    from rewardkit.train.trainer import train

    write_records(tmp_path / "train.jsonl", generate("trajectories", 32, 0, "train"))
    for preset, expected in ((None, str(machine.ONEDNN_KERNEL_CACHE)), ("512", "512")):
        if preset is None:
            monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
        else:
            monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", preset)
        train(TrainConfig(train=str(tmp_path / "train.jsonl"), output=str(tmp_path / f"run{expected}"),
                          backbone="mlp", max_steps=1, batch_size=16, eval_fraction=0.0, progress=False))
        assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == expected


def test_every_command_bounds_the_onednn_kernel_cache():
    import subprocess
    import sys

    code = "import os; from rewardkit.cli import main; main(['--version']); print(os.environ['ONEDNN_PRIMITIVE_CACHE_CAPACITY'])"
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_PRIMITIVE_CACHE_CAPACITY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split()[-1] == str(machine.ONEDNN_KERNEL_CACHE)
