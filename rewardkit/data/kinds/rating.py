"""Rating records: a prompt, one response and a score (or scores per attribute, one per named head).

Scored fields: response_score (the record's own `score` is the human label); an ensemble adds response_members
and response_uncertainty. Objective: regression (mean squared error on the aggregate score and on each
attribute's head).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from rewardkit import losses
from rewardkit.data.kinds.base import BatchRewards, Kind, with_spread
from rewardkit.data.texts import check_number, check_text
from rewardkit.errors import DataError
from rewardkit.scores import Scores


class Rating(Kind):
    name = "rating"
    objectives = ("regression",)

    def validate(self, r: dict) -> None:
        """Check the record's fields in place (normalising them), or raise DataError naming the field."""
        r["prompt"] = check_text(r.get("prompt", ""), "prompt", allow_empty=True)
        r["response"] = check_text(r.get("response"), "response", allow_empty=True)
        has_score, has_scores = r.get("score") is not None, r.get("scores") is not None
        if not has_score and not has_scores:
            raise DataError("a rating record needs 'score' (a number) or 'scores' ({attribute: number})", field="score")
        if has_score:
            r["score"] = check_number(r["score"], "score")
        if has_scores:
            scores = r["scores"]
            if not isinstance(scores, dict) or not scores:
                raise DataError("must be a non-empty {attribute: number} object", field="scores")
            r["scores"] = {str(k): check_number(v, f"scores.{k}") for k, v in scores.items()}
        annotator = r.get("annotator")
        if annotator is not None and not isinstance(annotator, str | int):
            raise DataError(f"must be a string or integer id, got {annotator!r}", field="annotator")

    def responses(self, record: dict) -> list:
        return [record["response"]]

    def write_scores(self, record: dict, scores: Scores) -> None:
        record["response_score"] = scores.values[0]
        with_spread(record, "response", None if scores.members is None else scores.members[0])

    def targets(self, record: dict, heads: dict[str, int]) -> dict:
        head_targets = {heads[k]: v for k, v in (record.get("scores") or {}).items() if k in heads}
        if record.get("score") is None and not head_targets:
            raise DataError(f"its 'scores' name no head of this model ({', '.join(heads)}); pass --heads with those "
                            "names", line=record.get("_line"), field="scores")
        return {"target": record.get("score"), "head_targets": head_targets}

    def collate(self, targets: list[dict], sizes: list[int], n_heads: int) -> dict[str, torch.Tensor]:
        return {"target": torch.tensor([t["target"] if t["target"] is not None else math.nan for t in targets]),
                "head_targets": torch.tensor([[t["head_targets"].get(h, math.nan) for h in range(n_heads)]
                                              for t in targets])}

    def loss(self, rewards: BatchRewards, batch: dict, objective: str, cfg: Any) -> tuple[torch.Tensor, dict]:
        """Squared error of the aggregate reward against `score` and of each head against its attribute, where given."""
        first = rewards.index[:, 0]
        target, head_targets = batch["target"], batch["head_targets"]
        has_target, has_head = ~torch.isnan(target), ~torch.isnan(head_targets)
        # in fp32 even under bf16 autocast: the targets are fp32 and the squared errors are summed for metrics
        predicted = torch.cat([rewards.sequence[first][has_target], rewards.per_head[first][has_head]]).float()
        wanted = torch.cat([target[has_target], head_targets[has_head]]).float()
        loss = losses.regression(predicted, wanted)
        squared = float(((predicted.detach() - wanted) ** 2).sum())
        return loss, {"squared_error": squared, "targets": int(wanted.numel())}

    def summary(self, totals: dict) -> dict:
        return {"rating_mse": totals["squared_error"] / totals["targets"]} if totals.get("targets") else {}


RATING = Rating()
