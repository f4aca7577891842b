"""Reward over-optimisation curves: the gold score of the best-of-n pick of several reward models, n = 1 ... 64.

    python bench/overoptimisation.py --model default=demo-output/run/model \
        --model ensemble-min=runs/ensemble/model:min --model prm=runs/recipes/minilm-prm/run/model ...

Pools come from the built-in simulated policy (rewardkit.data.rules.candidate_pools, held-out templates): for each
prompt, --m candidates with a gold value a rule decides (the arithmetic answer is right; the fact is right; the
instruction's constraint is kept; a harmful request is refused and a benign one helped) and that no reward model sees; a third of the candidates carry confident filler unrelated to being right. Each --model
NAME=DIR[:RULE] scores every candidate (a process reward model gets arithmetic solutions as steps, the others
the solution as one text), and rewardkit.bon.curve gives the exact expected proxy and gold score of the best-of-n
pick (no resampling noise), beside the gold-best of n (the ceiling) and the KL bound log n - (n-1)/n. RULE is
mean (default), lcb (mean - std over an ensemble's members) or min.

Writes --output (JSON: per task and model, the rows of the curve and the counts) and one PNG per task beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse_model(spec: str) -> tuple[str, str, str]:
    name, _, rest = spec.partition("=")
    path, _, rule = rest.partition(":")
    if not name or not path:
        raise SystemExit(f"--model wants NAME=DIR[:RULE], got {spec!r}")
    return name, path, rule or "mean"


def run_task(task: str, models: list[tuple[str, str, str]], args) -> dict:
    from rewardkit.bon import Pool, best_of_n, curve, score_pools
    from rewardkit.data.rules import candidate_pools
    from rewardkit.eval.scorers import load_scorer

    raw = candidate_pools(task, args.prompts, args.m, args.seed, "test")
    out = {"prompts": len(raw), "candidates_per_prompt": args.m,
           "gold_mean": sum(sum(p["gold"]) for p in raw) / sum(len(p["gold"]) for p in raw), "models": {}}
    scored: dict[str, tuple] = {}  # a model named with several rules is scored once
    for name, path, rule in models:
        started = time.perf_counter()
        if path not in scored:
            scorer = load_scorer(path, args.batch_size, progress=False)
            as_steps = scorer.steps and task == "arithmetic"  # a process reward model reads the solution's steps
            pools = [Pool(p["prompt"], [r if as_steps or isinstance(r, str) else " ".join(r) for r in p["responses"]],
                          p["gold"], p["id"]) for p in raw]
            scored[path] = (pools, score_pools(scorer, pools), as_steps)
        pools, scores, as_steps = scored[path]
        records, counts = best_of_n(pools, scores, rule, args.k)
        rows = curve([[c["value"] for c in r["candidates"]] for r in records], [p.gold for p in pools], args.ns)
        out["models"][name] = {"path": path, "rule": rule, "steps": as_steps, "counts": counts, "rows": rows,
                               "seconds": round(time.perf_counter() - started, 1)}
        peak = max(rows, key=lambda r: r["gold"])
        print(f"{task:<10} {name:<16} gold at n=1 {rows[0]['gold']:.3f}  best {peak['gold']:.3f} (n={peak['n']})  "
              f"at n={rows[-1]['n']} {rows[-1]['gold']:.3f}  ceiling {rows[-1]['gold_oracle']:.3f}", flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", required=True, help="NAME=DIR[:RULE] (repeat)")
    parser.add_argument("--tasks", default="arithmetic,facts,instructions,safety")
    parser.add_argument("--prompts", type=int, default=100)
    parser.add_argument("--m", type=int, default=64, help="candidates per prompt")
    parser.add_argument("--ns", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4, 8, 16, 32, 64])
    parser.add_argument("--k", type=float, default=1.0, help="the k of the lcb rule")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "overoptimisation.json"))
    args = parser.parse_args()

    import torch

    from rewardkit.bon import plot_curves
    from rewardkit.model.machine import machine_info

    torch.set_num_threads(args.threads)
    models = [parse_model(m) for m in args.model]
    result = {"benchmark": "overoptimisation", "command": " ".join(["python", *sys.argv]), "seed": args.seed,
              "machine": machine_info(), "tasks": {}}
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    for task in args.tasks.split(","):
        result["tasks"][task] = run_task(task, models, args)
        plot_curves({name: m["rows"] for name, m in result["tasks"][task]["models"].items()},
                    output.with_name(f"{output.stem}_{task}.png"),
                    f"best-of-n on the built-in {task} pools: the reward models' pick, judged by the rule")
    output.write_text(json.dumps(result, indent=2))
    print(f"wrote {output} and {output.stem}_*.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
