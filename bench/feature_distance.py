"""Does distance from the training data mark the pairs a reward model ranks wrongly?

An ensemble's spread and the model's own |margin| mark errors where the model was trained but not on the
out-of-distribution suites (README, "Uncertainty does not mark errors"). This measures a third signal, which
needs no ensemble: the Mahalanobis distance of a response's pooled representation h(x, y), the vector the reward
head reads, from the training responses' representations (mean and a shrunk covariance, as in Lee et al. 2018,
"A simple unified framework for detecting out-of-distribution samples"), and the cosine distance to the k-th
nearest training response (Sun et al. 2022, "Out-of-distribution detection with deep nearest neighbors").
A pair's distance is the mean of its two responses'.

It reads the scored pairs a recipe's evaluation saved (EVAL_DIR/scored/*.jsonl: texts and the model's margins),
re-encodes a sample of them and of the training records, and prints per suite the AUROC for "the model is wrong"
(0.5 = no signal) of a large distance and of a small |margin|, and the same pooled over all suites (an RL loop
sees a mixture, where a suite-level shift is itself the signal).

    python bench/feature_distance.py runs/sweeps/minilm-hh-rmb-512/runs/00/model \\
        runs/sweeps/minilm-hh-rmb-512/eval --train runs/sweeps/minilm-hh-rmb-512/data/train.jsonl

Prints and adds the result to bench/results/feature_distance.json (keyed by model directory).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np

from rewardkit.eval.metrics import auroc
from rewardkit.model.machine import machine_info
from rewardkit.model.reward_model import RewardModel
from rewardkit.model.scoring import encode_items, pooled_features


def training_items(path: Path, responses: int, seed: int) -> list[tuple]:
    """(prompt, response) items from a training file's pairs and lists, a seeded sample of `responses`."""
    items = []
    for line in path.open():
        r = json.loads(line)
        texts = [r["chosen"], r["rejected"]] if r.get("kind", "pairwise") == "pairwise" else r.get("responses", [])
        items += [(r.get("prompt", ""), t) for t in texts]
    random.Random(seed).shuffle(items)
    return items[:responses]


def fit_gaussian(features: np.ndarray, shrinkage: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and inverse covariance, the covariance shrunk towards its average variance (hidden size can exceed
    the sample, and a singular covariance makes every new direction infinitely far)."""
    mean = features.mean(axis=0)
    cov = np.cov(features - mean, rowvar=False)
    cov = (1 - shrinkage) * cov + shrinkage * np.trace(cov) / cov.shape[0] * np.eye(cov.shape[0])
    return mean, np.linalg.inv(cov)


def mahalanobis(features: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    centred = features - mean
    return np.sqrt(np.einsum("ij,jk,ik->i", centred, precision, centred))


def knn_distance(features: np.ndarray, reference: np.ndarray, k: int) -> np.ndarray:
    """1 - cosine similarity to the k-th most similar reference row."""
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    ref = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    return 1 - np.sort(unit @ ref.T, axis=1)[:, -k]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a rewardkit model directory")
    parser.add_argument("eval_dir", help="the directory holding that model's scored/SUITE.jsonl")
    parser.add_argument("--train", required=True, help="the model's training records (a recipe's data/train.jsonl)")
    parser.add_argument("--train-responses", type=int, default=1200, help="training responses to fit the Gaussian on")
    parser.add_argument("--per-suite", type=int, default=300, help="pairs sampled per suite")
    parser.add_argument("--shrinkage", type=float, default=0.1)
    parser.add_argument("--k", type=int, default=10, help="the neighbour whose distance counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="bench/results/feature_distance.json")
    args = parser.parse_args()

    model = RewardModel.load(args.model)
    start = time.perf_counter()

    def features(items: list[tuple]) -> np.ndarray:
        return pooled_features(model, encode_items(model, items), batch_size=16, progress=True).numpy()

    reference = features(training_items(Path(args.train), args.train_responses, args.seed))
    mean, precision = fit_gaussian(reference, args.shrinkage)
    per_suite, pooled = {}, {"distance": [], "knn": [], "margin": [], "wrong": []}
    for path in sorted(Path(args.eval_dir, "scored").glob("*.jsonl")):
        pairs = [r for r in map(json.loads, path.open()) if r.get("kind") == "pairwise" and not r.get("tie")]
        random.Random(args.seed).shuffle(pairs)
        pairs = pairs[: args.per_suite]
        if not pairs:
            continue
        h = features([(r.get("prompt", ""), r["chosen"]) for r in pairs] + [(r.get("prompt", ""), r["rejected"]) for r in pairs])
        distance = mahalanobis(h, mean, precision).reshape(2, len(pairs)).mean(axis=0)
        knn = knn_distance(h, reference, args.k).reshape(2, len(pairs)).mean(axis=0)
        margin = np.array([abs(r["score_margin"]) for r in pairs])
        wrong = [r["score_margin"] < 0 for r in pairs]
        per_suite[path.stem] = {"pairs": len(pairs), "accuracy": 1 - float(np.mean(wrong)),
                                "mean_distance": float(distance.mean()),
                                "distance_auroc": auroc(distance, wrong), "knn_auroc": auroc(knn, wrong),
                                "small_margin_auroc": auroc(-margin, wrong)}
        for key, values in (("distance", distance), ("knn", knn), ("margin", margin), ("wrong", wrong)):
            pooled[key].extend(np.asarray(values).tolist())
    per_suite["all suites"] = {"pairs": len(pooled["wrong"]), "accuracy": 1 - float(np.mean(pooled["wrong"])),
                               "mean_distance": float(np.mean(pooled["distance"])),
                               "distance_auroc": auroc(pooled["distance"], pooled["wrong"]),
                               "knn_auroc": auroc(pooled["knn"], pooled["wrong"]),
                               "small_margin_auroc": auroc(-np.array(pooled["margin"]), pooled["wrong"])}
    for name, row in per_suite.items():
        print(f"{name:12s} {row['pairs']:5d} pairs  accuracy {row['accuracy']:.3f}  distance {row['mean_distance']:6.1f}  "
              f"AUROC distance {row['distance_auroc']:.2f}  knn {row['knn_auroc']:.2f}  |margin| {row['small_margin_auroc']:.2f}")
    print(f"{time.perf_counter() - start:.0f} s")

    output = Path(args.output)
    results = json.loads(output.read_text()) if output.exists() else {}
    results[args.model] = {"eval_dir": args.eval_dir, "train": args.train, "train_responses": args.train_responses,
                           "shrinkage": args.shrinkage, "k": args.k, "suites": per_suite, "machine": machine_info()}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
