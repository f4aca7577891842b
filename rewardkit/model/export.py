"""Export to the Hugging Face sequence-classification layout that TRL, OpenRLHF and vLLM load.

Two layouts map exactly onto a rewardkit model:
- BERT-style encoders with `pooler` pooling -> XForSequenceClassification (pooler, then `classifier` with bias);
- decoders with `last` pooling and no head bias -> XForSequenceClassification (`score`, last non-pad token).
Other combinations would change the scores, so they are refused with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from rewardkit.errors import ModelError
from rewardkit.model.reward_model import RewardModel


def export_hf(model: RewardModel, output: str | Path) -> Path:
    from transformers import AutoModelForSequenceClassification

    spec = model.spec
    if spec.backbone_type != "hf":
        raise ModelError("only transformer reward models can be exported to the Hugging Face layout")
    if spec.is_decoder and (spec.pooling != "last" or spec.head_bias):
        raise ModelError("a decoder exports exactly only with 'last' pooling and no head bias (the defaults)")
    if not spec.is_decoder and spec.pooling != "pooler":
        raise ModelError(f"an encoder exports exactly only with 'pooler' pooling (this model uses '{spec.pooling}'); "
                         "Hugging Face's sequence-classification encoders score the pooled first token")
    config = model.backbone.config.__class__.from_dict(model.backbone.config.to_dict())
    config.num_labels = len(spec.heads)
    config.id2label = dict(enumerate(spec.heads))
    config.label2id = {name: i for i, name in enumerate(spec.heads)}
    config.problem_type = "regression"
    config.pad_token_id = model.tokenizer.pad_token_id
    config.architectures = None
    hf = AutoModelForSequenceClassification.from_config(config)
    base = getattr(hf, hf.base_model_prefix)
    missing, unexpected = base.load_state_dict(model.backbone.state_dict(), strict=False)
    if [k for k in missing if "position_ids" not in k] or unexpected:
        raise ModelError(f"backbone weights do not fit {type(hf).__name__}: missing {missing[:3]}, unexpected {unexpected[:3]}")
    head = getattr(hf, "score", None) if spec.is_decoder else getattr(hf, "classifier", None)
    if not isinstance(head, torch.nn.Linear):
        raise ModelError(f"{type(hf).__name__} has no linear scoring layer to receive the reward head")
    with torch.no_grad():
        head.weight.copy_(model.head.weight)
        if spec.head_bias:
            head.bias.copy_(model.head.bias)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    hf.config.rewardkit = {"heads": spec.heads, "head_weights": spec.head_weights,
                           "normalization": spec.normalization, "calibration": spec.calibration}
    hf.save_pretrained(str(output), safe_serialization=True)
    model.tokenizer.save_pretrained(str(output))
    (output / "rewardkit_export.json").write_text(json.dumps({"source": spec.backbone, "heads": spec.heads,
                                                                "head_weights": spec.head_weights,
                                                                "normalization": spec.normalization}, indent=2))
    return output
