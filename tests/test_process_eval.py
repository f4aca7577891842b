"""Process evaluation (rewardkit.eval.process) on hand-made scored solutions with hand-computed answers: first-error
prediction, ProcessBench accuracy and F1, threshold selection on one split applied to another, PRMScore, step
AUROC, best-of-K per aggregate with ties, the constant baselines, and the wiring into evaluate and the report."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from rewardkit.errors import ConfigError
from rewardkit.eval import process
from rewardkit.eval.evaluate import ThresholdSplit, evaluate_records, headline
from rewardkit.eval.report import render_html
from rewardkit.eval.scorers import Scorer
from rewardkit.scores import Scores


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def solution(prompt: str, scores: list, labels: list, first_error: int | None = None, **extra) -> dict:
    record = {"kind": "stepwise", "prompt": prompt, "steps": [f"{prompt} step {i}" for i in range(len(scores))],
              "labels": labels, "step_scores": scores, **extra}
    if first_error is not None:
        record["first_error"] = first_error
    return record


# Four solutions, at t = 0.5 (flag a step when its logit < 0):
#   A right,         scores [1, 2, 3]      -> predicted -1: right
#   B right,         scores [1, 0.5, 2]    -> predicted -1: right
#   C first error 1, scores [2, -2, -1]    -> predicted 1:  right
#   D first error 2, scores [-0.5, 1, -1]  -> predicted 0:  wrong (labels only: the first false label is step 2)
FOUR = [solution("A", [1.0, 2.0, 3.0], [True] * 3, -1), solution("B", [1.0, 0.5, 2.0], [True] * 3, -1),
        solution("C", [2.0, -2.0, -1.0], [True, False, False], 1), solution("D", [-0.5, 1.0, -1.0], [True, True, False])]


# ---------------------------------------------------------------- first errors and ProcessBench


def test_first_error_prediction_at_thresholds():
    scores = [2.0, 0.5, -1.0, -3.0]  # P(correct) = 0.881, 0.622, 0.269, 0.047
    assert process.first_error_prediction(scores, 0.5) == 2
    assert process.first_error_prediction(scores, 0.7) == 1
    assert process.first_error_prediction(scores, 0.9) == 0
    assert process.first_error_prediction(scores, 0.01) == -1
    assert process.first_error_prediction(scores, 0.0) == -1  # nothing is below 0
    assert process.first_error_prediction(scores, 1.0) == 0  # everything is below 1
    assert process.first_error_prediction([0.0, -1.0], 0.5) == 1  # P exactly at the threshold is not flagged
    assert process.first_error_prediction([None, -1.0], 0.5) == 1  # an unscored step is never flagged
    assert process.first_error_prediction([None, None], 0.99) == -1


def test_labelled_first_error_from_the_field_or_the_labels():
    assert [process.labelled_first_error(s) for s in FOUR] == [-1, -1, 1, 2]
    assert process.labelled_first_error({"labels": [1.0, 0.7, 0.3, 1.0]}) == 2  # soft labels: correct when >= 0.5
    assert process.labelled_first_error({"labels": [True, True]}) == -1


def test_processbench_accuracy_and_f1_on_four_solutions():
    out = process.processbench_scores(FOUR, 0.5)
    # erroneous: C right, D wrong -> 1/2; correct: A, B right -> 1; F1 = 2 * 0.5 * 1 / 1.5
    assert (out["erroneous"], out["correct"]) == (2, 2)
    assert out["accuracy_erroneous"] == 0.5 and out["accuracy_correct"] == 1.0
    assert out["f1"] == pytest.approx(2 / 3)
    # the metric itself, on index lists: one class empty -> nan; both accuracies 0 -> F1 0
    assert math.isnan(process.processbench_accuracy([0, 1], [0, 2])["f1"])
    assert process.processbench_accuracy([0, 1], [-1, 0])["f1"] == 0.0


def test_threshold_selection_picks_the_f1_best_threshold():
    # running minima: A [1,1,1], B [1,.5,.5], C [2,-2,-2], D [-.5,-.5,-1] -> distinct -2,-1,-.5,.5,1,2;
    # cuts (logits) -1.5, -0.75, 0, 0.75, 1.5. At -0.75: A, B -1; C 1; D 2 (-1 < -0.75) -> all right, F1 1.
    # At 0: D -> 0 (F1 2/3); at -1.5: D -> -1 (F1 2/3).
    chosen = process.select_threshold(FOUR)
    assert chosen["threshold"] == pytest.approx(sigmoid(-0.75))
    assert chosen["f1"] == 1.0 and chosen["candidates"] == 5
    assert process.processbench_scores(FOUR, chosen["threshold"])["f1"] == 1.0
    with pytest.raises(ValueError, match="both correct and erroneous"):
        process.select_threshold(FOUR[:2])


def test_the_chosen_threshold_is_applied_to_another_split():
    other = [solution("E", [-0.6, 3.0], [True, True], -1), solution("F", [1.0, -0.9], [True, False], 1)]
    at_half = process.processbench_scores(other, 0.5)  # E: -0.6 < 0 -> 0, wrong; F: -0.9 < 0 -> 1, right
    assert (at_half["accuracy_correct"], at_half["accuracy_erroneous"]) == (0.0, 1.0)
    chosen = process.select_threshold(FOUR)["threshold"]  # logit -0.75: E -1 (right), F 1 (right)
    out = process.process_results(other, chosen, {"chosen_on": "four"})
    assert out["threshold"] == {"value": chosen, "chosen_on": "four"}
    assert out["model"]["processbench"]["f1"] == 1.0


# ---------------------------------------------------------------- step-level metrics


# Steps pooled, at t = 0.5: [2, -1] [T, F]; [1, 1, -2] [T, 0.3, F]; [-1] [0.8]; [-3, None] [F, T]
#   called correct: 2 T(TP), -1 F(TN), 1 T(TP), 1 F(FP), -2 F(TN), -1 T(FN), -3 F(TN), None skipped
STEPS = [solution("s1", [2.0, -1.0], [True, False]), solution("s2", [1.0, 1.0, -2.0], [True, 0.3, False]),
         solution("s3", [-1.0], [0.8]), solution("s4", [-3.0, None], [False, True])]


def test_prmscore_by_hand():
    out = process.prm_score(STEPS, 0.5)
    # TP 2, FP 1, FN 1, TN 3: F1(correct) = 4 / 6, F1(erroneous) = 6 / 8
    assert out["steps"] == 7
    assert out["f1_correct"] == pytest.approx(2 / 3) and out["f1_erroneous"] == pytest.approx(3 / 4)
    assert out["prmscore"] == pytest.approx(17 / 24)
    assert math.isnan(process.f1_score(0, 0, 0)) and process.f1_score(0, 2, 1) == 0.0


def test_step_auroc_by_hand():
    # correct steps 2, 1, -1; erroneous -1, 1, -2, -3. Pairs won: 2 -> 4; 1 -> 3 + tie 0.5; -1 -> 2 + tie 0.5
    assert process.step_auroc(STEPS) == pytest.approx(10 / 12)
    assert math.isnan(process.step_auroc([solution("x", [1.0, 2.0], [True, True])]))


# ---------------------------------------------------------------- best-of-K


# Prompt p: X right [3, -2, 3]; Y wrong [1, 1, 1]; Z right [0, 0.5].
#   min: X -2, Y 1, Z 0 -> Y (0). last: X 3 -> 1. mean: X 4/3, Y 1, Z 0.25 -> X (1).
#   product (sum of log-sigmoids): X -2.224, Y -0.940, Z -1.167 -> Y (0).
# Prompt q: two identical score lists, one right -> every aggregate ties -> 1/2. Prompt r: one candidate, not counted.
BOK = [solution("p", [3.0, -2.0, 3.0], [True] * 3, response_score=0.1),
       solution("p", [1.0, 1.0, 1.0], [True, True, False], response_score=0.2),
       solution("p", [0.0, 0.5], [True, True], response_score=0.2),
       solution("q", [1.0, 2.0], [True, True], response_score=0.0),
       solution("q", [1.0, 2.0], [True, False], response_score=0.0),
       solution("r", [5.0], [True], response_score=0.0)]


def test_aggregates_by_hand():
    log_sigmoid = lambda x: -math.log1p(math.exp(-x))  # noqa: E731
    assert process.aggregate([3.0, -2.0, 3.0], "min") == -2.0
    assert process.aggregate([3.0, -2.0, 3.0], "last") == 3.0
    assert process.aggregate([3.0, -2.0, 3.0], "mean") == pytest.approx(4 / 3)
    assert process.aggregate([3.0, -2.0, 3.0], "product") == pytest.approx(2 * log_sigmoid(3) + log_sigmoid(-2))
    assert process.aggregate([None, 2.0, None], "last") == 2.0  # over the scored steps
    assert process.aggregate([None], "min") == -math.inf


def test_best_of_k_per_aggregate_with_ties():
    out = process.best_of_k(BOK)
    assert (out["groups"], out["candidates"]) == (2, 5)
    assert out["min"] == 0.25 and out["last"] == 0.75 and out["mean"] == 0.75 and out["product"] == 0.25
    assert out["random"] == pytest.approx((2 / 3 + 1 / 2) / 2) and out["oracle"] == 1.0
    assert out["response_score"] == 0.5  # p: Y and Z tie at 0.2, one right -> 1/2; q: tie -> 1/2
    assert process.top_credit([1, 3, 3, 3], [True, True, False, True]) == pytest.approx(2 / 3)
    assert process.best_of_k(FOUR) == {"groups": 0}


# ---------------------------------------------------------------- baselines


def test_constant_baselines():
    out = process.process_results(FOUR)
    always_right, step_0 = out["baselines"]["all_correct"], out["baselines"]["error_at_step_0"]
    assert (always_right["processbench"]["accuracy_erroneous"], always_right["processbench"]["accuracy_correct"]) == (0.0, 1.0)
    assert (step_0["processbench"]["accuracy_erroneous"], step_0["processbench"]["accuracy_correct"]) == (0.0, 0.0)
    assert always_right["processbench"]["f1"] == 0.0 and step_0["processbench"]["f1"] == 0.0
    # all called correct: 9 correct steps (TP), 3 erroneous (FP): F1(correct) = 18 / 21, F1(erroneous) = 0
    assert always_right["prmscore"]["prmscore"] == pytest.approx(0.5 * 18 / 21)
    assert always_right["step_auroc"] == 0.5
    best = process.process_results(BOK)["baselines"]["all_correct"]["best_of_k"]
    assert best["min"] == best["product"] == pytest.approx(best["random"])  # all tied: a random pick
    # an outcome model's score of the whole solution at every step: A, B (last 3, 2) -1; C, D (last -1) flag step 0
    orm = [dict(s, step_scores=[s["step_scores"][-1]] * 3) for s in FOUR]
    orm_pb = process.process_results(FOUR, orm=orm)["baselines"]["orm"]["processbench"]
    assert (orm_pb["accuracy_correct"], orm_pb["accuracy_erroneous"]) == (1.0, 0.0)
    with pytest.raises(ValueError, match="baseline"):
        process.constant_predictor(FOUR, "always-wrong")


# ---------------------------------------------------------------- wiring: results, headline, report, evaluate


def test_results_headline_and_report_section():
    solutions = [dict(s, category="<b>gsm8k</b>") for s in FOUR[:2]] + [dict(s, category="math") for s in FOUR[2:]]
    sw = process.process_results(solutions, 0.5)
    assert set(sw["categories"]) == {"<b>gsm8k</b>", "math"}
    assert sw["categories"]["math"]["erroneous"] == 2 and sw["categories"]["<b>gsm8k</b>"]["correct"] == 2
    assert (sw["solutions"], sw["steps"], sw["unscored_steps"]) == (4, 12, 0)
    result = {"records": 4, "kinds": {"stepwise": 4}, "stepwise": sw}
    row = headline(result)
    assert row["processbench_f1"] == pytest.approx(2 / 3) and row["processbench_threshold"] == 0.5
    assert row["step_auroc"] == sw["model"]["step_auroc"] and row["prmscore"] == sw["model"]["prmscore"]["prmscore"]
    page = render_html({"model": {"name": "prm"}, "summary": {"pb": row}, "suites": {"pb": result}}, {})
    assert "Process (step) scores" in page and "ProcessBench F1" in page and "error at step 0" in page
    assert "&lt;b&gt;gsm8k&lt;/b&gt;" in page and "<b>gsm8k</b>" not in page  # autoescaped
    assert "fixed, no threshold split given" in page


def table_scorer(table: dict[tuple, list[float]], steps: bool = True) -> Scorer:
    """A scorer that looks each solution's step scores up by its steps (the aggregate: their min)."""
    def score(items):
        if not steps:
            return Scores([0.0] * len(items))
        found = [table[tuple(r)] for _, r in items]
        return Scores([min(s) for s in found], steps=found)
    return Scorer(name="table", score=score, steps=steps)


def bare(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in ("kind", "step_scores", "response_score")}


def test_evaluate_records_adds_stepwise_results_at_the_split_threshold():
    reported = [solution("E", [-0.6, 3.0], [True, True], -1), solution("F", [1.0, -0.9], [True, False], 1)]
    scorer = table_scorer({tuple(s["steps"]): s["step_scores"] for s in FOUR + reported})
    split = ThresholdSplit("four", lambda: [bare(s) for s in FOUR])
    result, scored = evaluate_records(scorer, [bare(s) for s in reported], probes=0, threshold_split=split)
    assert [s["step_scores"] for s in scored] == [[-0.6, 3.0], [1.0, -0.9]]
    sw = result["stepwise"]
    assert sw["threshold"]["chosen_on"] == "four" and sw["threshold"]["split_solutions"] == 4
    assert sw["threshold"]["value"] == pytest.approx(sigmoid(-0.75)) and sw["threshold"]["f1_on_split"] == 1.0
    assert sw["model"]["processbench"]["f1"] == 1.0 and "not_evaluated" not in result
    plain, _ = evaluate_records(scorer, [bare(s) for s in reported], probes=0)
    assert plain["stepwise"]["threshold"] == {"value": 0.5, "chosen_on": None}
    assert plain["stepwise"]["model"]["processbench"]["f1"] == 0.0


def test_evaluate_records_without_step_scores_or_with_an_overlapping_split():
    records = [bare(s) for s in FOUR]
    result, _ = evaluate_records(table_scorer({}, steps=False), records, probes=0)
    assert "stepwise" not in result and result["not_evaluated"]["stepwise"] == 4
    scorer = table_scorer({tuple(s["steps"]): s["step_scores"] for s in FOUR})
    with pytest.raises(ConfigError, match="shares 4 prompts"):
        evaluate_records(scorer, records, probes=0, threshold_split=ThresholdSplit("same", lambda: records))
    only_right = ThresholdSplit("only right", lambda: [bare(s) for s in FOUR[:2]])
    with pytest.raises(ConfigError, match="'only right': choosing a threshold needs both"):
        evaluate_records(scorer, records[2:], probes=0, threshold_split=only_right)


def test_process_suites_and_the_default_threshold_split():
    from rewardkit.eval.suites import ARITHMETIC_THRESHOLD_SPLIT, SUITES

    for name in ("processbench-gsm8k", "processbench-math"):
        assert SUITES[name].threshold_split is ARITHMETIC_THRESHOLD_SPLIT
    assert SUITES["prmbench"].threshold_split is None
    split = ARITHMETIC_THRESHOLD_SPLIT.load()
    first = [process.labelled_first_error(r) for r in split]
    assert -1 in first and any(f >= 0 for f in first)  # both kinds, so a threshold can be chosen on it
    data = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not (data / "processbench" / "gsm8k.json.gz").exists():
        pytest.skip("ProcessBench data not present")
    gsm8k = SUITES["processbench-gsm8k"].load(data)
    assert len(gsm8k) == 400 and {r["category"] for r in gsm8k} == {"gsm8k"}
    assert not {r["prompt"] for r in split} & {r["prompt"] for r in gsm8k}
