"""A campaign's labels back to rewardkit records, ready for `rewardkit data check` and `rewardkit train`.

One record per labelled item (repeats folded into their item; the first answer of each annotator counts):
  pairwise  chosen / rejected by majority (the item's order on a tie, with "tie": true), "probability" = P(chosen is
            better) with a tie counting half (a soft label), "annotator_labels" {name: chosen | rejected | tie}
  ranking   "ranking" by mean rank (1 = best; equal means share a rank), "annotator_rankings" {name: ranking}
  rating    "scores" {attribute: mean score}, "annotator_scores" {name: scores}
  stepwise  "labels" true before the majority's first wrong step and false from it on, "annotator_first_wrong"
  clips     a control segment pair {"a", "b", "label": P(a is preferred), a tie counting half} for `control fit`
Every record carries "annotations" (how many people labelled it) and "source_index" (its line in the source).
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np


def export_records(kind: str, contents: list[dict], rows: list[dict]) -> list[dict]:
    """Records for the items with at least one label, in source order."""
    answers: dict[int, dict] = defaultdict(dict)
    for r in rows:  # rows come in submission order; an item's repeat keeps the first answer
        answers[r["source_index"]].setdefault(r["annotator"], r["value"])
    return [EXPORTERS[kind](contents[i], answers[i]) | {"annotations": len(answers[i]), "source_index": i}
            for i in sorted(answers)]


def pairwise(item: dict, answers: dict) -> dict:
    votes = Counter(v["choice"] for v in answers.values())
    first, second = item["responses"]
    p_first = (votes[0] + 0.5 * votes["tie"]) / len(answers)
    swap = votes[1] > votes[0]
    chosen, rejected = (second, first) if swap else (first, second)
    names = {0: "rejected" if swap else "chosen", 1: "chosen" if swap else "rejected", "tie": "tie"}
    record = {"kind": "pairwise", "prompt": item["prompt"], "chosen": chosen, "rejected": rejected,
              "probability": round(1 - p_first if swap else p_first, 4),
              "annotator_labels": {who: names[v["choice"]] for who, v in answers.items()}}
    if votes[0] == votes[1]:
        record["tie"] = True
    return record


def ranking(item: dict, answers: dict) -> dict:
    n = len(item["responses"])
    ranks = {who: [v["order"].index(i) + 1 for i in range(n)] for who, v in answers.items()}
    mean = np.mean(list(ranks.values()), axis=0)
    levels = sorted(set(mean.round(6)))
    return {"kind": "ranking", "prompt": item["prompt"], "responses": item["responses"],
            "ranking": [levels.index(m) + 1 for m in mean.round(6)], "annotator_rankings": ranks}


def rating(item: dict, answers: dict) -> dict:
    attributes = sorted({a for v in answers.values() for a in v["scores"]})
    scores = {a: round(float(np.mean([v["scores"][a] for v in answers.values()])), 4) for a in attributes}
    return {"kind": "rating", "prompt": item["prompt"], "response": item["responses"][0], "scores": scores,
            "annotator_scores": {who: v["scores"] for who, v in answers.items()}}


def steps(item: dict, answers: dict) -> dict:
    votes = Counter(v["first_wrong"] for v in answers.values())
    first_wrong = min(votes, key=lambda k: (-votes[k], -1 if k is None else k))  # the most votes; ties: the earliest
    n = len(item["steps"])
    cut = n if first_wrong is None else first_wrong
    return {"kind": "stepwise", "prompt": item["prompt"], "steps": item["steps"],
            "labels": [i < cut for i in range(n)],
            "annotator_first_wrong": {who: v["first_wrong"] for who, v in answers.items()}}


def clips(item: dict, answers: dict) -> dict:
    votes = Counter(v["choice"] for v in answers.values())
    a, b = item["segments"]
    return {"a": a, "b": b, "label": round((votes[0] + 0.5 * votes["tie"]) / len(answers), 4),
            "annotator_labels": {who: {0: "a", 1: "b", "tie": "tie"}[v["choice"]] for who, v in answers.items()}}


EXPORTERS = {"pairwise": pairwise, "ranking": ranking, "rating": rating, "steps": steps, "clips": clips}
