"""Per-annotator corrections of human ratings."""

from __future__ import annotations

import math


def standardize_by_annotator(scores: list[float], annotators: list) -> list[float]:
    """z-score each annotator's ratings so that harsh and lenient raters agree in scale."""
    groups: dict = {}
    for s, a in zip(scores, annotators, strict=True):
        groups.setdefault(a, []).append(s)
    stats = {}
    for a, values in groups.items():
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
        stats[a] = (mean, std if std > 0 else 1.0)
    return [(s - stats[a][0]) / stats[a][1] for s, a in zip(scores, annotators, strict=True)]
