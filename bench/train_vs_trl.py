"""Training speed and quality: TRL's RewardTrainer against `rewardkit train`, same data, model, steps, batch, threads.

    pip install -e ".[bench]"            # TRL is a benchmark-only dependency
    python bench/train_vs_trl.py [--data-dir ../shared/data] [--steps 60] [--threads 2] [--sides trl,trl-bf16,rewardkit]

Data: HH-RLHF harmless, the same seeded 80/20 split by prompt as the hh-harmless eval suite (1,850 train /
462 test pairs). Model: all-MiniLM-L6-v2 with a one-output head, max length 512, batch 16 pairs, learning
rate 5e-5 with 10% warm-up and linear decay, the same number of optimizer steps. Each side runs in its own
process (so peak RSS is its own) with the same torch thread count:

- trl:       RewardTrainer with RewardConfig's defaults (TRL 1.16 on CPU: bf16 autocast and gradient
             checkpointing on). Pairs over 512 tokens are dropped by TRL (counted here); at test time its
             model scores prompt + response truncated from the right, as it was trained.
- trl-fp32:  the same with `bf16=False`.
- rewardkit: `rewardkit train` with --precision auto (bf16 where the CPU has it) and length-grouped batches;
             long prompts are truncated from the left, nothing is dropped.

Held-out accuracy on the 462 test pairs with 95% bootstrap intervals (resampling prompts). Writes
bench/results/train_vs_trl.json with speedup_vs_trl = rewardkit pairs/s / TRL (defaults) pairs/s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LR, BATCH, WARMUP = 5e-5, 16, 0.1


def hh_split(data_dir: Path):
    from rewardkit.data.convert import convert
    from rewardkit.eval.suites import held_out_split

    return held_out_split(list(convert("hh-rlhf", data_dir / "hh-rlhf" / "harmless-base-test.jsonl.gz")))


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
    path = str(builtin_path("minilm"))
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.eos_token = tokenizer.sep_token  # BERT tokenizers have no EOS; TRL appends one to every text
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
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
        batch = tokenizer(transcript(prompt) + " " + response + tokenizer.eos_token, truncation=True,
                          max_length=args.max_length, return_tensors="pt")
        return float(model(**batch).logits[0, 0])

    margins = [score(r["prompt"], r["chosen"]) - score(r["prompt"], r["rejected"]) for r in test]
    return {"train_seconds": seconds, "pairs_trained_on": kept, "pairs_dropped_over_max_length": len(rows) - kept,
            "margins": margins}


def run_rewardkit(train, test, args) -> dict:
    from rewardkit.data.io import write_records
    from rewardkit.model.reward_model import RewardModel
    from rewardkit.model.scoring import score_records
    from rewardkit.train.config import TrainConfig
    from rewardkit.train.trainer import train as train_model

    work = Path(args.work)
    write_records(work / "train.jsonl", train)
    cfg = TrainConfig(train=str(work / "train.jsonl"), output=str(work / "rewardkit"), backbone="minilm",
                      max_length=args.max_length, batch_size=BATCH, max_steps=args.steps, epochs=100, lr=LR,
                      warmup_ratio=WARMUP, eval_fraction=0.0, precision="auto", threads=args.threads, seed=0,
                      final_model="last", progress=False)
    summary = train_model(cfg)
    model = RewardModel.load(summary["model"])
    scored = score_records(model, test, precision="auto")
    return {"train_seconds": summary["train_seconds"], "pairs_trained_on": len(train), "pairs_dropped_over_max_length": 0,
            "truncation": summary["truncation"], "margins": [r["margin"] for r in scored]}


def child(args) -> int:
    import torch

    torch.set_num_threads(args.threads)
    train, test = hh_split(Path(args.data_dir))
    if args.side == "rewardkit":
        result = run_rewardkit(train, test, args)
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
    parser.add_argument("--sides", default="trl,trl-fp32,rewardkit")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "train_vs_trl.json"))
    parser.add_argument("--side", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        return child(args)
    if not (Path(args.data_dir) / "hh-rlhf").exists():
        print(f"skipped: {args.data_dir}/hh-rlhf not found (pass --data-dir)")
        return 0
    try:
        import trl  # noqa: F401
    except ImportError:
        print('skipped: TRL is not installed (pip install -e ".[bench]")')
        return 0

    import torch

    from rewardkit.eval.metrics import bootstrap_ci, pair_credit

    work = tempfile.mkdtemp(prefix="rewardkit-trl-bench-")
    train, test = hh_split(Path(args.data_dir))
    groups = [json.dumps(r["prompt"]) for r in test]
    results = {}
    for side in args.sides.split(","):
        print(f"[{side}] training {args.steps} steps ...", flush=True)
        command = [sys.executable, __file__, "--side", side, "--work", work, "--data-dir", args.data_dir,
                   "--steps", str(args.steps), "--max-length", str(args.max_length), "--threads", str(args.threads)]
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
           "train_pairs": len(train), "test_pairs": len(test), "model": "all-MiniLM-L6-v2", "steps": args.steps,
           "batch_size": BATCH, "lr": LR, "max_length": args.max_length, "threads": args.threads,
           "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                       "torch": torch.__version__, "trl": __import__("trl").__version__},
           "runs": results}
    if "rewardkit" in results:
        for baseline in ("trl", "trl-fp32"):
            if baseline in results:
                key = "speedup_vs_trl" if baseline == "trl" else "speedup_vs_trl_fp32"
                out[key] = round(results["rewardkit"]["pairs_per_second"] / results[baseline]["pairs_per_second"], 2)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(out, indent=2))
    print(json.dumps({k: v for k, v in out.items() if k.startswith("speedup")}), f"saved {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
