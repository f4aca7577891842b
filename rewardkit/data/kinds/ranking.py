"""Ranking records: a prompt and K responses with ranks (1 = best, ties share a rank) or the index of the best.

Scored fields: response_scores [K]; an ensemble adds response_members [K][M] and response_uncertainties [K].
Objectives: listwise (softmax over the K, for the best one), ranking-pairs (all C(K, 2) pairs), plackett-luce.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from rewardkit import losses
from rewardkit.data.kinds.base import BatchRewards, Kind
from rewardkit.data.texts import check_text
from rewardkit.errors import DataError
from rewardkit.scores import Scores


class Ranking(Kind):
    name = "ranking"
    objectives = ("listwise", "ranking-pairs", "plackett-luce")

    def validate(self, r: dict) -> None:
        """Check the record's fields in place (normalising them), or raise DataError naming the field."""
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

    def responses(self, record: dict) -> list:
        return record["responses"]

    def write_scores(self, record: dict, scores: Scores) -> None:
        record["response_scores"] = scores.values
        if scores.members is not None:
            record["response_members"] = scores.members
            record["response_uncertainties"] = scores.spreads

    def targets(self, record: dict, heads: dict[str, int]) -> dict:
        ranks = record.get("ranking") or [1 if i == record["best"] else 2 for i in range(len(record["responses"]))]
        return {"ranks": ranks, "best": record.get("best", ranks.index(min(ranks)))}

    def collate(self, targets: list[dict], sizes: list[int], n_heads: int) -> dict[str, torch.Tensor]:
        k = max(sizes)  # padding slots rank below every real response
        return {"ranks": torch.tensor([t["ranks"] + [k + 1] * (k - len(t["ranks"])) for t in targets]),
                "best": torch.tensor([t["best"] for t in targets])}

    def loss(self, rewards: BatchRewards, batch: dict, objective: str, cfg: Any) -> tuple[torch.Tensor, dict]:
        """The ranking loss of `objective` over [B, K] rewards; metrics: lists whose best response scores highest."""
        grouped, valid = rewards.grouped, rewards.valid
        if objective == "listwise":
            loss = losses.listwise_softmax(grouped, batch["best"], valid, cfg.temperature)
        elif objective == "ranking-pairs":
            loss = losses.ranking_pairs(grouped, batch["ranks"], valid)
        else:
            loss = losses.plackett_luce(grouped, batch["ranks"], valid)
        top = grouped.detach().masked_fill(~valid, -math.inf).argmax(dim=1)
        return loss, {"correct": float((top == batch["best"]).sum())}

    def summary(self, totals: dict) -> dict:
        return {"best_of_k_accuracy": totals["correct"] / totals["examples"]} if totals.get("examples") else {}


RANKING = Ranking()
