"""A reward-hacking monitor that sits in the RL loop: it watches each batch of rewards against the reward model's
reference distribution (its scores on the data it was trained or validated on) and flags, clips or penalises
the rewards it should not be trusted on.

A reward is *out of range* when it lies above the reference's `high` quantile (the reward model says "better than
anything I was trained on": where a policy that exploits it goes) or below its `low` quantile; it is *uncertain*
when an ensemble's members disagree on it more than `spread_limit` (default: the reference spreads' 99th
percentile). Actions: 'flag' (rewards unchanged), 'clip' (out-of-range rewards cut to the range), 'penalise'
(flagged rewards replaced by the reference's low quantile, so the policy gains nothing from them). Every alarm is
counted and the first `examples` per kind are kept with their text, and `drift()` compares everything seen so far
with the reference (KS statistic, share above the range: rewardkit.eval.bias.score_shift).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from rewardkit.eval.bias import score_shift

ACTIONS = ("flag", "clip", "penalise")


class RewardMonitor:
    def __init__(self, reference: list[float], action: str = "flag", low: float = 0.005, high: float = 0.995,
                 reference_spreads: list[float] | None = None, spread_limit: float | None = None, examples: int = 5):
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
        ref = np.asarray(reference, dtype=float)
        if len(ref) < 20 or not np.isfinite(ref).all():
            raise ValueError(f"the reference needs at least 20 finite scores, got {len(ref)}")
        self.reference, self.action, self.examples = ref, action, examples
        self.low, self.high = (float(q) for q in np.quantile(ref, [low, high]))
        if spread_limit is None and reference_spreads is not None:
            spread_limit = float(np.quantile(reference_spreads, 0.99))
        self.spread_limit = spread_limit
        self.counts: Counter = Counter()
        self.alarms: dict[str, list[dict]] = {"above": [], "below": [], "uncertain": []}
        self.seen: list[float] = []

    def __call__(self, rewards: list[float], spreads: list[float] | None = None,
                 texts: list[str] | None = None, step: int | None = None) -> list[float]:
        """The rewards to hand the learner (changed only by 'clip' or 'penalise'); records alarms. A NaN or
        infinite reward is an error: it must never reach an optimiser."""
        values = np.asarray(rewards, dtype=float)
        if not np.isfinite(values).all():
            raise ValueError(f"non-finite rewards at {np.flatnonzero(~np.isfinite(values)).tolist()[:10]}")
        out = values.copy()
        for i, value in enumerate(values):
            kinds = ["above"] if value > self.high else ["below"] if value < self.low else []
            if spreads is not None and self.spread_limit is not None and spreads[i] > self.spread_limit:
                kinds.append("uncertain")
            for kind in kinds:
                self.counts[kind] += 1
                if len(self.alarms[kind]) < self.examples:
                    self.alarms[kind].append({"step": step, "reward": float(value),
                                              **({"spread": float(spreads[i])} if spreads is not None else {}),
                                              **({"text": texts[i][:500]} if texts is not None else {})})
            if kinds and self.action == "clip":
                out[i] = min(max(value, self.low), self.high)
            elif kinds and self.action == "penalise":
                out[i] = self.low
        self.counts["rewards"] += len(values)
        self.seen.extend(values.tolist())
        return out.tolist()

    def drift(self, last: int = 0) -> dict:
        """The score shift of the rewards seen (the last `last` of them, 0 = all) against the reference."""
        seen = self.seen[-last:] if last else self.seen
        return score_shift(self.reference.tolist(), seen) if seen else {}

    def summary(self) -> dict:
        n = max(self.counts["rewards"], 1)
        return {"rewards": self.counts["rewards"], "range": [self.low, self.high], "spread_limit": self.spread_limit,
                "action": self.action, "share_above": self.counts["above"] / n, "share_below": self.counts["below"] / n,
                "share_uncertain": self.counts["uncertain"] / n, "examples": self.alarms}
