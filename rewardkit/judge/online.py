"""Rule-based online RL of a judge (DeepSeek-GRM's SPCT, stage 2): GRPO on the judge prompts of labelled pairs,
asked in both answer orders, with a rule reward and a KL penalty to the judge it starts from.

The *rule reward* of a sampled critique is +1 when its parsed verdict names the labelled better response and -1
otherwise: a tie, the other response and an unparseable output all cost the same, so the judge is paid for being
right in the asked format and for nothing else. Both orders of every pair are in the data, so always naming one
position earns +1 and -1 equally often. Start from a judge that already writes the format (after `judge rft`):
when every sample of a group gets the same reward, GRPO's group-normalised advantage is 0 and the group teaches
nothing. Training runs on TRL's GRPOTrainer with LoRA adapters merged afterwards (rewardkit.judge.tuning, as
`rft.fine_tune` does), so the result is a plain causal LM directory that `local:DIR` judges with.
"""

from __future__ import annotations

import time
from pathlib import Path

from rewardkit.judge.judge import Judge
from rewardkit.judge.parse import parse_verdict
from rewardkit.judge.tuning import judge_lora, labelled_questions, save_merged
from rewardkit.rl.trl import completion_text


def verdict_reward(prompts: list, completions: list, answer: list[str], **kwargs) -> list[float]:
    """+1 for each completion whose parsed verdict is its question's `answer` ("A" or "B"), else -1 (TRL passes
    the dataset's answer column)."""
    return [1.0 if parse_verdict(completion_text(c)) == a else -1.0 for c, a in zip(completions, answer, strict=True)]


verdict_reward.__name__ = "verdict"


def judge_questions(judge: Judge, pairs: list[dict]) -> list[dict]:
    """GRPO rows {"prompt": [user message], "answer"}: each labelled pair asked in both orders (tuning.labelled_questions)."""
    return [{"prompt": [{"role": "user", "content": prompt}], "answer": answer}
            for _, prompt, answer, _ in labelled_questions(judge, pairs)]


def train_online(base: str | Path, rows: list[dict], output: Path, steps: int = 20, prompts_per_step: int = 2,
                 num_generations: int = 4, max_new_tokens: int = 384, temperature: float = 1.0, lr: float = 1e-5,
                 beta: float = 0.04, lora_r: int = 16, seed: int = 0) -> dict:
    """GRPO of the causal LM `base` (a Hugging Face directory) on judge questions (`judge_questions`) with the rule
    reward; saves the merged judge as safetensors with its tokenizer in output/judge. Returns the steps run, the
    seconds, and the mean rule reward and KL of each logged step."""
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    config = GRPOConfig(output_dir=str(output / "trainer"), max_steps=steps, learning_rate=lr, beta=beta,
                        num_generations=num_generations, max_completion_length=max_new_tokens, temperature=temperature,
                        per_device_train_batch_size=prompts_per_step * num_generations, logging_steps=1,
                        save_strategy="no", report_to="none", use_cpu=not torch.cuda.is_available(), bf16=False,
                        seed=seed, disable_tqdm=True)
    trainer = GRPOTrainer(model=str(base), reward_funcs=[verdict_reward], args=config,
                          train_dataset=Dataset.from_list(rows), peft_config=judge_lora(lora_r))
    started = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - started
    save_merged(trainer, AutoTokenizer.from_pretrained(str(base), trust_remote_code=False), output / "judge")
    curve = [{"step": h["step"], "reward": h.get("rewards/verdict/mean"), "kl": h.get("kl")}
             for h in trainer.state.log_history if "rewards/verdict/mean" in h]
    return {"optimizer_steps": result.global_step, "train_seconds": round(seconds, 1), "curve": curve}
