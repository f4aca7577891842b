"""What both judge-tuning stages (rejective fine-tuning, online RL) share: the labelled questions they ask, the LoRA
adapters they train and merge, the greedy before/after comparison on held-out pairs, and an output directory that
appears only when the command succeeds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from rewardkit.judge.judge import Judge, verdict_summary


def labelled_questions(judge: Judge, pairs: list[dict]) -> list[tuple[dict, str, str, str]]:
    """(record, judge prompt, right verdict, order) for each labelled pair (chosen = the better response) asked with
    the chosen response first ("A", "given") and then second ("B", "swapped")."""
    given = [(r, judge.pairwise_prompt(r["prompt"], r["chosen"], r["rejected"]), "A", "given") for r in pairs]
    swapped = [(r, judge.pairwise_prompt(r["prompt"], r["rejected"], r["chosen"]), "B", "swapped") for r in pairs]
    return given + swapped


def judge_lora(r: int):
    """The LoRA adapters both tuning stages train: every linear layer, rank r, alpha 2r."""
    from peft import LoraConfig

    return LoraConfig(r=r, lora_alpha=2 * r, target_modules="all-linear", lora_dropout=0.0, task_type="CAUSAL_LM")


def save_merged(trainer, tokenizer, directory: Path) -> None:
    """Merge the trained adapters into the model and save it as safetensors with its tokenizer."""
    trainer.model.merge_and_unload().save_pretrained(str(directory), safe_serialization=True)
    tokenizer.save_pretrained(str(directory))


def greedy_comparison(generator, held: list[dict], max_new_tokens: int, seed: int, progress: bool) -> dict:
    """How a judge over `generator` does on held-out pairs, one greedy vote per order (verdict_summary)."""
    from rewardkit.generation import Sampling

    judge = Judge(generator, 1, Sampling(max_new_tokens, 0.0, 1.0, seed))
    triples = [(r["prompt"], r["chosen"], r["rejected"]) for r in held]
    return verdict_summary(judge.compare(triples, True, progress), 1, True)


def save_tuned_judge(tmp: Path, output: Path, summary: dict) -> None:
    """Drop the trainer's scratch, write the summary and move the finished directory into place."""
    from rewardkit.model.reward_model import swap_in_directory

    for scratch in (tmp / "base", tmp / "trainer"):
        shutil.rmtree(scratch, ignore_errors=True)
    (tmp / "summary.json").write_text(json.dumps(summary, indent=2))
    swap_in_directory(tmp, output)


def scratch_directory(output: Path) -> Path:
    """An empty .OUTPUT.tmp beside OUTPUT to build in: OUTPUT itself appears only when the command succeeds."""
    tmp = output.with_name(f".{output.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp
