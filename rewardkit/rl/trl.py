"""rewardkit inside TRL's GRPOTrainer: a monitored, timed reward function, a gold reward TRL logs but does not
optimise, and a callback that adds the monitor's view and the reward side's share of the step time to TRL's logs.

    trainer = GRPOTrainer(model, reward_funcs=[proxy, gold_reward], args=GRPOConfig(reward_weights=[1.0, 0.0], ...),
                          callbacks=[RLLogCallback(proxy, "metrics.jsonl")])

TRL logs each reward function's mean under rewards/<name>/mean, so the gold (weight 0) is plotted beside the proxy
with no effect on the advantages; its KL is `kl` (k3, beta > 0), the completion lengths `completions/mean_length`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from transformers import TrainerCallback

from rewardkit.data.rules import gold
from rewardkit.rl.monitor import RewardMonitor


def completion_text(completion) -> str:
    """A TRL completion as text: a string, or conversational [{role, content}] messages."""
    return completion if isinstance(completion, str) else "".join(m.get("content", "") for m in completion)


class MonitoredReward:
    """Wraps a TRL reward function (e.g. rewardkit.serve.adapters.TRLReward): times every call, passes the rewards
    — with an ensemble's member spreads, where the function exposes them as `last_spreads` — through a
    RewardMonitor (flag / clip / penalise) and keeps the last batch for logging."""

    def __init__(self, reward_fn, monitor: RewardMonitor | None = None, name: str = "proxy"):
        self.reward_fn, self.monitor, self.__name__ = reward_fn, monitor, name
        self.seconds, self.calls, self.step = 0.0, 0, 0
        self.last: list[float] = []
        self.last_texts: list[str] = []

    def __call__(self, prompts: list, completions: list, **kwargs) -> list[float]:
        started = time.perf_counter()
        rewards = [float(r) for r in self.reward_fn(prompts, completions, **kwargs)]
        self.last_texts = [completion_text(c) for c in completions]
        if self.monitor is not None:
            spreads = getattr(self.reward_fn, "last_spreads", None)
            rewards = self.monitor(rewards, spreads, texts=self.last_texts, step=self.step)
        self.seconds += time.perf_counter() - started
        self.calls += 1
        self.last = rewards
        return rewards


def gold_reward(prompts: list, completions: list, rule: list[str], arg: list[str], **kwargs) -> list[float]:
    """The rule's verdict on each completion (rewardkit.data.rules): TRL passes the dataset's rule and arg columns."""
    return [gold(r, a, completion_text(c)) for r, a, c in zip(rule, arg, completions, strict=True)]


gold_reward.__name__ = "gold"


class RLLogCallback(TrainerCallback):
    """Adds to TRL's logs: the reward side's seconds and share of the step time, the monitor's shares of flagged
    rewards and the KS drift of the last `window` rewards against the reference; writes every log line to
    `path` (JSON lines), with the step's highest-rewarded completion, so what the policy learnt can be read."""

    def __init__(self, proxy: MonitoredReward, path: str | Path, window: int = 64):
        self.proxy, self.path, self.window = proxy, Path(path), window
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("")
        self.step_started, self.step_seconds, self.reward_seconds_at_start, self.reward_seconds = 0.0, 0.0, 0.0, 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self.step_started, self.reward_seconds_at_start = time.perf_counter(), self.proxy.seconds
        self.proxy.step = state.global_step

    def on_step_end(self, args, state, control, **kwargs):
        self.step_seconds = time.perf_counter() - self.step_started
        self.reward_seconds = self.proxy.seconds - self.reward_seconds_at_start

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is None or "loss" not in logs:
            return
        logs["reward_side_seconds"] = round(self.reward_seconds, 4)
        logs["reward_side_share"] = round(logs["reward_side_seconds"] / self.step_seconds, 4) if self.step_seconds else None
        monitor = self.proxy.monitor
        if monitor is not None:
            summary, drift = monitor.summary(), monitor.drift(self.window)
            logs["monitor/share_above"] = summary["share_above"]
            logs["monitor/share_uncertain"] = summary["share_uncertain"]
            logs["monitor/ks_recent"] = drift.get("ks_statistic")
        best = max(range(len(self.proxy.last)), key=self.proxy.last.__getitem__) if self.proxy.last else None
        sample = {} if best is None else {"top_completion": self.proxy.last_texts[best][:400],
                                          "top_reward": self.proxy.last[best]}
        with self.path.open("a") as f:
            f.write(json.dumps({"step": state.global_step, **logs, **sample}) + "\n")
