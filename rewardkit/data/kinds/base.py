"""The vocabulary every record kind speaks, and the two generic routines built on it.

A *record* is a validated dict with a `kind` (rewardkit.data.records). Its *responses* are what a reward model
scores, in a fixed order: a pair's [chosen, rejected], a ranking's K responses, a rating's one response, a
stepwise record's solution as one Steps response (scored step by step). Each response is scored with the record's
prompt as one *item* (prompt, response).

For training, a record becomes an *example*: the encoded responses plus *targets* (what the loss compares the
rewards with, e.g. a pair's margin or a ranking's ranks). A batch holds examples of one kind; the backbone
scores all their responses in one forward pass, giving `BatchRewards`: one reward per response (or per step of a
solution) [N], and a [B, K] view of them per example with a `valid` mask (examples may have different K).

A kind answers, for generic code that must not branch on its name:
  validate(record)                        its schema: check and normalise the fields, or raise DataError
  responses(record)                       what to score
  write_scores(record, scores)            where its responses' Scores go in the scored record
  skip_reason(record)                     why a record is not trained on (None: it is)
  targets(record, heads)                  an example's training targets
  collate(targets, sizes, n_heads)        a batch's target tensors (sizes: each example's number of rewards)
  loss(rewards, batch, objective, cfg)    a batch's loss and its detached metrics
  summary(totals)                         evaluation metrics from summed per-batch metrics
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from rewardkit.data.texts import is_features
from rewardkit.scores import Scores, member_spread


@dataclass
class BatchRewards:
    """The rewards of one single-kind batch.

    sequence [N]: each reward of the batch (one per response, or one per step of a solution): the model's
        aggregate score, or the head its example names
    per_head [N, H]: every head's reward (ensemble members first, when the model is a K-head ensemble)
    index [B, K]: row b, slot i -> position in the flat [N] list (padding slots point at 0)
    valid [B, K]: which slots hold a reward
    heads: the model's head names; ensemble: how many of the first heads are ensemble members (0 = none)
    """

    sequence: torch.Tensor
    per_head: torch.Tensor
    index: torch.Tensor
    valid: torch.Tensor
    heads: list[str]
    ensemble: int = 0

    @property
    def grouped(self) -> torch.Tensor:
        """[B, K]: each example's rewards in its responses' order."""
        return self.sequence[self.index]


class Kind:
    """One kind of record. Subclasses override what applies to them; the defaults say 'not trainable'."""

    name: str = ""
    objectives: tuple[str, ...] = ()  # training objectives; the first is the default

    def validate(self, record: dict) -> None:
        raise NotImplementedError

    def responses(self, record: dict) -> list:
        raise NotImplementedError

    def write_scores(self, record: dict, scores: Scores) -> None:
        raise NotImplementedError

    def skip_reason(self, record: dict) -> str | None:
        return None if self.objectives else f"{self.name} records (no training objective for this kind)"

    def targets(self, record: dict, heads: dict[str, int]) -> dict:
        return {}

    def collate(self, targets: list[dict], sizes: list[int], n_heads: int) -> dict[str, torch.Tensor]:
        return {}

    def loss(self, rewards: BatchRewards, batch: dict, objective: str, cfg: Any) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError(f"{self.name} records have no training loss")

    def summary(self, totals: dict) -> dict:
        return {}


def with_spread(record: dict, prefix: str, members: list[float] | None) -> None:
    """Write an ensemble's per-member scores of one response and their spread (the uncertainty) under `prefix`."""
    if members is not None:
        record[f"{prefix}_members"] = members
        record[f"{prefix}_uncertainty"] = member_spread(members)


def score_records(records: list[dict], score: Callable[[list[tuple]], Scores], kinds: dict[str, Kind]) -> list[dict]:
    """Copies of `records` with their scores written in, scoring every response of every record in one call.

    `score` maps a list of (prompt, response) items to Scores in the same order; a response that is a feature
    vector is scored without a prompt.
    """
    items: list[tuple] = []
    spans: list[tuple[int, int]] = []
    for r in records:
        responses = kinds[r["kind"]].responses(r)
        prompt = r.get("prompt", "")
        spans.append((len(items), len(items) + len(responses)))
        items += [(None if is_features(x) else prompt, x) for x in responses]
    scores = score(items) if items else Scores([])
    out = []
    for r, (start, end) in zip(records, spans, strict=True):
        scored = dict(r)
        kinds[r["kind"]].write_scores(scored, scores[start:end])
        out.append(scored)
    return out

