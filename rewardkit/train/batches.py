"""Which examples form each training step: seeded single-kind batches, their split across processes and into
forward passes of bounded size, and length-balanced resampling of pairs."""

from __future__ import annotations

import random

from rewardkit.model.batching import length_batches
from rewardkit.model.steps import prompt_length
from rewardkit.model.text import EncodedSteps
from rewardkit.train.examples import Example


def epoch_batches(examples: list[Example], batch_size: int, seed: int, epoch: int,
                  group_by_length: bool = False, by_prompt: bool = False) -> list[list[int]]:
    """Single-kind batches of example indices, shuffled deterministically by (seed, epoch).

    With group_by_length, the shuffled examples are sorted by length within windows of 64 batches before
    they are cut, so a batch holds similar lengths (little padding) while batch order stays random. With by_prompt
    as well (packed layouts, which have no padding to save), solutions of one prompt are sorted next to each other
    first, so packed rows hold the prompt once for all of them (rewardkit.model.steps.packed_step_batch).
    """
    def order(i: int):
        ex = examples[i]
        if by_prompt and isinstance(ex.sequences[0], EncodedSteps):
            return ex.sequences[0].input_ids[: prompt_length(ex.sequences[0])], len(ex)
        return [], len(ex)

    rng = random.Random(seed * 1_000_003 + epoch)
    by_kind: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        by_kind.setdefault(ex.kind, []).append(i)
    batches = []
    for kind in sorted(by_kind):
        idx = by_kind[kind][:]
        rng.shuffle(idx)
        if group_by_length:
            window = batch_size * 64
            idx = [i for s in range(0, len(idx), window) for i in sorted(idx[s:s + window], key=order)]
        batches += [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]
    rng.shuffle(batches)
    return batches


def layout(cfg) -> str:
    """The batch layout TrainConfig asks for (rewardkit.model.batching.LAYOUTS)."""
    return "prefix" if cfg.prefix_sharing else "packed" if cfg.packing else "padded"


def shard(indices: list[int], rank: int, world: int) -> list[int]:
    """This process's share of a global batch, by position."""
    return indices[rank::world]


def token_chunks(part: list[int], examples: list[Example], max_batch_tokens: int, whole: bool = False) -> list[list[int]]:
    """Split one micro-batch into forward passes of at most `max_batch_tokens` padded tokens; their gradients
    add up to the whole batch's (per-example losses are averaged with the right weights). `whole` keeps the
    batch in one pass (contrastive batches: their negatives are the other pairs of the batch)."""
    if not max_batch_tokens or whole or not hasattr(examples[part[0]].sequences[0], "input_ids"):
        return [part]  # feature vectors and cached features have no tokens to cap
    widths = [max(len(s.input_ids) for s in examples[i].sequences) * len(examples[i].sequences) for i in part]
    cut = length_batches(widths, batch_size=len(part), max_tokens=max_batch_tokens, max_padding=1.0)
    return [[part[j] for j in chunk] for chunk in cut]


def balance_by_length(examples: list[Example], seed: int) -> list[Example]:
    """Length-balanced sampling: repeat randomly drawn pairs of the rarer kind (chosen longer, or chosen
    shorter) until both kinds are equally common, so that length alone predicts nothing."""
    longer = [ex for ex in examples if ex.kind == "pairwise" and ex.lengths[0] > ex.lengths[1]]
    shorter = [ex for ex in examples if ex.kind == "pairwise" and ex.lengths[0] < ex.lengths[1]]
    if not longer or not shorter:
        return examples
    rare, common = (longer, shorter) if len(longer) < len(shorter) else (shorter, longer)
    extra = random.Random(seed).choices(rare, k=len(common) - len(rare))
    print(f"length balancing: {len(longer)} pairs with the longer response chosen, {len(shorter)} with the shorter; "
          f"repeating {len(extra)} of the rarer kind")
    return examples + extra
