"""Plug a rewardkit model (local directory or running server) into RL frameworks without glue code.

- TRL `GRPOTrainer(reward_funcs=[TRLReward("path-or-url")])`: TRL calls it with keyword arguments
  `prompts`, `completions` (strings, or message lists for conversational data) and dataset columns.
- OpenRLHF: `--remote_rm_url $(python -m rewardkit.serve.openrlhf_reward_func)` loads the file that
  defines `reward_func(queries, prompts, labels)`; it reads REWARDKIT_URL or REWARDKIT_MODEL, and
  REWARDKIT_STEP_SEPARATOR for a process reward model.
- verl: `custom_reward_function.path=<this file> custom_reward_function.name=compute_score`, with the
  model or URL in REWARDKIT_MODEL / REWARDKIT_URL or in `reward_kwargs`; for token-level process rewards,
  the reward manager in rewardkit/serve/verl_process_rewards.py (built on `process_token_rewards` below).
"""

from __future__ import annotations

import bisect
import os
from functools import lru_cache

from rewardkit.data.texts import Steps, is_conversation, text_steps
from rewardkit.serve.protocol import step_statistics


class RewardBackend:
    """Scores (prompt, response) pairs with a local model directory or a server URL (http:// or https://)."""

    def __init__(self, model_or_url: str, api_key: str | None = None, normalize: bool = True, batch_size: int = 32):
        self.target = model_or_url
        self.normalize = normalize
        self.batch_size = batch_size
        self.remote = model_or_url.startswith(("http://", "https://"))
        self.last_spreads: list[float] | None = None  # an ensemble's member spread per item of the last call
        if self.remote:
            from rewardkit.serve.client import RewardClient

            self.client = RewardClient(model_or_url, api_key or os.environ.get("REWARDKIT_API_KEY"))
        else:
            self.model = _load(model_or_url)

    def score(self, pairs: list[tuple]) -> list[float]:
        if not pairs:
            return []
        if self.remote:
            out = self.client.score_details(pairs, normalize=self.normalize)
            self.last_spreads = out.get("uncertainty")  # the server sends it for an ensemble, in raw units
            return out["scores"]
        from rewardkit.model.scoring import score

        scores = score(self.model, pairs, self.batch_size, normalize=self.normalize)
        self.last_spreads = scores.spreads
        return scores.values

    def score_steps(self, solutions: list[tuple]) -> tuple[list[float], list[list[float]]]:
        """Process rewards of (prompt, steps) solutions: (each solution's aggregate, each step's reward), as
        logits (P(step is right) = sigmoid), unnormalised."""
        if not solutions:
            return [], []
        if self.remote:
            out = self.client.steps(solutions, normalize=False)
            return out["scores"], out["step_scores"]
        from rewardkit.model.scoring import score_steps

        scores = score_steps(self.model, solutions, self.batch_size)
        return scores.values, scores.steps


@lru_cache(maxsize=4)
def _load(path: str):
    from rewardkit.model.load import load_model

    return load_model(path)


def _backend_from_env(model_or_url: str | None = None) -> RewardBackend:
    target = model_or_url or os.environ.get("REWARDKIT_URL") or os.environ.get("REWARDKIT_MODEL")
    if not target:
        raise RuntimeError("set REWARDKIT_URL (a running `rewardkit serve`) or REWARDKIT_MODEL (a model directory)")
    return _cached_backend(target)


@lru_cache(maxsize=4)
def _cached_backend(target: str) -> RewardBackend:
    return RewardBackend(target)


class TRLReward:
    """A reward function for TRL's GRPOTrainer / RLOOTrainer (`reward_funcs=[TRLReward(...)]`). With
    process=True the model is a process reward model: each completion is cut into steps at `separator` and its
    reward is the aggregate of its step rewards (TRL's reward functions return one number per completion)."""

    def __init__(self, model_or_url: str, api_key: str | None = None, normalize: bool = True, name: str = "rewardkit",
                 process: bool = False, separator: str = "\n"):
        self.backend = RewardBackend(model_or_url, api_key, normalize)
        self.process, self.separator = process, separator
        self.__name__ = name  # TRL logs each reward function under its __name__

    def __call__(self, prompts: list, completions: list, **kwargs) -> list[float]:
        pairs = []
        for prompt, completion in zip(prompts, completions, strict=True):
            if is_conversation(completion):  # conversational data: a list with the assistant message(s)
                completion = "".join(m.get("content", "") for m in completion)
            pairs.append((prompt, completion))
        if self.process:
            return self.backend.score_steps([(p, text_steps(c, self.separator)) for p, c in pairs])[0]
        return self.backend.score(pairs)

    @property
    def last_spreads(self) -> list[float] | None:
        """An ensemble's member spread for each completion of the last call (a local model; None otherwise)."""
        return None if self.process else self.backend.last_spreads


def openrlhf_reward(queries: list[str], prompts: list[str], labels: list | None = None, model_or_url: str | None = None,
                    step_separator: str | None = None) -> dict:
    """OpenRLHF's reward_func contract: rewards (for advantages), scores in [0, 1] (for dynamic filtering)
    and extra_logs, as torch tensors. With a step separator the model is a process reward model: each response is
    cut into steps there, its reward is the step aggregate and the steps' statistics go to extra_logs
    (rewardkit.serve.protocol.process_reward_fields)."""
    import torch

    from rewardkit.scores import normalize, probability
    from rewardkit.serve.protocol import process_reward_fields, split_query

    backend = _backend_from_env(model_or_url)
    if backend.remote:
        out = backend.client.get_reward(queries, prompts, labels, step_separator)
        rewards, scores, logs = out["rewards"], out["scores"], out["extra_logs"]
    else:
        tokenizer = backend.model.tokenizer
        strip = tuple(t for t in (tokenizer.pad_token, tokenizer.eos_token) if t)
        pairs = [split_query(q, p, strip) for q, p in zip(queries, prompts, strict=True)]
        from rewardkit.model.scoring import score

        if step_separator is not None:
            pairs = [(prompt, Steps(text_steps(response, step_separator))) for prompt, response in pairs]
        result = score(backend.model, pairs, backend.batch_size)
        raw = result.values
        rewards = normalize(torch.tensor(raw), backend.model.spec.normalization).tolist() if backend.normalize else raw
        scores, logs = probability(rewards).tolist(), {"raw_reward": raw}
        if step_separator is not None:
            scores, logs = process_reward_fields(raw, result.steps, backend.model.spec.step_aggregate)
    return {"rewards": torch.tensor(rewards), "scores": torch.tensor(scores),
            "extra_logs": {k: torch.tensor(v) for k, v in logs.items()}}


def compute_score(data_source, solution_str: str, ground_truth=None, extra_info: dict | None = None,
                  model_or_url: str | None = None, process: bool = False, separator: str = "\n",
                  **kwargs) -> float | dict:
    """verl's custom reward function. The prompt comes from extra_info['prompt'] (or 'question') when the
    dataset provides it; otherwise the response is scored alone. With process=True (a process reward model) it
    returns {"score": the step aggregate, "steps", "lowest_step_probability", "first_weak_step"}: verl's reward
    loop takes one reward per response and stacks every other key into one array over the batch, so the steps
    travel as numbers, as they do to OpenRLHF."""
    extra_info = extra_info or {}
    prompt = extra_info.get("prompt") or extra_info.get("question") or ""
    backend = _backend_from_env(model_or_url)
    if process:
        values, steps = backend.score_steps([(prompt, text_steps(solution_str, separator))])
        return {"score": values[0], **{key: value[0] for key, value in step_statistics(steps).items()}}
    return backend.score([(prompt, solution_str)])[0]


def step_token_ends(tokenizer, response_ids: list[int], separator: str = "\n") -> tuple[list[str], list[int]]:
    """(steps, index of each step's last token) of a generated response: its decoded text cut at `separator` as
    text_steps cuts it, each step ending at the first token whose decoded prefix reaches the step's last
    character (found by bisection: a decoded prefix only grows with its tokens). A response with no text is one
    step ending at its last token (it still gets a reward)."""
    text = tokenizer.decode(response_ids, skip_special_tokens=True)
    steps, ends_at, start = [], [], 0
    for piece in text.split(separator):
        if piece.strip():
            steps.append(piece)
            ends_at.append(start + len(piece))
        start += len(piece) + len(separator)
    if not steps:
        return text_steps(text, separator), [max(len(response_ids) - 1, 0)]
    def prefix_length(token: int) -> int:
        return len(tokenizer.decode(response_ids[: token + 1], skip_special_tokens=True))

    tokens = range(len(response_ids))
    return steps, [bisect.bisect_left(tokens, char_end, key=prefix_length) for char_end in ends_at]


def process_token_rewards(backend: RewardBackend, tokenizer, prompts: list[str], responses, mask,
                          separator: str = "\n"):
    """[B, R] float tensor: a process reward model's step rewards (logits) at the last token of each step of each
    response, 0 elsewhere — the token-level reward a PPO/GRPO learner sums (rewardkit.rl.step_token_rewards).
    responses: [B, R] token ids; mask: [B, R], True at a response's own tokens (either padding)."""
    import torch

    from rewardkit.rl import step_token_rewards

    cut = [step_token_ends(tokenizer, row[m.bool()].tolist(), separator) for row, m in zip(responses, mask, strict=True)]
    _, step_scores = backend.score_steps([(p, steps) for p, (steps, _) in zip(prompts, cut, strict=True)])
    width = max(len(ends) for _, ends in cut)
    rewards = torch.zeros(len(cut), width)
    ends = torch.full((len(cut), width), -1, dtype=torch.long)
    for i, ((_, row_ends), scores) in enumerate(zip(cut, step_scores, strict=True)):
        positions = mask[i].bool().nonzero().flatten()  # the response's own tokens, wherever the padding is
        rewards[i, : len(scores)] = torch.tensor(scores, dtype=torch.float32)
        ends[i, : len(row_ends)] = positions[row_ends]
    return step_token_rewards(rewards, ends, mask.bool())

