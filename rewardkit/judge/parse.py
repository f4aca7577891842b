"""Strict parsing of a judge's output: the answer must stand on a line of its own, in the form the template asks
for, and every such line must agree; otherwise the output is unparseable (None) — and counted by the caller, never
scored as a guess.

    Scores: 7, 3          pointwise: one number per response, each in 1..10
    Verdict: A            pairwise: A, B or tie
    Grade: 4              rubric: one grade in 1..5
Markdown emphasis and a trailing full stop around the line are tolerated; a line that only mentions a score or a
verdict in a sentence is not. Small models often keep writing after their answer line, so the line need not be
the last; two answer lines that disagree make the output unparseable.
"""

from __future__ import annotations

import re

_NUMBER = r"(?:10|[1-9])(?:\.\d+)?"
_SCORES = re.compile(rf"^scores?\s*:\s*({_NUMBER}(?:\s*,\s*{_NUMBER})*)$", re.IGNORECASE)
_VERDICT = re.compile(r"^verdict\s*:\s*(a|b|tie)$", re.IGNORECASE)
_GRADE = re.compile(r"^grade\s*:\s*([1-5])(?:\s*/\s*5)?$", re.IGNORECASE)


def _lines(text: str) -> list[str]:
    """The output's lines, stripped of surrounding markdown emphasis and a trailing full stop."""
    return [line.strip().strip("*_` ").rstrip(".").strip("*_` ") for line in text.splitlines() if line.strip()]


def _one(values: list) -> object | None:
    """The value every answer line gives, or None when there is none or they disagree."""
    return values[0] if values and all(v == values[0] for v in values) else None


def parse_scores(text: str, n: int) -> list[float] | None:
    """The n ratings (1..10) of the output's `Scores:` line(s), or None."""
    found = []
    for line in _lines(text):
        match = _SCORES.match(line)
        if match:
            scores = [float(x) for x in re.split(r"\s*,\s*", match.group(1))]
            found.append(scores if len(scores) == n else None)
    scores = _one(found)
    return scores if scores is not None and all(1 <= s <= 10 for s in scores) else None


def parse_verdict(text: str) -> str | None:
    """'A', 'B' or 'tie' from the output's `Verdict:` line(s), or None."""
    found = [m.group(1).lower() for line in _lines(text) if (m := _VERDICT.match(line))]
    verdict = _one(found)
    return None if verdict is None else "tie" if verdict == "tie" else verdict.upper()


def parse_grade(text: str) -> float | None:
    """The rubric grade (1..5, optionally written "4/5") of the output's `Grade:` line(s), or None."""
    grade = _one([int(m.group(1)) for line in _lines(text) if (m := _GRADE.match(line))])
    return None if grade is None else float(grade)
