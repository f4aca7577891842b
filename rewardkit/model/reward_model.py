"""The reward model r(x, y) = W·h(x, y) + b: a backbone, a pooling rule and one or more scalar heads.

A saved model is a directory with
  model.safetensors        every weight (backbone and heads)
  rewardkit_config.json    ModelSpec: backbone, pooling, heads, max length, normalisation, calibration
  backbone_config.json     the backbone's Hugging Face config, so loading needs no original files
  tokenizer files          (text models)
It never holds pickles.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from rewardkit.model.backbone import (
    FeatureMLP,
    ModelError,
    is_decoder_config,
    load_config,
    load_hf_backbone,
    load_tokenizer,
)
from rewardkit.model.packing import pool_packed
from rewardkit.model.text import TextEncoder

POOLINGS = ("last", "mean", "first", "pooler")
SPEC_FILE, WEIGHTS_FILE, BACKBONE_CONFIG_FILE = "rewardkit_config.json", "model.safetensors", "backbone_config.json"


@dataclass
class ModelSpec:
    backbone: str = "minilm"                 # what it was built from (a path or built-in name), for the record
    backbone_type: str = "hf"                # "hf" (a transformer) or "mlp" (numeric features)
    is_decoder: bool = False
    pooling: str = "pooler"
    heads: list[str] = field(default_factory=lambda: ["reward"])
    head_weights: list[float] = field(default_factory=lambda: [1.0])
    head_bias: bool = True                   # decoder heads have none, as in LlamaForSequenceClassification
    max_length: int = 512
    chat_template: bool = True               # use the tokenizer's chat template when it has one
    mlp_input_dim: int = 0
    mlp_hidden: int = 64
    mlp_layers: int = 2
    normalization: dict | None = None        # {"mean": m, "std": s} of rewards on the evaluation split
    calibration: dict | None = None          # {"temperature": T, "bias": b}: P(a > b) = sigmoid((ra - rb) / T + b)
    lora: dict | None = None                 # {"r": .., "alpha": ..} while LoRA adapters are unmerged (checkpoints)
    ensemble: int = 0                        # the first `ensemble` heads are members of an ensemble (0 = none)
    aggregate: str = "weighted"              # "weighted": head-weighted sum; "min": the lowest member (conservative)
    step_separator: str = "\n"               # ends every step of a solution (rewardkit.model.steps)
    step_aggregate: str = "min"              # a solution's reward from its step rewards: min | last | mean | product

    @classmethod
    def from_dict(cls, values: dict) -> ModelSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


class RewardModel(nn.Module):
    """Backbone + pooling + linear heads. `forward(batch)` gives per-head rewards [B, H]; `score` aggregates."""

    def __init__(self, spec: ModelSpec, backbone: nn.Module, tokenizer=None):
        super().__init__()
        if spec.pooling not in POOLINGS:
            raise ModelError(f"pooling must be one of {', '.join(POOLINGS)}, got {spec.pooling!r}")
        if len(spec.head_weights) != len(spec.heads):
            raise ModelError(f"{len(spec.heads)} heads but {len(spec.head_weights)} head weights")
        if spec.pooling == "pooler" and getattr(backbone, "pooler", None) is None:
            raise ModelError("pooling 'pooler' needs a backbone with a pooler layer (BERT-style); use last, mean or first")
        self.spec = spec
        self.backbone = backbone
        self.tokenizer = tokenizer
        hidden = backbone.hidden_size if spec.backbone_type == "mlp" else backbone.config.hidden_size
        self.head = nn.Linear(hidden, len(spec.heads), bias=spec.head_bias)
        nn.init.normal_(self.head.weight, std=1.0 / (hidden + 1) ** 0.5)
        if spec.head_bias:
            nn.init.zeros_(self.head.bias)
        self.register_buffer("head_weights", torch.tensor(spec.head_weights, dtype=torch.float32), persistent=False)
        self.encoder = TextEncoder(tokenizer, spec.max_length, spec.is_decoder, spec.chat_template) if tokenizer else None

    # ------------------------------------------------------------ forward

    def hidden_states(self, batch: dict) -> torch.Tensor:
        """Pooled representation h(x, y) per sequence, [B, hidden]."""
        if "cached" in batch:  # features computed once by a frozen backbone (TrainConfig.cache_features)
            return batch["cached"]
        if "step_ends" in batch:  # solutions (rewardkit.model.steps): one vector per step, read at the step's end
            kwargs = {k: batch[k] for k in ("input_ids", "attention_mask", "position_ids", "token_type_ids") if k in batch}
            return self.backbone(**kwargs).last_hidden_state.flatten(0, 1)[batch["step_ends"]]
        if self.spec.backbone_type == "mlp":
            features, mask = batch["features"], batch["mask"]
            per_step = self.backbone(features)  # [B, T, hidden]
            # A trajectory's reward is the sum of its steps' rewards (heads are linear, so sum h first).
            return torch.where(mask.unsqueeze(-1), per_step, torch.zeros_like(per_step)).sum(dim=1)
        mask = batch["attention_mask"]
        if mask.dim() == 4:  # packed rows (rewardkit.model.packing): positions and pooling points come with the batch
            kwargs = {"input_ids": batch["input_ids"], "attention_mask": mask, "position_ids": batch["position_ids"]}
            if "token_type_ids" in batch:
                kwargs["token_type_ids"] = batch["token_type_ids"]
            pooled = pool_packed(self.backbone(**kwargs).last_hidden_state, batch, self.spec.pooling)
            return self.backbone.pooler(pooled.unsqueeze(1)) if self.spec.pooling == "pooler" else pooled
        # Positions count real tokens only, so left padding gives the same positions as right padding.
        position_ids = (mask.long().cumsum(-1) - 1).clamp(min=0)
        kwargs = {"input_ids": batch["input_ids"], "attention_mask": mask, "position_ids": position_ids}
        if "token_type_ids" in batch:
            kwargs["token_type_ids"] = batch["token_type_ids"]
        states = self.backbone(**kwargs).last_hidden_state
        if self.spec.pooling == "pooler":
            # BERT's pooler reads position 0, a pad token under left padding: give it the first real token.
            return self.backbone.pooler(pool(states, mask, "first").unsqueeze(1))
        return pool(states, mask, self.spec.pooling)

    def forward(self, batch: dict) -> torch.Tensor:
        h = self.hidden_states(batch)
        return self.head(h.to(self.head.weight.dtype))

    def score(self, batch: dict) -> torch.Tensor:
        """The scalar reward per sequence: the head-weighted sum of the heads' rewards (or, for an ensemble
        with aggregate 'min', its lowest member)."""
        return self.aggregate(self(batch))

    def aggregate(self, per_head: torch.Tensor) -> torch.Tensor:
        if self.spec.ensemble and self.spec.aggregate == "min":
            return per_head[:, : self.spec.ensemble].min(dim=1).values
        return per_head @ self.head_weights.to(per_head.dtype)

    # ------------------------------------------------------------ building, saving, loading

    @classmethod
    def build(cls, backbone: str = "minilm", init: str = "pretrained", pooling: str | None = None,
              heads: list[str] | None = None, head_weights: list[float] | None = None, max_length: int = 512,
              chat_template: bool = True, mlp_input_dim: int = 0, mlp_hidden: int = 64, mlp_layers: int = 2) -> RewardModel:
        """A new reward model on a backbone: a local HF directory, a .gguf file, a built-in name, or 'mlp'."""
        heads = heads or ["reward"]
        head_weights = head_weights or [1.0] * len(heads)
        if backbone == "mlp":
            if mlp_input_dim <= 0:
                raise ModelError("an MLP backbone needs the feature width (mlp_input_dim)")
            spec = ModelSpec(backbone="mlp", backbone_type="mlp", pooling="mean", heads=heads, head_weights=head_weights,
                             mlp_input_dim=mlp_input_dim, mlp_hidden=mlp_hidden, mlp_layers=mlp_layers)
            return cls(spec, FeatureMLP(mlp_input_dim, mlp_hidden, mlp_layers))
        config = load_config(backbone)
        decoder = is_decoder_config(config)
        module = load_hf_backbone(backbone, init)
        if pooling is None:
            pooling = "last" if decoder else ("pooler" if getattr(module, "pooler", None) is not None else "mean")
        spec = ModelSpec(backbone=backbone, backbone_type="hf", is_decoder=decoder, pooling=pooling, heads=heads,
                         head_weights=head_weights, head_bias=not decoder, max_length=max_length, chat_template=chat_template)
        return cls(spec, module, load_tokenizer(backbone))

    def save(self, directory: str | Path, state_dict: dict[str, torch.Tensor] | None = None) -> Path:
        """Write the model to a temporary sibling directory, then swap it in (swap_in_directory)."""
        directory = Path(directory)
        tmp = directory.with_name(f".{directory.name}.tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        state = state_dict if state_dict is not None else self.state_dict()
        save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(tmp / WEIGHTS_FILE))
        (tmp / SPEC_FILE).write_text(json.dumps(dataclasses.asdict(self.spec), indent=2))
        if self.spec.backbone_type == "hf":
            (tmp / BACKBONE_CONFIG_FILE).write_text(self.backbone.config.to_json_string())
            self.tokenizer.save_pretrained(str(tmp))
        swap_in_directory(tmp, directory)
        return directory

    def save_spec(self, directory: str | Path) -> None:
        """Rewrite only the spec of a saved model (e.g. after calibration); the weights stay as they are."""
        (Path(directory) / SPEC_FILE).write_text(json.dumps(dataclasses.asdict(self.spec), indent=2))

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> RewardModel:
        directory = Path(directory)
        spec_path = directory / SPEC_FILE
        if not spec_path.exists():
            raise ModelError(f"{directory} is not a rewardkit model (no {SPEC_FILE}); "
                             "for a Hugging Face reward model use the directory with `rewardkit eval`")
        spec = ModelSpec.from_dict(json.loads(spec_path.read_text()))
        if spec.backbone_type == "mlp":
            model = cls(spec, FeatureMLP(spec.mlp_input_dim, spec.mlp_hidden, spec.mlp_layers))
        else:
            from transformers import AutoConfig, AutoModel, AutoTokenizer

            config_dict = json.loads((directory / BACKBONE_CONFIG_FILE).read_text())
            config = AutoConfig.for_model(**config_dict)
            backbone = AutoModel.from_config(config)
            tokenizer = AutoTokenizer.from_pretrained(str(directory), trust_remote_code=False)
            if tokenizer.pad_token_id is None:
                tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
            if spec.lora:
                backbone = add_lora(backbone, spec.lora["r"], spec.lora["alpha"])
            model = cls(spec, backbone, tokenizer)
        state = load_file(str(directory / WEIGHTS_FILE))
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith("position_ids")]
        if missing or unexpected:
            raise ModelError(f"{directory / WEIGHTS_FILE} does not match its config: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}")
        return model.to(device).eval()


def swap_in_directory(tmp: Path, directory: Path) -> None:
    """Put the complete directory `tmp` at `directory` with two renames, so that a kill at any moment leaves a
    whole directory: the new one, or, between the renames, the previous one at .NAME.old (intact_directory)."""
    old = directory.with_name(f".{directory.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if directory.exists():
        directory.rename(old)
    tmp.rename(directory)
    if old.exists():
        shutil.rmtree(old)


def intact_directory(directory: Path) -> Path | None:
    """`directory`, or the previous one when a kill fell between swap_in_directory's two renames; None if neither."""
    old = directory.with_name(f".{directory.name}.old")
    return directory if directory.exists() else old if old.exists() else None


def add_lora(backbone: nn.Module, r: int, alpha: int) -> nn.Module:
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise ModelError("LoRA needs peft: pip install 'rewardkit[peft]'") from None
    return get_peft_model(backbone, LoraConfig(r=r, lora_alpha=alpha, target_modules="all-linear", lora_dropout=0.0))


def merge_lora(model: RewardModel) -> RewardModel:
    """Fold LoRA adapters into the backbone weights, so the saved model needs no peft."""
    if model.spec.lora:
        model.backbone = model.backbone.merge_and_unload()
        model.spec.lora = None
    return model


def pool(states: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """Pool [B, T, H] states over real tokens; works for left and right padding alike."""
    mask = mask.bool()
    if how == "last":
        positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
        last = torch.where(mask, positions, -1).max(dim=1).values
        return states[torch.arange(states.shape[0], device=states.device), last]
    if how == "first":
        first = mask.int().argmax(dim=1)  # argmax returns the first maximum: the first real token
        return states[torch.arange(states.shape[0], device=states.device), first]
    if how == "mean":
        # torch.where, not multiplication: padded positions may hold NaN under some attention kernels.
        summed = torch.where(mask.unsqueeze(-1), states, torch.zeros_like(states)).sum(dim=1)
        return summed / mask.sum(dim=1, keepdim=True).clamp(min=1)
    raise ModelError(f"unknown pooling {how!r}")


def model_summary(model: RewardModel) -> dict[str, Any]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"backbone": model.spec.backbone, "decoder": model.spec.is_decoder, "pooling": model.spec.pooling,
            "heads": model.spec.heads, "parameters": total, "trainable_parameters": trainable}
