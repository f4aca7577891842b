"""Shared fixtures: tiny models built from a config (random weights, saved as safetensors) with the
real MiniLM tokenizer from the bundled package, so tests need no download and run in seconds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rewardkit.model.backbone import builtin_path

TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def _tokenizer_into(directory: Path) -> None:
    source = builtin_path("minilm")
    for name in TOKENIZER_FILES:
        if (source / name).exists():
            shutil.copy(source / name, directory / name)


def make_tiny_bert(directory: Path, dropout: float = 0.1) -> Path:
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    directory.mkdir(parents=True, exist_ok=True)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, hidden_dropout_prob=dropout,
                        attention_probs_dropout_prob=dropout)
    BertModel(config).save_pretrained(str(directory), safe_serialization=True)
    _tokenizer_into(directory)
    return directory


def make_tiny_llama(directory: Path) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaModel

    torch.manual_seed(0)
    directory.mkdir(parents=True, exist_ok=True)
    config = LlamaConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=1, intermediate_size=64, max_position_embeddings=256, pad_token_id=0)
    LlamaModel(config).save_pretrained(str(directory), safe_serialization=True)
    _tokenizer_into(directory)
    return directory


def make_tiny_causal_lm(directory: Path, chat_template: str | None = None) -> Path:
    """A tiny Llama with its LM head (random) and the MiniLM tokenizer; with a chat template, also an end token and
    no token types (a decoder's generate refuses them)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    torch.manual_seed(0)
    directory.mkdir(parents=True, exist_ok=True)
    config = LlamaConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=1, intermediate_size=64, max_position_embeddings=256, pad_token_id=0)
    AutoModelForCausalLM.from_config(config).save_pretrained(str(directory), safe_serialization=True)
    _tokenizer_into(directory)
    if chat_template:
        tokenizer = AutoTokenizer.from_pretrained(str(directory), model_input_names=["input_ids", "attention_mask"])
        tokenizer.chat_template, tokenizer.eos_token = chat_template, "[SEP]"
        tokenizer.save_pretrained(str(directory))
    return directory


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory) -> Path:
    return make_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm"))


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_bert_no_dropout(tmp_path_factory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert-nodrop"), dropout=0.0)


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    return make_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
