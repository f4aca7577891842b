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
