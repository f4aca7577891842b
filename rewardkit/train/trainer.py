"""The training recipe: records -> examples -> an Accelerate loop -> a saved, normalised reward model.

The same code runs as one CPU process or under `accelerate launch` on several processes (DDP, FSDP or
DeepSpeed per the launch config). Each global batch is split across processes by position, so the
gradient of a global batch does not depend on how many processes share it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import random
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from rewardkit import losses
from rewardkit.config import ConfigError, to_yaml
from rewardkit.data.io import read_records, write_records
from rewardkit.model.backbone import disable_dropout, set_threads
from rewardkit.model.precision import autocast
from rewardkit.model.reward_model import (
    RewardModel,
    add_lora,
    intact_directory,
    merge_lora,
    model_summary,
    swap_in_directory,
)
from rewardkit.model.scoring import length_batches, pooled_features
from rewardkit.train.config import TrainConfig
from rewardkit.train.examples import Example, choose_objectives, collate, prepare_examples


class TrainingError(RuntimeError):
    """Training stopped for a reason the user must see (e.g. a non-finite loss)."""


# ---------------------------------------------------------------- losses on a batch

def sequence_rewards(model, batch: dict) -> torch.Tensor:
    """Per-sequence reward [N]: the aggregate score, or a named head where an example asks for one."""
    per_head = model(batch["inputs"])                                    # [N, H]
    aggregate = getattr(model, "module", model).aggregate(per_head)
    head = batch["head"].to(per_head.device)
    if (head >= 0).any():
        seq_head = head.repeat_interleave(batch["valid"].sum(dim=1).to(head.device))
        chosen = per_head.gather(1, seq_head.clamp(min=0).unsqueeze(1)).squeeze(1)
        aggregate = torch.where(seq_head >= 0, chosen, aggregate)
    return aggregate, per_head


def model_spec(model):
    return getattr(model, "module", model).spec


def batch_loss(model, batch: dict, objectives: dict[str, str], cfg: TrainConfig) -> tuple[torch.Tensor, dict, torch.Tensor]:
    """Loss of one single-kind batch, its detached metrics (correct pairs, counts), and the per-sequence rewards."""
    flat, per_head = sequence_rewards(model, batch)
    kind, objective = batch["kind"], objectives[batch["kind"]]
    device = flat.device
    index, valid = batch["index"].to(device), batch["valid"].to(device)
    rewards = flat[index]                                               # [B, K]
    metrics: dict = {"examples": int(index.shape[0])}
    spec = model_spec(model)
    if kind == "pairwise":
        pos, neg = rewards[:, 0], rewards[:, 1]
        if "length" in spec.heads and objective == "bt":
            # ODIN: the preference is explained by quality + a length head; only quality is kept at inference.
            length_reward = per_head[:, spec.heads.index("length")][index]
            loss = losses.bradley_terry(pos + length_reward[:, 0], neg + length_reward[:, 1],
                                        label_smoothing=cfg.label_smoothing)
            lengths = batch["lengths"].to(device)
            loss = loss + cfg.length_penalty * (losses.length_penalty(flat, lengths, cfg.length_penalty_kind)
                                                + 1 - losses.correlation(per_head[:, spec.heads.index("length")], lengths))
        elif spec.ensemble and objective == "bt":
            members = per_head[:, : spec.ensemble][index]                       # [B, 2, K]
            # evaluation examples carry no bootstrap weights: every member sees every pair
            boot = batch["boot"].to(device) if "boot" in batch else torch.ones_like(members[:, 0])
            loss = losses.weighted_bradley_terry(members[:, 0], members[:, 1], boot, cfg.label_smoothing)
        elif objective == "bt":
            loss = losses.bradley_terry(pos, neg, label_smoothing=cfg.label_smoothing)
        elif objective == "margin":
            m = batch["margin"].to(device)
            loss = losses.bradley_terry(pos, neg, torch.where(torch.isnan(m), torch.full_like(m, cfg.margin), m),
                                        cfg.label_smoothing)
        elif objective == "hinge":
            m = batch["margin"].to(device)
            loss = losses.hinge(pos, neg, torch.where(torch.isnan(m), torch.full_like(m, cfg.margin), m))
        else:
            loss = losses.contrastive(pos, neg, cfg.temperature)
        if cfg.center_weight:
            loss = loss + cfg.center_weight * losses.reward_centering(pos, neg)
        if cfg.length_penalty and "length" not in spec.heads:
            penalised = per_head[:, : spec.ensemble] if spec.ensemble else flat  # each ensemble member on its own
            loss = loss + cfg.length_penalty * losses.length_penalty(penalised, batch["lengths"].to(device),
                                                                        cfg.length_penalty_kind)
        diff = (pos - neg).detach()
        metrics["correct"] = float((diff > 0).sum() + 0.5 * (diff == 0).sum())
    elif kind == "ranking":
        ranks, best = batch["ranks"].to(device), batch["best"].to(device)
        if objective == "listwise":
            loss = losses.listwise_softmax(rewards, best, valid, cfg.temperature)
        elif objective == "ranking-pairs":
            loss = losses.ranking_pairs(rewards, ranks, valid)
        else:
            loss = losses.plackett_luce(rewards, ranks, valid)
        top = rewards.detach().masked_fill(~valid, -math.inf).argmax(dim=1)
        metrics["correct"] = float((top == best).sum())
    else:
        target, head_targets = batch["target"].to(device), batch["head_targets"].to(device)
        parts = []
        has_target = ~torch.isnan(target)
        if has_target.any():
            parts.append((flat[index[:, 0]] - target)[has_target] ** 2)
        has_head = ~torch.isnan(head_targets)
        if has_head.any():
            parts.append((per_head[index[:, 0]] - head_targets)[has_head] ** 2)
        loss = torch.cat(parts).mean()
        metrics["squared_error"] = float(torch.cat(parts).detach().sum())
        metrics["targets"] = int(sum(p.numel() for p in parts))
    weight = cfg.mix_weights.get(kind, 1.0)
    loss = weight * loss
    if cfg.l2_weight:
        loss = loss + cfg.l2_weight * losses.l2_penalty(getattr(model, "module", model).head.parameters())
    return loss, metrics, flat.detach()


# ---------------------------------------------------------------- batching

def epoch_batches(examples: list[Example], batch_size: int, seed: int, epoch: int,
                  group_by_length: bool = False) -> list[list[int]]:
    """Single-kind batches of example indices, shuffled deterministically by (seed, epoch).

    With group_by_length, the shuffled examples are sorted by length within windows of 64 batches before
    they are cut, so a batch holds similar lengths (little padding) while batch order stays random.
    """
    rng = random.Random(seed * 1_000_003 + epoch)
    by_kind: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        by_kind.setdefault(ex.kind, []).append(i)
    batches = []
    for kind in sorted(by_kind):
        idx = by_kind[kind][:]
        rng.shuffle(idx)
        if group_by_length:
            window = batch_size * 64
            idx = [i for s in range(0, len(idx), window) for i in sorted(idx[s:s + window], key=lambda i: _length(examples[i]))]
        batches += [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]
    rng.shuffle(batches)
    return batches


def layout(cfg: TrainConfig) -> str:
    return "prefix" if cfg.prefix_sharing else "packed" if cfg.packing else "padded"


def shard(indices: list[int], rank: int, world: int) -> list[int]:
    return indices[rank::world]


def token_chunks(part: list[int], examples: list[Example], cfg: TrainConfig, objectives: dict) -> list[list[int]]:
    """Split one micro-batch into forward passes of at most cfg.max_batch_tokens padded tokens; their
    gradients add up to the whole batch's (per-example losses are averaged with the right weights).
    Contrastive batches stay whole: their negatives are the other pairs of the batch."""
    if not cfg.max_batch_tokens or objectives.get(examples[part[0]].kind) == "contrastive":
        return [part]
    if not hasattr(examples[part[0]].sequences[0], "input_ids"):  # feature vectors: no tokens to cap
        return [part]
    widths = [max(len(s.input_ids) for s in examples[i].sequences) * len(examples[i].sequences) for i in part]
    cut = length_batches(widths, batch_size=len(part), max_tokens=cfg.max_batch_tokens, max_padding=1.0)
    return [[part[j] for j in chunk] for chunk in cut]


# ---------------------------------------------------------------- evaluation

@torch.inference_mode()
def evaluate(model, examples: list[Example], objectives: dict, cfg: TrainConfig, accelerator=None,
             batch_size: int = 32) -> dict:
    """Loss, pairwise / best-of-K accuracy and reward statistics on examples (sharded across processes)."""
    raw = getattr(model, "module", model)
    was_training = raw.training
    raw.eval()
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator else (0, 1)
    mine = shard(list(range(len(examples))), rank, world)
    totals: Counter = Counter()
    scores: list[float] = []
    # Group by kind and length so that padding stays small.
    mine.sort(key=lambda i: (examples[i].kind, _length(examples[i])))
    for start in range(0, len(mine), batch_size):
        chunk = [examples[i] for i in mine[start:start + batch_size]]
        for kind in {ex.kind for ex in chunk}:
            part = [ex for ex in chunk if ex.kind == kind]
            batch = collate(part, raw, cfg.padding_side, layout(cfg))
            batch["inputs"] = {k: v.to(_device(raw)) for k, v in batch["inputs"].items()}
            with autocast(cfg.precision, _device(raw)):
                loss, metrics, flat = batch_loss(raw, batch, objectives, cfg)
            totals[f"{kind}_loss_sum"] += float(loss) * metrics["examples"]
            for key, value in metrics.items():
                totals[f"{kind}_{key}"] += value
            scores += flat.float().cpu().tolist()
    if accelerator is not None and world > 1:
        from accelerate.utils import gather_object

        gathered = gather_object([(dict(totals), scores)])
        totals, scores = Counter(), []
        for part_totals, part_scores in gathered:
            totals.update(part_totals)
            scores += part_scores
    raw.train(was_training)
    out: dict = {}
    loss_sum = sum(v for k, v in totals.items() if k.endswith("_loss_sum"))
    n = sum(v for k, v in totals.items() if k.endswith("_examples"))
    out["loss"] = loss_sum / max(n, 1)
    if totals["pairwise_examples"]:
        out["pairwise_accuracy"] = totals["pairwise_correct"] / totals["pairwise_examples"]
    if totals["ranking_examples"]:
        out["best_of_k_accuracy"] = totals["ranking_correct"] / totals["ranking_examples"]
    if totals["rating_targets"]:
        out["rating_mse"] = totals["rating_squared_error"] / totals["rating_targets"]
    accuracies = [out[k] for k in ("pairwise_accuracy", "best_of_k_accuracy") if k in out]
    out["accuracy"] = sum(accuracies) / len(accuracies) if accuracies else float("nan")
    if scores:
        out["reward_mean"], out["reward_std"] = float(np.mean(scores)), float(np.std(scores))
    out["examples"] = int(n)
    return out


def _length(ex: Example) -> int:
    if ex.tokens is not None:
        return ex.tokens
    return sum(len(s.input_ids) if hasattr(s, "input_ids") else len(s) for s in ex.sequences)


def _device(model) -> torch.device:
    return next(model.parameters()).device


# ---------------------------------------------------------------- checkpoints

def save_checkpoint(directory: Path, model, optimizer, scheduler, state: dict) -> None:
    """Model + optimizer + scheduler + RNG + progress, written to a temporary directory and swapped in, so that a
    kill at any moment leaves a complete checkpoint (read it back through intact_directory)."""
    raw = getattr(model, "module", model)
    tmp = directory.with_name(f".{directory.name}.tmp")
    raw.save(tmp)
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")  # read back with weights_only=True
    save_file({"torch_rng": torch.get_rng_state()}, str(tmp / "rng.safetensors"))
    (tmp / "trainer_state.json").write_text(json.dumps({**state, "scheduler": scheduler.state_dict()}, indent=2))
    swap_in_directory(tmp, directory)


def load_checkpoint(directory: Path, model, optimizer, scheduler) -> dict:
    raw = getattr(model, "module", model)
    raw.load_state_dict(load_file(str(directory / "model.safetensors")), strict=False)
    optimizer.load_state_dict(torch.load(directory / "optimizer.pt", weights_only=True, map_location="cpu"))
    state = json.loads((directory / "trainer_state.json").read_text())
    scheduler.load_state_dict(state.pop("scheduler"))
    torch.set_rng_state(load_file(str(directory / "rng.safetensors"))["torch_rng"])
    return state


# ---------------------------------------------------------------- the loop

def _schedule(cfg: TrainConfig, total_steps: int):
    warmup = int(cfg.warmup_ratio * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if cfg.scheduler == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total_steps - warmup)
        return max(0.0, 1 - progress) if cfg.scheduler == "linear" else 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _split(records: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Hold out whole prompts, so no prompt of the evaluation split is seen in training."""
    prompts = sorted({json.dumps(r.get("prompt"), sort_keys=True) for r in records})
    random.Random(seed).shuffle(prompts)
    held = set(prompts[: int(round(fraction * len(prompts)))])
    train = [r for r in records if json.dumps(r.get("prompt"), sort_keys=True) not in held]
    return train, [r for r in records if json.dumps(r.get("prompt"), sort_keys=True) in held]


def balance_by_length(examples: list[Example], seed: int) -> list[Example]:
    """Length-balanced sampling: repeat randomly drawn pairs of the rarer kind (chosen longer, or chosen
    shorter) until both kinds are equally common, so that length alone predicts nothing."""
    longer = [ex for ex in examples if ex.kind == "pairwise" and ex.lengths[0] > ex.lengths[1]]
    shorter = [ex for ex in examples if ex.kind == "pairwise" and ex.lengths[0] < ex.lengths[1]]
    if not longer or not shorter:
        return examples
    rare, common = (longer, shorter) if len(longer) < len(shorter) else (shorter, longer)
    extra = random.Random(seed).choices(rare, k=len(common) - len(rare))
    print(f"length balancing: {len(longer)} pairs with the longer response chosen, {len(shorter)} with the shorter; "
          f"repeating {len(extra)} of the rarer kind")
    return examples + extra


def cache_features(model: RewardModel, examples: list[Example], cfg: TrainConfig, progress: bool = False) -> None:
    """Replace each example's token sequences by the frozen backbone's pooled features, computed once:
    every later epoch only runs the heads (the ArmoRM recipe)."""
    if not cfg.freeze_backbone or cfg.lora_r or model.spec.backbone_type == "mlp":
        raise ConfigError("--cache-features needs --freeze-backbone, no LoRA, and a transformer backbone")
    examples = list({id(ex): ex for ex in examples}.values())  # length balancing may repeat examples
    flat = [s for ex in examples for s in ex.sequences]
    features = pooled_features(model, flat, batch_size=32, precision=cfg.precision, packing=cfg.packing, progress=progress)
    at = 0
    for ex in examples:
        ex.tokens = _length(ex)  # batches are still grouped by the examples' token lengths
        ex.sequences = list(features[at:at + len(ex.sequences)])
        at += len(ex.sequences)


def build_model(cfg: TrainConfig, records: list[dict]) -> RewardModel:
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
        if cfg.ensemble < 2 or heads != ["reward"]:
            raise ConfigError("--ensemble K needs K >= 2 and no --heads (its heads are the K members)")
        heads, head_weights = [f"member{k}" for k in range(cfg.ensemble)], [1.0 / cfg.ensemble] * cfg.ensemble
    if cfg.length_head:
        if cfg.ensemble:
            raise ConfigError("--length-head and --ensemble cannot be combined")
        heads, head_weights = heads + ["length"], (head_weights or [1.0] * len(heads)) + [0.0]
    model = RewardModel.build(cfg.backbone, cfg.init, cfg.pooling, heads, head_weights, cfg.max_length,
                              cfg.chat_template)
    model.spec.ensemble, model.spec.aggregate = cfg.ensemble, cfg.aggregate
    if cfg.prefix_sharing and not model.spec.is_decoder:
        raise ConfigError("--prefix-sharing needs a decoder backbone: an encoder's prompt tokens attend to the response, "
                          "so their states differ per response and cannot be shared (use --packing)")
    if cfg.disable_dropout and model.spec.backbone_type == "hf":
        disable_dropout(model.backbone)
    if cfg.freeze_backbone:
        model.backbone.requires_grad_(False)
    if cfg.lora_r:
        model.backbone = add_lora(model.backbone, cfg.lora_r, cfg.lora_alpha)
        model.spec.lora = {"r": cfg.lora_r, "alpha": cfg.lora_alpha}
    return model


def train(cfg: TrainConfig) -> dict:
    """Run the recipe; returns the summary also written to OUTPUT/train_summary.json."""
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    set_threads(cfg.threads)
    if cfg.batch_size < 1 or cfg.grad_accum < 1:
        raise ConfigError("batch_size and grad_accum must be at least 1")
    if not 0 <= cfg.label_smoothing < 0.5:
        raise ConfigError(f"label_smoothing must be in [0, 0.5), got {cfg.label_smoothing} (0.5 would make every "
                          "label a coin flip)")
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    main = accelerator.is_main_process
    output = Path(cfg.output)
    checkpoints = output / "checkpoints"
    if main:
        output.mkdir(parents=True, exist_ok=True)
        (output / "train_config.yaml").write_text(to_yaml(cfg))
    torch.manual_seed(cfg.seed if cfg.init_seed is None else cfg.init_seed)

    train_read = read_records(cfg.train, cfg.skip_invalid)
    rejects = list(train_read.rejects)
    if cfg.eval:
        eval_read = read_records(cfg.eval, cfg.skip_invalid)
        rejects += eval_read.rejects
        train_records, eval_records = train_read.records, eval_read.records
    elif cfg.eval_fraction > 0:
        train_records, eval_records = _split(train_read.records, cfg.eval_fraction, cfg.seed)
    else:
        train_records, eval_records = train_read.records, []
    if rejects and main:
        write_records(output / "rejects.jsonl", [r.as_dict() for r in rejects])
        print(f"skipped {len(rejects)} invalid record(s); reasons in {output / 'rejects.jsonl'}")
    kinds = {r["kind"] for r in train_records}
    objectives = choose_objectives(kinds, cfg.objective)
    if not objectives:
        raise ConfigError(f"{cfg.train}: no trainable records (kinds found: {', '.join(sorted(kinds)) or 'none'})")

    model = build_model(cfg, train_records)
    train_data = prepare_examples(train_records, model, cfg.standardize_annotators, progress=main and cfg.progress)
    train_truncation = model.encoder.stats.as_dict() if model.encoder else {}
    if model.encoder:
        model.encoder.stats.__init__()
    eval_data = prepare_examples(eval_records, model, cfg.standardize_annotators) if eval_records else None
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
        cache_features(model, examples + (eval_data.examples if eval_data else []), cfg, progress=main and cfg.progress)
    if main:
        for reason, n in train_data.skipped.items():
            print(f"not trained on: {n} {reason}")
        if train_truncation.get("prompt_truncated") or train_truncation.get("response_truncated"):
            print(f"truncation at {cfg.max_length} tokens: {train_truncation['prompt_truncated']} sequence(s) lost "
                  f"prompt tokens (left), {train_truncation['response_truncated']} lost response tokens (right); "
                  f"{train_truncation['groups_identical_after_truncation']} pair(s)/group(s) became identical")

    head = model.head.parameters()
    head_lr = cfg.head_lr if cfg.head_lr is not None else min(10 * cfg.lr, 1e-3)
    backbone_params = [p for p in model.backbone.parameters() if p.requires_grad]
    groups = [{"params": list(head), "lr": head_lr}]
    if backbone_params:
        groups.append({"params": backbone_params, "lr": cfg.lr})
    optimizer = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(math.ceil(len(examples) / cfg.batch_size) / cfg.grad_accum)
    total_steps = math.ceil(cfg.epochs * steps_per_epoch)
    if cfg.max_steps:
        total_steps = min(total_steps, cfg.max_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(cfg, total_steps))
    model, optimizer = accelerator.prepare(model, optimizer)

    state = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "best_metric": None, "best_step": None,
             "evals_without_improvement": 0, "seen_examples": 0}
    resume_from = intact_directory(checkpoints / "last") if cfg.resume else None
    if resume_from:
        state = load_checkpoint(resume_from, model, optimizer, scheduler)
        if main:
            print(f"resumed from {resume_from} at step {state['step']}")
    elif cfg.resume and main:
        print(f"--resume: no checkpoint in {checkpoints / 'last'}; starting from scratch")

    metrics_file = output / "metrics.jsonl"
    writer = _tensorboard(output) if main else None

    def log(record: dict) -> None:
        if not main:
            return
        with open(metrics_file, "a") as f:
            f.write(json.dumps(record) + "\n")
        if writer is not None:
            for k, v in record.items():
                if isinstance(v, int | float) and k != "step":
                    writer.add_scalar(k, v, record["step"])

    last_eval: dict = {}

    def run_eval() -> dict | None:
        """Evaluate the current weights (once per step: the end-of-run call reuses an epoch-end result)."""
        if eval_data is None or not eval_data.examples:
            return None
        if last_eval.get("step") != state["step"]:
            last_eval.update(step=state["step"], result=evaluate(model, eval_data.examples, objectives, cfg, accelerator))
        return last_eval["result"]

    def checkpoint(result: dict | None) -> None:
        """Write last (and best, if improved); decide early stopping."""
        improved = False
        if result is not None:
            metric = result["accuracy"] if not math.isnan(result["accuracy"]) else -result["loss"]
            if state["best_metric"] is None or metric > state["best_metric"]:
                state.update(best_metric=metric, best_step=state["step"], evals_without_improvement=0)
                improved = True
            else:
                state["evals_without_improvement"] += 1
        if main:
            save_checkpoint(checkpoints / "last", model, optimizer, scheduler, state)
            if improved or result is None:
                best = checkpoints / "best"
                tmp = best.with_name(".best.tmp")
                if tmp.exists():
                    shutil.rmtree(tmp)
                shutil.copytree(checkpoints / "last", tmp, ignore=shutil.ignore_patterns("optimizer.pt"))
                if best.exists():
                    shutil.rmtree(best)
                tmp.rename(best)
        accelerator.wait_for_everyone()

    rank, world = accelerator.process_index, accelerator.num_processes
    raw = accelerator.unwrap_model(model)
    model.train()
    bar = tqdm(total=total_steps, initial=state["step"], desc="training", unit="step",
               disable=not (main and cfg.progress))
    started, seen_at_start = time.perf_counter(), state["seen_examples"]
    running: Counter = Counter()
    stop = state["step"] >= total_steps
    while not stop:
        batches = epoch_batches(examples, cfg.batch_size, cfg.seed, state["epoch"], cfg.group_by_length)
        while state["batch_in_epoch"] < len(batches) and not stop:
            group = batches[state["batch_in_epoch"]: state["batch_in_epoch"] + cfg.grad_accum]
            total_in_step = sum(len(b) for b in group)
            step_loss = torch.zeros((), device=accelerator.device)
            for micro, global_batch in enumerate(group):
                part = shard(global_batch, rank, world)
                chunks = token_chunks(part, examples, cfg, objectives) if part else [[]]
                for c, chunk in enumerate(chunks):
                    # Each process makes exactly one synchronising backward per step: the last chunk of the last micro-batch.
                    sync = micro == len(group) - 1 and c == len(chunks) - 1
                    ctx = accelerator.no_sync(model) if not sync and world > 1 else contextlib.nullcontext()
                    with ctx:
                        if not chunk:  # more processes than records in this batch: contribute a zero gradient
                            loss = sum(p.sum() * 0 for p in model.parameters() if p.requires_grad)
                            metrics = {"examples": 0}
                        else:
                            batch = collate([examples[i] for i in chunk], raw, cfg.padding_side, layout(cfg))
                            batch["inputs"] = {k: v.to(accelerator.device) for k, v in batch["inputs"].items()}
                            with autocast(cfg.precision, accelerator.device):
                                loss, metrics, _ = batch_loss(model, batch, objectives, cfg)
                            loss = loss.float()
                        # Weight by share of the global step, times world (DDP averages over processes).
                        scaled = loss * (len(chunk) / total_in_step) * world
                        accelerator.backward(scaled)
                    step_loss += loss.detach() * len(chunk) / total_in_step
                    running.update({k: v for k, v in metrics.items()})
            finite = accelerator.gather(torch.isfinite(step_loss).float().reshape(1)).min() > 0
            if not finite:
                raise TrainingError(f"non-finite loss at step {state['step'] + 1}; stopped. The last good checkpoint "
                                    f"is {checkpoints / 'last'} (resume with a lower --lr or stronger clipping)")
            if cfg.max_grad_norm:
                accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state["step"] += 1
            state["batch_in_epoch"] += len(group)
            state["seen_examples"] += total_in_step
            step_loss_all = float(accelerator.gather(step_loss.reshape(1)).sum())
            elapsed = time.perf_counter() - started
            rate = (state["seen_examples"] - seen_at_start) / max(elapsed, 1e-9)
            acc = running["correct"] / running["examples"] if running.get("correct") is not None and running["examples"] else None
            record = {"step": state["step"], "epoch": state["epoch"], "loss": step_loss_all,
                      "lr": scheduler.get_last_lr()[-1], "records_per_s": rate}
            if acc is not None:
                record["train_accuracy"] = acc
            log(record)
            bar.set_postfix(loss=f"{step_loss_all:.4f}", acc=f"{acc:.3f}" if acc is not None else "-", rec_s=f"{rate:.1f}")
            bar.update(1)
            if state["step"] >= total_steps:
                stop = True
            evaluate_now = cfg.eval_every and state["step"] % cfg.eval_every == 0
            save_now = cfg.save_every and state["step"] % cfg.save_every == 0
            if evaluate_now or (save_now and not stop):
                result = run_eval() if evaluate_now else None
                if result:
                    log({"step": state["step"], **{f"eval_{k}": v for k, v in result.items()}})
                    running.clear()
                if evaluate_now:
                    checkpoint(result)
                else:
                    if main:
                        save_checkpoint(checkpoints / "last", model, optimizer, scheduler, state)
                    accelerator.wait_for_everyone()
                if cfg.early_stopping_patience and state["evals_without_improvement"] >= cfg.early_stopping_patience:
                    if main:
                        print(f"early stopping: {cfg.early_stopping_patience} evaluation(s) without improvement")
                    stop = True
        if state["batch_in_epoch"] >= len(batches):
            state["epoch"] += 1
            state["batch_in_epoch"] = 0
            if not cfg.eval_every and not stop:
                result = run_eval()
                if result:
                    log({"step": state["step"], **{f"eval_{k}": v for k, v in result.items()}})
                checkpoint(result)
    bar.close()
    train_seconds = time.perf_counter() - started

    already_saved = last_eval.get("step") == state["step"]
    final_eval = run_eval()
    if not already_saved:
        if final_eval:
            log({"step": state["step"], **{f"eval_{k}": v for k, v in final_eval.items()}})
        checkpoint(final_eval)
    chosen = checkpoints / ("best" if cfg.final_model == "best" and (checkpoints / "best").exists() else "last")
    final = merge_lora(RewardModel.load(chosen))
    chosen_eval = final_eval
    if final_eval is not None and chosen.name == "best" and state["best_step"] != state["step"]:
        chosen_eval = evaluate(final, eval_data.examples, objectives, cfg)
    # Store reward statistics so that servers and RL loops can normalise scores.
    reference = chosen_eval or evaluate(final, examples[: min(len(examples), 512)], objectives, cfg)
    final.spec.normalization = {"mean": reference["reward_mean"], "std": reference["reward_std"],
                                "source": "eval split" if chosen_eval else "training records"}
    summary = {
        "model": str(output / "model"),
        "steps": state["step"], "epochs": state["epoch"], "train_seconds": round(train_seconds, 2),
        "records_per_second": round((state["seen_examples"] - seen_at_start) / max(train_seconds, 1e-9), 2),
        "train_records": len(examples), "eval_records": len(eval_data.examples) if eval_data else 0,
        "invalid_records_skipped": len(rejects), "not_trained_on": train_data.skipped,
        "objectives": objectives, "truncation": train_truncation,
        "final_checkpoint": chosen.name, "best_step": state["best_step"],
        "eval": chosen_eval, "model_summary": model_summary(final), "config": dataclasses.asdict(cfg),
    }
    if main:
        final.save(output / "model")
        (output / "train_summary.json").write_text(json.dumps(summary, indent=2, default=str))
    accelerator.wait_for_everyone()
    if writer is not None:
        writer.close()
    return summary


def _tensorboard(output: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(output / "tensorboard"))
