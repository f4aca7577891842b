"""Which examples form each training step: seeded single-kind batches, their split across processes and into
forward passes of bounded size, and length-balanced resampling of pairs."""

from __future__ import annotations

import random

from rewardkit.model.batching import length_batches
from rewardkit.model.steps import prompt_ids
from rewardkit.model.text import EncodedSteps
from rewardkit.train.examples import Example


def epoch_batches(examples: list[Example], batch_size: int, seed: int, epoch: int,
                  group_by_length: bool = False, by_prompt: bool = False) -> list[list[int]]:
    """Single-kind batches of example indices, shuffled deterministically by (seed, epoch).

    With group_by_length, the shuffled examples are sorted by length within windows of 64 batches before
    they are cut, so a batch holds similar lengths (little padding) while batch order stays random. With by_prompt
    (packed layouts), the solutions of one prompt in a window are then moved next to the first of them, so a packed
    batch holds their prompt once (rewardkit.model.steps.packed_step_batch); other examples keep their order.
    """
    rng = random.Random(seed * 1_000_003 + epoch)
    by_kind: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        by_kind.setdefault(ex.kind, []).append(i)
    batches = []
    for kind in sorted(by_kind):
        idx = by_kind[kind][:]
        rng.shuffle(idx)
        window = batch_size * 64
        windows = [idx[s:s + window] for s in range(0, len(idx), window)]
        if group_by_length:
            windows = [sorted(w, key=lambda i: len(examples[i])) for w in windows]
        if by_prompt:
            windows = [solutions_by_prompt(w, examples) for w in windows]
        idx = [i for w in windows for i in w]
        batches += [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]
    rng.shuffle(batches)
    return batches


def solutions_by_prompt(order: list[int], examples: list[Example]) -> list[int]:
    """`order` with every solution moved next to the first solution of its prompt (a stable sort on where each
    prompt first appears); examples that are not solutions stay where they are relative to each other."""
    first: dict[tuple, int] = {}
    keys = []
    for pos, i in enumerate(order):
        sequence = examples[i].sequences[0]
        key = ("prompt", prompt_ids(sequence)) if isinstance(sequence, EncodedSteps) else ("example", pos)
        keys.append(first.setdefault(key, pos))
    return [i for _, i in sorted(zip(keys, order, strict=True), key=lambda pair: pair[0])]


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
