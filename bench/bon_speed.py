"""Best-of-N speed: scoring N candidates of one prompt, and sampling N candidates from a local model, each against
the plain way, on the same model, inputs and threads.

    python bench/bon_speed.py [--backbone smollm2] [--n 4,16,64] [--threads 2]

Part `score`: a reward model on --backbone with a fresh head (speed and agreement need no training) scores N
candidates of one prompt. Plain: rk.score on the N (prompt, candidate) sequences (length-sorted batches of
--batch-size; every sequence holds the prompt). Shared: the same call with share_prompts=True (the prompt computed
once, its key/value cache reused by every candidate: rewardkit.model.shared_prompt). Both tokenise; best of
--repeats after a warm-up; max |difference| between the two must stay within 1e-4 (fp32, rewards of ~10 units).
Run for two shapes: a long prompt with short candidates and a short prompt with long ones (the saving is the
prompt's share of the tokens).

Part `generate`: N samples of one chat prompt from the local model (rewardkit.generation.LocalGenerator: the
prompt computed once, the N samples one batch) against a plain loop that calls model.generate once per sample.
Both sample with temperature 1 and stop at the end token or --max-new-tokens; they draw different samples, so
the ratio is reported per generated token as well as per sample.

Writes bench/results/bon_speed.json (the machine it ran on included).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORDS = ("the of and to in is was for on that with as by at from it an be this which or are have had not but one "
         "all were when there can been has more if will out so up said what its about into than them only other").split()


def text(words: int, seed: int) -> str:
    return " ".join(WORDS[(seed * 7 + i * 13) % len(WORDS)] for i in range(words))


def best_time(repeats: int, fn):
    fn()  # warm-up
    times, out = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return out, min(times), [round(t, 4) for t in times]


def score_part(args) -> list[dict]:
    import rewardkit as rk
    from rewardkit.model.reward_model import RewardModel

    model = RewardModel.build(args.backbone, max_length=args.max_length).eval()
    rows = []
    for shape, prompt_words, response_words in (("long prompt", args.long_prompt_words, args.short_response_words),
                                                ("short prompt", args.short_prompt_words, args.long_response_words)):
        for n in args.n:
            prompt = text(prompt_words, 0)
            items = [(prompt, text(response_words + i % 5, i + 1)) for i in range(n)]
            plain, plain_s, plain_runs = best_time(args.repeats, lambda it=items: rk.score(model, it, args.batch_size))
            shared, shared_s, shared_runs = best_time(
                args.repeats, lambda it=items: rk.score(model, it, args.batch_size, share_prompts=True))
            diff = max(abs(a - b) for a, b in zip(plain.values, shared.values, strict=True))
            prompt_tokens = len(model.encoder.encode(prompt, "x").input_ids) - 1
            row = {"shape": shape, "n": n, "prompt_tokens": prompt_tokens,
                   "tokens_per_sequence_mean": sum(len(model.encoder.encode(p, r).input_ids) for p, r in items) / n,
                   "plain_seconds": round(plain_s, 4), "shared_seconds": round(shared_s, 4),
                   "plain_runs": plain_runs, "shared_runs": shared_runs,
                   "speedup_shared": round(plain_s / shared_s, 2), "max_abs_diff": diff}
            rows.append(row)
            print(f"score  {shape:<12} N={n:<3} prompt {prompt_tokens:>4} tok  plain {plain_s:7.3f}s  shared "
                  f"{shared_s:7.3f}s  x{row['speedup_shared']:<5} max|diff| {diff:.1e}", flush=True)
    return rows


def generate_part(args) -> list[dict]:
    import torch

    from rewardkit.generation import Sampling
    from rewardkit.generation.local import LocalGenerator

    generator = LocalGenerator(args.backbone, batch_size=max(args.generate_n))
    prompt = "Write one sentence about the sea."
    sampling = Sampling(max_new_tokens=args.max_new_tokens, temperature=1.0, seed=0)
    ids = torch.tensor([generator.prompt_ids(prompt)])

    def plain_loop(n):
        samples = []
        with torch.inference_mode():
            for j in range(n):
                torch.manual_seed(j)
                out = generator.model.generate(ids, do_sample=True, temperature=1.0, max_new_tokens=args.max_new_tokens,
                                               pad_token_id=generator.pad_id)
                samples.append(generator.decode(out[0, ids.shape[1]:]))
        return samples

    rows = []
    for n in args.generate_n:
        shared, shared_s, shared_runs = best_time(args.repeats, lambda n=n: generator.generate([prompt], n, sampling).samples[0])
        plain, plain_s, plain_runs = best_time(args.repeats, lambda n=n: plain_loop(n))
        shared_tokens, plain_tokens = sum(s.tokens for s in shared), sum(s.tokens for s in plain)
        row = {"n": n, "prompt_tokens": ids.shape[1], "max_new_tokens": args.max_new_tokens,
               "shared_seconds": round(shared_s, 4), "plain_seconds": round(plain_s, 4),
               "shared_runs": shared_runs, "plain_runs": plain_runs,
               "shared_tokens": shared_tokens, "plain_tokens": plain_tokens,
               "speedup_per_sample": round(plain_s / shared_s, 2),
               "speedup_per_token": round((shared_tokens / shared_s) / (plain_tokens / plain_s), 2)}
        rows.append(row)
        print(f"generate N={n:<3} batched {shared_s:7.3f}s ({shared_tokens} tok)  plain loop {plain_s:7.3f}s "
              f"({plain_tokens} tok)  x{row['speedup_per_sample']} per sample, x{row['speedup_per_token']} per token",
              flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbone", default="smollm2")
    parser.add_argument("--n", type=lambda s: [int(x) for x in s.split(",")], default=[4, 16, 64])
    parser.add_argument("--generate-n", type=lambda s: [int(x) for x in s.split(",")], default=[4, 8, 16])
    parser.add_argument("--long-prompt-words", type=int, default=300)
    parser.add_argument("--short-response-words", type=int, default=40)
    parser.add_argument("--short-prompt-words", type=int, default=40)
    parser.add_argument("--long-response-words", type=int, default=150)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--parts", default="score,generate")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "bon_speed.json"))
    args = parser.parse_args()

    import torch

    from rewardkit.model.machine import machine_info

    torch.set_num_threads(args.threads)
    result = {"benchmark": "bon_speed", "backbone": args.backbone, "threads": args.threads, "precision": "fp32",
              "batch_size": args.batch_size, "repeats": args.repeats, "machine": machine_info()}
    parts = args.parts.split(",")
    if "score" in parts:
        result["score"] = score_part(args)
    if "generate" in parts:
        result["generate"] = generate_part(args)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
