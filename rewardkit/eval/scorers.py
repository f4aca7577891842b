"""What evaluation scores with: a rewardkit model, a local Hugging Face sequence-classification reward model, a
local Hugging Face process reward model (token classification or a causal-LM read-out, in one of the step
formats of rewardkit.model.step_formats), or any Python callable (tests use scorers built to fall for a probe).

A scorer maps a list of (prompt, response) items to Scores (rewardkit.scores: one reward each, an ensemble's
member rewards, and for a solution in steps its step rewards) or to a plain list of floats. `score_items` sends
each distinct item to the scorer once: RM-Bench repeats every response in three pairs, and probes re-score
originals.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rewardkit.data.texts import Steps, text_of
from rewardkit.errors import ConfigError, ModelError
from rewardkit.scores import Scores

Item = tuple  # (prompt, response): strings, conversations or feature vectors, as in records


@dataclass
class Scorer:
    """A named scoring function with the calibration (temperature, bias) the model carries, if any."""

    name: str
    score: Callable[[list[Item]], Scores | list[float]]
    calibration: dict | None = None
    info: dict = field(default_factory=dict)
    path: str = ""  # where it was loaded from, for the report
    steps: bool = False  # scores a solution in steps (rewardkit.data.texts.Steps) step by step; else as one text
    # P(first better) for (prompt, first, second) triples, None where undecided: for a scorer that can also see
    # both responses at once (a judge), so that eval can measure its position bias
    compare: Callable[[list[tuple]], list[float | None]] | None = None


def score_items(scorer: Scorer, items: Sequence[Item]) -> Scores:
    """Scores in input order; each distinct item is scored once. A scorer without step scores gets a solution in
    steps as one text, its steps joined by newlines (an outcome reward)."""
    if not scorer.steps:
        items = [(p, "\n".join(r) if isinstance(r, Steps) else r) for p, r in items]
    keys = [json.dumps(item, sort_keys=True, default=str) for item in items]
    unique: dict[str, int] = {}
    distinct: list[Item] = []
    for key, item in zip(keys, items, strict=True):
        if key not in unique:
            unique[key] = len(distinct)
            distinct.append(item)
    scores = scorer.score(distinct) if distinct else Scores([])
    if not isinstance(scores, Scores):
        scores = Scores([float(s) for s in scores])
    if len(scores) != len(distinct):
        raise RuntimeError(f"scorer {scorer.name!r} returned {len(scores)} scores for {len(distinct)} items")
    at = [unique[k] for k in keys]
    return Scores([float(scores.values[i]) for i in at], None if scores.members is None else [scores.members[i] for i in at],
                  None if scores.steps is None else [scores.steps[i] for i in at])


def model_scorer(model, batch_size: int = 32, progress: bool = True, precision: str = "fp32",
                 name: str = "model") -> Scorer:
    """A loaded rewardkit model or ensemble as a scorer."""
    from rewardkit.model.reward_model import model_summary
    from rewardkit.model.scoring import score

    return Scorer(name=name, calibration=model.spec.calibration, steps=model.spec.backbone_type == "hf",
                  score=lambda items: score(model, list(items), batch_size, progress, precision=precision,
                                                share_prompts=True),
                  info={"type": "rewardkit", **model_summary(model)})


def rewardkit_scorer(path: str | Path, batch_size: int = 32, max_length: int = 0, progress: bool = True,
                     precision: str = "fp32", compile: bool = False) -> Scorer:
    from rewardkit.model.load import load_model
    from rewardkit.model.precision import compile_for_inference

    model = load_model(str(path))
    if max_length and model.spec.backbone_type == "hf":
        model.encoder.max_length = max_length
    if compile:
        compile_for_inference(model)
    return dataclasses.replace(model_scorer(model, batch_size, progress, precision, Path(path).name), path=str(path))


def hf_scorer(path: str | Path, batch_size: int = 32, max_length: int = 512, progress: bool = True,
              precision: str = "fp32", compile: bool = False) -> Scorer:
    """A local AutoModelForSequenceClassification with one label. Texts are built exactly as for rewardkit
    models (chat template for decoders, [CLS] prompt [SEP] response [SEP] for encoders)."""
    from tqdm.auto import tqdm
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from rewardkit.model.backbone import is_decoder_config
    from rewardkit.model.batching import length_batches
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
    def score(items: list[Item]) -> Scores:
        encoded = [encoder.encode(p, r) for p, r in items]
        out = torch.empty(len(items))
        batches = length_batches([len(e.input_ids) for e in encoded], batch_size)
        for idx in tqdm(batches, desc="scoring", unit="batch", disable=not progress):
            batch = encoder.collate([encoded[i] for i in idx])
            inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
            with autocast(precision):
                out[idx] = model(**inputs).logits[:, 0].float()
        return Scores(out.tolist())

    return Scorer(name=Path(path).name, path=str(path), score=score, calibration=getattr(config, "rewardkit", {}).get("calibration"),
                  info={"type": "huggingface", "architecture": type(model).__name__,
                        "parameters": sum(p.numel() for p in model.parameters())})


def hf_prm_scorer(path: str | Path, step_format: str = "separator", batch_size: int = 8, max_length: int = 1024,
                  progress: bool = True, precision: str = "fp32", compile: bool = False, separator: str | None = None,
                  aggregate: str | None = None) -> Scorer:
    """A local Hugging Face process reward model as a step scorer: an AutoModelForTokenClassification with two labels
    (1 = right; TRL's PRMs, rewardkit's `export --format prm`) or a causal LM read at two tokens (Math-Shepherd,
    RLHFlow), its solutions written in `step_format` (rewardkit.model.step_formats). Scores.steps are log-odds of
    'right' per step; Scores.values their aggregate (min by default; a rewardkit export's own). A plain response is
    scored as one step. The separator and whether the prompt goes through the chat template come from a rewardkit
    export's config, else `separator` ("\\n") and no template, as TRL trains."""
    from rewardkit.model.step_formats import FORMATS, HEADS, StepOptions

    if step_format not in FORMATS:
        raise ConfigError(f"unknown step format {step_format!r}; choose from {', '.join(FORMATS)}")
    model, tokenizer, config = _load_prm(Path(path), HEADS[step_format])
    if compile:
        from rewardkit.model.precision import compile_for_inference

        compile_for_inference(model)
    meta = getattr(config, "rewardkit", None) or {}
    options = StepOptions(separator=separator or meta.get("step_separator", "\n"),
                          chat_template=bool(meta.get("chat_template", False)), max_length=max_length)
    how = aggregate or meta.get("step_aggregate", "min")

    def score(items: list[Item]) -> Scores:
        return _score_prm(model, tokenizer, step_format, options, how, items, batch_size, precision, progress)

    return Scorer(name=Path(path).name, path=str(path), score=score, steps=True, calibration=meta.get("calibration"),
                  info={"type": "huggingface-prm", "architecture": type(model).__name__, "step_format": step_format,
                        "step_aggregate": how, "parameters": sum(p.numel() for p in model.parameters())})


def _load_prm(path: Path, head: str):
    """(model, tokenizer, config) of a local PRM with the head its step format reads; safetensors only, no remote
    code."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForTokenClassification, AutoTokenizer

    from rewardkit.model.step_formats import TOKEN_CLASSIFICATION

    config = AutoConfig.from_pretrained(str(path), trust_remote_code=False)
    if not any(path.glob("*.safetensors")):
        raise ModelError(f"{path}: no .safetensors weights (rewardkit does not unpickle .bin checkpoints)")
    if (head == TOKEN_CLASSIFICATION) != is_token_classifier(path):
        raise ModelError(f"{path}: its architecture {config.architectures} is not what a {head} step format reads "
                         "(separator and qwen read a token-classification head, math-shepherd and rlhflow a causal LM)")
    if head == TOKEN_CLASSIFICATION and config.num_labels != 2:
        raise ModelError(f"{path}: a token-classification PRM has two labels (wrong, right); this one has "
                         f"{config.num_labels}")
    auto = AutoModelForTokenClassification if head == TOKEN_CLASSIFICATION else AutoModelForCausalLM
    model = auto.from_pretrained(str(path), use_safetensors=True, trust_remote_code=False).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(path), trust_remote_code=False)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return model, tokenizer, config


@torch.inference_mode()
def _score_prm(model, tokenizer, step_format: str, options, how: str, items: list[Item], batch_size: int,
               precision: str, progress: bool) -> Scores:
    """Step log-odds out[right] - out[wrong] at each score position, in right-padded length-sorted batches (a
    causal model's real tokens never see the padding after them)."""
    from tqdm.auto import tqdm

    from rewardkit.model.batching import length_batches
    from rewardkit.model.precision import autocast
    from rewardkit.model.step_formats import render
    from rewardkit.model.steps import aggregate_steps, split_steps
    from rewardkit.model.text import Encoded, pad_batch

    inputs = [render(step_format, tokenizer, p, r if isinstance(r, Steps) else [text_of(r)], options) for p, r in items]
    steps: list[list[float]] = [[] for _ in inputs]
    for idx in tqdm(length_batches([len(x.input_ids) for x in inputs], batch_size), desc="scoring", unit="batch",
                    disable=not progress):
        batch = pad_batch([Encoded(inputs[i].input_ids) for i in idx], tokenizer.pad_token_id)
        with autocast(precision):
            logits = model(**batch).logits.float()
        for row, i in enumerate(idx):
            at = logits[row, inputs[i].positions]
            right, wrong = inputs[i].columns
            steps[i] = (at[:, right] - at[:, wrong]).tolist()
    flat = torch.tensor([s for row in steps for s in row])
    per_step, mask = split_steps(flat, [len(row) for row in steps])
    values = aggregate_steps(per_step, mask, how).tolist() if steps else []
    if not any(isinstance(r, Steps) for _, r in items):
        return Scores(values)
    return Scores(values, None, [row if isinstance(r, Steps) else None for row, (_, r) in zip(steps, items, strict=True)])


def is_token_classifier(directory: str | Path) -> bool:
    """Whether a Hugging Face model directory's config names a token-classification architecture (a PRM's layout)."""
    config = Path(directory) / "config.json"
    if not config.exists():
        return False
    return any(str(a).endswith("ForTokenClassification") for a in json.loads(config.read_text()).get("architectures") or [])


def judge_scorer(judge) -> Scorer:
    """A generative judge (rewardkit.judge.Judge) as a scorer: each item's mean rating over the judge's k votes;
    NaN where no vote parsed (a pair with one counts as ranked wrong), with the failures counted in `info`."""
    info = {"type": "judge", "generator": judge.generator.name, "k": judge.k, "votes": 0, "parse_failures": 0}

    def score(items):
        ratings = judge.rate(list(items))
        info["votes"] += len(items) * judge.k
        info["parse_failures"] += ratings.failures
        return Scores(ratings.scores)

    def compare(triples):
        return [v.p_first for v in judge.compare(list(triples), both_orders=False)]
    return Scorer(judge.name, score, info=info, compare=compare)


def load_scorer(path: str | Path, batch_size: int = 32, max_length: int = 0, progress: bool = True,
                precision: str = "fp32", compile: bool = False, step_format: str = "",
                judge_max_new_tokens: int = 0) -> Scorer:
    """A rewardkit model or ensemble directory (or training output), a generative judge ('judge:local:smollm2',
    'judge:http://host:port/v1#MODEL', '@k' for k votes), or a Hugging Face reward-model directory: with
    `step_format` (rewardkit.model.step_formats) or a token-classification head it is a process reward model
    (hf_prm_scorer; TRL's separator layout unless told), any other a sequence classifier. judge_max_new_tokens:
    the longest critique a judge's vote may write (0: the judge's own default)."""
    from rewardkit.model.load import model_directory

    if str(path).startswith("judge:"):  # judge:local:MODEL[@k] or judge:URL#MODEL[@k]
        from rewardkit.judge import load_judge

        judge = load_judge(str(path).removeprefix("judge:"))
        if judge_max_new_tokens:
            judge.sampling = dataclasses.replace(judge.sampling, max_new_tokens=judge_max_new_tokens)
        return judge_scorer(judge)
    directory = Path(path)
    if model_directory(directory) is not None:
        if step_format:
            raise ConfigError(f"{directory} is a rewardkit model: it knows its own step layout (no --step-format)")
        return rewardkit_scorer(directory, batch_size, max_length, progress, precision, compile)
    if step_format or is_token_classifier(directory):  # a process reward model, scored step by step
        return hf_prm_scorer(directory, step_format or "separator", batch_size, max_length or 1024, progress,
                             precision, compile)
    if (directory / "config.json").exists():
        return hf_scorer(directory, batch_size, max_length or 512, progress, precision, compile)
    raise ModelError(f"{directory} is neither a rewardkit model nor a Hugging Face model directory")


def as_scorer(model, batch_size: int = 32, progress: bool = False, precision: str = "fp32") -> Scorer:
    """A Scorer from what a Python user holds: a Scorer, a loaded rewardkit model, or a model directory."""
    if isinstance(model, Scorer):
        return model
    if isinstance(model, str | Path):
        return load_scorer(model, batch_size, progress=progress, precision=precision)
    return model_scorer(model, batch_size, progress, precision)
