"""Step rewards: one forward pass over a prompt and all the steps of a solution gives a reward at every step's end.

Vocabulary
- A *solution* is a prompt and its steps, encoded by TextEncoder.encode_steps: the prompt ids, then for each step
  its own ids followed by the *separator*'s ("\\n" by default). Each step is tokenised on its own, so the ids of the
  prompt and the first j steps are exactly the first ids of the whole solution (*prefix-consistent*).
- A step's *end* is its separator's last token; the step's reward is the head's output there (TRL's PRMTrainer
  labels the same token). The backbone's sequence pooling plays no part.
- *Visibility*: a step's reward may depend only on the prompt and the steps up to it. A decoder is causal, so
  this holds as it is, and one pass equals scoring each prefix alone. An encoder attends both ways, so its
  attention mask is block-causal by step: a token of step j sees the prompt and steps 0..j, nothing later.
- *Packed* step rows (`packed_step_batch`) hold several solutions side by side with no padding between them, and
  the solutions of one prompt share a single copy of it: the prompt's tokens see only the prompt (causal on a
  decoder, step -1 on an encoder), so its states are the same for every solution and are computed once.
- *Step rewards* [B, T] (logits: P(step is right) = sigmoid) with a mask [B, T] of the steps a solution has, and
  an *aggregate* per solution: min, last, mean (of the logits), or product (log of the product of the step
  probabilities: the sum of log-sigmoids). A trajectory is steps too (rewardkit.control): its steps are
  (observation, action) pairs and its return is the *sum* aggregate.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rewardkit.model.packing import assign_rows
from rewardkit.model.text import EncodedSteps

AGGREGATES = ("min", "last", "mean", "product", "sum")


def step_batch(solutions: list[EncodedSteps], pad_id: int, is_decoder: bool,
               padding_side: str = "right") -> dict[str, torch.Tensor]:
    """Model inputs for solutions [B]: input_ids / position_ids [B, L], an attention mask ([B, L] for a decoder,
    block-causal [B, 1, L, L] for an encoder), token_type_ids where the encoder uses them, and step_ends [S]: the
    flat index (row * L + position) of every step end, solution by solution."""
    width = max(len(s.input_ids) for s in solutions)
    ids = torch.full((len(solutions), width), pad_id, dtype=torch.long)
    step_of = torch.full((len(solutions), width), -2, dtype=torch.long)  # -2 = padding, -1 = prompt
    with_types = solutions[0].token_type_ids is not None
    types = torch.zeros((len(solutions), width), dtype=torch.long)
    ends = []
    for i, s in enumerate(solutions):
        n = len(s.input_ids)
        offset = width - n if padding_side == "left" else 0
        ids[i, offset:offset + n] = torch.tensor(s.input_ids)
        step_of[i, offset:offset + n] = torch.tensor(s.step_of)
        if with_types:
            types[i, offset:offset + n] = torch.tensor(s.token_type_ids)
        ends += [i * width + offset + e for e in s.ends]
    real = step_of > -2
    batch = {"input_ids": ids, "position_ids": (real.long().cumsum(-1) - 1).clamp(min=0),
             "step_ends": torch.tensor(ends, dtype=torch.long),
             "attention_mask": real.long() if is_decoder else block_causal_mask(step_of)}
    if with_types:
        batch["token_type_ids"] = types
    return batch


def packed_step_batch(solutions: list[EncodedSteps], pad_id: int, is_decoder: bool,
                      row_tokens: int | None = None) -> dict[str, torch.Tensor]:
    """The inputs of step_batch with the solutions packed into rows of at most `row_tokens` tokens (default: the
    longest solution, so no row is wider than padding makes it: on a CPU attention costs W^2 per row, masked or not),
    and the solutions of one prompt that fit in a row after one copy of it: input_ids / position_ids /
    token_type_ids [R, W], attention_mask [R, 1, W, W], and step_ends [S] in the order of `solutions`, so the
    step rewards come out as step_batch's do."""
    cap = row_tokens or max(len(s.input_ids) for s in solutions)
    by_prompt: dict[tuple, list[int]] = {}
    for i, s in enumerate(solutions):
        by_prompt.setdefault(prompt_ids(s), []).append(i)
    groups: list[list[int]] = []  # a prompt and the solutions that follow it in one row
    sizes: list[int] = []         # the tokens each group takes
    for prompt, members in by_prompt.items():
        for i in members:
            steps = len(solutions[i].input_ids) - len(prompt)
            if i == members[0] or sizes[-1] + steps > cap:
                groups.append([])
                sizes.append(len(prompt))
            groups[-1].append(i)
            sizes[-1] += steps
    rows = assign_rows(sizes, cap)
    width = max(sum(sizes[g] for g in row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    types, positions = torch.zeros_like(ids), torch.zeros_like(ids)
    group_of = torch.full_like(ids, -1)   # which prompt's group a token belongs to (-1 = padding)
    owner = torch.full_like(ids, -1)      # which solution (-1 = the group's shared prompt)
    step_of = torch.full_like(ids, -1)
    ends: list[list[int]] = [[] for _ in solutions]
    with_types = solutions[0].token_type_ids is not None
    for r, row in enumerate(rows):
        cursor = 0
        for gi in row:
            n_prompt = prompt_length(solutions[groups[gi][0]])
            pieces = [(-1, solutions[groups[gi][0]], 0, n_prompt)]  # (owner, solution, first id, last id + 1)
            pieces += [(i, solutions[i], n_prompt, len(solutions[i].input_ids)) for i in groups[gi]]
            for who, s, lo, hi in pieces:
                span = slice(cursor, cursor + hi - lo)
                ids[r, span] = torch.tensor(s.input_ids[lo:hi])
                positions[r, span] = torch.arange(lo, hi)
                step_of[r, span] = torch.tensor(s.step_of[lo:hi])
                if with_types:
                    types[r, span] = torch.tensor(s.token_type_ids[lo:hi])
                group_of[r, span], owner[r, span] = gi, who
                if who >= 0:
                    ends[who] = [r * width + cursor + e - lo for e in s.ends]
                cursor += hi - lo
    real = group_of >= 0
    sees = ((group_of.unsqueeze(2) == group_of.unsqueeze(1)) & real.unsqueeze(1) & real.unsqueeze(2)
            & ((owner.unsqueeze(1) == -1) | (owner.unsqueeze(1) == owner.unsqueeze(2))))
    if is_decoder:
        sees &= torch.ones(width, width, dtype=torch.bool).tril()
    else:
        sees &= step_of.unsqueeze(1) <= step_of.unsqueeze(2)
    sees |= torch.eye(width, dtype=torch.bool).unsqueeze(0) & ~real.unsqueeze(2)  # no empty softmax row
    batch = {"input_ids": ids, "position_ids": positions, "attention_mask": sees.unsqueeze(1),
             "step_ends": torch.tensor([e for per in ends for e in per], dtype=torch.long)}
    if with_types:
        batch["token_type_ids"] = types
    return batch


def prompt_length(solution: EncodedSteps) -> int:
    """Tokens before the first step (the prompt and any special tokens around it)."""
    return solution.step_of.count(-1)


def prompt_ids(solution: EncodedSteps) -> tuple[int, ...]:
    """The ids before the first step: solutions with equal prompt ids can share one copy of them."""
    return tuple(solution.input_ids[: prompt_length(solution)])


def block_causal_mask(step_of: torch.Tensor) -> torch.Tensor:
    """[B, 1, L, L]: token q sees token k when k is real and k's step is not after q's (the prompt is step -1);
    a padding token sees itself only, so no softmax row is empty."""
    real = step_of > -2
    sees = (step_of.unsqueeze(1) <= step_of.unsqueeze(2)) & real.unsqueeze(1) & real.unsqueeze(2)
    sees |= torch.eye(step_of.shape[1], dtype=torch.bool).unsqueeze(0) & ~real.unsqueeze(2)
    return sees.unsqueeze(1)


def aggregate_steps(step_rewards: torch.Tensor, mask: torch.Tensor, how: str = "min") -> torch.Tensor:
    """One reward per solution [B] from step rewards [B, T] (logits) over the steps in `mask` [B, T]."""
    if how == "min":
        return step_rewards.masked_fill(~mask, torch.inf).min(dim=1).values
    if how == "last":
        last = (mask.long().cumsum(dim=1) == mask.sum(dim=1, keepdim=True)) & mask
        return (step_rewards * last).sum(dim=1)
    if how == "mean":
        return (step_rewards * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
    if how == "sum":
        return (step_rewards * mask).sum(dim=1)
    if how == "product":
        return torch.where(mask, F.logsigmoid(step_rewards), torch.zeros_like(step_rewards)).sum(dim=1)
    raise ValueError(f"step aggregate must be one of {', '.join(AGGREGATES)}, got {how!r}")


def split_steps(flat: torch.Tensor, counts: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Step rewards of consecutive solutions, flat [S, ...], as [B, T, ...] with the mask [B, T] of real steps."""
    width = max(counts, default=0)
    mask = torch.arange(width).unsqueeze(0) < torch.tensor(counts).unsqueeze(1)
    out = flat.new_zeros((len(counts), width, *flat.shape[1:]))
    out[mask] = flat
    return out, mask
