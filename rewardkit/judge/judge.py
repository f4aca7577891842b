"""A generative judge over any generation backend: pointwise ratings (principles, then a critique, then a 1-10
score), rubric grades (1-5 against a rubric the user writes, Prometheus style) and pairwise verdicts in both answer
orders, each with Voting@k and, optionally, meta-RM guided voting.

Vocabulary: a *vote* is one sampled judgement; k votes per question are one `generate(..., n=k)` call, so a local
model computes the judge prompt once for all k (rewardkit.generation.local). A vote that does not parse
(rewardkit.judge.parse) is a *failure*: counted, kept with its text, never turned into a score. A pointwise score
is the mean of the parsed votes (NaN when none parsed). A pairwise judgement asks in the order given and, with
both_orders, again with the responses swapped; `p_first` is the share of parsed votes for the first response (a tie
counts one half), and a *position flip* is a pair whose majority verdict changes with the order.
*Meta-RM guided voting* (DeepSeek-GRM): a meta reward model — an ordinary rewardkit model, trained on
(judge prompt, critique) -> did this critique's verdict match the label (`rewardkit judge meta-data`) — scores each
parsed vote's critique, and only the `k_meta` it rates highest are voted.
Prompt templates are data files (rewardkit/judge/templates/*.txt); pass `templates` to use your own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from rewardkit.data.texts import text_of
from rewardkit.generation.base import Generator, Sampling
from rewardkit.judge.parse import parse_grade, parse_scores, parse_verdict

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
                 templates: str | Path | None = None, meta=None, k_meta: int = 0):
        """`meta`: a scorer (rewardkit.eval.scorers.Scorer: `.score(items)`) of (judge prompt, critique) items; with
        `k_meta` >= 1, only the k_meta parsed votes whose critiques it rates highest are voted."""
        self.generator, self.k = generator, k
        self.meta, self.k_meta = meta, k_meta
        # one vote: greedy; several: sampled, so the votes can differ
        self.sampling = sampling or Sampling(max_new_tokens=384, temperature=0.0 if k == 1 else 0.7, seed=0)
        root = Path(templates) if templates else TEMPLATES
        self.pointwise_template = (root / "pointwise.txt").read_text()
        self.pairwise_template = (root / "pairwise.txt").read_text()
        self.rubric_template = (root / "rubric.txt").read_text()
        self.name = f"judge:{generator.name}" + (f"@{k}" if k > 1 else "") + (f"+meta@{k_meta}" if meta and k_meta else "")

    def rate(self, items: list[tuple], progress: bool = False) -> Ratings:
        """Ratings of (prompt, response) items, k votes each."""
        prompts = [self.pointwise_template.format(prompt=text_of(p), responses=f"[Response 1]\n{text_of(r)}",
                                                  score_format="<rating of response 1>") for p, r in items]
        return self._ratings(prompts, lambda text: (parse_scores(text, 1) or [None])[0], progress)

    def grade(self, items: list[tuple], rubric: str, progress: bool = False) -> Ratings:
        """Rubric grades (1-5) of (prompt, response) items against `rubric` (criteria and what each grade means)."""
        prompts = [self.rubric_template.format(prompt=text_of(p), response=text_of(r), rubric=rubric) for p, r in items]
        return self._ratings(prompts, parse_grade, progress)

    def _ratings(self, prompts: list[str], parse, progress: bool) -> Ratings:
        outputs = self.generator.generate(prompts, self.k, self.sampling, progress).samples
        votes = [[None if s.text is None else parse(s.text) for s in row] for row in outputs]
        texts = [[s.text for s in row] for row in outputs]
        failures = sum(v is None for row in votes for v in row)
        counted = self.meta_kept(prompts, votes, texts)
        scores = [sum(v for v in row if v is not None) / n if (n := sum(v is not None for v in row)) else math.nan
                  for row in counted]
        return Ratings(scores, votes, failures, texts)

    def meta_kept(self, prompts: list[str], votes: list[list], texts: list[list[str | None]]) -> list[list]:
        """The votes that count: all of them, or with a meta RM the k_meta parsed votes whose critiques it rates
        highest (the others become None here; they are still reported as votes)."""
        if self.meta is None or not self.k_meta:
            return votes
        where = [(i, j) for i, row in enumerate(votes) for j, v in enumerate(row) if v is not None]
        rated = self.meta.score([(prompts[i], texts[i][j]) for i, j in where]) if where else []
        rated = getattr(rated, "values", rated)  # a scorer answers Scores or a plain list
        by_row: dict[int, list[tuple[float, int]]] = {}
        for (i, j), value in zip(where, rated, strict=True):
            by_row.setdefault(i, []).append((value, j))
        kept = []
        for i, row in enumerate(votes):
            best = {j for _, j in sorted(by_row.get(i, []), key=lambda x: -x[0])[: self.k_meta]}
            kept.append([v if j in best else None for j, v in enumerate(row)])
        return kept

    def pairwise_prompt(self, prompt, a, b) -> str:
        return self.pairwise_template.format(prompt=text_of(prompt), a=text_of(a), b=text_of(b))

    def compare(self, triples: list[tuple], both_orders: bool = True, progress: bool = False) -> list[Verdict]:
        """Verdicts on (prompt, first, second) triples, k votes per order."""
        orders = list(triples)
        if both_orders:
            orders += [(p, b, a) for p, a, b in triples]
        prompts = [self.pairwise_prompt(p, a, b) for p, a, b in orders]
        outputs = self.generator.generate(prompts, self.k, self.sampling, progress).samples
        sides = [[_side(s.text, swapped=i >= len(triples)) for s in row] for i, row in enumerate(outputs)]
        counted = self.meta_kept(prompts, sides, [[s.text for s in row] for row in outputs])
        n = len(triples)
        verdicts = []
        for i in range(n):
            given, swapped = counted[i], counted[n + i] if both_orders else []
            votes = sides[i] + (sides[n + i] if both_orders else [])
            parsed = [v for v in given + swapped if v is not None]
            value = {"first": 1.0, "second": 0.0, "tie": 0.5}
            p_first = sum(value[v] for v in parsed) / len(parsed) if parsed else None
            flip = both_orders and _majority(given) is not None and _majority(swapped) is not None \
                and _majority(given) != _majority(swapped)
            verdicts.append(Verdict(p_first, votes, flip, sum(v is None for v in votes)))
        return verdicts


def verdict_summary(verdicts: list[Verdict], k: int, both_orders: bool) -> dict:
    """How verdicts on labelled pairs (the first response the labelled better one) went: agreement with the labels
    over the pairs the judge decided (no parsed vote and a tie are counted apart, never scored), position-flip rate,
    parse-failure rate over every vote."""
    decided = [v.p_first > 0.5 for v in verdicts if v.p_first is not None and v.p_first != 0.5]
    votes = len(verdicts) * k * (2 if both_orders else 1)
    return {"pairs": len(verdicts), "agreement_with_labels": sum(decided) / len(decided) if decided else None,
            "decided": len(decided), "no_vote_parsed": sum(v.p_first is None for v in verdicts),
            "judge_ties": sum(v.p_first == 0.5 for v in verdicts),
            "position_flip_rate": sum(v.flip for v in verdicts) / len(verdicts) if both_orders and verdicts else None,
            "parse_failure_rate": sum(v.failures for v in verdicts) / votes if votes else None}


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
