"""A generative judge over any generation backend: pointwise ratings (principles, then a critique, then a 1-10
score) and pairwise verdicts in both answer orders, each with Voting@k.

Vocabulary: a *vote* is one sampled judgement; k votes per question are one `generate(..., n=k)` call, so a local
model computes the judge prompt once for all k (rewardkit.generation.local). A vote that does not parse
(rewardkit.judge.parse) is a *failure*: counted, kept with its text, never turned into a score. A pointwise score
is the mean of the parsed votes (NaN when none parsed). A pairwise judgement asks in the order given and, with
both_orders, again with the responses swapped; `p_first` is the share of parsed votes for the first response (a tie
counts one half), and a *position flip* is a pair whose majority verdict changes with the order.
Prompt templates are data files (rewardkit/judge/templates/*.txt); pass `templates` to use your own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from rewardkit.data.texts import text_of
from rewardkit.generation.base import Generator, Sampling
from rewardkit.judge.parse import parse_scores, parse_verdict

TEMPLATES = Path(__file__).parent / "templates"


@dataclass
class Ratings:
    scores: list[float]                 # [N] mean of the parsed votes, NaN where none parsed
    votes: list[list[float | None]]     # [N][k]
    failures: int = 0
    outputs: list[list[str | None]] = field(default_factory=list)


@dataclass
class Verdict:
    p_first: float | None               # share of parsed votes for the first response (tie = 1/2); None if none parsed
    votes: list[str | None]             # 'first', 'second', 'tie' or None, the given order's votes then the swapped
    flip: bool                          # the majority verdict changed with the order
    failures: int


class Judge:
    def __init__(self, generator: Generator, k: int = 1, sampling: Sampling | None = None,
                 templates: str | Path | None = None):
        self.generator, self.k = generator, k
        # one vote: greedy; several: sampled, so the votes can differ
        self.sampling = sampling or Sampling(max_new_tokens=384, temperature=0.0 if k == 1 else 0.7, seed=0)
        root = Path(templates) if templates else TEMPLATES
        self.pointwise_template = (root / "pointwise.txt").read_text()
        self.pairwise_template = (root / "pairwise.txt").read_text()
        self.name = f"judge:{generator.name}" + (f"@{k}" if k > 1 else "")

    def rate(self, items: list[tuple], progress: bool = False) -> Ratings:
        """Ratings of (prompt, response) items, k votes each."""
        prompts = [self.pointwise_template.format(prompt=text_of(p), responses=f"[Response 1]\n{text_of(r)}",
                                                  score_format="<rating of response 1>") for p, r in items]
        outputs = self.generator.generate(prompts, self.k, self.sampling, progress).samples
        votes = [[None if s.text is None else (parse_scores(s.text, 1) or [None])[0] for s in row] for row in outputs]
        scores = [sum(v for v in row if v is not None) / n if (n := sum(v is not None for v in row)) else math.nan
                  for row in votes]
        failures = sum(v is None for row in votes for v in row)
        return Ratings(scores, votes, failures, [[s.text for s in row] for row in outputs])

    def compare(self, triples: list[tuple], both_orders: bool = True, progress: bool = False) -> list[Verdict]:
        """Verdicts on (prompt, first, second) triples, k votes per order."""
        orders = list(triples)
        if both_orders:
            orders += [(p, b, a) for p, a, b in triples]
        prompts = [self.pairwise_template.format(prompt=text_of(p), a=text_of(a), b=text_of(b)) for p, a, b in orders]
        outputs = self.generator.generate(prompts, self.k, self.sampling, progress).samples
        n = len(triples)
        verdicts = []
        for i in range(n):
            given = [_side(s.text, swapped=False) for s in outputs[i]]
            swapped = [_side(s.text, swapped=True) for s in outputs[n + i]] if both_orders else []
            votes = given + swapped
            parsed = [v for v in votes if v is not None]
            value = {"first": 1.0, "second": 0.0, "tie": 0.5}
            p_first = sum(value[v] for v in parsed) / len(parsed) if parsed else None
            flip = both_orders and _majority(given) is not None and _majority(swapped) is not None \
                and _majority(given) != _majority(swapped)
            verdicts.append(Verdict(p_first, votes, flip, len(votes) - len(parsed)))
        return verdicts


def _side(text: str | None, swapped: bool) -> str | None:
    """A verdict in the pair's given order: 'first', 'second' or 'tie' (None: unparseable or no output)."""
    verdict = parse_verdict(text) if text is not None else None
    if verdict is None or verdict == "tie":
        return verdict
    return {"A": "first", "B": "second"}[verdict] if not swapped else {"A": "second", "B": "first"}[verdict]


def _majority(votes: list[str | None]) -> str | None:
    value = {"first": 1.0, "second": -1.0, "tie": 0.0}
    parsed = [value[v] for v in votes if v is not None]
    if not parsed:
        return None
    total = sum(parsed)
    return "first" if total > 0 else "second" if total < 0 else "tie"
