"""Pairwise records: a prompt, a chosen and a rejected response (optionally a margin, a tie, annotator labels, and
`probability`: P(chosen is better), a soft label such as a judge's vote share, trained on by the bt objective).

Scored fields: chosen_score, rejected_score, score_margin (chosen - rejected; a labelled `margin` stays as it
is); an ensemble adds chosen_/rejected_members, chosen_/rejected_uncertainty and preference_uncertainty.
Objectives: bt (Bradley-Terry), margin (Bradley-Terry with the pair's margin), hinge, contrastive (in-batch
negatives). The model's options add ODIN's length head, bootstrap-weighted ensemble members, reward centring
and the length penalty.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from rewardkit import losses
from rewardkit.data.kinds.base import BatchRewards, Kind, with_spread
from rewardkit.data.texts import (
    check_features,
    check_number,
    check_text,
    feature_width,
    is_features,
    split_shared_prefix,
)
from rewardkit.errors import DataError
from rewardkit.scores import Scores, pair_credit


def preference_uncertainty(chosen_members: list[float], rejected_members: list[float]) -> float:
    """How much ensemble members disagree about a pair: the std across members of sigmoid(m_k(chosen) - m_k(rejected)).
    Not the spreads of the two scores: a Bradley-Terry member is fixed only up to a shift per prompt, and members
    that differ in that shift agree about the pair. Not the spread of the raw margins either: that grows with the
    margin, so it is largest on the easy pairs that every member gets right."""
    margins = torch.tensor(chosen_members) - torch.tensor(rejected_members)
    return float(torch.sigmoid(margins).std())


ANNOTATOR_CHOICES = {"chosen", "rejected", "tie"}


class Pairwise(Kind):
    name = "pairwise"
    objectives = ("bt", "margin", "hinge", "contrastive")

    def validate(self, r: dict) -> None:
        """Check the record's fields in place (normalising them), or raise DataError naming the field."""
        for field in ("chosen", "rejected"):
            if field not in r:
                raise DataError("is missing", field=field)
        if is_features(r["chosen"]) or is_features(r["rejected"]):
            # Numeric records (robot states/actions): both sides must be features of the same width.
            r["chosen"] = check_features(r["chosen"], "chosen")
            r["rejected"] = check_features(r["rejected"], "rejected")
            if feature_width(r["chosen"]) != feature_width(r["rejected"]):
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
            r["margin"] = check_number(r["margin"], "margin")
        if r.get("probability") is not None:
            r["probability"] = check_number(r["probability"], "probability")
            if not 0 <= r["probability"] <= 1:
                raise DataError(f"must be in [0, 1] (P(chosen is better)), got {r['probability']}", field="probability")
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

    def responses(self, record: dict) -> list:
        return [record["chosen"], record["rejected"]]

    def write_scores(self, record: dict, scores: Scores) -> None:
        record["chosen_score"], record["rejected_score"] = scores.values
        record["score_margin"] = scores.values[0] - scores.values[1]
        if scores.members is not None:
            chosen, rejected = scores.members
            with_spread(record, "chosen", chosen)
            with_spread(record, "rejected", rejected)
            record["preference_uncertainty"] = preference_uncertainty(chosen, rejected)

    def skip_reason(self, record: dict) -> str | None:
        return "tied pairs (no preference to learn)" if record.get("tie") else None

    def targets(self, record: dict, heads: dict[str, int]) -> dict:
        return {"margin": record.get("margin"), "probability": record.get("probability")}

    def collate(self, targets: list[dict], sizes: list[int], n_heads: int) -> dict[str, torch.Tensor]:
        def column(name: str) -> torch.Tensor:
            return torch.tensor([t.get(name) if t.get(name) is not None else math.nan for t in targets])
        return {"margin": column("margin"), "probability": column("probability")}

    def loss(self, rewards: BatchRewards, batch: dict, objective: str, cfg: Any) -> tuple[torch.Tensor, dict]:
        """The pair loss of `objective`, plus the regularisers cfg asks for; metrics: pairs ranked right."""
        pos, neg = rewards.grouped[:, 0], rewards.grouped[:, 1]
        heads, ensemble = rewards.heads, rewards.ensemble
        if "length" in heads and objective == "bt":
            loss = _odin_loss(rewards, batch, heads.index("length"), cfg)
        elif ensemble and objective == "bt":
            members = rewards.per_head[:, : ensemble][rewards.index]           # [B, 2, K]
            # evaluation examples carry no bootstrap weights: every member sees every pair
            boot = batch["boot"] if "boot" in batch else torch.ones_like(members[:, 0])
            smoothing = smoothing_of(batch, cfg)
            smoothing = smoothing.unsqueeze(1) if isinstance(smoothing, torch.Tensor) else smoothing
            loss = losses.weighted_bradley_terry(members[:, 0], members[:, 1], boot, smoothing)
        else:
            loss = _pair_loss(pos, neg, batch, objective, cfg)
        if cfg.center_weight:
            loss = loss + cfg.center_weight * losses.reward_centering(pos, neg)
        if cfg.length_penalty and "length" not in heads:
            # each ensemble member meets the penalty on its own (see losses.length_penalty)
            penalised = rewards.per_head[:, : ensemble] if ensemble else rewards.sequence
            loss = loss + cfg.length_penalty * losses.length_penalty(penalised, batch["lengths"], cfg.length_penalty_kind)
        return loss, {"correct": float(pair_credit((pos - neg).detach()).sum())}

    def summary(self, totals: dict) -> dict:
        return {"pairwise_accuracy": totals["correct"] / totals["examples"]} if totals.get("examples") else {}


def smoothing_of(batch: dict, cfg: Any) -> torch.Tensor | float:
    """The label smoothing of each pair: 1 - its probability where it has one, cfg.label_smoothing elsewhere."""
    probability = batch.get("probability")
    if probability is None or torch.isnan(probability).all():
        return cfg.label_smoothing
    return torch.where(torch.isnan(probability), torch.full_like(probability, cfg.label_smoothing), 1 - probability)


def _pair_loss(pos: torch.Tensor, neg: torch.Tensor, batch: dict, objective: str, cfg: Any) -> torch.Tensor:
    """bt, margin, hinge or contrastive on rewards [B]; a pair without a margin gets cfg.margin."""
    margin = batch["margin"]
    if objective == "bt":
        return losses.bradley_terry(pos, neg, label_smoothing=smoothing_of(batch, cfg))
    if objective == "contrastive":
        return losses.contrastive(pos, neg, cfg.temperature)
    margin = torch.where(torch.isnan(margin), torch.full_like(margin, cfg.margin), margin)
    if objective == "margin":
        return losses.bradley_terry(pos, neg, margin, cfg.label_smoothing)
    return losses.hinge(pos, neg, margin)


def _odin_loss(rewards: BatchRewards, batch: dict, length_head: int, cfg: Any) -> torch.Tensor:
    """ODIN: the preference is explained by quality + a length head; only quality is kept at inference. The
    quality reward is pushed off length, the length head onto it."""
    quality, length_reward = rewards.grouped, rewards.per_head[:, length_head][rewards.index]
    loss = losses.bradley_terry(quality[:, 0] + length_reward[:, 0], quality[:, 1] + length_reward[:, 1],
                                label_smoothing=cfg.label_smoothing)
    lengths = batch["lengths"]
    return loss + cfg.length_penalty * (losses.length_penalty(rewards.sequence, lengths, cfg.length_penalty_kind)
                                        + 1 - losses.correlation(rewards.per_head[:, length_head], lengths))


PAIRWISE = Pairwise()
