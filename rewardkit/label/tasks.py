"""Each task kind as a plain table of small functions: the item a record becomes, its gold answer, how a submitted
form becomes a label, and the label's key for agreement.

A label is always in the item's own terms, never in the order the annotator saw it:
  pairwise  {"choice": 0 | 1 | "tie", "strength": 1-3 (optional)}   (0 = the item's first response)
  ranking   {"order": [indices of responses, best first]}
  rating    {"scores": {attribute: 1..scale}}
  steps     {"first_wrong": index of the first wrong step, or null when every step is right}
  clips     {"choice": 0 | 1 | "tie"}   (two trajectory segments, as pairwise)
"""

from __future__ import annotations

from rewardkit.errors import DataError


class FormError(ValueError):
    """A submitted form that is not a label for its item; the message says what is wrong."""


# ---------------------------------------------------------------- records -> items

def read_for_labelling(path: str, most_candidates: int = 4) -> tuple[list[dict], int]:
    """(records, left out) from a file of rewardkit records, `rewardkit bon` output (bon_record; a record with fewer
    than two usable candidates is left out and counted), or control segment pairs ({"a", "b", "label"?} per line:
    shown as clips)."""
    from rewardkit.control.segments import check_pair, segment_from_json
    from rewardkit.data.io import iter_raw, read_records

    raws = list(iter_raw(path))
    first = raws[0][1] if raws else {}
    if isinstance(first, dict) and "candidates" in first and "provenance" in first:
        records = []
        for line, raw in raws:
            if not isinstance(raw, dict) or not isinstance(raw.get("candidates"), list):
                raise DataError("not a `rewardkit bon` record (needs candidates)", source=path, line=line)
            records.append(bon_record(raw, most_candidates))
        kept = [r for r in records if len(r.get("responses", [0, 0])) >= 2]
        return kept, len(records) - len(kept)
    if not (isinstance(first, dict) and "a" in first and "b" in first):
        return read_records(path).records, 0
    records = []
    for i, record in raws:
        a = segment_from_json(record.get("a") if isinstance(record, dict) else None, f"{path}: record {i}.a")
        b = segment_from_json(record.get("b"), f"{path}: record {i}.b")
        check_pair(a, b, f"{path}: record {i}")
        records.append({**record, "a": a.to_json(), "b": b.to_json()})
    return records, 0


def bon_record(record: dict, most: int = 4) -> dict:
    """A `rewardkit bon` output record as a ranking record of at most `most` of its candidates: evenly spaced in the
    reward model's order, from its best to its worst (failed or empty candidates left out), so people rank what the
    model spread apart; two candidates make a pairwise record."""
    usable = [c for c in record["candidates"] if c.get("response") not in (None, "") and c.get("value") is not None]
    usable.sort(key=lambda c: -c["value"])
    if len(usable) > most:
        usable = [usable[round(i * (len(usable) - 1) / (most - 1))] for i in range(most)]
    responses = [c["response"] for c in usable]
    if len(responses) == 2:
        return {"kind": "pairwise", "prompt": record["prompt"], "chosen": responses[0], "rejected": responses[1]}
    return {"kind": "ranking", "prompt": record["prompt"], "responses": responses}


def item_from_record(record: dict, where: str) -> tuple[str, dict, dict | None]:
    """(kind, item, gold label or None) for a rewardkit record, or a control segment pair ({"a", "b"}, shown as
    clips); gold when the record has "gold": true."""
    kind = record.get("kind")
    if "a" in record and "b" in record:
        a, b = record["a"], record["b"]
        item = {"prompt": a.get("instruction") or "", "segments": [a, b]}
        label = record.get("label")
        gold = {"choice": "tie" if label == 0.5 else 0 if label == 1 else 1} if label in (0, 0.5, 1) else None
        return "clips", item, (gold if record.get("gold") else None)
    if kind == "pairwise":
        item = {"prompt": record.get("prompt", ""), "responses": [record["chosen"], record["rejected"]]}
        gold = {"choice": "tie" if record.get("tie") else 0}
    elif kind == "ranking":
        item = {"prompt": record["prompt"], "responses": list(record["responses"])}
        gold = {"order": sorted(range(len(record["ranking"])), key=lambda i: record["ranking"][i])} if "ranking" in record else None
    elif kind == "rating":
        item = {"prompt": record["prompt"], "responses": [record["response"]]}
        scores = record.get("scores") or ({"score": record["score"]} if "score" in record else {})
        gold = {"scores": {k: int(round(v)) for k, v in scores.items()}} if scores else None
    elif kind == "stepwise":
        item = {"prompt": record["prompt"], "steps": list(record["steps"])}
        wrong = [i for i, ok in enumerate(record.get("labels") or []) if ok is False or (not isinstance(ok, bool) and ok < 0.5)]
        gold = {"first_wrong": wrong[0] if wrong else None} if record.get("labels") else None
        kind = "steps"
    else:
        raise DataError(f"{where}: records of kind {kind!r} cannot be labelled here (pairwise, ranking, rating, stepwise)")
    return kind, item, (gold if record.get("gold") else None)


# ---------------------------------------------------------------- forms -> labels

def shown_order(kind: str, item: dict, flipped: bool) -> list[int]:
    """The order the item's responses are shown in: reversed when the assignment is flipped."""
    n = len(item.get("responses", item.get("segments", [])))
    order = list(range(n))
    return order[::-1] if flipped and kind in ("pairwise", "ranking", "clips") else order


def parse_form(kind: str, item: dict, order: list[int], form: dict, attributes: list[str], scale: int) -> dict:
    """The label a submitted form gives, in the item's own terms; FormError when it is not one."""
    if kind in ("pairwise", "clips"):
        choice = form.get("choice")
        if choice == "tie":
            value: dict = {"choice": "tie"}
        elif choice in ("A", "B"):
            value = {"choice": order[0 if choice == "A" else 1]}
        else:
            raise FormError("choose A, B or tie")
        if form.get("strength"):
            strength = _integer(form["strength"], "strength")
            if not 1 <= strength <= 3:
                raise FormError("strength must be 1, 2 or 3")
            value["strength"] = strength
        return value
    if kind == "ranking":
        ranks = [_integer(form.get(f"rank_{shown}"), f"rank of response {shown + 1}") for shown in range(len(order))]
        if sorted(ranks) != list(range(1, len(order) + 1)):
            raise FormError(f"give each response a different rank from 1 to {len(order)}")
        return {"order": [order[shown] for shown in sorted(range(len(order)), key=lambda s: ranks[s])]}
    if kind == "rating":
        scores = {a: _integer(form.get(f"score_{a}"), f"score for {a}") for a in attributes}
        if any(not 1 <= s <= scale for s in scores.values()):
            raise FormError(f"scores go from 1 to {scale}")
        return {"scores": scores}
    if kind == "steps":
        first = form.get("first_wrong")
        if first in (None, "", "none"):
            return {"first_wrong": None}
        index = _integer(first, "first wrong step")
        if not 0 <= index < len(item["steps"]):
            raise FormError(f"the first wrong step must be one of the {len(item['steps'])} steps, or none")
        return {"first_wrong": index}
    raise FormError(f"unknown task kind {kind!r}")


def _integer(value, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise FormError(f"{what}: a whole number is needed") from None


def label_key(kind: str, value: dict):
    """What two labels must share to agree (strength and order of attributes do not count)."""
    if kind in ("pairwise", "clips"):
        return value["choice"]
    if kind == "ranking":
        return tuple(value["order"])
    if kind == "rating":
        return tuple(sorted(value["scores"].items()))
    return value["first_wrong"]
