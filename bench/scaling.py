"""Where training time goes: one training step (forward + backward) per prompt as the sequence grows and as
the number of candidates K grows, with each response in its own row (the plain padded path) vs the prompt computed once for all K.

    python bench/scaling.py [--backbone smollm2] [--threads 2] [--precision auto]

Each measured step holds one prompt and K responses; the prompt takes 3/4 of the tokens, a response 1/4
(long prompts are the common case in multi-turn RLHF data). Lengths 128 -> 1024 at K = 2; K = 2 -> 8 at
length 256. Reports seconds per step, seconds per candidate and the FLOPs the step needs in each layout.
Writes bench/results/scaling.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="smollm2")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "scaling.json"))
    parser.add_argument("--smoke", action="store_true", help="two short points (32 tokens, K 2 and 4): checks that it runs")
    args = parser.parse_args()

    import torch

    from rewardkit import losses
    from rewardkit.model.flops import forward_flops
    from rewardkit.model.machine import machine_info
    from rewardkit.model.packing import Piece, pack
    from rewardkit.model.precision import autocast, resolve_precision
    from rewardkit.model.reward_model import RewardModel

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = RewardModel.build(args.backbone, max_length=4096)
    model.train()
    pad = model.tokenizer.pad_token_id
    causal = model.spec.is_decoder
    vocab = model.backbone.config.vocab_size

    def step(tokens: int, k: int, shared: bool) -> float:
        prompt_len, response_len = tokens * 3 // 4, tokens // 4
        prompt = torch.randint(100, vocab - 1, (prompt_len,)).tolist()
        responses = [torch.randint(100, vocab - 1, (response_len,)).tolist() for _ in range(k)]
        if shared:
            batch = pack([[Piece(prompt, r) for r in responses]], pad, causal, row_tokens=prompt_len + k * response_len)
        else:  # the plain path: one row per response, a 2D mask (equal lengths, so no padding at all)
            ids = torch.tensor([prompt + r for r in responses])
            batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        best = float("inf")
        for _ in range(args.repeats):
            model.zero_grad(set_to_none=True)
            started = time.perf_counter()
            with autocast(args.precision):
                rewards = model.score(batch).float()
            loss = losses.listwise_softmax(rewards.unsqueeze(0), torch.zeros(1, dtype=torch.long),
                                           torch.ones(1, k, dtype=torch.bool))
            loss.backward()
            best = min(best, time.perf_counter() - started)
        return best

    def flops(tokens: int, k: int, shared: bool) -> float:
        prompt_len, response_len = tokens * 3 // 4, tokens // 4
        lengths = [prompt_len + k * response_len] if shared else [tokens] * k
        return 3 * forward_flops(model.backbone, model.backbone.config, lengths)  # forward + backward ~ 3x forward

    rows = []
    grid = [(t, 2) for t in (128, 256, 512, 1024)] + [(256, k) for k in (4, 8)]
    if args.smoke:
        grid = [(32, 2), (32, 4)]
    for tokens, k in grid:
        row = {"tokens_per_sequence": tokens, "k": k}
        for layout, shared in (("padded", False), ("prefix_shared", True)):
            if shared and not causal:
                continue
            seconds = step(tokens, k, shared)
            row[layout] = {"seconds_per_step": round(seconds, 3), "seconds_per_candidate": round(seconds / k, 3),
                           "tflop_per_step": round(flops(tokens, k, shared) / 1e12, 3)}
        if "prefix_shared" in row:
            row["prefix_speedup"] = round(row["padded"]["seconds_per_step"] / row["prefix_shared"]["seconds_per_step"], 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = {"benchmark": "scaling", "backbone": args.backbone, "precision": resolve_precision(args.precision),
           "threads": args.threads, "prompt_share": 0.75, "machine": machine_info(), "rows": rows}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(out, indent=2))
    print(f"saved {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
