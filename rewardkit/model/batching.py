"""From encoded sequences to model inputs: one module for training, scoring and serving.

A *layout* is how a batch's sequences share the backbone's rows:
  padded   one row per sequence, padded to the longest (left or right; the scores are the same)
  packed   several sequences per row, no padding between them (rewardkit.model.packing)
  prefix   decoders: each group's shared prompt once, its responses after it (packing with parents)
Feature vectors (MLP models) are always padded over their steps, and cached backbone features are stacked.
Solutions scored step by step (EncodedSteps) have masks of their own (rewardkit.model.steps): padded, or packed with
each distinct prompt once per row (both packed and prefix mean that for them, on encoders and decoders alike).

`length_batches` cuts a list of sequences into batches of similar length, so that little of a batch is padding.
"""

from __future__ import annotations

import torch

from rewardkit.model.packing import pack, plain_groups, shared_prefix_groups
from rewardkit.model.steps import packed_step_batch, prompt_ids, step_batch
from rewardkit.model.text import EncodedSteps, pad_features

LAYOUTS = ("padded", "packed", "prefix")


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


def sequence_length(sequence) -> int:
    """Tokens of an encoded text, or steps of a feature vector / trajectory."""
    return len(sequence.input_ids) if hasattr(sequence, "input_ids") else len(sequence)


def model_inputs(model, sequences: list, layout: str = "padded", padding_side: str = "right",
                 group_sizes: list[int] | None = None) -> dict[str, torch.Tensor]:
    """The backbone batch for `sequences` in `layout`. `group_sizes` (prefix layout) says how many consecutive
    sequences share one prompt, e.g. [2, 2] for two pairs."""
    if isinstance(sequences[0], torch.Tensor):  # backbone features computed once (TrainConfig.cache_features)
        return {"cached": torch.stack(sequences)}
    if model.spec.backbone_type == "mlp":
        return pad_features(sequences)
    if isinstance(sequences[0], EncodedSteps):
        if layout == "padded":
            return step_batch(sequences, model.tokenizer.pad_token_id, model.spec.is_decoder, padding_side)
        return packed_step_batch(sequences, model.tokenizer.pad_token_id, model.spec.is_decoder)
    if layout == "padded":
        return model.encoder.collate(sequences, padding_side)
    groups = (shared_prefix_groups(sequences, group_sizes or [1] * len(sequences)) if layout == "prefix"
              else plain_groups(sequences))
    return pack(groups, model.tokenizer.pad_token_id, model.spec.is_decoder, model.spec.max_length)


def scoring_batches(model, encoded: list, batch_size: int = 32, max_tokens: int = 0, packing: bool = False,
                    pack_solutions: bool = False):
    """(indices, model inputs) for encoded sequences in length-sorted batches, padded or packed. Solutions
    (EncodedSteps) never share a batch with plain sequences (their inputs differ); packed (with `packing` or
    `pack_solutions`) they are batched by prompt, so the solutions of one prompt share its tokens."""
    packing = packing and model.spec.backbone_type != "mlp"
    solutions = [i for i, e in enumerate(encoded) if isinstance(e, EncodedSteps)]
    plain = [i for i, e in enumerate(encoded) if not isinstance(e, EncodedSteps)]
    if solutions and (packing or pack_solutions):
        order = sorted(solutions, key=lambda i: (prompt_ids(encoded[i]), len(encoded[i].input_ids)))
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            yield idx, model_inputs(model, [encoded[i] for i in idx], "packed")
        solutions = []
    for part, packed in ((solutions, False), (plain, packing)):
        lengths = [sequence_length(encoded[i]) for i in part]
        # Packed batches need no padding cut: their cost is the real tokens (and a T x T mask per row).
        for cut in length_batches(lengths, batch_size, max_tokens, max_padding=1.0 if packed else 0.25):
            idx = [part[j] for j in cut]
            yield idx, model_inputs(model, [encoded[i] for i in idx], "packed" if packed else "padded")
