"""From validated records to tokenized training examples and single-kind batches.

An example is one record: its encoded responses (1 for a rating, 2 for a pair, K for a ranking) plus the
targets its kind compares their rewards with (rewardkit.data.kinds). A batch holds examples of one kind; all their
sequences go through the backbone in one forward pass (rewardkit.model.batching lays them out).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import torch

from rewardkit.data.annotators import standardize_by_annotator
from rewardkit.data.kinds import KINDS
from rewardkit.data.texts import Steps, is_features, text_of
from rewardkit.errors import DataError
from rewardkit.model.batching import model_inputs, sequence_length
from rewardkit.model.text import EncodedSteps


@dataclass
class Example:
    kind: str
    sequences: list                 # encoded texts, feature vectors (MLP) or cached backbone features
    targets: dict = field(default_factory=dict)  # what the kind's loss compares the rewards with
    head: int = -1                  # train this head (-1 = the aggregate)
    tokens: int | None = None       # token count, kept when the sequences are replaced by cached features
    lengths: list[int] = field(default_factory=list)  # response lengths in characters (length de-biasing)
    boot: list[float] | None = None  # ensemble: this example's bootstrap weight for each member head

    @property
    def slots(self) -> int:
        """How many rewards the example gets: one per response, or one per kept step of a solution."""
        return sum(len(s.ends) if isinstance(s, EncodedSteps) else 1 for s in self.sequences)

    def __len__(self) -> int:
        """Tokens (or feature steps) over all sequences: what batching by length sorts on."""
        return self.tokens if self.tokens is not None else sum(sequence_length(s) for s in self.sequences)


@dataclass
class PreparedData:
    examples: list[Example]
    skipped: dict[str, int]         # reason -> count (ties, stepwise, ...) — reported, never silent


def rating_targets(records: list[dict]) -> dict[int, float]:
    """Per-annotator z-scored rating targets, keyed by id(record) (TrainConfig.standardize_annotators)."""
    rated = [r for r in records if r["kind"] == "rating" and r.get("score") is not None]
    z = standardize_by_annotator([r["score"] for r in rated], [r.get("annotator") for r in rated]) if rated else []
    return {id(r): v for r, v in zip(rated, z, strict=True)}


def prepare_examples(records: list[dict], model, standardize_annotators: bool = False,
                     progress: bool = False) -> PreparedData:
    """Encode each trainable record; records a kind does not train on are counted by reason."""
    from tqdm.auto import tqdm

    heads = {name: i for i, name in enumerate(model.spec.heads)}
    mlp = model.spec.backbone_type == "mlp"
    z_scores = rating_targets(records) if standardize_annotators else {}
    skipped: Counter = Counter()
    examples: list[Example] = []
    for r in tqdm(records, desc="tokenizing", disable=not progress, unit="rec"):
        kind = KINDS[r["kind"]]
        reason = kind.skip_reason(r)
        if reason:
            skipped[reason] += 1
            continue
        responses = kind.responses(r)
        if mlp != is_features(responses[0]):
            raise DataError("an MLP backbone needs numeric feature records and a text backbone needs text records",
                            line=r.get("_line"))
        targets = kind.targets(r, heads)
        if id(r) in z_scores:
            targets["target"] = z_scores[id(r)]
        examples.append(Example(
            kind=kind.name, targets=targets, sequences=responses if mlp else encode(model, r.get("prompt", ""), responses),
            head=heads.get(r["head"], -1) if r.get("head") is not None else -1,
            lengths=[0 if mlp else len(text_of(x)) for x in responses]))
    return PreparedData(examples, dict(skipped))


def encode(model, prompt, responses: list) -> list:
    """The responses to one prompt as token ids: a solution in steps on its own, others with one shared prompt cut."""
    if isinstance(responses[0], Steps):
        return [model.encoder.encode_steps(prompt, responses[0], model.spec.step_separator)]
    return model.encoder.encode_group(prompt, responses)


def collate(examples: list[Example], model, padding_side: str = "right", layout: str = "padded") -> dict:
    """One backbone batch for all sequences of single-kind examples, and the targets to score them against.

    The batch holds: inputs (the backbone's), index / valid [B, K] (see rewardkit.data.kinds.BatchRewards), head [B],
    lengths [N], boot [B, members] (ensembles), and the kind's own target tensors.
    """
    sizes = [ex.slots for ex in examples]
    sequences = [s for ex in examples for s in ex.sequences]
    k = max(sizes)
    valid = torch.tensor([[i < n for i in range(k)] for n in sizes], dtype=torch.bool)
    offsets = torch.tensor([sum(sizes[:b]) for b in range(len(sizes))]).unsqueeze(1)
    groups = [len(ex.sequences) for ex in examples]
    batch = {"inputs": model_inputs(model, sequences, layout, padding_side, groups), "kind": examples[0].kind,
             "index": torch.where(valid, offsets + torch.arange(k), torch.zeros(1, dtype=torch.long)), "valid": valid,
             "head": torch.tensor([ex.head for ex in examples]),
             "lengths": torch.tensor([n for ex in examples for n in ex.lengths], dtype=torch.float32)}
    if examples[0].boot is not None:
        batch["boot"] = torch.tensor([ex.boot for ex in examples], dtype=torch.float32)
    batch.update(KINDS[examples[0].kind].collate([ex.targets for ex in examples], sizes, len(model.spec.heads)))
    return batch
