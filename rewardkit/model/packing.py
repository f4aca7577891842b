"""Padding-free packing and shared-prompt prefixes: several sequences in one row of the batch.

A row holds *segments* of tokens. A segment sees itself and, optionally, one earlier segment of the same
row, its *parent*: nothing else. Position ids restart at 0 for a segment without a parent and continue
after the parent's for one with a parent. So
- packing puts unrelated sequences side by side, each a segment without parent: no padding between them,
  and a block-diagonal attention mask keeps them apart;
- prefix sharing (decoders only) puts a prompt once and its K responses after it, each response a child
  of the prompt: the prompt is computed once for all K. An encoder's prompt tokens attend to the response,
  so their states differ per response and cannot be shared; decoders are causal, so they can.
The attention mask is a 4D boolean [rows, 1, T, T] that Hugging Face models take as given.
A sequence's score is read where the padded path reads it: its last token ('last'), the first token of
the whole sequence ('first', 'pooler'), or the mean over the whole sequence including its parent ('mean').
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Piece:
    """One scored sequence, given as a shared prefix (possibly empty) and its own tokens."""

    prefix: list[int]
    tokens: list[int]
    prefix_types: list[int] | None = None
    token_types: list[int] | None = None


def shared_prefix_groups(sequences: list, group_sizes: list[int]) -> list[list[Piece]]:
    """Split each group of encoded sequences (one prompt's K responses) at their longest common prefix,
    keeping at least one token of each sequence out of the prefix."""
    groups, start = [], 0
    for size in group_sizes:
        members = sequences[start:start + size]
        start += size
        ids = [m.input_ids for m in members]
        common = 0
        shortest = min(len(x) for x in ids)
        while common < shortest - 1 and all(x[common] == ids[0][common] for x in ids):
            common += 1
        if size == 1:
            common = 0
        types = [m.token_type_ids for m in members]
        groups.append([Piece(ids[0][:common], x[common:], t[:common] if t else None, t[common:] if t else None)
                       for x, t in zip(ids, types, strict=True)])
    return groups


def plain_groups(sequences: list) -> list[list[Piece]]:
    return [[Piece([], s.input_ids, None, s.token_type_ids)] for s in sequences]


def assign_rows(sizes: list[int], row_tokens: int) -> list[list[int]]:
    """Group indices per row: first-fit in decreasing size into rows of at most `row_tokens` tokens (a group
    longer than that gets a row of its own)."""
    rows: list[list[int]] = []
    room: list[int] = []
    for gi in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        for r in range(len(rows)):
            if room[r] >= sizes[gi]:
                rows[r].append(gi)
                room[r] -= sizes[gi]
                break
        else:
            rows.append([gi])
            room.append(max(row_tokens, sizes[gi]) - sizes[gi])
    return rows


def pack(groups: list[list[Piece]], pad_id: int, causal: bool, row_tokens: int) -> dict[str, torch.Tensor]:
    """Rows of at most `row_tokens` tokens, filled first-fit in decreasing size (assign_rows). Returns the model
    inputs and, per sequence in input order, where to pool."""
    sizes = [len(g[0].prefix) + sum(len(p.tokens) for p in g) for g in groups]
    rows = assign_rows(sizes, row_tokens)
    width = max(sum(sizes[g] for g in row) for row in rows)
    n_rows = len(rows)
    input_ids = torch.full((n_rows, width), pad_id, dtype=torch.long)
    types = torch.zeros((n_rows, width), dtype=torch.long)
    positions = torch.zeros((n_rows, width), dtype=torch.long)
    segment = torch.full((n_rows, width), -1, dtype=torch.long)   # which segment a token belongs to (-1 = pad)
    parent_of: list[list[int]] = []                                 # per row: parent segment of each segment
    n_pieces = sum(len(g) for g in groups)
    first = torch.zeros(n_pieces, dtype=torch.long)
    last = torch.zeros(n_pieces, dtype=torch.long)
    members_token: list[int] = []
    members_owner: list[int] = []
    offsets = [0]
    for g in groups:
        offsets.append(offsets[-1] + len(g))
    has_types = any(p.token_types is not None for g in groups for p in g)
    for r, row in enumerate(rows):
        cursor, parents = 0, []
        for gi in row:
            group = groups[gi]
            prefix = group[0].prefix
            prefix_segment = None
            if prefix:
                prefix_segment = len(parents)
                parents.append(-1)
                span = slice(cursor, cursor + len(prefix))
                input_ids[r, span] = torch.tensor(prefix)
                positions[r, span] = torch.arange(len(prefix))
                segment[r, span] = prefix_segment
                if has_types and group[0].prefix_types:
                    types[r, span] = torch.tensor(group[0].prefix_types)
                prefix_start = cursor
                cursor += len(prefix)
            for k, piece in enumerate(group):
                seq = offsets[gi] + k
                own = len(parents)
                parents.append(-1 if prefix_segment is None else prefix_segment)
                span = slice(cursor, cursor + len(piece.tokens))
                input_ids[r, span] = torch.tensor(piece.tokens)
                positions[r, span] = torch.arange(len(prefix), len(prefix) + len(piece.tokens))
                segment[r, span] = own
                if has_types and piece.token_types:
                    types[r, span] = torch.tensor(piece.token_types)
                base = r * width
                first[seq] = base + (prefix_start if prefix else cursor)
                last[seq] = base + cursor + len(piece.tokens) - 1
                own_tokens = list(range(base + cursor, base + cursor + len(piece.tokens)))
                prefix_tokens = list(range(base + prefix_start, base + prefix_start + len(prefix))) if prefix else []
                members_token += prefix_tokens + own_tokens
                members_owner += [seq] * (len(prefix_tokens) + len(own_tokens))
                cursor += len(piece.tokens)
        parent_of.append(parents)
    mask = segment_mask(segment, parent_of, causal)
    batch = {"input_ids": input_ids, "attention_mask": mask.unsqueeze(1), "position_ids": positions,
             "pool_first": first, "pool_last": last, "pool_tokens": torch.tensor(members_token, dtype=torch.long),
             "pool_owner": torch.tensor(members_owner, dtype=torch.long)}
    if has_types:
        batch["token_type_ids"] = types
    return batch


def segment_mask(segment: torch.Tensor, parent_of: list[list[int]], causal: bool) -> torch.Tensor:
    """Attention [R, T, T] from each token's segment [R, T] (-1 = pad) and each row's segment parents: a token sees
    its own segment and its segment's parent (and, if causal, only earlier tokens)."""
    width = segment.shape[1]
    same = segment.unsqueeze(2) == segment.unsqueeze(1)
    parent_table = torch.full((segment.shape[0], max(len(p) for p in parent_of) + 1), -2, dtype=torch.long)
    for r, parents in enumerate(parent_of):
        parent_table[r, :len(parents)] = torch.tensor(parents)
    query_parent = torch.gather(parent_table, 1, segment.clamp(min=0))
    sees_parent = (query_parent.unsqueeze(2) == segment.unsqueeze(1)) & (segment.unsqueeze(1) >= 0)
    mask = (same | sees_parent) & (segment.unsqueeze(2) >= 0)
    if causal:
        mask &= torch.ones(width, width, dtype=torch.bool).tril()
    # padding rows/columns: let pad tokens see themselves so no softmax row is empty
    return mask | (torch.eye(width, dtype=torch.bool).unsqueeze(0) & (segment < 0).unsqueeze(2))


def pool_packed(states: torch.Tensor, batch: dict, how: str) -> torch.Tensor:
    """Per-sequence vectors [N, H] from packed states [R, T, H]."""
    flat = states.reshape(-1, states.shape[-1])
    if how == "last":
        return flat[batch["pool_last"]]
    if how in ("first", "pooler"):
        return flat[batch["pool_first"]]
    owner = batch["pool_owner"]
    n = batch["pool_last"].shape[0]
    summed = torch.zeros(n, flat.shape[-1], dtype=flat.dtype, device=flat.device).index_add_(0, owner, flat[batch["pool_tokens"]])
    counts = torch.bincount(owner, minlength=n).clamp(min=1).unsqueeze(1).to(flat.dtype)
    return summed / counts
