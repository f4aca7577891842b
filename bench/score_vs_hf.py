"""Scoring speed: rewardkit against a plain Transformers loop, same model, same sequences, same threads.

    python bench/score_vs_hf.py [--data-dir ../shared/data] [--sequences 2000] [--threads 2]

The model is all-MiniLM-L6-v2 with a fresh reward head, exported with `rewardkit export` so that both sides
hold the same weights. Sequences: chosen and rejected responses of RMB pairs (mixed lengths, up to 512
tokens), or built-in synthetic ones without the data directory.

- baseline: AutoModelForSequenceClassification, batches of 32 in file order, padded to the longest in the
  batch, fp32, under torch.inference_mode (a typical hand-written scoring loop);
- rewardkit fp32: length-sorted batches cut where padding would pass 25%, results restored to input order;
- rewardkit bf16: the same with bf16 autocast (only where the CPU has native bf16);
- rewardkit bf16 packed: the same, sequences packed into rows with a block-diagonal mask instead of padded;
- rewardkit bf16 compiled (--compile): rewardkit bf16 with the backbone under torch.compile (dynamic shapes);
  the compile happens in the warm-up and its seconds are reported apart.

Also measured in the same run: this machine's fp32 and bf16 matmul peak, and each run's model FLOP
utilisation (useful FLOPs on real tokens per second / peak). Scores are compared on sequences that neither
side truncates. Writes bench/results/score_vs_hf.json (key speedup_vs_hf = best rewardkit / baseline).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def load_items(data_dir: Path, n: int) -> tuple[list[tuple[str, str]], str]:
    from rewardkit.data.texts import text_of

    source = data_dir / "rmb" / "pairwise"
    if source.exists():
        from rewardkit.data.convert import convert

        records = list(convert("rmb-pairwise", source))
        random.Random(0).shuffle(records)
        items = [(text_of(r["prompt"]), r[side]) for r in records for side in ("chosen", "rejected")]
        return items[:n], "RMB pairwise (chosen and rejected responses, shuffled with seed 0)"
    from rewardkit.data.synth import generate

    records = generate("mix", n // 2, seed=0)
    return [(r["prompt"], r[side]) for r in records for side in ("chosen", "rejected")][:n], "built-in synthetic mix"


def timed(fn) -> tuple[list[float], float]:
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--sequences", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="also time a torch.compile'd rewardkit run")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "score_vs_hf.json"))
    parser.add_argument("--peak-sizes", type=lambda text: tuple(int(n) for n in text.split(",")), default=(1024, 2048, 3072),
                        help="square matrix sizes for the matmul peak, comma-separated")
    parser.add_argument("--peak-seconds", type=float, default=1.5, help="time spent per matrix size measuring the matmul peak")
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rewardkit.eval.metrics import spearman
    from rewardkit.model.export import export_hf
    from rewardkit.model.flops import forward_flops, matmul_peak
    from rewardkit.model.machine import machine_info
    from rewardkit.model.precision import bf16_supported, compile_for_inference
    from rewardkit.model.reward_model import RewardModel
    from rewardkit.model.scoring import encode_items, score_encoded

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    items, source = load_items(Path(args.data_dir), args.sequences)
    work = Path(tempfile.mkdtemp(prefix="rewardkit-score-bench-"))
    model = RewardModel.build("minilm", max_length=args.max_length)
    export_hf(model, work / "hf")
    model.eval()

    # ---- baseline: the plain Transformers loop
    hf = AutoModelForSequenceClassification.from_pretrained(str(work / "hf"), use_safetensors=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(work / "hf"))

    @torch.inference_mode()
    def baseline(items=items) -> list[float]:
        out: list[float] = []
        for start in range(0, len(items), args.batch_size):
            chunk = items[start:start + args.batch_size]
            batch = tokenizer([p for p, _ in chunk], [r for _, r in chunk], truncation=True, max_length=args.max_length,
                              padding=True, return_tensors="pt")
            out += hf(**batch).logits[:, 0].float().tolist()
        return out

    baseline(items[:128])  # warm-up, not timed, for both sides alike
    base_scores, base_seconds = timed(baseline)

    # ---- rewardkit (tokenisation included in the timing, as in the baseline)
    def ours(precision: str, packing: bool = False, items=items):
        def run():
            encoded = encode_items(model, items)
            return score_encoded(model, encoded, args.batch_size, precision=precision, packing=packing).values
        return run

    ours("fp32", items=items[:128])()
    fp32_scores, fp32_seconds = timed(ours("fp32"))
    runs = {"hf_plain_fp32": {"seconds": base_seconds}, "rewardkit_fp32": {"seconds": fp32_seconds}}
    scores = {"hf_plain_fp32": base_scores, "rewardkit_fp32": fp32_scores}
    if bf16_supported():
        ours("bf16", items=items[:128])()
        scores["rewardkit_bf16"], seconds = timed(ours("bf16"))
        runs["rewardkit_bf16"] = {"seconds": seconds}
        scores["rewardkit_bf16_packed"], seconds = timed(ours("bf16", packing=True))
        runs["rewardkit_bf16_packed"] = {"seconds": seconds}
    if args.compile:  # last: the model stays compiled
        precision = "bf16" if bf16_supported() else "fp32"
        compiled = f"rewardkit_{precision}_compiled"
        compile_for_inference(model)
        _, compile_seconds = timed(ours(precision, items=items[:128]))
        scores[compiled], seconds = timed(ours(precision))
        runs[compiled] = {"seconds": seconds, "warm_up_with_compile_seconds": round(compile_seconds, 1)}

    # ---- work done, peak, utilisation
    encoded = encode_items(model, items)
    lengths = [len(e.input_ids) for e in encoded]
    untruncated = [i for i, e in enumerate(encoded) if not e.notes["prompt_cut"] and not e.notes["response_cut"]]
    useful = forward_flops(model.backbone, model.backbone.config, lengths)
    peaks = {"fp32": matmul_peak(torch.float32, args.peak_sizes, args.peak_seconds)}
    if bf16_supported():
        peaks["bf16"] = matmul_peak(torch.bfloat16, args.peak_sizes, args.peak_seconds)
    for name, run in runs.items():
        precision = "bf16" if "bf16" in name else "fp32"
        run["sequences_per_second"] = round(len(items) / run["seconds"], 2)
        run["useful_gflop_per_second"] = round(useful / run["seconds"] / 1e9, 1)
        run["mfu"] = round(useful / run["seconds"] / peaks[precision], 3)
        run["seconds"] = round(run["seconds"], 2)
        if name != "hf_plain_fp32":
            a = np.array([scores[name][i] for i in untruncated])
            b = np.array([base_scores[i] for i in untruncated])
            run["max_abs_diff_vs_hf"] = float(np.abs(a - b).max())
            run["spearman_vs_hf"] = spearman(a.tolist(), b.tolist())
            run["speedup_vs_hf"] = round(base_seconds / run["seconds"], 2)
    best = max((r for n, r in runs.items() if n != "hf_plain_fp32"), key=lambda r: r["sequences_per_second"])
    out = {"benchmark": "score_vs_hf", "model": "all-MiniLM-L6-v2 + fresh reward head (same weights both sides)",
           "source": source, "sequences": len(items), "untruncated_sequences_compared": len(untruncated),
           "tokens": {"mean": float(np.mean(lengths)), "max": int(max(lengths)), "total": int(sum(lengths))},
           "batch_size": args.batch_size, "max_length": args.max_length, "threads": args.threads,
           "machine": machine_info(),
           "matmul_peak_gflop_per_second": {k: round(v / 1e9, 1) for k, v in peaks.items()},
           "useful_gflop": round(useful / 1e9, 1), "runs": runs,
           "speedup_vs_hf": best["speedup_vs_hf"], "score_std": float(np.std(base_scores))}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(out, indent=2))
    print(f"{len(items)} sequences from {source}; mean {out['tokens']['mean']:.0f} tokens, max {out['tokens']['max']}")
    print("matmul peak: " + ", ".join(f"{k} {v} GFLOP/s" for k, v in out["matmul_peak_gflop_per_second"].items()))
    for name, run in runs.items():
        extra = (f"  speedup {run['speedup_vs_hf']}x  max |diff| {run['max_abs_diff_vs_hf']:.2e}  spearman {run['spearman_vs_hf']:.5f}"
                 if "speedup_vs_hf" in run else "")
        print(f"{name:<16} {run['sequences_per_second']:>8} seq/s  MFU {run['mfu']:.1%}{extra}")
    print(f"speedup_vs_hf: {out['speedup_vs_hf']}x   saved {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
