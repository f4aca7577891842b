"""How different are an ensemble's members? Pearson correlation between members' scores and between their
pair margins on a set of pairwise records (e.g. a recipe's validation split), for an ensemble of K heads or of
K models. Members that agree almost perfectly cannot give a useful uncertainty.

    python bench/ensemble_diversity.py runs/recipes/minilm-mix-models3 runs/recipes/minilm-mix-models3/data/validation.jsonl

Prints and adds the result to bench/results/ensemble_diversity.json (keyed by model directory).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="rewardkit ensemble (K heads or K models), or a training / recipe output")
    parser.add_argument("records", help="pairwise records to score")
    parser.add_argument("--max-pairs", type=int, default=200)
    parser.add_argument("--output", default="bench/results/ensemble_diversity.json")
    args = parser.parse_args()

    import rewardkit as rk
    from rewardkit.model.machine import machine_info

    model = rk.load_model(args.model)
    if model.spec.ensemble < 2:
        raise SystemExit(f"{args.model} is not an ensemble")
    pairs = [r for r in rk.iter_records(args.records) if r["kind"] == "pairwise"][: args.max_pairs]
    items = [(r["prompt"], response) for r in pairs for response in (r["chosen"], r["rejected"])]
    scores = np.array(rk.score(model, items, precision="auto").members).T                      # [K, 2 * pairs]
    margins = scores[:, 0::2] - scores[:, 1::2]       # [K, pairs]
    k = len(scores)

    def off_diagonal(matrix):
        return [round(float(matrix[i, j]), 3) for i in range(k) for j in range(i + 1, k)]

    result = {"members": k, "pairs": len(pairs), "records": args.records,
              "score_correlation": off_diagonal(np.corrcoef(scores)),
              "margin_correlation": off_diagonal(np.corrcoef(margins)), "machine": machine_info()}
    print(json.dumps(result, indent=2))
    output = Path(args.output)
    saved = json.loads(output.read_text()) if output.exists() else {}
    saved[args.model] = result
    output.write_text(json.dumps(saved, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
