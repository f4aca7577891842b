"""Simulated teachers (B-Pref, Lee et al. 2021): who labels a pair of segments, from their true step rewards.

A teacher has five parameters; each named teacher changes one of them from the oracle's:
  beta         rationality: P(a) = sigmoid(beta * (R_a - R_b)); inf = always the better segment (oracle)
  gamma        myopia: step t of T counts gamma^(T-1-t), so the end of a segment weighs most (1 = not myopic)
  eps_mistake  probability of flipping the label after choosing
  eps_skip     skip the query when neither segment's return reaches eps_skip * margin
  eps_equal    answer "equally good" (0.5) when |R_a - R_b| < eps_equal * margin
B-Pref's presets: oracle, stoch (beta 1), mistake (eps 0.1), skip (0.1), equal (0.1), myopic (gamma 0.9).
`margin` is the mean true return of a segment, set from the segments seen so far (PEBBLE's rule); B-Pref's tasks
have rewards >= 0, so returns here are measured from the lowest step reward seen (Pendulum's are all negative).
Labels are P(a is preferred): 1, 0 or 0.5; a skipped query has no label (NaN).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Teacher:
    beta: float = math.inf
    gamma: float = 1.0
    eps_mistake: float = 0.0
    eps_skip: float = 0.0
    eps_equal: float = 0.0


TEACHERS = {
    "oracle": Teacher(),
    "stoch": Teacher(beta=1.0),
    "mistake": Teacher(eps_mistake=0.1),
    "skip": Teacher(eps_skip=0.1),
    "equal": Teacher(eps_equal=0.1),
    "myopic": Teacher(gamma=0.9),
}


def teacher_returns(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """Returns [N] of step rewards [N, T], step t weighted gamma^(T-1-t)."""
    T = rewards.shape[1]
    return rewards @ (gamma ** np.arange(T - 1, -1, -1, dtype=np.float64))


def label_pairs(teacher: Teacher, rewards_a: np.ndarray, rewards_b: np.ndarray, margin: float, floor: float,
                rng: np.random.Generator) -> np.ndarray:
    """Labels [N] for pairs with true step rewards rewards_a, rewards_b [N, T]: P(a is preferred) in {0, 0.5, 1},
    NaN where the teacher skips. `margin` scales the skip/equal thresholds; `floor` is the lowest step reward
    seen (returns are measured from it)."""
    ret_a = (rewards_a - floor).sum(axis=1)
    ret_b = (rewards_b - floor).sum(axis=1)
    skip = (np.maximum(ret_a, ret_b) < teacher.eps_skip * margin) if teacher.eps_skip > 0 else np.zeros(len(ret_a), bool)
    equal = np.abs(ret_a - ret_b) < teacher.eps_equal * margin
    diff = teacher_returns(rewards_a - floor, teacher.gamma) - teacher_returns(rewards_b - floor, teacher.gamma)
    if math.isinf(teacher.beta):
        labels = (diff > 0).astype(np.float64)
        labels[diff == 0] = rng.integers(0, 2, int((diff == 0).sum()))
    else:
        p_a = 1 / (1 + np.exp(-np.clip(teacher.beta * diff, -50, 50)))
        labels = (rng.random(len(diff)) < p_a).astype(np.float64)
    flip = rng.random(len(labels)) < teacher.eps_mistake
    labels[flip] = 1 - labels[flip]
    labels[equal] = 0.5
    labels[skip] = np.nan
    return labels


def segment_margin(rewards: np.ndarray, floor: float) -> float:
    """The mean return of segments [N, T] measured from `floor`: the scale of the skip and equal thresholds."""
    return float((rewards - floor).sum(axis=1).mean())
