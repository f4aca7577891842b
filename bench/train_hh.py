"""Benchmark: train on HH-RLHF harmless with the MiniLM backbone and report held-out accuracy and speed.

    python bench/train_hh.py [--data-dir ../shared/data] [--max-length 256] [--epochs 1]

Split: the 2,312 pairs of harmless-base-test are shuffled with seed 0 and split 80/20 by prompt
(no prompt in both halves). Also reports accuracy on the synthetic tasks' held-out templates, the
length-only baseline on the same test pairs, and the truncation counts. Writes bench/results/train_hh.json.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import rewardkit as rk  # noqa: E402
from rewardkit.data.convert import convert  # noqa: E402
from rewardkit.data.io import write_records  # noqa: E402
from rewardkit.data.synth import generate  # noqa: E402
from rewardkit.data.texts import text_of  # noqa: E402
from rewardkit.model.machine import machine_info  # noqa: E402
from rewardkit.scores import pair_credit  # noqa: E402


def bootstrap_ci(correct: list[float], n: int = 1000, seed: int = 0) -> tuple[float, float]:
    rng = random.Random(seed)
    means = sorted(sum(rng.choice(correct) for _ in correct) / len(correct) for _ in range(n))
    return means[int(0.025 * n)], means[int(0.975 * n)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", default="/tmp/rewardkit-bench-hh")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "train_hh.json"))
    parser.add_argument("--max-pairs", type=int, default=0,
                        help="use only the first N pairs of each half and N synthetic ones (0: all), for a quick check")
    args = parser.parse_args()
    source = Path(args.data_dir) / "hh-rlhf" / "harmless-base-test.jsonl.gz"
    if not source.exists():
        print(f"skipped: {source} not found (pass --data-dir)")
        return 0
    work = Path(args.work)
    records = list(convert("hh-rlhf", source, skip_invalid=True))
    prompts = sorted({json.dumps(r["prompt"]) for r in records})
    random.Random(0).shuffle(prompts)
    test_prompts = set(prompts[: len(prompts) // 5])
    train_rows = [r for r in records if json.dumps(r["prompt"]) not in test_prompts]
    test_rows = [r for r in records if json.dumps(r["prompt"]) in test_prompts]
    if args.max_pairs:
        train_rows, test_rows = train_rows[: args.max_pairs], test_rows[: args.max_pairs]
    write_records(work / "train.jsonl", train_rows)
    write_records(work / "test.jsonl", test_rows)
    cfg = rk.TrainConfig(train=str(work / "train.jsonl"), eval=str(work / "test.jsonl"), output=str(work / "run"),
                      max_length=args.max_length, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      threads=args.threads, seed=0, final_model="last")
    started = time.perf_counter()
    summary = rk.train_model(cfg)
    wall = time.perf_counter() - started
    model = rk.load_model(summary["model"])
    scored = rk.score_records(model, test_rows, batch_size=32)
    correct = [pair_credit(r["score_margin"]) for r in scored]
    length_only = [float(len(text_of(r["chosen"])) > len(text_of(r["rejected"])))
                   + 0.5 * float(len(text_of(r["chosen"])) == len(text_of(r["rejected"]))) for r in test_rows]
    synth = generate("mix", min(400, args.max_pairs or 400), 0, "test")
    synth_scored = rk.score_records(model, synth, batch_size=32)
    result = {
        "benchmark": "train_hh", "backbone": "all-MiniLM-L6-v2", "max_length": args.max_length, "epochs": args.epochs,
        "batch_size": args.batch_size, "lr": args.lr, "threads": args.threads,
        "train_pairs": len(train_rows), "test_pairs": len(test_rows), "invalid_pairs_skipped": 2312 - len(records),
        "held_out_accuracy": sum(correct) / len(correct), "held_out_accuracy_ci95": bootstrap_ci(correct),
        "length_only_baseline_accuracy": sum(length_only) / len(length_only),
        "synthetic_held_out_templates_accuracy": sum(r["score_margin"] > 0 for r in synth_scored) / len(synth_scored),
        "train_pairs_per_second": summary["records_per_second"], "train_seconds": summary["train_seconds"],
        "wall_seconds": round(wall, 1), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "truncation": summary["truncation"], "config": summary["config"], "machine": machine_info(),
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "config"}, indent=2))
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
