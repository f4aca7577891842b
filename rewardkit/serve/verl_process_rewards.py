"""Token-level process rewards for verl (0.9): a reward manager that puts a rewardkit process reward model's step
rewards at the last token of each step, where verl's own managers put one number at the last token.

    export REWARDKIT_MODEL=runs/prm                  # or REWARDKIT_URL=http://127.0.0.1:8000 (`rewardkit serve`)
    export REWARDKIT_STEP_SEPARATOR=$'\n'            # optional; a newline by default
    python -m verl.trainer.main_ppo ... \
        reward.reward_manager.source=importlib reward.reward_manager.name=ProcessRewardManager \
        reward.reward_manager.module.path=$(python -c "import rewardkit.serve.verl_process_rewards as m; print(m.__file__)")

verl's reward loop calls `run_single` once per response and then `assemble_rm_scores` on the batch for its
`rm_scores` [B, R]. run_single returns the step aggregate (the number verl logs, and the reward wherever verl
computes rewards inside its agent loop, which always puts one number at the last token) with the step statistics;
assemble_rm_scores scores the batch's steps in one call and places each step reward at its step's last token
(rewardkit.serve.adapters.process_token_rewards). So on the reward-loop path each response is scored twice — once
alone for the aggregate, once in the batch for the steps; the reward side is under 1% of a GRPO step on a CPU
(docs/reports/2026-12-grpo-trl.md), and the two calls run in different processes that share no cache.
verl imports this file itself (it needs verl installed); nothing in rewardkit imports it.
"""

from __future__ import annotations

import os

from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

from rewardkit.data.texts import text_steps
from rewardkit.serve.adapters import _backend_from_env, process_token_rewards
from rewardkit.serve.protocol import step_statistics


def separator() -> str:
    return os.environ.get("REWARDKIT_STEP_SEPARATOR") or "\n"


def prompt_text(tokenizer, data, row: int) -> str:
    """The question: extra_info's prompt (or question) when the dataset gives it, else the decoded prompt tokens."""
    extra = (data.non_tensor_batch.get("extra_info") if data.non_tensor_batch is not None else None)
    info = extra[row] if extra is not None else None
    if isinstance(info, dict) and (info.get("prompt") or info.get("question")):
        return info.get("prompt") or info.get("question")
    prompt_length = data.batch["prompts"].shape[-1]
    ids = data.batch["prompts"][row][data.batch["attention_mask"][row][:prompt_length].bool()]
    return tokenizer.decode(ids.tolist(), skip_special_tokens=True)


def response_mask(data):
    """[B, R] True at each response's own tokens."""
    prompt_length = data.batch["prompts"].shape[-1]
    return data.batch["attention_mask"][:, prompt_length:].bool()


class ProcessRewardManager(RewardManagerBase):
    tokenizer_for_batches = None  # assemble_rm_scores is a class method: init_class keeps the tokenizer here

    def __init__(self, config, tokenizer, compute_score=None, **kwargs):
        super().__init__(config, tokenizer, compute_score)

    @classmethod
    def init_class(cls, config, tokenizer):
        cls.tokenizer_for_batches = tokenizer
        super().init_class(config, tokenizer)

    async def run_single(self, data) -> dict:
        row = len(data.batch["responses"]) - 1  # a multi-turn item: the last sequence, as verl's managers do
        ids = data.batch["responses"][row][response_mask(data)[row]].tolist()
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        backend = _backend_from_env()
        values, steps = await self.loop.run_in_executor(
            None, lambda: backend.score_steps([(prompt_text(self.tokenizer, data, row), text_steps(text, separator()))]))
        return {"reward_score": values[0],
                "reward_extra_info": {key: value[0] for key, value in step_statistics(steps).items()}}

    @classmethod
    def assemble_rm_scores(cls, data, scores: list[float]):
        """[B, R] step rewards at step ends (the per-response `scores` are the aggregates: not used here)."""
        tokenizer = cls.tokenizer_for_batches
        prompts = [prompt_text(tokenizer, data, row) for row in range(len(data.batch["responses"]))]
        return process_token_rewards(_backend_from_env(), tokenizer, prompts, data.batch["responses"],
                                     response_mask(data), separator())
