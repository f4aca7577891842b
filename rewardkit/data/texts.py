"""Texts, numbers and feature vectors inside records: what each may be, and the checks that say why not.

A *text* is a string or a conversation (a list of {role, content} messages). A *feature vector* is a list of
numbers, and a *trajectory* a list of equal-width vectors (for MLP reward models over states or actions).
"""

from __future__ import annotations

import math
from typing import Any

from rewardkit.errors import DataError

ROLES = {"system", "user", "assistant", "tool", "human", "gpt", "function"}


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


def text_steps(text: str, separator: str = "\n") -> list[str]:
    """A completion's steps: its text cut at the separator, blank pieces left out (a trailing newline, a blank
    line between steps); a completion with no text is one empty-looking step, so it still gets a reward."""
    steps = [s for s in text.split(separator) if s.strip()]
    return steps or [text or " "]


def check_number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DataError(f"must be a number, got {value!r}", field=field)
    if not math.isfinite(value):
        raise DataError(f"must be finite, got {value!r}", field=field)
    return float(value)


def check_features(value: Any, field: str) -> list:
    """A feature vector [x...] or a trajectory [[x...], ...] of equal-width vectors."""
    if not isinstance(value, list) or not value:
        raise DataError("must be a non-empty feature vector or trajectory (list of vectors)", field=field)
    steps = value if isinstance(value[0], list) else [value]
    width = len(steps[0])
    for t, step in enumerate(steps):
        if not isinstance(step, list) or len(step) != width or width == 0:
            raise DataError(f"trajectory step {t} must be a list of {width or 'some'} numbers", field=field)
        for x in step:
            check_number(x, field)
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


def feature_width(value: list) -> int:
    return len(value[0]) if isinstance(value[0], list) else len(value)


class Steps(list):
    """The steps of a solution as one response: scoring it gives a reward per step and their aggregate
    (rewardkit.model.steps), where a plain response gets one reward."""
