"""Reading a record: which kind it is, and its validation by that kind (rewardkit.data.kinds).

Every reader hands raw dicts to `normalize_record`, which either returns a clean record or raises
`DataError` naming the source, the line (or record index) and the field. A normalised record is a plain
dict, like a `datasets` row, with a `kind` key:

pairwise  prompt?, chosen, rejected, margin?, tie?, id?, category?, annotator_labels?
ranking   prompt, responses[K], ranking[K] (rank per response, 1 = best, ties share a rank) or best
rating    prompt, response, score or scores{attribute: number}, annotator?
stepwise  prompt, steps[], labels[] (bool or float in [0, 1] per step)

A *text* is a string or a conversation (a list of {role, content}, rewardkit.data.texts). Pairwise records may
also carry numeric feature vectors or trajectories (lists of vectors) instead of texts, for MLP reward models.
Keys the schema does not know are kept untouched, so nothing a user stored is lost on a round trip.
"""

from __future__ import annotations

from typing import Any

from rewardkit.data.kinds import KINDS
from rewardkit.errors import DataError


def infer_kind(raw: dict) -> str:
    """The kind of a raw record, from an explicit `kind` key or from the fields it has."""
    if "kind" in raw:
        kind = raw["kind"]
        if not isinstance(kind, str) or kind not in KINDS:
            raise DataError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}", field="kind")
        return kind
    if "chosen" in raw or "rejected" in raw:
        return "pairwise"
    if "responses" in raw:
        return "ranking"
    if "steps" in raw:
        return "stepwise"
    if "response" in raw:
        return "rating"
    raise DataError(
        "cannot tell the record's kind: expected 'chosen'/'rejected' (pairwise), 'responses' (ranking), "
        f"'response' + 'score' (rating) or 'steps' + 'labels' (stepwise); found keys {sorted(raw)[:8]}"
    )


def normalize_record(raw: Any, source: str | None = None, line: int | None = None) -> dict:
    """Validate one raw record and return its normalised form, or raise DataError with its location."""
    try:
        if not isinstance(raw, dict):
            raise DataError(f"a record must be a JSON object, got {type(raw).__name__}")
        kind = infer_kind(raw)
        record = dict(raw)
        record["kind"] = kind
        KINDS[kind].validate(record)
        return record
    except DataError as err:
        raise DataError(err.message, source=source, line=line, field=err.field) from None
