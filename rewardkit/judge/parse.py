"""Strict parsing of a judge's output: the answer must be on the last non-empty line, in the form the template
asks for, or the output is unparseable (None) — and counted by the caller, never scored as a guess.

    Scores: 7, 3          pointwise: one number per response, each in 1..10
    Verdict: A            pairwise: A, B or tie
Markdown emphasis and a trailing full stop around the line are tolerated; anything else is not.
"""

from __future__ import annotations

import re

_NUMBER = r"(?:10|[1-9])(?:\.\d+)?"
_SCORES = re.compile(rf"^scores?\s*:\s*({_NUMBER}(?:\s*,\s*{_NUMBER})*)$", re.IGNORECASE)
_VERDICT = re.compile(r"^verdict\s*:\s*(a|b|tie)$", re.IGNORECASE)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    return lines[-1].strip("*_` ").rstrip(".").strip("*_` ")


def parse_scores(text: str, n: int) -> list[float] | None:
    """The n ratings (1..10) on the output's last line, or None."""
    match = _SCORES.match(_last_line(text))
    if not match:
        return None
    scores = [float(x) for x in re.split(r"\s*,\s*", match.group(1))]
    if len(scores) != n or not all(1 <= s <= 10 for s in scores):
        return None
    return scores


def parse_verdict(text: str) -> str | None:
    """'A', 'B' or 'tie' from the output's last line, or None."""
    match = _VERDICT.match(_last_line(text))
    if not match:
        return None
    verdict = match.group(1).lower()
    return "tie" if verdict == "tie" else verdict.upper()
