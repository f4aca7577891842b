"""Rejective fine-tuning of a judge (DeepSeek-GRM's SPCT, stage 1): sample critiques of labelled pairs, keep those
whose verdict matches the label, and fine-tune the judge on them.

Vocabulary: a *question* is one labelled pair in one answer order; both orders are asked, so a judge that always
names the same position is not rewarded for it. Of a question's k sampled critiques, a *right* one's parsed verdict
names the labelled better response; a tie, a wrong verdict or no parsed verdict is not right. *Rejective sampling*
keeps the right critiques, except those of *easy* questions, which every sample already gets right (nothing to
learn; DeepSeek-GRM drops them too) unless `keep_easy`. A *hopeless* question has no right sample and gives
nothing. A judge with a position bias gets right mostly the questions whose answer is its favourite position, so
the kept critiques are *balanced*: as many ending in "Verdict: A" as in "Verdict: B" (a random subset of the larger
side, seeded), or fine-tuning teaches the bias. *Hinted sampling* (optional) asks the hopeless questions again with
the better response named in a note after the prompt (templates/pairwise_hint.txt); a right critique of a hinted
question is kept with the plain prompt and flagged "hinted", unless it mentions the hint. DeepSeek-GRM found that
hinted critiques sometimes shortcut to the answer, which is why it is off by default and flagged when on.
Fine-tuning is supervised (TRL's SFTTrainer, the loss on the critique only) with LoRA adapters merged afterwards,
so the result is a plain causal LM directory that `local:DIR` judges with.
"""

from __future__ import annotations

import random
from pathlib import Path

from rewardkit.judge.judge import Judge
from rewardkit.judge.parse import parse_verdict
from rewardkit.judge.tuning import judge_lora, labelled_questions, save_merged


def rejective_samples(judge: Judge, pairs: list[dict], keep_easy: bool = False, balance: bool = True,
                      seed: int = 0, progress: bool = False, hint: str | None = None) -> tuple[list[dict], dict]:
    """(SFT records {"prompt": judge prompt, "completion": a right critique, "id", "order", "hinted"}, counts) from
    the judge's k sampled critiques of each labelled pair (chosen = the better response) in both answer orders;
    with `hint` (a note with an {answer} field), hopeless questions are asked again with it; with balance, as many
    records whose verdict is A as B."""
    questions = labelled_questions(judge, pairs)
    prompts = [prompt for _, prompt, _, _ in questions]
    outputs = judge.generator.generate(prompts, judge.k, judge.sampling, progress).samples
    records, counts = [], {"questions": len(questions), "samples": 0, "unparsed": 0, "right": 0, "easy_questions": 0,
                           "hopeless_questions": 0, "kept": 0}
    hopeless = []
    for (record, prompt, answer, order), row in zip(questions, outputs, strict=True):
        verdicts = [None if s.text is None else parse_verdict(s.text) for s in row]
        right = [s.text for s, v in zip(row, verdicts, strict=True) if v == answer]
        counts["samples"] += len(row)
        counts["unparsed"] += verdicts.count(None)
        counts["right"] += len(right)
        if not right:
            counts["hopeless_questions"] += 1
            hopeless.append((record, answer, order, prompt))
        elif len(right) == len(row) and not keep_easy:
            counts["easy_questions"] += 1
            continue
        records += [{"prompt": prompt, "completion": text, "id": record.get("id"), "order": order, "hinted": False}
                    for text in right]
    if hint and hopeless:
        hinted = [prompt + "\n\n" + hint.format(answer=answer) for _, answer, _, prompt in hopeless]
        outputs = judge.generator.generate(hinted, judge.k, judge.sampling, progress).samples
        counts.update(hinted_questions=len(hopeless), hinted_right=0, hint_mentioned=0)
        for (record, answer, order, prompt), row in zip(hopeless, outputs, strict=True):
            right = [s.text for s in row if s.text is not None and parse_verdict(s.text) == answer]
            plain = [text for text in right if "hint" not in text.lower()]
            counts["hinted_right"] += len(plain)
            counts["hint_mentioned"] += len(right) - len(plain)
            records += [{"prompt": prompt, "completion": text, "id": record.get("id"), "order": order, "hinted": True}
                        for text in plain]
    if balance:
        records, counts["dropped_to_balance"] = balanced(records, seed)
    counts["kept"] = len(records)
    return records, counts


def balanced(records: list[dict], seed: int) -> tuple[list[dict], int]:
    """The records with as many right answers 'A' (the given order) as 'B' (swapped): a seeded random subset of the
    larger side, the input order kept; and how many were dropped."""
    sides = {order: [i for i, r in enumerate(records) if r["order"] == order] for order in ("given", "swapped")}
    n = min(len(v) for v in sides.values())
    rng = random.Random(seed)
    keep = {i for v in sides.values() for i in rng.sample(v, n)}
    return [r for i, r in enumerate(records) if i in keep], len(records) - len(keep)


def fine_tune(base: str | Path, records: list[dict], output: Path, lora_r: int = 16, epochs: float = 1.0,
              lr: float = 1e-4, batch_size: int = 4, max_length: int = 1024, seed: int = 0) -> dict:
    """Fine-tune the causal LM `base` (a Hugging Face directory) on (prompt -> completion) records with LoRA, the
    loss on the completion only (the judge's chat template around both); merge the adapters and save the model as
    safetensors with its tokenizer in `output`. Returns the trainer's step count, final loss and seconds."""
    import time

    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(str(base), trust_remote_code=False)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(str(base), trust_remote_code=False, use_safetensors=True,
                                                 dtype=torch.float32)
    rows = [{"prompt": [{"role": "user", "content": r["prompt"]}],
             "completion": [{"role": "assistant", "content": r["completion"]}]} for r in records]
    config = SFTConfig(output_dir=str(output / "trainer"), num_train_epochs=epochs, learning_rate=lr,
                       per_device_train_batch_size=batch_size, max_length=max_length, completion_only_loss=True,
                       bf16=False, use_cpu=not torch.cuda.is_available(), seed=seed, logging_steps=1,
                       save_strategy="no", report_to="none", disable_tqdm=True, dataloader_num_workers=0)
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                         peft_config=judge_lora(lora_r))
    started = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - started
    save_merged(trainer, tokenizer, output / "judge")
    return {"optimizer_steps": result.global_step, "train_loss": result.training_loss, "train_seconds": round(seconds, 1)}
