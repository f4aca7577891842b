"""Batched, no-grad scoring: sequences sorted by length into batches, scores returned in input order."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from rewardkit.data.records import is_features, normalize_record
from rewardkit.model.packing import pack, plain_groups
from rewardkit.model.precision import autocast
from rewardkit.model.reward_model import RewardModel
from rewardkit.model.text import pad_features


def length_batches(lengths: list[int], batch_size: int, max_tokens: int = 0, max_padding: float = 0.25) -> list[list[int]]:
    """Indices sorted by length, cut into batches of at most `batch_size` sequences, at most `max_tokens`
    padded tokens (longest x count) when set, and at most `max_padding` of the padded tokens being padding.

    On a CPU a forward pass costs about the same per real token at batch 8 as at batch 32, so a batch is
    cut rather than padded: mixed-length requests in one server batch would otherwise double the work.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    real = 0
    for i in order:
        padded = lengths[i] * (len(current) + 1)
        if current and (len(current) == batch_size or (max_tokens and padded > max_tokens)
                        or padded - (real + lengths[i]) > max_padding * padded):
            batches.append(current)
            current, real = [], 0
        current.append(i)
        real += lengths[i]
    if current:
        batches.append(current)
    return batches


def encode_items(model: RewardModel, items: list[tuple]) -> list:
    """Token ids (or feature vectors for an MLP model) of (prompt, response) items."""
    if model.spec.backbone_type == "mlp":
        return [features for _, features in items]
    return [model.encoder.encode(prompt, response) for prompt, response in items]


def model_batches(model: RewardModel, encoded: list, batch_size: int = 32, max_tokens: int = 0, packing: bool = False):
    """(indices, model inputs) for encoded sequences: length-sorted batches, padded or packed."""
    mlp = model.spec.backbone_type == "mlp"
    packing = packing and not mlp
    lengths = [len(e) if mlp else len(e.input_ids) for e in encoded]
    # Packed batches need no padding cut: their cost is the real tokens (and a T x T mask per row).
    for idx in length_batches(lengths, batch_size, max_tokens, max_padding=1.0 if packing else 0.25):
        chosen = [encoded[i] for i in idx]
        if mlp:
            yield idx, pad_features(chosen)
        elif packing:
            yield idx, pack(plain_groups(chosen), model.tokenizer.pad_token_id, model.spec.is_decoder, model.spec.max_length)
        else:
            yield idx, model.encoder.collate(chosen)


@torch.inference_mode()
def score_encoded(model: RewardModel, encoded: list, batch_size: int = 32, max_tokens: int = 0, progress: bool = False,
                  normalize: bool = False, precision: str = "fp32", packing: bool = False,
                  spreads: list | None = None, members: list | None = None) -> list[float]:
    """Scores of encoded sequences, in input order, computed in length-sorted batches (bf16 autocast with
    precision='bf16', or 'auto' where the hardware has native bf16). With packing, a batch's sequences share
    rows of up to the model's max_length tokens instead of being padded (rewardkit.model.packing).
    For an ensemble, pass a list as `spreads` to receive each score's spread across members, and one as
    `members` to receive each sequence's member scores (in the same units)."""
    from tqdm.auto import tqdm

    model.eval()
    device = next(model.parameters()).device
    n_members = model.spec.ensemble
    scores, member_scores = torch.empty(len(encoded)), torch.zeros(len(encoded), max(n_members, 1))
    batches = list(model_batches(model, encoded, batch_size, max_tokens, packing))
    for idx, batch in tqdm(batches, desc="scoring", unit="batch", disable=not progress):
        with autocast(precision, device):
            per_head = model({k: v.to(device) for k, v in batch.items()}).float().cpu()
        out = model.aggregate(per_head)
        scores[idx] = model.normalize(out) if normalize else out
        if n_members >= 2:
            scale = max(model.spec.normalization["std"], 1e-8) if normalize and model.spec.normalization else 1.0
            member_scores[idx] = per_head[:, :n_members] / scale
    if spreads is not None:
        spreads.extend(member_spread(member_scores).tolist() if n_members >= 2 else [0.0] * len(encoded))
    if members is not None:
        members.extend(member_scores.tolist())
    return scores.tolist()


@torch.inference_mode()
def pooled_features(model: RewardModel, encoded: list, batch_size: int = 32, precision: str = "fp32",
                    packing: bool = False, progress: bool = False) -> torch.Tensor:
    """The pooled representations h(x, y) [N, hidden] the reward heads read, in input order."""
    from tqdm.auto import tqdm

    model.eval()
    device = next(model.parameters()).device
    out = torch.empty(len(encoded), model.head.in_features)
    for idx, batch in tqdm(list(model_batches(model, encoded, batch_size, 0, packing)), desc="caching features",
                           unit="batch", disable=not progress):
        with autocast(precision, device):
            out[idx] = model.hidden_states({k: v.to(device) for k, v in batch.items()}).float().cpu()
    return out


def score_sequences(model: RewardModel, items: list[tuple], batch_size: int = 32, progress: bool = False,
                    normalize: bool = False, max_tokens: int = 0, precision: str = "fp32", packing: bool = False,
                    spreads: list | None = None, members: list | None = None) -> list[float]:
    """Scores of (prompt, response) items; for an MLP model each item is (None, features)."""
    return score_encoded(model, encode_items(model, items), batch_size, max_tokens, progress, normalize, precision,
                         packing, spreads, members)


def member_spread(member_scores: torch.Tensor) -> torch.Tensor:
    """Standard deviation across ensemble members (the last dimension): the uncertainty about a score."""
    return member_scores.std(dim=-1)


def preference_uncertainty(chosen_members: list[float], rejected_members: list[float]) -> float:
    """How much ensemble members disagree about a pair: the std across members of sigmoid(m_k(chosen) - m_k(rejected)).
    Not the spreads of the two scores: a Bradley-Terry member is fixed only up to a shift per prompt, and members
    that differ in that shift agree about the pair. Not the spread of the raw margins either: that grows with the
    margin, so it is largest on the easy pairs that every member gets right."""
    margins = torch.tensor(chosen_members) - torch.tensor(rejected_members)
    return float(torch.sigmoid(margins).std())


def score_records(model: RewardModel, records: Iterable[dict], batch_size: int = 32, progress: bool = False,
                  normalize: bool = False, precision: str = "fp32", packing: bool = False) -> list[dict]:
    """Add scores to records: pairwise -> chosen_score, rejected_score, margin; ranking -> scores;
    rating -> score; stepwise -> score of the whole solution (outcome reward). An ensemble model also
    adds the spread across its members: chosen_uncertainty / rejected_uncertainty, uncertainties[], uncertainty,
    and for a pair preference_uncertainty, how much they disagree about P(chosen beats rejected)
    (preference_uncertainty)."""
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
    spreads: list[float] = []
    members: list[list[float]] = []
    scores = score_sequences(model, items, batch_size, progress, normalize, precision=precision, packing=packing,
                             spreads=spreads, members=members)
    ensemble = model.spec.ensemble >= 2
    out = [dict(r) for r in records]
    for (i, where), s, u, m in zip(slots, scores, spreads, members, strict=True):
        if where.startswith("scores."):
            out[i].setdefault("scores", [None] * len(out[i]["responses"]))[int(where[7:])] = s
            if ensemble:
                out[i].setdefault("uncertainties", [None] * len(out[i]["responses"]))[int(where[7:])] = u
        elif where == "score_pred":
            # A rating record's own `score` is the human label: the model's goes beside it.
            out[i]["model_score" if out[i]["kind"] == "rating" else "score"] = s
            if ensemble:
                out[i]["uncertainty"] = u
        else:
            out[i][where] = s
            if ensemble:
                out[i][where.replace("_score", "_uncertainty")] = u
                out[i][where.replace("_score", "_members")] = m
    for r in out:
        if r["kind"] == "pairwise":
            if r.get("margin") is not None:  # keep a labelled margin rather than overwrite it
                r["label_margin"] = r["margin"]
            r["margin"] = r["chosen_score"] - r["rejected_score"]
            if ensemble:
                r["preference_uncertainty"] = preference_uncertainty(r.pop("chosen_members"), r.pop("rejected_members"))
    return out
