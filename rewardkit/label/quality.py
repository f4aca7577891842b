"""How good a campaign's labels are, computed from its labels as they arrive (the admin page shows it live).

- agreement: Cohen's kappa (two annotators) or Fleiss' kappa (more) over items that several annotators labelled
  (rewardkit.data.quality, the same numbers `rewardkit data check` reports), gold and repeated items left out;
- gold accuracy: per annotator, the share of gold items answered as the gold answer;
- self-consistency: per annotator, the share of repeated items answered as the first time;
- position bias (pairwise): the share of non-tie answers that picked the response shown first (0.5 = none);
- flagged: annotators whose gold accuracy (or, with no gold answered, self-consistency) is below the threshold.
"""

from __future__ import annotations

from collections import defaultdict

from rewardkit.data.quality import agreement
from rewardkit.label.tasks import label_key


def campaign_quality(kind: str, rows: list[dict], threshold: float = 0.7) -> dict:
    """The measures above from store.campaign_labels rows."""
    plain = [r for r in rows if r["gold"] is None and r["repeat_of"] is None]
    by_item: dict[int, dict] = defaultdict(dict)
    for r in plain:
        by_item[r["item"]][r["annotator"]] = label_key(kind, r["value"])
    people = sorted({r["annotator"] for r in rows})
    gold = {p: [label_key(kind, r["value"]) == label_key(kind, r["gold"]) for r in rows
                if r["annotator"] == p and r["gold"] is not None] for p in people}
    first = {(r["item"], r["annotator"]): label_key(kind, r["value"]) for r in rows if r["repeat_of"] is None}
    repeats = {p: [first.get((r["repeat_of"], p)) == label_key(kind, r["value"]) for r in rows
                   if r["annotator"] == p and r["repeat_of"] is not None and (r["repeat_of"], p) in first] for p in people}
    out = {"labels": len(rows), "agreement": agreement(list(by_item.values())), "annotators": {}}
    for p in people:
        mine = [r for r in rows if r["annotator"] == p]
        row = {"labels": len(mine),
               "gold_accuracy": _share(gold[p]), "gold_items": len(gold[p]),
               "self_consistency": _share(repeats[p]), "repeated_items": len(repeats[p])}
        if kind in ("pairwise", "clips"):
            row["picked_shown_first"] = _picked_shown_first(mine)
        score = row["gold_accuracy"] if row["gold_accuracy"] is not None else row["self_consistency"]
        row["flagged"] = score is not None and score < threshold
        out["annotators"][p] = row
    if kind in ("pairwise", "clips"):
        out["picked_shown_first"] = _picked_shown_first(rows)
    return out


def _picked_shown_first(rows: list[dict]) -> float | None:
    """Share of non-tie answers that chose the response shown first: choice 0 is the item's first response, shown
    first unless the assignment was flipped."""
    return _share([(r["value"]["choice"] == 0) != r["flipped"] for r in rows if r["value"]["choice"] != "tie"])


def _share(flags: list[bool]) -> float | None:
    return round(sum(flags) / len(flags), 4) if flags else None
