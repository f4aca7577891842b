"""From validated records to tokenized training examples and padded batches.

An example is one record: its sequences (1 for a rating, 2 for a pair, K for a ranking) plus its
targets. A batch holds examples of one kind; all its sequences go through the backbone in one forward.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import torch

from rewardkit.config import ConfigError
from rewardkit.data.records import is_features, text_of
from rewardkit.losses import DEFAULT_OBJECTIVE, KIND_OF_OBJECTIVE, standardize_by_annotator
from rewardkit.model.packing import pack, plain_groups, shared_prefix_groups
from rewardkit.model.reward_model import RewardModel
from rewardkit.model.text import pad_features


@dataclass
class Example:
    kind: str
    sequences: list                 # Encoded (text) or feature lists (MLP)
    margin: float | None = None     # pairwise
    ranks: list[int] | None = None  # ranking (1 = best)
    best: int | None = None         # ranking
    target: float | None = None     # rating: aggregate score
    head_targets: dict = field(default_factory=dict)  # rating: {head index: score}
    head: int = -1                  # pairwise/ranking: train this head (-1 = the aggregate)
    tokens: int | None = None       # token count, kept when the sequences are replaced by cached features
    lengths: list[int] = field(default_factory=list)  # response lengths in characters (length de-biasing)
    boot: list[float] | None = None  # ensemble: this example's bootstrap weight for each member head


@dataclass
class PreparedData:
    examples: list[Example]
    skipped: dict[str, int]         # reason -> count (ties, stepwise, ...) — reported, never silent


def choose_objectives(kinds: set[str], objective: str) -> dict[str, str]:
    """The objective per record kind; an explicit objective must fit at least one kind in the data."""
    if objective == "auto":
        return {k: DEFAULT_OBJECTIVE[k] for k in kinds if k in DEFAULT_OBJECTIVE}
    needed = KIND_OF_OBJECTIVE[objective]
    if needed not in kinds:
        raise ConfigError(f"objective '{objective}' needs {needed} records, but the training data has only "
                          f"{', '.join(sorted(kinds)) or 'no'} records")
    return {k: (objective if k == needed else DEFAULT_OBJECTIVE[k]) for k in kinds if k in DEFAULT_OBJECTIVE}


def prepare_examples(records: list[dict], model: RewardModel, standardize_annotators: bool = False,
                     progress: bool = False) -> PreparedData:
    from tqdm.auto import tqdm

    heads = {name: i for i, name in enumerate(model.spec.heads)}
    skipped: Counter = Counter()
    examples: list[Example] = []
    mlp = model.spec.backbone_type == "mlp"

    rating_targets = [r.get("score") for r in records if r["kind"] == "rating"]
    if standardize_annotators and rating_targets:
        rated = [r for r in records if r["kind"] == "rating" and r.get("score") is not None]
        z = standardize_by_annotator([r["score"] for r in rated], [r.get("annotator") for r in rated])
        z_of = {id(r): v for r, v in zip(rated, z, strict=True)}
    else:
        z_of = {}

    for r in tqdm(records, desc="tokenizing", disable=not progress, unit="rec"):
        kind = r["kind"]
        if kind == "stepwise":
            skipped["stepwise records (process reward models are not trained by `rewardkit train`)"] += 1
            continue
        if kind == "pairwise" and r.get("tie"):
            skipped["tied pairs (no preference to learn)"] += 1
            continue
        head = heads.get(r.get("head"), -1) if r.get("head") is not None else -1
        if kind == "pairwise":
            responses = [r["chosen"], r["rejected"]]
        elif kind == "ranking":
            responses = r["responses"]
        else:
            responses = [r["response"]]
        if mlp != is_features(responses[0]):
            raise ConfigError(f"record {r.get('_line', '?')}: an MLP backbone needs numeric feature records and a "
                              "text backbone needs text records")
        sequences = responses if mlp else model.encoder.encode_group(r.get("prompt", ""), responses)
        ex = Example(kind=kind, sequences=sequences, head=head,
                     lengths=[0 if mlp else len(text_of(x)) for x in responses])
        if kind == "pairwise":
            ex.margin = r.get("margin")
        elif kind == "ranking":
            ranks = r.get("ranking") or [1 if i == r["best"] else 2 for i in range(len(responses))]
            ex.ranks, ex.best = ranks, r.get("best", ranks.index(min(ranks)))
        else:
            if r.get("score") is not None:
                ex.target = z_of.get(id(r), r["score"])
            ex.head_targets = {heads[k]: v for k, v in (r.get("scores") or {}).items() if k in heads}
            if ex.target is None and not ex.head_targets:
                raise ConfigError(f"record {r.get('_line', '?')}: its 'scores' name no head of this model "
                                  f"({', '.join(heads)}); pass --heads with those names")
        examples.append(ex)
    return PreparedData(examples, dict(skipped))


LAYOUTS = ("padded", "packed", "prefix")


def collate(examples: list[Example], model: RewardModel, padding_side: str = "right", layout: str = "padded") -> dict:
    """One backbone batch for all sequences of the examples, and the targets to score them against.

    layout: 'padded' (one row per sequence), 'packed' (sequences share rows, no padding) or 'prefix' (decoders:
    each example's prompt once, its responses after it; see rewardkit.model.packing).
    """
    sequences = [s for ex in examples for s in ex.sequences]
    if isinstance(sequences[0], torch.Tensor):  # cached backbone features
        inputs = {"cached": torch.stack(sequences)}
    elif model.spec.backbone_type == "mlp":
        inputs = pad_features(sequences)
    elif layout == "padded":
        inputs = model.encoder.collate(sequences, padding_side)
    else:
        groups = (shared_prefix_groups(sequences, [len(ex.sequences) for ex in examples]) if layout == "prefix"
                  else plain_groups(sequences))
        inputs = pack(groups, model.tokenizer.pad_token_id, model.spec.is_decoder, model.spec.max_length)
    sizes = [len(ex.sequences) for ex in examples]
    k = max(sizes)
    valid = torch.tensor([[i < n for i in range(k)] for n in sizes], dtype=torch.bool)
    # Row b, slot i of a [B, K] view -> position in the flat [N] list of rewards (padding slots point at 0).
    offsets = torch.tensor([sum(sizes[:b]) for b in range(len(sizes))]).unsqueeze(1)
    index = torch.where(valid, offsets + torch.arange(k), torch.zeros(1, dtype=torch.long))
    kind = examples[0].kind
    batch = {"inputs": inputs, "kind": kind, "index": index, "valid": valid,
             "head": torch.tensor([ex.head for ex in examples]),
             "lengths": torch.tensor([n for ex in examples for n in ex.lengths], dtype=torch.float32)}
    if examples[0].boot is not None:
        batch["boot"] = torch.tensor([ex.boot for ex in examples], dtype=torch.float32)
    if kind == "pairwise":
        batch["margin"] = torch.tensor([ex.margin if ex.margin is not None else float("nan") for ex in examples])
    elif kind == "ranking":
        batch["ranks"] = torch.tensor([ex.ranks + [k + 1] * (k - len(ex.ranks)) for ex in examples])
        batch["best"] = torch.tensor([ex.best for ex in examples])
    else:
        batch["target"] = torch.tensor([ex.target if ex.target is not None else float("nan") for ex in examples])
        n_heads = len(model.spec.heads)
        batch["head_targets"] = torch.tensor([[ex.head_targets.get(h, float("nan")) for h in range(n_heads)]
                                              for ex in examples])
    return batch

