"""Serving a control step reward model (rewardkit.control): one reward per (observation, action[, instruction]) step.

POST /v1/step_rewards  {"observations": [[...], ...] (N x D_obs), "actions": [[...], ...] (N x D_act, or
                       N x K x D_act for action chunks), "instructions": ["...", ...] or one string (instructed
                       models only)} -> {"rewards": [N] (the members' mean), "uncertainty": [N] (their spread)}
Steps from concurrent requests are batched into one model call, like the text endpoints; a request with a bad
step is refused alone (422, naming the field and the step).
"""

from __future__ import annotations

import numpy as np

from rewardkit.control.reward import StepRewardModel
from rewardkit.errors import ModelError
from rewardkit.scores import Scores
from rewardkit.serve.protocol import RequestError


def step_reward_items(data: dict) -> list[tuple]:
    """The request's steps as (observation, action, instruction) items."""
    obs, actions = data.get("observations"), data.get("actions")
    if not isinstance(obs, list) or not isinstance(actions, list) or not obs:
        raise RequestError(422, "fields 'observations' and 'actions' must be non-empty lists, one entry per step")
    if len(obs) != len(actions):
        raise RequestError(422, f"'observations' has {len(obs)} steps but 'actions' has {len(actions)}")
    texts = data.get("instructions")
    if texts is None or isinstance(texts, str):
        texts = [texts] * len(obs)
    if not isinstance(texts, list) or len(texts) != len(obs) or not all(t is None or isinstance(t, str) for t in texts):
        raise RequestError(422, "'instructions' must be one string or a list of strings, one per step")
    return list(zip(obs, actions, texts, strict=True))


class ControlService:
    """process(requests) for the DynamicBatcher: every request's steps scored in one call."""

    def __init__(self, model: StepRewardModel):
        self.model = model

    def process(self, requests: list[list[tuple]]) -> list[Scores | RequestError]:
        """Check each request's steps (a bad one is refused alone), then score all the good ones in one call."""
        from rewardkit.control.reward import check_steps

        checked: list = []
        for items in requests:
            try:
                obs = np.asarray([o for o, _, _ in items], dtype=np.float32)
                actions = np.asarray([a for _, a, _ in items], dtype=np.float32)
                texts = [t for _, _, t in items]
                check_steps(self.model.spec, obs, actions, texts)
                checked.append((obs, actions, texts))
            except ModelError as err:  # before ValueError, which it subclasses
                checked.append(RequestError(422, str(err)))
            except (ValueError, TypeError):
                checked.append(RequestError(422, "observations and actions must be rectangular arrays of numbers"))
        good = [c for c in checked if not isinstance(c, RequestError)]
        if not good:
            return checked
        texts = [t for _, _, ts in good for t in ts]
        members = self.model.reward(np.concatenate([o for o, _, _ in good]), np.concatenate([a for _, a, _ in good]),
                                    texts if self.model.spec.instructed else None, members=True)
        results, start = [], 0
        for c in checked:
            if isinstance(c, RequestError):
                results.append(c)
                continue
            part = members[:, start:start + len(c[0])]
            start += len(c[0])
            results.append(Scores(part.mean(axis=0).tolist(), part.T.tolist()))
        return results
