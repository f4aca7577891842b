"""Stepwise records: a prompt, the steps of a solution and a label per step (bool, or a float in [0, 1]).

Scored as one response, the steps joined by newlines (an outcome reward): response_score, and for an ensemble
response_members and response_uncertainty. Not trained on yet: no step-level objective.
"""

from __future__ import annotations

import math

from rewardkit.data.kinds.base import Kind, with_spread
from rewardkit.data.texts import check_text
from rewardkit.errors import DataError


class Stepwise(Kind):
    name = "stepwise"

    def validate(self, r: dict) -> None:
        """Check the record's fields in place (normalising them), or raise DataError naming the field."""
        r["prompt"] = check_text(r.get("prompt"), "prompt")
        steps, labels = r.get("steps"), r.get("labels")
        if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
            raise DataError("must be a non-empty list of strings", field="steps")
        if not isinstance(labels, list) or len(labels) != len(steps):
            raise DataError(f"must give one label per step ({len(steps)} steps)", field="labels")
        clean = []
        for label in labels:
            if isinstance(label, bool):
                clean.append(label)
            elif isinstance(label, int | float) and math.isfinite(label) and 0.0 <= label <= 1.0:
                clean.append(float(label))
            else:
                raise DataError(f"labels must be booleans or numbers in [0, 1], got {label!r}", field="labels")
        r["labels"] = clean

    def responses(self, record: dict) -> list:
        return ["\n".join(record["steps"])]

    def write_scores(self, record: dict, scores: list[float], members: list[list[float]] | None) -> None:
        record["response_score"] = scores[0]
        with_spread(record, "response", None if members is None else members[0])


STEPWISE = Stepwise()
