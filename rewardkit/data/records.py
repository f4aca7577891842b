"""Record schemas: the four kinds of feedback rewardkit learns from, and their validation.

Every reader hands raw dicts to `normalize_record`, which either returns a clean record or raises
`DataError` naming the source, the line (or record index) and the field. A normalised record is a plain
dict, like a `datasets` row, with a `kind` key:

pairwise  prompt?, chosen, rejected, margin?, tie?, id?, category?, annotator_labels?
ranking   prompt, responses[K], ranking[K] (rank per response, 1 = best, ties share a rank) or best
rating    prompt, response, score or scores{attribute: number}, annotator?
stepwise  prompt, steps[], labels[] (bool or float in [0, 1] per step)

A *text* is a string or a conversation (a list of {role, content}). Pairwise records may also carry
numeric feature vectors or trajectories (lists of vectors) instead of texts, for MLP reward models.
Keys the schema does not know are kept untouched, so nothing a user stored is lost on a round trip.
"""

from __future__ import annotations

import math
from typing import Any

KINDS = ("pairwise", "ranking", "rating", "stepwise")
ROLES = {"system", "user", "assistant", "tool", "human", "gpt", "function"}
ANNOTATOR_CHOICES = {"chosen", "rejected", "tie"}


class DataError(ValueError):
    """A record that cannot be used, with where it came from. The only error readers raise."""

    def __init__(self, message: str, source: str | None = None, line: int | None = None, field: str | None = None):
        self.message, self.source, self.line, self.field = message, source, line, field
        where = []
        if source is not None:
            where.append(str(source))
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(": ".join([*where, message]))


def infer_kind(raw: dict) -> str:
    """The kind of a raw record, from an explicit `kind` key or from the fields it has."""
    if "kind" in raw:
        kind = raw["kind"]
        if kind not in KINDS:
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
        _NORMALIZERS[kind](record)
        return record
    except DataError as err:
        raise DataError(err.message, source=source, line=line, field=err.field) from None


# ---------------------------------------------------------------- texts

def is_conversation(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(m, dict) for m in value)


def check_text(value: Any, field: str, allow_empty: bool = False) -> Any:
    """A text is a string or a list of {role, content} messages."""
    if isinstance(value, str):
        if not allow_empty and not value.strip():
            raise DataError("is empty", field=field)
        return value
    if is_conversation(value) and value:
        for i, message in enumerate(value):
            role, content = message.get("role"), message.get("content")
            if not isinstance(role, str) or role not in ROLES:
                raise DataError(f"message {i} has role {role!r}; expected one of {sorted(ROLES)}", field=field)
            if not isinstance(content, str):
                raise DataError(f"message {i} needs a string 'content', got {type(content).__name__}", field=field)
        return value
    if value is None:
        raise DataError("is missing", field=field)
    raise DataError(f"must be a string or a list of {{role, content}} messages, got {type(value).__name__}", field=field)


def text_of(value: Any) -> str:
    """Plain text of a string or a conversation, for lengths, hashing and display."""
    if isinstance(value, str):
        return value
    if is_conversation(value):
        return "\n".join(f"{m['role']}: {m['content']}" for m in value)
    return str(value)


def _check_number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DataError(f"must be a number, got {value!r}", field=field)
    if not math.isfinite(value):
        raise DataError(f"must be finite, got {value!r}", field=field)
    return float(value)


def _check_features(value: Any, field: str) -> list:
    """A feature vector [x...] or a trajectory [[x...], ...] of equal-width vectors."""
    if not isinstance(value, list) or not value:
        raise DataError("must be a non-empty feature vector or trajectory (list of vectors)", field=field)
    steps = value if isinstance(value[0], list) else [value]
    width = len(steps[0])
    for t, step in enumerate(steps):
        if not isinstance(step, list) or len(step) != width or width == 0:
            raise DataError(f"trajectory step {t} must be a list of {width or 'some'} numbers", field=field)
        for x in step:
            _check_number(x, field)
    return value


def is_features(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(v, list) or (isinstance(v, int | float) and not isinstance(v, bool)) for v in value
    )


def split_shared_prefix(chosen: Any, rejected: Any) -> tuple[Any, Any, Any]:
    """Find an implicit prompt that chosen and rejected share as a prefix.

    Conversations: the leading messages both share. Strings: the shared text up to the last
    "\\n\\nAssistant:" marker (HH-RLHF transcripts) or else the last line break inside the shared prefix.
    Returns (prompt, chosen_rest, rejected_rest); prompt is "" when nothing is shared.
    """
    if is_conversation(chosen) and is_conversation(rejected):
        n = 0
        while n < min(len(chosen), len(rejected)) - 1 and chosen[n] == rejected[n]:
            n += 1
        return chosen[:n], chosen[n:], rejected[n:]
    if isinstance(chosen, str) and isinstance(rejected, str):
        n = 0
        limit = min(len(chosen), len(rejected))
        while n < limit and chosen[n] == rejected[n]:
            n += 1
        shared = chosen[:n]
        marker = "\n\nAssistant:"
        cut = shared.rfind(marker)
        cut = cut + len(marker) if cut >= 0 else shared.rfind("\n") + 1
        return chosen[:cut], chosen[cut:], rejected[cut:]
    return "", chosen, rejected


# ---------------------------------------------------------------- kinds

def _pairwise(r: dict) -> None:
    for field in ("chosen", "rejected"):
        if field not in r:
            raise DataError("is missing", field=field)
    if is_features(r["chosen"]) or is_features(r["rejected"]):
        # Numeric records (robot states/actions): both sides must be features of the same width.
        r["chosen"] = _check_features(r["chosen"], "chosen")
        r["rejected"] = _check_features(r["rejected"], "rejected")
        if _width(r["chosen"]) != _width(r["rejected"]):
            raise DataError("chosen and rejected have different feature widths", field="rejected")
        r.setdefault("prompt", "")
    else:
        # Empty responses are allowed: "say nothing" is a real answer (HH-RLHF and RMB have some).
        r["chosen"] = check_text(r["chosen"], "chosen", allow_empty=True)
        r["rejected"] = check_text(r["rejected"], "rejected", allow_empty=True)
        if r.get("prompt") in (None, "", []):
            r["prompt"], r["chosen"], r["rejected"] = split_shared_prefix(r["chosen"], r["rejected"])
            if r["chosen"] == [] or r["rejected"] == []:
                raise DataError("chosen and rejected are the same conversation", field="rejected")
        else:
            r["prompt"] = check_text(r["prompt"], "prompt", allow_empty=True)
    if r.get("margin") is not None:
        r["margin"] = _check_number(r["margin"], "margin")
    tie = r.get("tie", False)
    if not isinstance(tie, bool):
        raise DataError(f"must be true or false, got {tie!r}", field="tie")
    labels = r.get("annotator_labels")
    if labels is not None:
        if not isinstance(labels, dict) or not labels:
            raise DataError("must be a non-empty {annotator: 'chosen'|'rejected'|'tie'} object", field="annotator_labels")
        for who, label in labels.items():
            if label not in ANNOTATOR_CHOICES:
                raise DataError(f"annotator {who!r} gave {label!r}; expected chosen, rejected or tie",
                                field="annotator_labels")


def _width(value: list) -> int:
    return len(value[0]) if isinstance(value[0], list) else len(value)


def _ranking(r: dict) -> None:
    r["prompt"] = check_text(r.get("prompt"), "prompt", allow_empty=True)
    responses = r.get("responses")
    if not isinstance(responses, list) or len(responses) < 2:
        raise DataError("must be a list of at least 2 responses", field="responses")
    for i, response in enumerate(responses):
        check_text(response, f"responses[{i}]", allow_empty=True)
    k = len(responses)
    has_ranking, has_best = r.get("ranking") is not None, r.get("best") is not None
    if not has_ranking and not has_best:
        raise DataError("a ranking record needs 'ranking' (rank per response, 1 = best) or 'best' (index)",
                        field="ranking")
    if has_best:
        best = r["best"]
        if isinstance(best, bool) or not isinstance(best, int) or not 0 <= best < k:
            raise DataError(f"must be an index in 0..{k - 1}, got {best!r}", field="best")
    if has_ranking:
        ranking = r["ranking"]
        if not isinstance(ranking, list) or len(ranking) != k:
            raise DataError(f"must list one rank per response ({k}), got {ranking!r}", field="ranking")
        for rank in ranking:
            if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= k:
                raise DataError(f"ranks must be integers in 1..{k} (1 = best, ties share a rank), got {rank!r}",
                                field="ranking")
        if min(ranking) != 1:
            raise DataError("the best rank must be 1", field="ranking")
        if not has_best and ranking.count(1) == 1:
            r["best"] = ranking.index(1)
        if has_best and ranking[r["best"]] != 1:
            raise DataError(f"'best' = {r['best']} but that response has rank {ranking[r['best']]}", field="best")


def _rating(r: dict) -> None:
    r["prompt"] = check_text(r.get("prompt", ""), "prompt", allow_empty=True)
    r["response"] = check_text(r.get("response"), "response", allow_empty=True)
    has_score, has_scores = r.get("score") is not None, r.get("scores") is not None
    if not has_score and not has_scores:
        raise DataError("a rating record needs 'score' (a number) or 'scores' ({attribute: number})", field="score")
    if has_score:
        r["score"] = _check_number(r["score"], "score")
    if has_scores:
        scores = r["scores"]
        if not isinstance(scores, dict) or not scores:
            raise DataError("must be a non-empty {attribute: number} object", field="scores")
        r["scores"] = {str(k): _check_number(v, f"scores.{k}") for k, v in scores.items()}
    annotator = r.get("annotator")
    if annotator is not None and not isinstance(annotator, str | int):
        raise DataError(f"must be a string or integer id, got {annotator!r}", field="annotator")


def _stepwise(r: dict) -> None:
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


_NORMALIZERS = {"pairwise": _pairwise, "ranking": _ranking, "rating": _rating, "stepwise": _stepwise}
