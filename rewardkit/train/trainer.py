"""`train(cfg)`: records -> examples -> the training loop -> a saved, normalised reward model.

  read_data        the training and evaluation records (a given file, or a seeded share of prompts held out)
  build_model      the backbone and heads TrainConfig asks for
  prepare          examples; ensemble bootstrap weights, length balancing and cached features where asked
  TrainingLoop     optimisation, evaluation and checkpoints (rewardkit.train.loop)
  finalize         the chosen checkpoint, with the reward mean/std servers and RL loops normalise with
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import torch
import yaml

from rewardkit.data.io import read_records, write_records
from rewardkit.data.kinds import choose_objectives
from rewardkit.data.prompts import split_by_prompt
from rewardkit.errors import ConfigError
from rewardkit.model.attention import use_faster_training_attention
from rewardkit.model.backbone import (
    disable_dropout,
    enable_checkpointing,
    is_decoder_config,
    load_config,
    set_threads,
)
from rewardkit.model.batching import sequence_length
from rewardkit.model.machine import limit_kernel_cache
from rewardkit.model.precision import resolve_precision
from rewardkit.model.reward_model import RewardModel, add_lora, intact_directory, merge_lora, model_summary
from rewardkit.model.scoring import pooled_features
from rewardkit.model.text import EncodedSteps
from rewardkit.train.batches import balance_by_length, layout
from rewardkit.train.config import TrainConfig
from rewardkit.train.examples import Example, PreparedData, prepare_examples
from rewardkit.train.loop import TrainingLoop, lr_factor
from rewardkit.train.validation import evaluate


def read_data(cfg: TrainConfig, output: Path, main: bool) -> tuple[list[dict], list[dict], int]:
    """(training records, evaluation records, invalid records skipped); skipped ones go to OUTPUT/rejects.jsonl."""
    train_read = read_records(cfg.train, cfg.skip_invalid)
    rejects = list(train_read.rejects)
    if cfg.eval:
        eval_read = read_records(cfg.eval, cfg.skip_invalid)
        rejects += eval_read.rejects
        train_records, eval_records = train_read.records, eval_read.records
    elif cfg.eval_fraction > 0:
        train_records, eval_records = split_by_prompt(train_read.records, cfg.eval_fraction, cfg.seed)
    else:
        train_records, eval_records = train_read.records, []
    if rejects and main:
        write_records(output / "rejects.jsonl", [r.as_dict() for r in rejects])
        print(f"skipped {len(rejects)} invalid record(s); reasons in {output / 'rejects.jsonl'}")
    return train_records, eval_records, len(rejects)


def build_model(cfg: TrainConfig, records: list[dict]) -> RewardModel:
    """A new reward model: the backbone, K member heads for --ensemble, a length head for --length-head."""
    if cfg.backbone == "mlp":
        first = next((r for r in records if r["kind"] == "pairwise"), None)
        if first is None:
            raise ConfigError("an MLP backbone trains on pairwise feature records")
        sample = first["chosen"]
        width = len(sample[0]) if isinstance(sample[0], list) else len(sample)
        return RewardModel.build("mlp", heads=cfg.heads, head_weights=cfg.head_weights, mlp_input_dim=width,
                                 mlp_hidden=cfg.mlp_hidden, mlp_layers=cfg.mlp_layers)
    heads, head_weights = cfg.heads, cfg.head_weights
    if cfg.ensemble:
        heads, head_weights = [f"member{k}" for k in range(cfg.ensemble)], [1.0 / cfg.ensemble] * cfg.ensemble
    if cfg.length_head:
        heads, head_weights = heads + ["length"], (head_weights or [1.0] * len(heads)) + [0.0]
    if cfg.prefix_sharing and not is_decoder_config(load_config(cfg.backbone)):  # before the weights load
        raise ConfigError("--prefix-sharing needs a decoder backbone: an encoder's prompt tokens attend to the response, "
                          "so their states differ per response and cannot be shared (use --packing)")
    model = RewardModel.build(cfg.backbone, cfg.init, cfg.pooling, heads, head_weights, cfg.max_length,
                              cfg.chat_template)
    model.spec.ensemble, model.spec.aggregate = cfg.ensemble, cfg.aggregate
    model.spec.step_separator, model.spec.step_aggregate = cfg.step_separator, cfg.step_aggregate
    if cfg.disable_dropout and model.spec.backbone_type == "hf":
        disable_dropout(model.backbone)
    if cfg.freeze_backbone:
        model.backbone.requires_grad_(False)
    if cfg.gradient_checkpointing:
        enable_checkpointing(model.backbone)
    if cfg.lora_r:
        model.backbone = add_lora(model.backbone, cfg.lora_r, cfg.lora_alpha)
        model.spec.lora = {"r": cfg.lora_r, "alpha": cfg.lora_alpha}
    return model


def prepare(cfg: TrainConfig, model: RewardModel, train_records: list[dict], eval_records: list[dict],
            main: bool) -> tuple[PreparedData, list[Example], list[Example], dict]:
    """(training data, training examples, evaluation examples, truncation counts of the training data)."""
    train_data = prepare_examples(train_records, model, cfg.standardize_annotators, progress=main and cfg.progress)
    truncation = model.encoder.stats.as_dict() if model.encoder else {}
    if model.encoder:
        model.encoder.stats.reset()
    eval_examples = prepare_examples(eval_records, model, cfg.standardize_annotators).examples if eval_records else []
    examples = train_data.examples
    if not examples:
        raise ConfigError(f"{cfg.train}: no trainable records after skipping {train_data.skipped}")
    if cfg.ensemble:
        rng = np.random.default_rng(cfg.seed)
        for ex in examples:  # Poisson(1) bootstrap: each member sees its own resample of the data
            ex.boot = rng.poisson(1.0, cfg.ensemble).astype(float).tolist()
    if cfg.balance_length:
        examples = balance_by_length(examples, cfg.seed)
    if cfg.cache_features:
        cache_features(model, examples + eval_examples, cfg, progress=main and cfg.progress)
    if main:
        report_preparation(train_data, truncation, cfg.max_length)
    return train_data, examples, eval_examples, truncation


def report_preparation(train_data: PreparedData, truncation: dict, max_length: int) -> None:
    for reason, n in train_data.skipped.items():
        print(f"not trained on: {n} {reason}")
    if truncation.get("prompt_truncated") or truncation.get("response_truncated") or truncation.get("steps_dropped"):
        print(f"truncation at {max_length} tokens: {truncation['prompt_truncated']} sequence(s) lost "
              f"prompt tokens (left), {truncation['response_truncated']} lost response tokens (right); "
              f"{truncation['groups_identical_after_truncation']} pair(s)/group(s) became identical; "
              f"{truncation['steps_dropped']} trailing solution step(s) dropped with their labels")


def cache_features(model: RewardModel, examples: list[Example], cfg: TrainConfig, progress: bool = False) -> None:
    """Replace each example's token sequences by the frozen backbone's pooled features, computed once:
    every later epoch only runs the heads (the ArmoRM recipe)."""
    examples = list({id(ex): ex for ex in examples}.values())  # length balancing may repeat examples
    flat = [s for ex in examples for s in ex.sequences]
    if any(isinstance(s, EncodedSteps) for s in flat):
        raise ConfigError("--cache-features caches one vector per response; stepwise records need a vector per step")
    features = pooled_features(model, flat, batch_size=32, precision=cfg.precision, packing=cfg.packing, progress=progress)
    at = 0
    for ex in examples:
        ex.tokens = len(ex)  # batches are still grouped by the examples' token lengths
        ex.sequences = list(features[at:at + len(ex.sequences)])
        at += len(ex.sequences)


def training_attention(cfg: TrainConfig, model: RewardModel, examples: list[Example], device: torch.device) -> str | None:
    """The attention precision of a bf16 run on CPU (rewardkit.model.attention), timed at the length its forward
    passes have: the median sequence when padded, full rows when packed. None where no attention is trained."""
    if model.spec.backbone_type != "hf" or cfg.cache_features:
        return None
    precision = resolve_precision(cfg.precision, device)
    if precision != "bf16" or device.type != "cpu":
        return precision
    lengths = sorted(sequence_length(s) for ex in examples for s in ex.sequences)
    length = lengths[len(lengths) // 2] if layout(cfg) == "padded" else cfg.max_length
    return use_faster_training_attention(model.backbone, length, cfg.max_batch_tokens)


def optimizer_and_schedule(model: RewardModel, cfg: TrainConfig, n_examples: int):
    """AdamW with its own learning rate for the heads, and the warm-up/decay schedule over the run's steps."""
    head_lr = cfg.head_lr if cfg.head_lr is not None else min(10 * cfg.lr, 1e-3)
    groups = [{"params": list(model.head.parameters()), "lr": head_lr}]
    backbone_params = [p for p in model.backbone.parameters() if p.requires_grad]
    if backbone_params:
        groups.append({"params": backbone_params, "lr": cfg.lr})
    # The fused kernel updates every tensor in one pass: an AdamW step on MiniLM took about 100 ms per-tensor and
    # 20 ms fused on a 2-core AMD EPYC, a tenth of a training step saved.
    fused = all(p.device.type in ("cpu", "cuda") for g in groups for p in g["params"])
    optimizer = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay, fused=fused)
    steps_per_epoch = math.ceil(math.ceil(n_examples / cfg.batch_size) / cfg.grad_accum)
    total_steps = math.ceil(cfg.epochs * steps_per_epoch)
    if cfg.max_steps:
        total_steps = min(total_steps, cfg.max_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, cfg.warmup_ratio, cfg.scheduler))
    return optimizer, scheduler, total_steps


def finalize(loop: TrainingLoop, final_eval: dict | None, examples: list[Example], cfg: TrainConfig,
             objectives: dict) -> tuple[RewardModel, str, dict | None]:
    """(the model to save, which checkpoint it is, its evaluation). The model stores the mean and std of its
    rewards (on the evaluation split, else on training records) so that servers and RL loops can normalise."""
    checkpoints = loop.checkpoints
    chosen = checkpoints / ("best" if cfg.final_model == "best" and (checkpoints / "best").exists() else "last")
    final = merge_lora(RewardModel.load(chosen))
    chosen_eval = final_eval
    if final_eval is not None and chosen.name == "best" and loop.state["best_step"] != loop.state["step"]:
        chosen_eval = evaluate(final, loop.eval_examples, objectives, cfg)
    reference = chosen_eval or evaluate(final, examples[: min(len(examples), 512)], objectives, cfg)
    final.spec.normalization = {"mean": reference["reward_mean"], "std": reference["reward_std"],
                                "source": "eval split" if chosen_eval else "training records"}
    return final, chosen.name, chosen_eval


def train(cfg: TrainConfig) -> dict:
    """Train a reward model as `cfg` says; returns the summary also written to OUTPUT/train_summary.json."""
    from accelerate import Accelerator

    cfg.validate()
    limit_kernel_cache()
    set_threads(cfg.threads)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    main = accelerator.is_main_process
    output = Path(cfg.output)
    if main:
        output.mkdir(parents=True, exist_ok=True)
        (output / "train_config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))
    torch.manual_seed(cfg.seed if cfg.init_seed is None else cfg.init_seed)

    train_records, eval_records, n_rejects = read_data(cfg, output, main)
    kinds = {r["kind"] for r in train_records}
    objectives = choose_objectives(kinds, cfg.objective)
    if not objectives:
        raise ConfigError(f"{cfg.train}: no trainable records (kinds found: {', '.join(sorted(kinds)) or 'none'})")
    model = build_model(cfg, train_records)
    train_data, examples, eval_examples, truncation = prepare(cfg, model, train_records, eval_records, main)
    attention = training_attention(cfg, model, examples, accelerator.device)
    optimizer, scheduler, total_steps = optimizer_and_schedule(model, cfg, len(examples))
    model, optimizer = accelerator.prepare(model, optimizer)

    loop = TrainingLoop(cfg, accelerator, model, optimizer, scheduler, total_steps, examples, eval_examples,
                        objectives, output)
    if cfg.resume:
        last = intact_directory(output / "checkpoints" / "last")
        if last is None and main:
            print(f"--resume: no checkpoint in {output / 'checkpoints' / 'last'}; starting from scratch")
        loop.resume(last)
    loop.run()
    final, chosen, chosen_eval = finalize(loop, loop.finish(), examples, cfg, objectives)
    summary = {
        "model": str(output / "model"),
        "steps": loop.state["step"], "epochs": loop.state["epoch"], "train_seconds": round(loop.train_seconds, 2),
        "records_per_second": round((loop.state["seen_examples"] - loop.seen_at_start) / max(loop.train_seconds, 1e-9), 2),
        "train_records": len(examples), "eval_records": len(eval_examples),
        "invalid_records_skipped": n_rejects, "not_trained_on": train_data.skipped,
        "objectives": objectives, "truncation": truncation,
        "precision": resolve_precision(cfg.precision, accelerator.device), "attention_precision": attention,
        "final_checkpoint": chosen, "best_step": loop.state["best_step"],
        "eval": chosen_eval, "model_summary": model_summary(final), "config": dataclasses.asdict(cfg),
    }
    if main:
        final.save(output / "model")
        (output / "train_summary.json").write_text(json.dumps(summary, indent=2, default=str))
    accelerator.wait_for_everyone()
    return summary
