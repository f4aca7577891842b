"""Label Studio's JSON task format, both ways, for pairwise preferences.

Label Studio's pairwise set-up (its "Pairwise" control over two texts, as in its human-preference template):
  task    {"id": N, "data": {"prompt": "...", "answer1": "...", "answer2": "..."}, "annotations": [ANNOTATION, ...]}
  ANNOTATION {"completed_by": ID or {"email": ...}, "result": [{"from_name": "comparison", "to_name": "answer1",
             "type": "pairwise", "value": {"selected": "left" | "right"}}]}
"left" is answer1. Label Studio's Pairwise control has no tie: rewardkit ties are left out of the annotations
(and counted), not turned into a side.
"""

from __future__ import annotations

import json
from pathlib import Path

from rewardkit.errors import DataError

LABEL_CONFIG = """<View>
  <Text name="prompt" value="$prompt"/>
  <Pairwise name="comparison" toName="answer1,answer2"/>
  <Text name="answer1" value="$answer1"/>
  <Text name="answer2" value="$answer2"/>
</View>"""


def to_label_studio(contents: list[dict], rows: list[dict]) -> tuple[list[dict], int]:
    """Tasks for pairwise items with their labels as annotations; and how many tie labels were left out."""
    tasks = [{"id": i + 1, "data": {"prompt": c["prompt"], "answer1": c["responses"][0], "answer2": c["responses"][1]},
              "annotations": []} for i, c in enumerate(contents)]
    ties, seen = 0, set()
    for r in rows:
        if (r["source_index"], r["annotator"]) in seen:  # a repeat: the first answer counts, as in export.py
            continue
        seen.add((r["source_index"], r["annotator"]))
        choice = r["value"]["choice"]
        if choice == "tie":
            ties += 1
            continue
        tasks[r["source_index"]]["annotations"].append({
            "completed_by": {"email": r["annotator"]},
            "result": [{"from_name": "comparison", "to_name": "answer1", "type": "pairwise",
                        "value": {"selected": "left" if choice == 0 else "right"}}]})
    return tasks, ties


def from_label_studio(path: str | Path, prompt: str = "prompt", first: str = "answer1", second: str = "answer2") -> list[dict]:
    """Pairwise records from a Label Studio JSON export: one per task with at least one pairwise answer, chosen by
    majority (the task's order on a tie, with "tie": true), "probability" the share for the chosen side, and
    "annotator_labels" by annotator (their email, or their id)."""
    try:
        tasks = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not a Label Studio JSON export ({err})") from None
    if not isinstance(tasks, list):
        raise DataError(f"{path}: a Label Studio export is a JSON list of tasks")
    records = []
    for t, task in enumerate(tasks):
        where = f"{path}: task {task.get('id', t + 1) if isinstance(task, dict) else t + 1}"
        data = task.get("data") if isinstance(task, dict) else None
        if not isinstance(data, dict) or first not in data or second not in data:
            raise DataError(f"{where}.data: needs '{first}' and '{second}' (set other names with --first / --second)")
        votes: dict[str, str] = {}
        for a, annotation in enumerate(task.get("annotations") or []):
            who = annotation.get("completed_by", f"annotation {a + 1}")
            who = str(who.get("email") or who.get("id")) if isinstance(who, dict) else str(who)
            for result in annotation.get("result") or []:
                if result.get("type") != "pairwise":
                    continue
                side = (result.get("value") or {}).get("selected")
                if side not in ("left", "right"):
                    raise DataError(f"{where}.annotations[{a}]: a pairwise result selects 'left' or 'right', got {side!r}")
                votes[who] = side
        if not votes:
            continue
        left = sum(v == "left" for v in votes.values())
        right = len(votes) - left
        swap = right > left
        chosen, rejected = (data[second], data[first]) if swap else (data[first], data[second])
        record = {"kind": "pairwise", "prompt": data.get(prompt, ""), "chosen": chosen, "rejected": rejected,
                  "probability": round(max(left, right) / len(votes), 4),
                  "annotator_labels": {w: "chosen" if (v == "right") == swap else "rejected" for w, v in votes.items()}}
        if left == right:
            record["tie"] = True
        records.append(record)
    return records
