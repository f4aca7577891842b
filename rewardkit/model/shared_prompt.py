"""Scoring many responses to one prompt on a decoder: the prompt is computed once and its keys and values are
reused by every response, instead of being recomputed inside each (prompt, response) sequence.

Vocabulary: a *group* is a run of consecutive items with the same prompt (best-of-N candidates, a pair); its
*prefix* is the longest run of token ids its encoded sequences all start with, less at least one token of each, so
every response keeps its own last token, where a decoder's reward is read (pooling 'last'). The prefix goes
through the backbone once with a key/value cache; the cache is repeated for the responses, which run as one
right-padded batch with positions that continue after the prefix. Causal attention means a response's states are
the same as in the full sequence (tests check 1e-5), so this is a speed-up only: an encoder's prompt attends to
the response and cannot be shared, and a model that reads any other pooling is scored the plain way.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import torch

from rewardkit.model.packing import shared_prefix_groups
from rewardkit.model.precision import autocast


def can_share_prompts(model) -> bool:
    """A single decoder reward model that reads its last token (an ensemble of models is scored the plain way)."""
    from rewardkit.model.reward_model import RewardModel

    spec = model.spec
    return isinstance(model, RewardModel) and spec.backbone_type == "hf" and spec.is_decoder and spec.pooling == "last"


def kv_cache(output):
    """The key/value cache of a forward pass with use_cache (named `cache`, formerly `past_key_values`)."""
    return output["cache"] if "cache" in output else output["past_key_values"]


def prompt_groups(prompts: list) -> list[int]:
    """Sizes of the runs of consecutive equal prompts: ['a', 'a', 'b'] -> [2, 1]."""
    sizes: list[int] = []
    for i, prompt in enumerate(prompts):
        if i and prompt == prompts[i - 1]:
            sizes[-1] += 1
        else:
            sizes.append(1)
    return sizes


def shared_prompt_rewards(model, encoded: list, group_sizes: list[int], batch_size: int, precision: str,
                          device: torch.device) -> Iterator[tuple[list[int], torch.Tensor]]:
    """(indices, per-head rewards [len(indices), heads]) for each chunk of at most batch_size responses of a
    group, in input order. A group of one is scored as a plain sequence (its 'prefix' is empty)."""
    start = 0
    for pieces in shared_prefix_groups(encoded, group_sizes):
        prefix = torch.tensor([pieces[0].prefix], device=device)
        with autocast(precision, device):
            cache = kv_cache(model.backbone(input_ids=prefix, use_cache=True)) if prefix.shape[1] else None
        for first in range(0, len(pieces), batch_size):
            chunk = pieces[first:first + batch_size]
            with autocast(precision, device):
                rewards = responses_after(model, chunk, prefix.shape[1], cache, device)
            yield list(range(start + first, start + first + len(chunk))), rewards
        start += len(pieces)


def responses_after(model, pieces: list, prefix_length: int, cache, device: torch.device) -> torch.Tensor:
    """Per-head rewards [C, heads] of C responses that continue a computed prefix (its cache, or None)."""
    width = max(len(p.tokens) for p in pieces)
    ids = torch.full((len(pieces), width), model.tokenizer.pad_token_id or 0, dtype=torch.long, device=device)
    mask = torch.zeros((len(pieces), width), dtype=torch.long, device=device)
    for row, piece in enumerate(pieces):
        ids[row, :len(piece.tokens)] = torch.tensor(piece.tokens, device=device)
        mask[row, :len(piece.tokens)] = 1
    kwargs = {"input_ids": ids, "position_ids": (prefix_length + torch.arange(width, device=device)).expand_as(ids)}
    if cache is not None:
        cache = copy.deepcopy(cache)
        cache.batch_repeat_interleave(len(pieces))
        kwargs["cache"] = cache
    kwargs["attention_mask"] = torch.cat([torch.ones((len(pieces), prefix_length), dtype=torch.long, device=device),
                                          mask], dim=1)
    states = model.backbone(**kwargs).last_hidden_state
    last = mask.sum(dim=1) - 1
    h = states[torch.arange(len(pieces), device=device), last]
    return model.head(h.to(model.head.weight.dtype))
