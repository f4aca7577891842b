"""Process evaluation: how well a process reward model's step scores find the errors in a solution.

Vocabulary
- A *solution* is a scored stepwise record: prompt, steps [T], labels [T] and step_scores [T], one logit per step
  (P(step is correct) = sigmoid(score)); a step the model did not score (dropped by truncation) has None.
- A step is *correct* when its label is true or >= 0.5; a solution is *right* when all its steps are correct.
- The *labelled first error* is the record's `first_error` where it has one (ProcessBench, the built-in arithmetic
  task), else its first step that is not correct; -1 = none.
- At a *threshold* t (a probability) a step is *flagged* when P(correct) < t; the *predicted first error* is the
  first flagged step, -1 if none. An unscored step is never flagged. The test is made on logits,
  score < logit(t): the same test, without sigmoid rounding every score above ~37 to 1.0.
- *ProcessBench* (Zheng et al. 2024, §4.1): accuracy on erroneous solutions (predicted == labelled first error),
  accuracy on correct ones (predicted -1), and F1, their harmonic mean. Its threshold for a PRM is the one with the
  best F1 on another split (the paper: GSM8K, for the other subsets); `select_threshold` finds it.
- *PRMScore* (PRMBench, Song et al. 2025): over all scored steps pooled, 0.5 F1(correct steps as the positive
  class) + 0.5 F1(erroneous steps as the positive class), at t = 0.5 as published. PRMBench calls a step valid when
  P > t, here P >= t (they differ only for P exactly t); an F1 with no true positive is 0 here, -1 in its code.
- *Best-of-K*: among the candidate solutions of one prompt, the one with the highest aggregate of its step scores
  (min, last, mean of the logits, or product of the probabilities: rewardkit.model.steps) is picked; it is right
  when the solution is right.
- *Baselines*: every metric is computed the same way for two constant predictors, 'all correct' (no step flagged)
  and 'error at step 0' (step 0 flagged), so each number has its floor beside it; an outcome model's scores of
  the same records (the caller's) can be given as a third.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch

from rewardkit.data.prompts import prompt_key
from rewardkit.eval.metrics import auroc
from rewardkit.model.steps import AGGREGATES, aggregate_steps
from rewardkit.scores import probability

SURE = 1e4  # a constant predictor's step logit: beyond every threshold, finite because roc_auc_score refuses inf
BASELINES = ("all_correct", "error_at_step_0")


def logit(threshold: float) -> float:
    """logit(t) = log(t / (1 - t)): a step is flagged when its score is below it. -inf at 0 (nothing is
    flagged), inf at 1 (every step is flagged)."""
    if threshold <= 0.0:
        return -math.inf
    if threshold >= 1.0:
        return math.inf
    return math.log(threshold) - math.log1p(-threshold)


def is_correct(label: bool | float) -> bool:
    """A step label (bool, or a probability such as a Monte-Carlo estimate) read as correct or not."""
    return float(label) >= 0.5


def labelled_first_error(record: dict) -> int:
    """The index of the first wrong step: `first_error` where the record has it, else from the labels; -1 = none."""
    if record.get("first_error") is not None:
        return int(record["first_error"])
    return next((i for i, label in enumerate(record["labels"]) if not is_correct(label)), -1)


def score_matrix(step_scores: Sequence[Sequence[float | None]]) -> np.ndarray:
    """[N, T_max] logits of N solutions; unscored steps and the padding after a solution's end are +inf, so
    no threshold flags them."""
    width = max((len(s) for s in step_scores), default=1) or 1
    matrix = np.full((len(step_scores), width), np.inf)
    for i, scores in enumerate(step_scores):
        for j, s in enumerate(scores):
            if s is not None:
                matrix[i, j] = s
    return matrix


def _first_below(matrix: np.ndarray, cut: float) -> np.ndarray:
    """[N]: each row's first column whose value is below `cut` (a logit), -1 where none is."""
    flagged = matrix < cut
    return np.where(flagged.any(axis=1), flagged.argmax(axis=1), -1)


def predicted_first_errors(matrix: np.ndarray, threshold: float) -> np.ndarray:
    """[N]: the predicted first error of each solution of a score matrix at a threshold (a probability)."""
    return _first_below(matrix, logit(threshold))


def first_error_prediction(step_scores: Sequence[float | None], threshold: float) -> int:
    """The first step whose P(correct) = sigmoid(score) is below `threshold`; -1 if there is none."""
    return int(predicted_first_errors(score_matrix([step_scores]), threshold)[0])


def harmonic_mean(a: float, b: float) -> float:
    """2ab / (a + b); 0 when both are 0, nan when either is nan."""
    if math.isnan(a) or math.isnan(b):
        return float("nan")
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def processbench_accuracy(predicted: Sequence[int], labelled: Sequence[int]) -> dict:
    """ProcessBench's metric from predicted and labelled first errors (-1 = no error): accuracy on erroneous
    solutions (exact index), on correct ones (-1 predicted), and F1 = their harmonic mean. An accuracy over an
    empty class, and then F1, is nan."""
    pred, gold = np.asarray(predicted, dtype=int), np.asarray(labelled, dtype=int)
    wrong, right = gold != -1, gold == -1
    acc_wrong = float((pred[wrong] == gold[wrong]).mean()) if wrong.any() else float("nan")
    acc_right = float((pred[right] == -1).mean()) if right.any() else float("nan")
    return {"erroneous": int(wrong.sum()), "correct": int(right.sum()), "accuracy_erroneous": acc_wrong,
            "accuracy_correct": acc_right, "f1": harmonic_mean(acc_wrong, acc_right)}


def processbench_scores(solutions: Sequence[dict], threshold: float) -> dict:
    """ProcessBench accuracy and F1 of scored solutions at a threshold."""
    predicted = predicted_first_errors(score_matrix([s["step_scores"] for s in solutions]), threshold)
    return processbench_accuracy(predicted, [labelled_first_error(s) for s in solutions])


def select_threshold(solutions: Sequence[dict]) -> dict:
    """The threshold with the best ProcessBench F1 on `solutions`, a split that is then NOT reported on: the
    threshold is applied to other splits, as ProcessBench chose it on GSM8K for its other subsets. Choosing and
    reporting on one split would overstate F1.

    A solution's prediction changes only where the cut (a logit) crosses one of its running minima (the lowest
    score of steps 0..j), so the candidates are the midpoints between consecutive distinct running minima; every
    threshold between two such values gives the same F1, and the midpoint is the farthest from both. The lowest
    cut or the highest would predict 'all correct' or 'error at step 0' everywhere, whose F1 is 0. Of equally
    good candidates the lowest is taken. Returns {threshold (a probability), f1 on this split, candidates}; as a
    probability, a cut above about 36 logits (where sigmoid rounds to 1) does not survive the round trip.
    """
    matrix = score_matrix([s["step_scores"] for s in solutions])
    gold = [labelled_first_error(s) for s in solutions]
    if -1 not in gold or all(g == -1 for g in gold):
        raise ValueError("choosing a threshold needs both correct and erroneous solutions")
    running = np.minimum.accumulate(matrix, axis=1)
    values = np.unique(running[np.isfinite(running)])
    cuts = (values[:-1] + values[1:]) / 2
    if not len(cuts):
        return {"threshold": 0.5, "f1": processbench_accuracy(predicted_first_errors(matrix, 0.5), gold)["f1"],
                "candidates": 0}
    f1 = [processbench_accuracy(_first_below(matrix, cut), gold)["f1"] for cut in cuts]
    best = int(np.argmax(f1))
    return {"threshold": float(probability(cuts[best])), "f1": f1[best], "candidates": len(cuts)}


def _scored_steps(solutions: Sequence[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(scores, correct) of every scored step of the solutions, pooled."""
    pairs = [(s, is_correct(label)) for r in solutions for s, label in zip(r["step_scores"], r["labels"], strict=True)
             if s is not None]
    return np.array([p[0] for p in pairs], dtype=float), np.array([p[1] for p in pairs], dtype=bool)


def f1_score(tp: int, fp: int, fn: int) -> float:
    """F1 of one class = 2 TP / (2 TP + FP + FN); nan when the class is neither present nor predicted."""
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")


def prm_score(solutions: Sequence[dict], threshold: float = 0.5) -> dict:
    """PRMBench's PRMScore at a threshold: 0.5 F1(correct steps positive) + 0.5 F1(erroneous steps positive),
    over every scored step pooled (so long solutions weigh more, as in PRMBench)."""
    scores, correct = _scored_steps(solutions)
    called_correct = scores >= logit(threshold)
    tp, tn = int((correct & called_correct).sum()), int((~correct & ~called_correct).sum())
    fp, fn = int((~correct & called_correct).sum()), int((correct & ~called_correct).sum())
    f1_correct, f1_erroneous = f1_score(tp, fp, fn), f1_score(tn, fn, fp)
    return {"threshold": threshold, "steps": len(scores), "f1_correct": f1_correct, "f1_erroneous": f1_erroneous,
            "prmscore": 0.5 * (f1_correct + f1_erroneous)}


def step_auroc(solutions: Sequence[dict]) -> float:
    """AUROC of the step score for 'the step is correct' over all scored steps (0.5 = no signal; nan without
    both kinds of step). Scores are compared as logits, where sigmoid would tie the saturated ones."""
    scores, correct = _scored_steps(solutions)
    return auroc(scores, correct)


def aggregate(step_scores: Sequence[float | None], how: str) -> float:
    """One score for a solution from its scored steps, by rewardkit.model.steps's aggregate (min, last, mean of
    the logits, or product: the sum of log-sigmoids); -inf for a solution with no scored step."""
    kept = [s for s in step_scores if s is not None]
    if not kept:
        return -math.inf
    rewards = torch.tensor([kept], dtype=torch.float64)
    return float(aggregate_steps(rewards, torch.ones_like(rewards, dtype=torch.bool), how)[0])


def top_credit(keys: Sequence[float], right: Sequence[bool]) -> float:
    """The credit of picking the top-keyed candidate: the share of right ones among those tied at the top (a
    uniform pick among ties), as metrics.best_of_k when one candidate is right."""
    top = max(keys)
    tied = [r for k, r in zip(keys, right, strict=True) if k == top]
    return sum(tied) / len(tied)


def best_of_k(solutions: Sequence[dict]) -> dict:
    """Best-of-K accuracy per aggregate over the prompts with at least 2 candidate solutions, with the share
    right by a random pick and by an oracle (some candidate is right), and by the records' response_score (the
    model's own aggregate) where every solution has one."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for s in solutions:
        groups[prompt_key(s.get("prompt"))].append(s)
    lists = [g for g in groups.values() if len(g) >= 2]
    if not lists:
        return {"groups": 0}
    right = [[all(is_correct(x) for x in s["labels"]) for s in g] for g in lists]
    out: dict = {"groups": len(lists), "candidates": sum(len(g) for g in lists),
                 "random": float(np.mean([np.mean(r) for r in right])), "oracle": float(np.mean([any(r) for r in right]))}
    for how in AGGREGATES:
        out[how] = float(np.mean([top_credit([aggregate(s["step_scores"], how) for s in g], r)
                                  for g, r in zip(lists, right, strict=True)]))
    if all(s.get("response_score") is not None for g in lists for s in g):
        out["response_score"] = float(np.mean([top_credit([s["response_score"] for s in g], r)
                                               for g, r in zip(lists, right, strict=True)]))
    return out


def constant_predictor(solutions: Sequence[dict], name: str) -> list[dict]:
    """Copies of the solutions as a constant predictor scores them: 'all_correct' gives every step +SURE,
    'error_at_step_0' gives step 0 -SURE and the others +SURE. Their response_score is dropped."""
    if name not in BASELINES:
        raise ValueError(f"baseline must be one of {', '.join(BASELINES)}, got {name!r}")
    first = -SURE if name == "error_at_step_0" else SURE
    return [{k: v for k, v in s.items() if k != "response_score"} | {"step_scores": [first] + [SURE] * (len(s["steps"]) - 1)}
            for s in solutions]


def process_metrics(solutions: Sequence[dict], threshold: float, prmscore_threshold: float = 0.5) -> dict:
    """Every process metric of one set of scored solutions: ProcessBench at `threshold`, PRMScore at
    `prmscore_threshold`, step AUROC and best-of-K."""
    return {"processbench": processbench_scores(solutions, threshold), "prmscore": prm_score(solutions, prmscore_threshold),
            "step_auroc": step_auroc(solutions), "best_of_k": best_of_k(solutions)}


def category_results(solutions: Sequence[dict], threshold: float, prmscore_threshold: float = 0.5) -> dict:
    """Per category (the record's `category`, else 'all'): counts, ProcessBench F1, PRMScore and step AUROC."""
    by_category: dict[str, list[dict]] = defaultdict(list)
    for s in solutions:
        by_category[str(s.get("category") or "all")].append(s)
    out = {}
    for name, members in sorted(by_category.items()):
        pb = processbench_scores(members, threshold)
        out[name] = {"solutions": len(members), "erroneous": pb["erroneous"], "correct": pb["correct"],
                     "steps": sum(len(s["steps"]) for s in members), "f1": pb["f1"],
                     "prmscore": prm_score(members, prmscore_threshold)["prmscore"], "step_auroc": step_auroc(members)}
    return out


def process_results(solutions: Sequence[dict], threshold: float = 0.5, chosen: dict | None = None,
                    orm: Sequence[dict] | None = None, prmscore_threshold: float = 0.5) -> dict:
    """The process evaluation of scored solutions: the model's metrics, the same metrics of the constant
    baselines (and of `orm`, the same solutions with an outcome model's step scores, when the caller has them),
    counts and metrics per category.

    `threshold` is the ProcessBench threshold; `chosen` says where it came from (e.g. {"chosen_on": split name,
    "f1_on_split": ...} from select_threshold on another split); without it the threshold is a fixed value.
    """
    baselines = {name: process_metrics(constant_predictor(solutions, name), threshold, prmscore_threshold)
                 for name in BASELINES}
    if orm is not None:
        baselines["orm"] = process_metrics(orm, threshold, prmscore_threshold)
    categories = category_results(solutions, threshold, prmscore_threshold)
    f1s = [c["f1"] for c in categories.values() if not math.isnan(c["f1"])]
    return {"solutions": len(solutions), "steps": sum(len(s["steps"]) for s in solutions),
            "unscored_steps": sum(1 for s in solutions for x in s["step_scores"] if x is None),
            "threshold": {"value": threshold, **(chosen or {"chosen_on": None})},
            "model": process_metrics(solutions, threshold, prmscore_threshold), "baselines": baselines,
            "categories": categories, "category_average_f1": float(np.mean(f1s)) if len(f1s) > 1 else None}
