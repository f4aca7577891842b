"""What evaluation scores with: a rewardkit model, a Hugging Face sequence-classification reward model in a
local directory, or any Python callable (tests use scorers built to fall for a probe).

A scorer maps a list of (prompt, response) items to one float each. `score_items` sends each distinct
item to the scorer once: RM-Bench repeats every response in three pairs, and probes re-score originals.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rewardkit.model.backbone import ModelError

Item = tuple  # (prompt, response): strings, conversations or feature vectors, as in records


@dataclass
class Scorer:
    """A named scoring function with the calibration (temperature, bias) the model carries, if any."""

    name: str
    score: Callable[[list[Item]], list[float]]
    calibration: dict | None = None
    info: dict = field(default_factory=dict)
    # ensembles: (scores, each item's member scores) in one pass; the members' disagreement is the uncertainty
    score_members: Callable[[list[Item]], tuple[list[float], list[list[float]]]] | None = None


def score_items(scorer: Scorer, items: Sequence[Item], members: list | None = None) -> list[float]:
    """Scores in input order; each distinct item is scored once. For an ensemble scorer, pass a list as
    `members` to receive each item's member scores."""
    keys = [json.dumps(item, sort_keys=True, default=str) for item in items]
    unique: dict[str, int] = {}
    distinct: list[Item] = []
    for key, item in zip(keys, items, strict=True):
        if key not in unique:
            unique[key] = len(distinct)
            distinct.append(item)
    if members is not None and scorer.score_members is not None and distinct:
        scores, per_item = scorer.score_members(distinct)
        members.extend(per_item[unique[k]] for k in keys)
    else:
        scores = scorer.score(distinct) if distinct else []
    if len(scores) != len(distinct):
        raise RuntimeError(f"scorer {scorer.name!r} returned {len(scores)} scores for {len(distinct)} items")
    return [float(scores[unique[k]]) for k in keys]


def rewardkit_scorer(path: str | Path, batch_size: int = 32, max_length: int = 0, progress: bool = True,
                     precision: str = "fp32", compile: bool = False) -> Scorer:
    from rewardkit.model.cli import load_model
    from rewardkit.model.precision import compile_for_inference
    from rewardkit.model.reward_model import model_summary
    from rewardkit.model.scoring import score_sequences

    model = load_model(str(path))
    if max_length and model.spec.backbone_type == "hf":
        model.encoder.max_length = max_length
    if compile:
        compile_for_inference(model)

    def score_members(items: list[Item]) -> tuple[list[float], list[list[float]]]:
        members: list[list[float]] = []
        return score_sequences(model, list(items), batch_size, progress, precision=precision, members=members), members

    return Scorer(name=Path(path).name, calibration=model.spec.calibration,
                  score=lambda items: score_sequences(model, list(items), batch_size, progress, precision=precision),
                  info={"type": "rewardkit", **model_summary(model)},
                  score_members=score_members if model.spec.ensemble >= 2 else None)


def hf_scorer(path: str | Path, batch_size: int = 32, max_length: int = 512, progress: bool = True,
              precision: str = "fp32", compile: bool = False) -> Scorer:
    """A local AutoModelForSequenceClassification with one label. Texts are built exactly as for rewardkit
    models (chat template for decoders, [CLS] prompt [SEP] response [SEP] for encoders)."""
    from tqdm.auto import tqdm
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from rewardkit.model.backbone import is_decoder_config
    from rewardkit.model.precision import autocast, compile_for_inference
    from rewardkit.model.text import TextEncoder

    config = AutoConfig.from_pretrained(str(path), trust_remote_code=False)
    if config.num_labels != 1:
        raise ModelError(f"{path}: a reward model has one output label, this one has {config.num_labels}")
    if not any(Path(path).glob("*.safetensors")):
        raise ModelError(f"{path}: no .safetensors weights (rewardkit does not unpickle .bin checkpoints)")
    model = AutoModelForSequenceClassification.from_pretrained(str(path), use_safetensors=True,
                                                               trust_remote_code=False).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(path), trust_remote_code=False)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    if compile:
        compile_for_inference(model)
    encoder = TextEncoder(tokenizer, max_length, is_decoder_config(config))

    @torch.inference_mode()
    def score(items: list[Item]) -> list[float]:
        encoded = [encoder.encode(p, r) for p, r in items]
        order = sorted(range(len(items)), key=lambda i: len(encoded[i].input_ids))
        out = torch.empty(len(items))
        for start in tqdm(range(0, len(order), batch_size), desc="scoring", unit="batch", disable=not progress):
            idx = order[start:start + batch_size]
            batch = encoder.collate([encoded[i] for i in idx])
            inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
            with autocast(precision):
                out[idx] = model(**inputs).logits[:, 0].float()
        return out.tolist()

    return Scorer(name=Path(path).name, score=score, calibration=getattr(config, "rewardkit", {}).get("calibration"),
                  info={"type": "huggingface", "architecture": type(model).__name__,
                        "parameters": sum(p.numel() for p in model.parameters())})


def load_scorer(path: str | Path, batch_size: int = 32, max_length: int = 0, progress: bool = True,
                precision: str = "fp32", compile: bool = False) -> Scorer:
    """A rewardkit model or ensemble directory (or training output), or a Hugging Face reward-model directory."""
    from rewardkit.model.cli import model_directory

    directory = Path(path)
    if model_directory(directory) is not None:
        return rewardkit_scorer(directory, batch_size, max_length, progress, precision, compile)
    if (directory / "config.json").exists():
        return hf_scorer(directory, batch_size, max_length or 512, progress, precision, compile)
    raise ModelError(f"{directory} is neither a rewardkit model nor a Hugging Face model directory")
