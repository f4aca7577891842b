"""Training speed and quality: TRL's RewardTrainer against `rewardkit train`, same data, model, steps, batch, threads.

    pip install -e ".[bench]"            # TRL is a benchmark-only dependency
    python bench/train_vs_trl.py [--data-dir ../shared/data] [--steps 60] [--threads 2] [--sides trl,trl-fp32,rewardkit]
    python bench/train_vs_trl.py --backbone smollm2 --steps 20     # SmolLM2-135M, a fixed number of steps

Data: HH-RLHF harmless, the same seeded 80/20 split by prompt as the hh-harmless eval suite (1,850 train /
462 test pairs). Model: all-MiniLM-L6-v2 (or SmolLM2-135M-Instruct from its GGUF file) with a one-output head,
max length 512, batch 16 pairs, learning rate 5e-5 with 10% warm-up and linear decay, the same number of
optimizer steps. Each side runs in its own process (so peak RSS is its own) with the same torch thread count.
MiniLM sees the HH transcript as text; SmolLM2 sees the conversation through its chat template on both sides.

- trl:       RewardTrainer with RewardConfig's defaults (TRL 1.16 on CPU: bf16 autocast and gradient
             checkpointing on). Pairs over 512 tokens are dropped by TRL (counted here); at test time its
             model scores prompt + response truncated from the right, as it was trained.
- trl-fp32:  the same with `bf16=False`.
- rewardkit: `rewardkit train` with --precision auto (bf16 where it measures faster on this CPU) and length-grouped batches;
             long prompts are truncated from the left, nothing is dropped.
- rewardkit-prefix: the same with --prefix-sharing (decoders only: the prompt is computed once per pair).

Held-out accuracy on the 462 test pairs with 95% bootstrap intervals (resampling prompts); model FLOP utilisation
of each side against this machine's fp32 / bf16 matmul peak, measured in the same run. Writes
bench/results/train_vs_trl.json (train_vs_trl_smollm2.json for SmolLM2) with speedup_vs_trl = rewardkit
pairs/s / TRL (defaults) pairs/s.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LR, BATCH, WARMUP = 5e-5, 16, 0.1


def hh_split(data_dir: Path, test_pairs: int = 0, train_pairs: int = 0):
    from rewardkit.data.convert import convert
    from rewardkit.data.prompts import split_by_prompt

    train, test = split_by_prompt(list(convert("hh-rlhf", data_dir / "hh-rlhf" / "harmless-base-test.jsonl.gz")))
    return train[:train_pairs] if train_pairs else train, test[:test_pairs] if test_pairs else test


def transcript(prompt: list[dict]) -> str:
    """An HH prompt back in its original text form, ending with the assistant cue."""
    role = {"user": "Human", "assistant": "Assistant"}
    return "".join(f"\n\n{role[m['role']]}: {m['content']}" for m in prompt) + "\n\nAssistant:"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_trl(train, test, args, bf16: bool) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from rewardkit.model.backbone import builtin_path

    torch.manual_seed(0)
    path = builtin_path(args.backbone)
    chat = path.suffix == ".gguf"  # the decoder is an instruct model: both sides use its chat template
    where, kwargs = (str(path.parent), {"gguf_file": path.name}) if chat else (str(path), {})
    tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
    if not chat:
        tokenizer.eos_token = tokenizer.sep_token  # BERT tokenizers have no EOS; TRL appends one to every text
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    model = AutoModelForSequenceClassification.from_pretrained(where, num_labels=1, **kwargs)
    if chat:  # Trainer refuses GGUF-loaded models as "quantized" (and they cannot be saved) although the weights
        # are dequantized floats: copy them into the same architecture built from the config
        config = model.config
        config.__dict__.pop("quantization_config", None)
        plain = AutoModelForSequenceClassification.from_config(config)
        plain.load_state_dict(model.state_dict())
        model = plain
    model.config.pad_token_id = tokenizer.pad_token_id
    if chat:  # conversational rows: TRL applies the chat template to prompt + response
        rows = [{"prompt": r["prompt"], "chosen": [{"role": "assistant", "content": r["chosen"]}],
                 "rejected": [{"role": "assistant", "content": r["rejected"]}]} for r in train]
    else:
        rows = [{"prompt": transcript(r["prompt"]), "chosen": " " + r["chosen"], "rejected": " " + r["rejected"]} for r in train]
    config = RewardConfig(output_dir=str(Path(args.work) / "trl"), per_device_train_batch_size=BATCH, max_steps=args.steps,
                          learning_rate=LR, warmup_steps=round(WARMUP * args.steps), lr_scheduler_type="linear", max_length=args.max_length,
                          logging_steps=10, save_strategy="no", report_to="none", use_cpu=True, bf16=bf16, seed=0,
                          disable_tqdm=True, dataloader_num_workers=0)
    trainer = RewardTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    kept = len(trainer.train_dataset)
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    model.eval()

    @torch.inference_mode()
    def score(prompt, response) -> float:
        if chat:
            ids = tokenizer.apply_chat_template(prompt + [{"role": "assistant", "content": response}], tokenize=True,
                                                return_dict=True)["input_ids"][: args.max_length]
            batch = {"input_ids": torch.tensor([ids])}
        else:
            batch = tokenizer(transcript(prompt) + " " + response + tokenizer.eos_token, truncation=True,
                              max_length=args.max_length, return_tensors="pt")
        return float(model(**batch).logits[0, 0])

    margins = [score(r["prompt"], r["chosen"]) - score(r["prompt"], r["rejected"]) for r in test]
    return {"train_seconds": seconds, "pairs_trained_on": kept, "pairs_dropped_over_max_length": len(rows) - kept,
            "margins": margins}


def run_rewardkit(train, test, args, prefix_sharing: bool) -> dict:
    import rewardkit as rk

    work = Path(args.work)
    rk.write_records(work / "train.jsonl", train)
    cfg = rk.TrainConfig(train=str(work / "train.jsonl"), output=str(work / args.side), backbone=args.backbone,
                      max_length=args.max_length, batch_size=BATCH, max_steps=args.steps, epochs=100, lr=LR,
                      warmup_ratio=WARMUP, eval_fraction=0.0, precision="auto", threads=args.threads, seed=0,
                      final_model="last", progress=False, prefix_sharing=prefix_sharing)
    summary = rk.train_model(cfg)
    model = rk.load_model(summary["model"])
    scored = rk.score_records(model, test, precision="auto")
    return {"train_seconds": summary["train_seconds"], "pairs_trained_on": len(train), "pairs_dropped_over_max_length": 0,
            "truncation": summary["truncation"], "margins": [r["score_margin"] for r in scored]}


def add_mfu(out: dict, train: list[dict], args) -> None:
    """Model FLOP utilisation of each side. Useful work per pair = forward + backward (~3x the forward FLOPs) of its
    two sequences as rewardkit encodes them (unpadded, at most max_length tokens, the prompt counted once per
    response, so prefix sharing does no less "useful" work); MFU = pairs/s x that / this machine's matmul peak,
    measured now, in the side's precision."""
    import torch

    from rewardkit.model.flops import forward_flops, matmul_peak
    from rewardkit.model.precision import bf16_supported, resolve_precision
    from rewardkit.model.reward_model import RewardModel

    model = RewardModel.build(args.backbone, max_length=args.max_length)
    lengths = [len(model.encoder.encode(r["prompt"], r[key]).input_ids) for r in train for key in ("chosen", "rejected")]
    per_pair = 3 * forward_flops(model.backbone, model.backbone.config, lengths) / len(train)
    peaks = {"fp32": matmul_peak(torch.float32, args.peak_sizes, args.peak_seconds)}
    if bf16_supported():
        peaks["bf16"] = matmul_peak(torch.bfloat16, args.peak_sizes, args.peak_seconds)
    out["matmul_peak_gflop_per_second"] = {k: round(v / 1e9, 1) for k, v in peaks.items()}
    out["useful_gflop_per_pair"] = round(per_pair / 1e9, 2)
    for side, r in out["runs"].items():
        # TRL's defaults run bf16 autocast; rewardkit's sides run what --precision auto chose here
        precision = resolve_precision("auto") if side.startswith("rewardkit") else "fp32" if side == "trl-fp32" else "bf16"
        precision = precision if precision in peaks else "fp32"
        r["mfu"] = round(r["pairs_per_second"] * per_pair / peaks[precision], 3)
        r["mfu_of_peak"] = precision
        print(f"[{side}] MFU {r['mfu']:.1%} of the {precision} matmul peak ({out['matmul_peak_gflop_per_second'][precision]} GFLOP/s)")


def child(args) -> int:
    import torch

    torch.set_num_threads(args.threads)
    train, test = hh_split(Path(args.data_dir), args.test_pairs, args.train_pairs)
    if args.side.startswith("rewardkit"):
        result = run_rewardkit(train, test, args, prefix_sharing=args.side == "rewardkit-prefix")
    else:
        result = run_trl(train, test, args, bf16=args.side == "trl")
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    Path(args.work, f"{args.side}.json").write_text(json.dumps(result))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--test-pairs", type=int, default=0, help="score only the first N test pairs (0: all 462)")
    parser.add_argument("--train-pairs", type=int, default=0, help="train on the first N training pairs only (0: all 1,850)")
    parser.add_argument("--backbone", choices=["minilm", "smollm2"], default="minilm")
    parser.add_argument("--sides", help="default: trl,trl-fp32,rewardkit (minilm); trl,rewardkit,rewardkit-prefix (smollm2)")
    parser.add_argument("--output", help="default: bench/results/train_vs_trl[_smollm2].json")
    parser.add_argument("--annotate", help="add MFU (peak measured now) to an existing result file and exit")
    parser.add_argument("--peak-sizes", type=lambda text: tuple(int(n) for n in text.split(",")), default=(1024, 2048, 3072),
                        help="square matrix sizes for the matmul peak, comma-separated")
    parser.add_argument("--peak-seconds", type=float, default=1.5, help="time spent per matrix size measuring the matmul peak")
    parser.add_argument("--side", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        return child(args)
    smollm2 = args.backbone == "smollm2"
    args.sides = args.sides or ("trl,rewardkit,rewardkit-prefix" if smollm2 else "trl,trl-fp32,rewardkit")
    args.output = args.output or str(ROOT / "bench" / "results" / f"train_vs_trl{'_smollm2' if smollm2 else ''}.json")
    if not (Path(args.data_dir) / "hh-rlhf").exists():
        print(f"skipped: {args.data_dir}/hh-rlhf not found (pass --data-dir)")
        return 0
    try:
        import trl  # noqa: F401
    except ImportError:
        print('skipped: TRL is not installed (pip install -e ".[bench]")')
        return 0

    from rewardkit.eval.metrics import bootstrap_ci, pair_credit
    from rewardkit.model.machine import machine_info

    if args.annotate:  # results from before MFU was part of this script
        out = json.loads(Path(args.annotate).read_text())
        args.backbone, args.max_length = ("smollm2" if "SmolLM2" in out["model"] else "minilm"), out["max_length"]
        add_mfu(out, hh_split(Path(args.data_dir))[0], args)
        out["mfu_note"] = "MFU added afterwards by --annotate: the matmul peak was measured then, not during training"
        Path(args.annotate).write_text(json.dumps(out, indent=2))
        return 0

    work = tempfile.mkdtemp(prefix="rewardkit-trl-bench-")
    train, test = hh_split(Path(args.data_dir), args.test_pairs, args.train_pairs)
    groups = [json.dumps(r["prompt"]) for r in test]
    results = {}
    for side in args.sides.split(","):
        print(f"[{side}] training {args.steps} steps ...", flush=True)
        command = [sys.executable, __file__, "--side", side, "--work", work, "--data-dir", args.data_dir,
                   "--steps", str(args.steps), "--max-length", str(args.max_length), "--threads", str(args.threads),
                   "--backbone", args.backbone, "--test-pairs", str(args.test_pairs),
                   "--train-pairs", str(args.train_pairs)]
        subprocess.run(command, check=True)
        r = json.loads(Path(work, f"{side}.json").read_text())
        credit = [pair_credit(m) for m in r.pop("margins")]
        r["pairs_per_second"] = round(args.steps * BATCH / r["train_seconds"], 3)
        r["train_seconds"] = round(r["train_seconds"], 1)
        r["held_out_accuracy"] = sum(credit) / len(credit)
        r["held_out_accuracy_ci95"] = bootstrap_ci(credit, groups=groups)
        results[side] = r
        print(f"[{side}] {r['pairs_per_second']} pairs/s, peak RSS {r['peak_rss_mb']} MB, held-out accuracy "
              f"{r['held_out_accuracy']:.3f} ({r['held_out_accuracy_ci95'][0]:.3f}-{r['held_out_accuracy_ci95'][1]:.3f})", flush=True)
    out = {"benchmark": "train_vs_trl", "data": "HH-RLHF harmless-base-test, seeded 80/20 split by prompt",
           "train_pairs": len(train), "test_pairs": len(test), "model": "SmolLM2-135M-Instruct" if smollm2 else "all-MiniLM-L6-v2", "steps": args.steps,
           "batch_size": BATCH, "lr": LR, "max_length": args.max_length, "threads": args.threads,
           "machine": {**machine_info(), "trl": __import__("trl").__version__},
           "runs": results}
    add_mfu(out, train, args)
    for ours in ("rewardkit", "rewardkit-prefix"):
        for baseline in ("trl", "trl-fp32"):
            if ours in results and baseline in results:
                key = "speedup_vs_trl" + ("_fp32" if baseline == "trl-fp32" else "") + ("_prefix" if ours == "rewardkit-prefix" else "")
                out[key] = round(results[ours]["pairs_per_second"] / results[baseline]["pairs_per_second"], 2)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(out, indent=2))
    print(json.dumps({k: v for k, v in out.items() if k.startswith("speedup")}), f"saved {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
