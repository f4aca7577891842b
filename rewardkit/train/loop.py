"""The optimisation loop: steps, evaluation, checkpoints and logging, under Accelerate.

The same loop runs as one CPU process or under `accelerate launch` on several. Each global batch is split across
processes by position (batches.shard), and each process's share into forward passes of bounded size
(batches.token_chunks); losses are weighted by their share of the global batch, so the gradient of a step does
not depend on how many processes or passes computed it. The state dict (step, epoch, position in the epoch, best
metric) is saved with every checkpoint, so a resumed run continues exactly where the killed one stood.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections import Counter
from pathlib import Path

import torch

from rewardkit.errors import TrainingError
from rewardkit.model.precision import autocast
from rewardkit.train.batches import epoch_batches, layout, shard, token_chunks
from rewardkit.train.checkpoint import copy_last_to_best, load_checkpoint, save_checkpoint
from rewardkit.train.examples import Example, collate
from rewardkit.train.objectives import batch_loss
from rewardkit.train.validation import evaluate


def lr_factor(step: int, total_steps: int, warmup_ratio: float, scheduler: str) -> float:
    """The learning rate's multiplier at `step`: linear warm-up to 1, then linear or cosine decay (or constant)."""
    warmup = int(warmup_ratio * total_steps)
    if step < warmup:
        return (step + 1) / (warmup + 1)
    if scheduler == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total_steps - warmup)
    return max(0.0, 1 - progress) if scheduler == "linear" else 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


class TrainingLoop:
    """One training run's loop; `run()` trains until the last step or early stopping."""

    def __init__(self, cfg, accelerator, model, optimizer, scheduler, total_steps: int, examples: list[Example],
                 eval_examples: list[Example], objectives: dict[str, str], output: Path):
        self.cfg, self.accelerator, self.model = cfg, accelerator, model
        self.optimizer, self.scheduler, self.total_steps = optimizer, scheduler, total_steps
        self.examples, self.eval_examples, self.objectives = examples, eval_examples, objectives
        self.checkpoints, self.metrics_file = output / "checkpoints", output / "metrics.jsonl"
        self.main = accelerator.is_main_process
        self.state = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "best_metric": None, "best_step": None,
                      "evals_without_improvement": 0, "seen_examples": 0}
        self.writer = _tensorboard(output) if self.main else None
        self.running: Counter = Counter()
        self.last_eval: dict = {}
        self.train_seconds, self.seen_at_start = 0.0, 0

    def resume(self, directory: Path | None) -> None:
        """Continue from a checkpoint (None: start from scratch)."""
        if directory is not None:
            self.state = load_checkpoint(directory, self.model, self.optimizer, self.scheduler)
            if self.main:
                print(f"resumed from {directory} at step {self.state['step']}")

    def run(self) -> None:
        from tqdm.auto import tqdm

        state, cfg = self.state, self.cfg
        self.model.train()
        bar = tqdm(total=self.total_steps, initial=state["step"], desc="training", unit="step",
                   disable=not (self.main and cfg.progress))
        started, self.seen_at_start = time.perf_counter(), state["seen_examples"]
        stop = state["step"] >= self.total_steps
        while not stop:
            batches = epoch_batches(self.examples, cfg.batch_size, cfg.seed, state["epoch"], cfg.group_by_length,
                                    by_prompt=layout(cfg) != "padded")
            while state["batch_in_epoch"] < len(batches) and not stop:
                self.step(batches[state["batch_in_epoch"]: state["batch_in_epoch"] + cfg.grad_accum], started, bar)
                stop = state["step"] >= self.total_steps
                stop = self.after_step(stop)
            if state["batch_in_epoch"] >= len(batches):
                state["epoch"] += 1
                state["batch_in_epoch"] = 0
                if not cfg.eval_every and not stop:
                    self.checkpoint(self.evaluate_and_log(clear_running=False))
        bar.close()
        self.train_seconds = time.perf_counter() - started

    def step(self, group: list[list[int]], started: float, bar) -> None:
        """One optimizer step over grad_accum micro-batches of example indices."""
        state, accelerator = self.state, self.accelerator
        total_in_step = sum(len(b) for b in group)
        step_loss = torch.zeros((), device=accelerator.device)
        for micro, global_batch in enumerate(group):
            part = shard(global_batch, accelerator.process_index, accelerator.num_processes)
            whole = bool(part) and self.objectives.get(self.examples[part[0]].kind) == "contrastive"
            chunks = token_chunks(part, self.examples, self.cfg.max_batch_tokens, whole) if part else [[]]
            for c, chunk in enumerate(chunks):
                # Each process makes exactly one synchronising backward per step: the last chunk of the last micro-batch.
                sync = micro == len(group) - 1 and c == len(chunks) - 1
                step_loss += self.backward(chunk, total_in_step, sync)
        finite = accelerator.gather(torch.isfinite(step_loss).float().reshape(1)).min() > 0
        if not finite:
            raise TrainingError(f"non-finite loss at step {state['step'] + 1}; stopped. The last good checkpoint "
                                f"is {self.checkpoints / 'last'} (resume with a lower --lr or stronger clipping)")
        if self.cfg.max_grad_norm:
            accelerator.clip_grad_norm_(self.model.parameters(), self.cfg.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        state["step"] += 1
        state["batch_in_epoch"] += len(group)
        state["seen_examples"] += total_in_step
        self.log_step(float(accelerator.gather(step_loss.reshape(1)).sum()), started, bar)

    def backward(self, chunk: list[int], total_in_step: int, sync: bool) -> torch.Tensor:
        """Backward of one forward pass, weighted by its share of the global step; returns that weighted loss."""
        accelerator, world = self.accelerator, self.accelerator.num_processes
        ctx = accelerator.no_sync(self.model) if not sync and world > 1 else contextlib.nullcontext()
        with ctx:
            if not chunk:  # more processes than records in this batch: contribute a zero gradient
                loss = sum(p.sum() * 0 for p in self.model.parameters() if p.requires_grad)
                metrics = {"examples": 0}
            else:
                batch = collate([self.examples[i] for i in chunk], accelerator.unwrap_model(self.model),
                                self.cfg.padding_side, layout(self.cfg))
                batch["inputs"] = {k: v.to(accelerator.device) for k, v in batch["inputs"].items()}
                with autocast(self.cfg.precision, accelerator.device):
                    loss, metrics, _ = batch_loss(self.model, batch, self.objectives, self.cfg)
                loss = loss.float()
            # DDP averages gradients over processes: times world undoes that.
            accelerator.backward(loss * (len(chunk) / total_in_step) * world)
        self.running.update(metrics)
        return loss.detach() * len(chunk) / total_in_step

    def after_step(self, stop: bool) -> bool:
        """Evaluate / checkpoint on the configured schedule; True when training should stop."""
        cfg, state = self.cfg, self.state
        evaluate_now = cfg.eval_every and state["step"] % cfg.eval_every == 0
        save_now = cfg.save_every and state["step"] % cfg.save_every == 0
        if evaluate_now:
            self.checkpoint(self.evaluate_and_log())
        elif save_now and not stop:
            if self.main:
                save_checkpoint(self.checkpoints / "last", self.model, self.optimizer, self.scheduler, state)
            self.accelerator.wait_for_everyone()
        if (evaluate_now or (save_now and not stop)) and cfg.early_stopping_patience \
                and state["evals_without_improvement"] >= cfg.early_stopping_patience:
            if self.main:
                print(f"early stopping: {cfg.early_stopping_patience} evaluation(s) without improvement")
            return True
        return stop

    def evaluate(self) -> dict | None:
        """Evaluate the current weights (once per step: a second call at the same step reuses the result)."""
        if not self.eval_examples:
            return None
        if self.last_eval.get("step") != self.state["step"]:
            result = evaluate(self.model, self.eval_examples, self.objectives, self.cfg, self.accelerator)
            self.last_eval.update(step=self.state["step"], result=result)
        return self.last_eval["result"]

    def evaluate_and_log(self, clear_running: bool = True) -> dict | None:
        """Evaluate and log; mid-epoch evaluations also restart the running training accuracy."""
        result = self.evaluate()
        if result:
            self.log({"step": self.state["step"], **{f"eval_{k}": v for k, v in result.items()}})
            if clear_running:
                self.running.clear()
        return result

    def checkpoint(self, result: dict | None) -> None:
        """Write last (and best, if improved or nothing is evaluated); count evaluations without improvement."""
        state = self.state
        improved = False
        if result is not None:
            metric = result["accuracy"] if not math.isnan(result["accuracy"]) else -result["loss"]
            if state["best_metric"] is None or metric > state["best_metric"]:
                state.update(best_metric=metric, best_step=state["step"], evals_without_improvement=0)
                improved = True
            else:
                state["evals_without_improvement"] += 1
        if self.main:
            save_checkpoint(self.checkpoints / "last", self.model, self.optimizer, self.scheduler, state)
            if improved or result is None:
                copy_last_to_best(self.checkpoints)
        self.accelerator.wait_for_everyone()

    def finish(self) -> dict | None:
        """The final evaluation and checkpoint (unless the last step was just evaluated and saved)."""
        already_saved = self.last_eval.get("step") == self.state["step"]
        result = self.evaluate()
        if not already_saved:
            if result:
                self.log({"step": self.state["step"], **{f"eval_{k}": v for k, v in result.items()}})
            self.checkpoint(result)
        if self.writer is not None:
            self.writer.close()
        return result

    def log_step(self, loss: float, started: float, bar) -> None:
        state, running = self.state, self.running
        rate = (state["seen_examples"] - self.seen_at_start) / max(time.perf_counter() - started, 1e-9)
        acc = running["correct"] / running["examples"] if "correct" in running and running["examples"] else None
        record = {"step": state["step"], "epoch": state["epoch"], "loss": loss,
                  "lr": self.scheduler.get_last_lr()[-1], "records_per_s": rate}
        if acc is not None:
            record["train_accuracy"] = acc
        self.log(record)
        bar.set_postfix(loss=f"{loss:.4f}", acc=f"{acc:.3f}" if acc is not None else "-", rec_s=f"{rate:.1f}")
        bar.update(1)

    def log(self, record: dict) -> None:
        if not self.main:
            return
        with open(self.metrics_file, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for k, v in record.items():
                if isinstance(v, int | float) and k != "step":
                    self.writer.add_scalar(k, v, record["step"])


def _tensorboard(output: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(output / "tensorboard"))
