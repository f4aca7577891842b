"""Batched, no-grad scoring: the one path from (prompt, response) items or records to rewards.

`score` takes items and returns Scores (rewards in input order, and an ensemble's member rewards);
`score_records` writes them into records by kind (rewardkit.data.kinds) — the scored-record schema that `score`,
`eval`, recipes and the bench scripts all write. Sequences are sorted by length into batches
(rewardkit.model.batching), so a batch holds little padding.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import torch

from rewardkit.data.kinds import KINDS
from rewardkit.data.kinds import score_records as write_scored_records
from rewardkit.data.records import normalize_record
from rewardkit.data.texts import Steps
from rewardkit.model.batching import scoring_batches
from rewardkit.model.precision import autocast
from rewardkit.model.shared_prompt import can_share_prompts, prompt_groups, shared_prompt_rewards
from rewardkit.model.steps import aggregate_steps, split_steps
from rewardkit.model.text import EncodedSteps
from rewardkit.scores import Scores
from rewardkit.scores import normalize as normalize_rewards


def encode_items(model, items: list[tuple]) -> list:
    """Token ids (or feature vectors for an MLP model) of (prompt, response) items; a response given as Steps is a
    solution scored step by step."""
    if model.spec.backbone_type == "mlp":
        return [features for _, features in items]
    return [model.encoder.encode_steps(prompt, response, model.spec.step_separator) if isinstance(response, Steps)
            else model.encoder.encode(prompt, response) for prompt, response in items]


@torch.inference_mode()
def score_encoded(model, encoded: list, batch_size: int = 32, max_tokens: int = 0, progress: bool = False,
                  normalize: bool = False, precision: str = "fp32", packing: bool = False,
                  prompt_groups: list[int] | None = None) -> Scores:
    """Scores of encoded sequences, in input order, computed in length-sorted batches (bf16 autocast with
    precision='bf16' or where 'auto' measured it faster). With packing, a batch's sequences share rows of up to
    the model's max_length tokens instead of being padded (rewardkit.model.packing). With normalize, rewards (and
    member and step rewards) are standardised with the reward mean/std the model stored. Solutions in steps
    (EncodedSteps) get their step rewards too, and their value is the model's step aggregate. `prompt_groups`
    (sizes of runs of items with the same prompt) lets a decoder compute each prompt once
    (rewardkit.model.shared_prompt), and packs solutions so that those of one prompt share it, on any
    transformer (rewardkit.model.steps); other models ignore it."""
    from tqdm.auto import tqdm

    model.eval()
    device = next(model.parameters()).device
    n_members = model.spec.ensemble if model.spec.ensemble >= 2 else 0
    stats = model.spec.normalization if normalize else None
    values, members = torch.empty(len(encoded)), torch.zeros(len(encoded), n_members)
    steps: list[list[float] | None] = [None] * len(encoded)
    solutions = any(isinstance(e, EncodedSteps) for e in encoded)
    if prompt_groups and can_share_prompts(model) and not solutions:
        batches = shared_prompt_rewards(model, encoded, prompt_groups, batch_size, precision, device)
        total = sum(-(-size // batch_size) for size in prompt_groups)
    else:
        batches = plain_rewards(model, encoded, batch_size, max_tokens, packing, precision, device, bool(prompt_groups))
        total = None
    for idx, per_head in tqdm(batches, desc="scoring", unit="batch", total=total, disable=not progress):
        per_head = per_head.float().cpu()
        if isinstance(encoded[idx[0]], EncodedSteps):  # per_head is per step: each solution's steps reduce to one reward
            counts = [len(encoded[i].ends) for i in idx]
            per_step, mask = split_steps(model.aggregate(per_head), counts)
            for i, row, n in zip(idx, normalize_rewards(per_step, stats).tolist(), counts, strict=True):
                steps[i] = row[:n]
            values[idx] = normalize_rewards(aggregate_steps(per_step, mask, model.spec.step_aggregate), stats)
            per_head = torch.stack([aggregate_steps(h, mask, model.spec.step_aggregate)
                                    for h in split_steps(per_head, counts)[0].unbind(-1)], dim=-1)
        else:
            values[idx] = normalize_rewards(model.aggregate(per_head), stats)
        if n_members:
            members[idx] = normalize_rewards(per_head[:, :n_members], stats)
    has_steps = any(s is not None for s in steps)
    return Scores(values.tolist(), members.tolist() if n_members else None, steps if has_steps else None)


def plain_rewards(model, encoded: list, batch_size: int, max_tokens: int, packing: bool, precision: str, device,
                  pack_solutions: bool = False):
    """(indices, per-head rewards) of each length-sorted batch (padded or packed)."""
    for idx, batch in scoring_batches(model, encoded, batch_size, max_tokens, packing, pack_solutions):
        with autocast(precision, device):
            per_head = model({k: v.to(device) for k, v in batch.items()})
        yield idx, per_head


def score(model, items: list[tuple], batch_size: int = 32, progress: bool = False, normalize: bool = False,
          max_tokens: int = 0, precision: str = "fp32", packing: bool = False, share_prompts: bool = False) -> Scores:
    """Scores of (prompt, response) items; for an MLP model each item is (None, features). With share_prompts,
    a decoder computes the prompt of consecutive items with the same prompt once (best-of-N candidates, pairs)."""
    groups = prompt_groups([json.dumps(p, sort_keys=True) for p, _ in items]) if share_prompts else None
    return score_encoded(model, encode_items(model, items), batch_size, max_tokens, progress, normalize,
                         precision, packing, groups)


def score_steps(model, solutions: list[tuple], batch_size: int = 32, progress: bool = False, normalize: bool = False,
                precision: str = "fp32", packing: bool = False) -> Scores:
    """Process rewards of (prompt, steps) solutions in one pass each: `.steps` holds each solution's step rewards
    (logits: P(step is right) = sigmoid), `.values` their aggregate by the model's step_aggregate. With packing,
    solutions share rows and the solutions of one prompt share a single copy of it (same rewards, less work
    when a prompt has several solutions)."""
    items = [(prompt, Steps(steps)) for prompt, steps in solutions]
    return score(model, items, batch_size, progress, normalize, precision=precision, packing=packing)


def score_records(model, records: Iterable[dict], batch_size: int = 32, progress: bool = False,
                  normalize: bool = False, precision: str = "fp32", packing: bool = False) -> list[dict]:
    """Copies of the records with the model's scores (see rewardkit.data.kinds for the fields of each kind); raw dicts
    are validated first."""
    records = [r if "kind" in r else normalize_record(r) for r in records]
    return write_scored_records(records, lambda items: score(model, items, batch_size, progress, normalize,
                                                             precision=precision, packing=packing), KINDS)


@torch.inference_mode()
def pooled_features(model, encoded: list, batch_size: int = 32, precision: str = "fp32",
                    packing: bool = False, progress: bool = False) -> torch.Tensor:
    """The pooled representations h(x, y) [N, hidden] the reward heads read, in input order."""
    from tqdm.auto import tqdm

    model.eval()
    device = next(model.parameters()).device
    out = torch.empty(len(encoded), model.head.in_features)
    for idx, batch in tqdm(list(scoring_batches(model, encoded, batch_size, 0, packing)), desc="caching features",
                           unit="batch", disable=not progress):
        with autocast(precision, device):
            out[idx] = model.hidden_states({k: v.to(device) for k, v in batch.items()}).float().cpu()
    return out
