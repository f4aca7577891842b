"""Batched, no-grad scoring: sequences sorted by length into batches, scores returned in input order."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from rewardkit.data.records import is_features, normalize_record
from rewardkit.model.reward_model import RewardModel
from rewardkit.model.text import pad_features


@torch.inference_mode()
def score_sequences(model: RewardModel, items: list[tuple], batch_size: int = 32, progress: bool = False,
                    normalize: bool = False) -> list[float]:
    """Scores of (prompt, response) items; for an MLP model each item is (None, features)."""
    from tqdm.auto import tqdm

    model.eval()
    device = next(model.parameters()).device
    if model.spec.backbone_type == "mlp":
        encoded = [features for _, features in items]
        lengths = [len(f) for f in encoded]
    else:
        encoded = [model.encoder.encode(prompt, response) for prompt, response in items]
        lengths = [len(e.input_ids) for e in encoded]
    order = sorted(range(len(items)), key=lambda i: lengths[i])
    scores = torch.empty(len(items))
    for start in tqdm(range(0, len(order), batch_size), desc="scoring", unit="batch", disable=not progress):
        idx = order[start:start + batch_size]
        if model.spec.backbone_type == "mlp":
            batch = pad_features([encoded[i] for i in idx])
        else:
            batch = model.encoder.collate([encoded[i] for i in idx])
        batch = {k: v.to(device) for k, v in batch.items()}
        out = model.score(batch).float().cpu()
        if normalize:
            out = model.normalize(out)
        scores[idx] = out
    return scores.tolist()


def score_records(model: RewardModel, records: Iterable[dict], batch_size: int = 32, progress: bool = False,
                  normalize: bool = False) -> list[dict]:
    """Add scores to records: pairwise -> chosen_score, rejected_score, margin; ranking -> scores;
    rating -> score; stepwise -> score of the whole solution (outcome reward)."""
    records = [r if "kind" in r else normalize_record(r) for r in records]
    items: list[tuple] = []
    slots: list[tuple[int, str]] = []  # (record index, where the score goes)

    def add(i, prompt, response, where):
        items.append((None if is_features(response) else prompt, response))
        slots.append((i, where))

    for i, r in enumerate(records):
        prompt = r.get("prompt", "")
        if r["kind"] == "pairwise":
            add(i, prompt, r["chosen"], "chosen_score")
            add(i, prompt, r["rejected"], "rejected_score")
        elif r["kind"] == "ranking":
            for j, response in enumerate(r["responses"]):
                add(i, prompt, response, f"scores.{j}")
        elif r["kind"] == "rating":
            add(i, prompt, r["response"], "score_pred")
        else:
            add(i, prompt, "\n".join(r["steps"]), "score_pred")
    scores = score_sequences(model, items, batch_size, progress, normalize)
    out = [dict(r) for r in records]
    for (i, where), s in zip(slots, scores, strict=True):
        if where.startswith("scores."):
            out[i].setdefault("scores", [None] * len(out[i]["responses"]))[int(where[7:])] = s
        elif where == "score_pred":
            # A rating record's own `score` is the human label: the model's goes beside it.
            out[i]["model_score" if out[i]["kind"] == "rating" else "score"] = s
        else:
            out[i][where] = s
    for r in out:
        if r["kind"] == "pairwise":
            if r.get("margin") is not None:  # keep a labelled margin rather than overwrite it
                r["label_margin"] = r["margin"]
            r["margin"] = r["chosen_score"] - r["rejected_score"]
    return out
