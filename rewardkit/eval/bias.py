"""Biases a reward model can carry: response length, style (RM-Bench), position (pairwise judges), and
drift of the score distribution between two sets of responses (the monitor to run during RL)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rewardkit.data.texts import text_of
from rewardkit.errors import DataError
from rewardkit.eval.metrics import bootstrap_ci, ks_statistic, pair_credit, spearman

RM_BENCH_STYLES = ("concise", "detailed_plain", "detailed_markdown")


def length_bias(scored_pairs: list[dict]) -> dict:
    """How much length explains the scores, on pairwise records with chosen_score/rejected_score.

    - score_length_spearman: rank correlation of score with response length (characters) over all responses;
    - accuracy when the chosen response is the longer / the shorter one (equal lengths left out);
    - length_only_accuracy: the rule "the longer response wins" (ties half), the baseline to beat.
    """
    pairs = [r for r in scored_pairs if not r.get("tie")]
    if not pairs:
        return {"pairs": 0}
    lengths = [(len(text_of(r["chosen"])), len(text_of(r["rejected"]))) for r in pairs]
    scores = [s for r in pairs for s in (r["chosen_score"], r["rejected_score"])]
    flat_lengths = [n for pair in lengths for n in pair]
    correct = [pair_credit(r["chosen_score"] - r["rejected_score"]) for r in pairs]
    longer = [c for c, (a, b) in zip(correct, lengths, strict=True) if a > b]
    shorter = [c for c, (a, b) in zip(correct, lengths, strict=True) if a < b]
    length_only = [pair_credit(a - b) for a, b in lengths]
    return {"pairs": len(pairs), "score_length_spearman": spearman(scores, flat_lengths),
            "chosen_longer_share": len(longer) / len(pairs),
            "accuracy_when_chosen_longer": float(np.mean(longer)) if longer else float("nan"),
            "accuracy_when_chosen_shorter": float(np.mean(shorter)) if shorter else float("nan"),
            "length_only_accuracy": float(np.mean(length_only)), "length_only_ci95": bootstrap_ci(length_only)}


def style_matrix(scored_pairs: list[dict]) -> dict:
    """RM-Bench's 3x3 accuracy matrix (chosen style x rejected style) and its easy / normal / hard scores.

    Styles go from concise to detailed markdown. Hard = the chosen response is in a plainer style than the
    rejected one (upper triangle: a style-biased model picks the rejected), normal = same style (diagonal),
    easy = the chosen one is the more detailed (lower triangle). Per domain and over all pairs.
    """
    def matrix_of(pairs: list[dict]) -> dict:
        m = np.full((3, 3), np.nan)
        for i, cs in enumerate(RM_BENCH_STYLES):
            for j, rs in enumerate(RM_BENCH_STYLES):
                cell = [pair_credit(r["chosen_score"] - r["rejected_score"]) for r in pairs
                        if r.get("chosen_style") == cs and r.get("rejected_style") == rs]
                if cell:
                    m[i, j] = np.mean(cell)
        upper, lower = m[np.triu_indices(3, 1)], m[np.tril_indices(3, -1)]
        return {"matrix": m.tolist(), "hard": float(np.nanmean(upper)), "normal": float(np.nanmean(np.diag(m))),
                "easy": float(np.nanmean(lower)), "average": float(np.nanmean(m)), "pairs": len(pairs)}

    styled = [r for r in scored_pairs if r.get("chosen_style") in RM_BENCH_STYLES]
    if not styled:
        return {}
    out = {"all": matrix_of(styled)}
    for domain in sorted({str(r.get("category")) for r in styled}):
        out[domain] = matrix_of([r for r in styled if str(r.get("category")) == domain])
    return out


def position_bias(compare: Callable[[list[tuple]], list[float | None]], records: list[dict]) -> dict:
    """How a scorer that sees both responses (a pairwise judge) depends on their order. compare(triples) gives
    P(first is better) for each (prompt, first, second), None where it could not decide (a judge with no parsed vote:
    counted as undecided, credited one half).

    Every pair is judged in both orders, in one call. A flip is a pair whose preferred response changes with the
    order; first_position_preference is how often the response shown first is preferred (0.5 = no position bias).
    """
    pairs = [r for r in records if r["kind"] == "pairwise" and not r.get("tie")]
    forward = [(r.get("prompt", ""), r["chosen"], r["rejected"]) for r in pairs]
    answers = compare(forward + [(p, b, a) for p, a, b in forward]) if pairs else []
    undecided = sum(p is None for p in answers)
    answers = [0.5 if p is None else p for p in answers]
    flips, first_wins, correct = 0, [], []
    for p_forward, p_swapped in zip(answers[:len(pairs)], answers[len(pairs):], strict=True):
        flips += (p_forward > 0.5) != (p_swapped < 0.5)
        first_wins += [pair_credit(p_forward - 0.5), pair_credit(p_swapped - 0.5)]
        correct += [pair_credit(p_forward - 0.5), pair_credit(0.5 - p_swapped)]
    n = len(pairs)
    return {"pairs": n, "undecided_judgements": undecided, "flip_rate": flips / n if n else float("nan"),
            "first_position_preference": float(np.mean(first_wins)) if n else float("nan"),
            "accuracy_both_orders": float(np.mean(correct)) if n else float("nan")}


def score_shift(reference: list[float], current: list[float]) -> dict:
    """Compare the score distribution of new responses (e.g. policy samples) with a reference (e.g. the
    training data): moments, the two-sample KS statistic, and the share of new scores outside the
    reference's range and outside its 1st-99th percentile band. A policy that hacks the reward shows up as
    a growing KS statistic and a growing share above the reference range."""
    ref, cur = np.asarray(reference, dtype=float), np.asarray(current, dtype=float)
    if len(ref) < 2 or len(cur) < 1:
        raise ValueError("need at least 2 reference scores and 1 current score")
    d, p = ks_statistic(ref, cur)
    low, high = np.percentile(ref, [1, 99])
    return {"reference": _moments(ref), "current": _moments(cur), "mean_shift_in_reference_std": float((cur.mean() - ref.mean()) / (ref.std() or 1.0)),
            "ks_statistic": d, "ks_p_value": p,
            "share_above_reference_max": float((cur > ref.max()).mean()), "share_below_reference_min": float((cur < ref.min()).mean()),
            "share_outside_reference_p1_p99": float(((cur < low) | (cur > high)).mean())}


SCORE_FIELDS = ("response_score", "reward", "score")


def scores_in(path: str, scorer=None) -> list[float]:
    """Scores from a JSONL file for score_shift: computed with `scorer` from the responses (response, chosen and
    rejected, or responses), or read from the rows (a bare number, chosen_score and rejected_score, response_scores,
    or one of SCORE_FIELDS); a row with neither is an error naming the file and line."""
    from rewardkit.data.io import iter_raw
    from rewardkit.eval.scorers import score_items

    items, values = [], []
    for line, row in iter_raw(path):
        if scorer is not None:
            if not isinstance(row, dict):
                raise DataError("expected a JSON object", source=path, line=line)
            prompt = row.get("prompt", "")
            responses = ([row["chosen"], row["rejected"]] if "chosen" in row and "rejected" in row
                         else row.get("responses") or ([row["response"]] if "response" in row else None))
            if responses is None:
                raise DataError("no response to score (expected response, chosen/rejected or responses)", source=path, line=line)
            items += [(prompt, r) for r in responses]
            continue
        if isinstance(row, int | float) and not isinstance(row, bool):
            values.append(float(row))
        elif isinstance(row, dict) and "chosen_score" in row and "rejected_score" in row:
            values += [float(row["chosen_score"]), float(row["rejected_score"])]
        elif isinstance(row, dict) and isinstance(row.get("response_scores"), list):
            values += [float(s) for s in row["response_scores"]]
        else:
            field = next((f for f in SCORE_FIELDS if isinstance(row, dict) and isinstance(row.get(f), int | float)), None)
            if field is None:
                raise DataError(f"no score found (expected one of {', '.join(SCORE_FIELDS)}, chosen_score/rejected_score, "
                                "or pass --model to score the responses)", source=path, line=line)
            values.append(float(row[field]))
    return score_items(scorer, items).values if scorer is not None else values


def _moments(x: np.ndarray) -> dict:
    return {"count": len(x), "mean": float(x.mean()), "std": float(x.std()), "min": float(x.min()),
            "p50": float(np.median(x)), "max": float(x.max())}
