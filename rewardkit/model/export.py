"""Export to the Hugging Face layouts that TRL, OpenRLHF and vLLM load.

Vocabulary
- The *sequence layout* (export_hf): XForSequenceClassification, one output per head, read at one token of each
  sequence. Two rewardkit layouts map exactly onto it:
  - BERT-style encoders with `pooler` pooling -> the pooler, then `classifier` with bias;
  - decoders with `last` pooling and no head bias -> `score`, read at the last non-pad token.
- The *PRM layout* (export_prm_hf): XForTokenClassification of a decoder process reward model
  (rewardkit.model.steps) with two labels per token, 0 = wrong and 1 = right, whose logits are [0, r] where r is
  the step reward rewardkit gives at that token. So softmax(logits)[1] = sigmoid(r) = P(step is right), the
  read-out of TRL-trained PRMs and of Qwen's PRMs, and column 1 alone is r.
- A step's score is read at its *step tag*: the last token of the separator that ends the step (`step_tag_id`).
  Only a decoder exports as a PRM: an encoder PRM attends block-causally by step, which a standard Hugging Face
  forward cannot express (its prompt tokens would see the steps, so every step score would change).
Other combinations would change the scores, so they are refused with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from rewardkit.errors import ModelError
from rewardkit.model.reward_model import RewardModel
from rewardkit.model.text import TextEncoder

PRM_LABELS = ["wrong", "right"]
RIGHT_LABEL = 1


def export_hf(model: RewardModel, output: str | Path) -> Path:
    """An AutoModelForSequenceClassification checkpoint (safetensors) whose scores equal the model's."""
    from transformers import AutoModelForSequenceClassification

    spec = model.spec
    _check_transformer(model)
    if spec.is_decoder and (spec.pooling != "last" or spec.head_bias):
        raise ModelError("a decoder exports exactly only with 'last' pooling and no head bias (the defaults)")
    if not spec.is_decoder and spec.pooling != "pooler":
        raise ModelError(f"an encoder exports exactly only with 'pooler' pooling (this model uses '{spec.pooling}'); "
                         "Hugging Face's sequence-classification encoders score the pooled first token")
    config = _hf_config(model, spec.heads)
    config.problem_type = "regression"
    hf = AutoModelForSequenceClassification.from_config(config)
    _load_backbone(hf, model)
    head = getattr(hf, "score", None) if spec.is_decoder else getattr(hf, "classifier", None)
    if not isinstance(head, torch.nn.Linear):
        raise ModelError(f"{type(hf).__name__} has no linear scoring layer to receive the reward head")
    with torch.no_grad():
        head.weight.copy_(model.head.weight)
        if spec.head_bias:
            head.bias.copy_(model.head.bias)
    return _save(hf, model, output, {})


def export_prm_hf(model: RewardModel, output: str | Path) -> Path:
    """An AutoModelForTokenClassification checkpoint (safetensors) of a decoder PRM: at every step tag of rewardkit's
    encoding of a solution its logits are [0, step reward]. The config's `rewardkit` entry holds what a consumer
    needs to build that encoding and read it (prm_fields)."""
    from transformers import AutoModelForTokenClassification

    spec = model.spec
    _check_transformer(model)
    if not spec.is_decoder:
        raise ModelError("only a decoder PRM exports to the token-classification layout: an encoder PRM's block-causal "
                         "mask by step has no equivalent in a Hugging Face forward, where the prompt's tokens would "
                         "see the steps and every step score would change")
    if spec.ensemble and spec.aggregate == "min":
        raise ModelError("an ensemble scored by its lowest member is not linear in its heads, so no single "
                         "token-classification head reproduces it; export a model with a weighted aggregate")
    config = _hf_config(model, PRM_LABELS)
    config.problem_type = "single_label_classification"
    config.token_classification_bias = True
    hf = AutoModelForTokenClassification.from_config(config)
    _load_backbone(hf, model)
    head = getattr(hf, "score", None)
    if not isinstance(head, torch.nn.Linear) or head.bias is None:
        raise ModelError(f"{type(hf).__name__} has no linear token head with a bias to receive the step reward")
    weight, bias = _step_head(model)
    with torch.no_grad():
        head.weight.copy_(weight)
        head.bias.copy_(bias)
    return _save(hf, model, output, prm_fields(model))


def prm_fields(model: RewardModel) -> dict:
    """What a consumer of the PRM layout needs: how rewardkit writes a solution (the separator after every step, as
    text and as the ids it becomes, whether the prompt goes through the chat template), where a step's score is
    (`step_tag_id`, the separator's last token), which label is 'right' and how step scores make a solution's."""
    # A fresh encoder, so the model's truncation counts stay as they were; one empty step holds only its separator.
    encoder = TextEncoder(model.tokenizer, model.spec.max_length, True, model.spec.chat_template)
    probe = encoder.encode_steps("", [""], model.spec.step_separator)
    separator_ids = [t for t, step in zip(probe.input_ids, probe.step_of, strict=True) if step == 0]
    return {"step_format": "separator", "step_separator": model.spec.step_separator, "separator_ids": separator_ids,
            "step_tag_id": separator_ids[-1], "returned_label": RIGHT_LABEL, "labels": PRM_LABELS,
            "step_aggregate": model.spec.step_aggregate, "chat_template": encoder.use_template}


def _step_head(model: RewardModel) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight [2, hidden] and bias [2] of the token head: row 0 (wrong) is zero, row 1 (right) is the head-weighted
    sum of the reward heads, which is the step reward the model reports (RewardModel.aggregate)."""
    weights = model.head_weights.to(model.head.weight.dtype)
    right = weights @ model.head.weight
    right_bias = weights @ model.head.bias if model.spec.head_bias else right.new_zeros(())
    return torch.stack([torch.zeros_like(right), right]), torch.stack([torch.zeros_like(right_bias), right_bias])


def _check_transformer(model: RewardModel) -> None:
    if model.spec.backbone_type != "hf":
        raise ModelError("only transformer reward models can be exported to the Hugging Face layout")


def _hf_config(model: RewardModel, labels: list[str]):
    """A copy of the backbone's config with the given output labels; `architectures` is set on saving."""
    config = model.backbone.config.__class__.from_dict(model.backbone.config.to_dict())
    config.num_labels = len(labels)
    config.id2label = dict(enumerate(labels))
    config.label2id = {name: i for i, name in enumerate(labels)}
    config.pad_token_id = model.tokenizer.pad_token_id
    config.architectures = None
    return config


def _load_backbone(hf, model: RewardModel) -> None:
    base = getattr(hf, hf.base_model_prefix)
    missing, unexpected = base.load_state_dict(model.backbone.state_dict(), strict=False)
    if [k for k in missing if "position_ids" not in k] or unexpected:
        raise ModelError(f"backbone weights do not fit {type(hf).__name__}: missing {missing[:3]}, unexpected {unexpected[:3]}")


def _save(hf, model: RewardModel, output: str | Path, extra: dict) -> Path:
    """Weights (safetensors), config and tokenizer; the model's heads, normalisation and calibration ride along in
    the config's `rewardkit` entry and in rewardkit_export.json."""
    spec = model.spec
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    hf.config.rewardkit = {"heads": spec.heads, "head_weights": spec.head_weights,
                           "normalization": spec.normalization, "calibration": spec.calibration, **extra}
    hf.save_pretrained(str(output), safe_serialization=True)
    model.tokenizer.save_pretrained(str(output))
    (output / "rewardkit_export.json").write_text(json.dumps({"source": spec.backbone, "heads": spec.heads,
                                                                "head_weights": spec.head_weights,
                                                                "normalization": spec.normalization, **extra},
                                                               indent=2))
    return output
