"""Which signal marks the pairs a reward model ranks wrongly? Reads the scored pairs that `rewardkit eval` (or a
recipe) saved under EVAL_DIR/scored/*.jsonl, so nothing is re-scored, and prints per suite the AUROC for
"the model is wrong" (0.5 = no signal) of:
- |margin|: a small |score(chosen) - score(rejected)|, the model's own confidence (every model);
- spread: the members' disagreement about P(chosen beats rejected), what `eval` reports for ensembles;
- z: a small |mean member margin| / std of the member margins;
- vote: a small share of members agreeing on the winner.

    python bench/uncertainty_signals.py runs/recipes/minilm-mix-models3/eval runs/sweeps/minilm-hh-rmb-512/eval

Prints and adds the result to bench/results/uncertainty_signals.json (keyed by eval directory).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rewardkit.eval.evaluate import confidence_results, uncertainty_results
from rewardkit.eval.metrics import auroc
from rewardkit.model.machine import machine_info


def signals(pairs: list[dict]) -> dict[str, float]:
    out = {"|margin|": confidence_results(pairs)["auroc_wrong"]}
    if "chosen_members" in pairs[0]:
        margins = np.array([np.subtract(r["chosen_members"], r["rejected_members"]) for r in pairs])  # [pairs, K]
        wrong = [r["score_margin"] < 0 for r in pairs]
        mean = margins.mean(axis=1)
        out["spread"] = uncertainty_results(pairs)["auroc_wrong"]
        out["z"] = auroc(-np.abs(mean) / (margins.std(axis=1) + 1e-6), wrong)
        out["vote"] = auroc(-np.abs(np.sign(margins).mean(axis=1)), wrong)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("eval_dirs", nargs="+", help="directories holding scored/SUITE.jsonl")
    parser.add_argument("--output", default="bench/results/uncertainty_signals.json")
    args = parser.parse_args()

    results = json.loads(Path(args.output).read_text()) if Path(args.output).exists() else {}
    for directory in args.eval_dirs:
        print(directory)
        per_suite = {}
        for path in sorted(Path(directory, "scored").glob("*.jsonl")):
            pairs = [r for r in map(json.loads, path.open()) if r.get("kind") == "pairwise" and not r.get("tie")]
            if not pairs:
                continue
            per_suite[path.stem] = {"pairs": len(pairs), **signals(pairs)}
            print(f"  {path.stem:12s} {len(pairs):5d} pairs  " +
                  "  ".join(f"{k} {v:.2f}" for k, v in per_suite[path.stem].items() if k != "pairs"))
        results[directory] = {**per_suite, "machine": machine_info()}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
