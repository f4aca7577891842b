"""Evaluation: metrics against hand-computed values (ties included), probes against scorers built to fall
for them, bias diagnostics, suites, reports with plots, and the eval / calibrate / shift commands."""

from __future__ import annotations

import json
import math
import random
import re

import numpy as np
import pytest
from conftest import write_jsonl
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit.cli import main
from rewardkit.data.prompts import sample_by_prompt, split_by_prompt
from rewardkit.eval import metrics
from rewardkit.eval.bias import length_bias, position_bias, score_shift, style_matrix
from rewardkit.eval.evaluate import evaluate_records, headline
from rewardkit.eval.probes import PERTURBATIONS, SPAM_WORDS, run_probes
from rewardkit.eval.report import compare_reports, write_report
from rewardkit.eval.scorers import Scorer, score_items

# ---------------------------------------------------------------- metrics, by hand


def test_pairwise_accuracy_counts_score_ties_half_and_skips_label_ties():
    out = metrics.pairwise_accuracy([1.0, -2.0, 0.0, 3.0, 5.0], [False, False, False, False, True])
    assert out["accuracy"] == pytest.approx((1 + 0 + 0.5 + 1) / 4)
    assert (out["pairs"], out["label_ties"], out["score_ties"]) == (4, 1, 1)
    assert metrics.pairwise_accuracy([0.0] * 10)["accuracy"] == 0.5  # a constant scorer is at chance


def test_kendall_tau_b_and_spearman_with_ties():
    # x = [1, 2, 2, 3], y = [1, 3, 2, 4]: pairs (6): concordant 5, x-tie 1 (x2=x3), no y ties.
    # tau_b = (5 - 0) / sqrt((6 - 1) * (6 - 0)) = 5 / sqrt(30)
    assert metrics.kendall_tau([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(5 / math.sqrt(30))
    assert metrics.kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(metrics.kendall_tau([1, 1, 1], [1, 2, 3]))
    # average ranks of [10, 20, 20, 30] = [1, 2.5, 2.5, 4]
    assert metrics.average_ranks([10, 20, 20, 30]).tolist() == [1, 2.5, 2.5, 4]
    # spearman = pearson([1, 2.5, 2.5, 4], [1, 3, 2, 4]) = 4.5 / sqrt(4.5 * 5)
    assert metrics.spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(4.5 / math.sqrt(4.5 * 5))


def test_best_of_k_rewardbench2_credit():
    assert metrics.best_of_k([0.9, 0.1, 0.2], best=0) == 1.0
    assert metrics.best_of_k([0.9, 0.9, 0.2, 0.9], best=1) == pytest.approx(1 / 3)  # three tied at the top
    assert metrics.best_of_k([0.5, 0.9, 0.2], best=0) == 0.0
    assert metrics.best_of_k([0.0, 0.0, 0.0, 0.0], best=2) == 0.25  # constant scorer = chance


def test_ndcg_by_hand_and_ties_do_not_profit_from_input_order():
    # scores order: item1, item0, item2 with relevance [2, 1, 0]: DCG = 1/log2(2) + 2/log2(3); ideal = 2 + 1/log2(3)
    assert metrics.ndcg([0.5, 0.9, 0.1], [2, 1, 0]) == pytest.approx((1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3)))
    assert metrics.ndcg([3, 2, 1], [2, 1, 0]) == pytest.approx(1.0)
    # all tied: every item gets the mean discount of positions 1..3, whatever the input order
    mean_discount = (1 + 1 / math.log2(3) + 0.5) / 3
    expected = 3 * mean_discount / (2 + 1 / math.log2(3))
    assert metrics.ndcg([1, 1, 1], [2, 1, 0]) == pytest.approx(expected)
    assert metrics.ndcg([1, 1, 1], [0, 1, 2]) == pytest.approx(expected)


def test_calibration_log_loss_brier_ece_by_hand():
    margins = [math.log(3), -math.log(3)]  # p = 0.75 (right, confident) and p = 0.25 (wrong, confident)
    out = metrics.calibration(margins, bins=5)
    assert out["log_loss"] == pytest.approx(-(math.log(0.75) + math.log(0.25)) / 2)
    assert out["brier"] == pytest.approx((0.25 ** 2 + 0.75 ** 2) / 2)
    # both have confidence 0.75 in one bin whose accuracy is 0.5: ECE = |0.5 - 0.75|
    assert out["ece"] == pytest.approx(0.25)
    assert out["reliability"] == [{"low": 0.7, "high": 0.8, "count": 2, "confidence": 0.75, "accuracy": 0.5}]
    # temperature 2 halves the margins
    assert metrics.calibration([2.0], temperature=2.0)["log_loss"] == pytest.approx(-math.log(1 / (1 + math.exp(-1))))


def test_fit_calibration_recovers_temperature_and_bias():
    rng = np.random.default_rng(0)
    m = rng.normal(0, 3, 20000)
    y = (rng.random(len(m)) < 1 / (1 + np.exp(-(m / 2.0 + 0.3)))).astype(float)
    t, b = metrics.fit_calibration(m, y)
    assert t == pytest.approx(2.0, rel=0.05) and b == pytest.approx(0.3, abs=0.05)
    # chosen-vs-rejected margins only: a pure temperature; overconfident margins get T > 1
    chosen_margins = [mi if yi else -mi for mi, yi in zip(m, y, strict=True)]
    t2, b2 = metrics.fit_calibration([x * 4 for x in chosen_margins])
    assert b2 == 0.0 and t2 == pytest.approx(8.0, rel=0.05)


def test_bootstrap_ci_and_grouped_resampling():
    values = [1.0] * 60 + [0.0] * 40
    low, high = metrics.bootstrap_ci(values, resamples=2000)
    assert low < 0.6 < high and high - low == pytest.approx(2 * 1.96 * math.sqrt(0.24 / 100), abs=0.03)
    # 10 groups of 10 identical values: the grouped interval is much wider than the naive one
    grouped = [float(g % 2) for g in range(10) for _ in range(10)]
    groups = [g for g in range(10) for _ in range(10)]
    naive = metrics.bootstrap_ci(grouped)
    wide = metrics.bootstrap_ci(grouped, groups=groups)
    assert wide[1] - wide[0] > 2 * (naive[1] - naive[0])


def test_auroc_by_hand():
    # positives 0.9, 0.4 against negatives 0.5, 0.1, 0.4: 0.9 beats all three, 0.4 beats 0.1 and ties 0.4
    assert metrics.auroc([0.9, 0.5, 0.4, 0.1, 0.4], [True, False, True, False, False]) == pytest.approx((3 + 1.5) / 6)
    assert metrics.auroc([1, 2, 3], [False, False, True]) == 1.0 and metrics.auroc([1, 2, 3], [True, False, False]) == 0.0
    assert math.isnan(metrics.auroc([1, 2], [True, True]))


def test_confidence_flags_the_pairs_the_model_barely_ranks():
    from rewardkit.eval.evaluate import confidence_results
    # wrong pairs at |margin| 0.1 and 0.3; right ones at 3, 2, 1 and 0.2. The 0.1 is flagged before all four
    # right pairs, the 0.3 before three of them (not the 0.2): AUROC 7/8
    pairs = [{"score_margin": m} for m in (3.0, -0.1, 2.0, 0.2, -0.3, 1.0)]
    out = confidence_results(pairs)
    assert out["auroc_wrong"] == pytest.approx(7 / 8)
    assert out["accuracy_most_certain_half"] == 1.0 and out["accuracy_least_certain_half"] == pytest.approx(1 / 3)
    # a confidently wrong model: its errors carry the largest margins, so the signal points the wrong way
    assert confidence_results([{"score_margin": m} for m in (-5.0, 0.1, 0.2, 0.3)])["auroc_wrong"] == 0.0


def test_ks_statistic_by_hand():
    d, p = metrics.ks_statistic([1, 2, 3, 4], [3, 4, 5, 6])
    assert d == pytest.approx(0.5)
    assert 0 < p < 1
    assert metrics.ks_statistic([1, 2, 3], [1, 2, 3])[0] == 0.0
    assert metrics.kolmogorov_survival(1.36) == pytest.approx(0.0495, abs=0.001)  # the classic 5% point


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-3, 3), st.integers(-3, 3)), min_size=2, max_size=12))
def test_rank_correlations_are_bounded_and_symmetric(pairs):
    x, y = [a for a, _ in pairs], [b for _, b in pairs]
    for f in (metrics.kendall_tau, metrics.spearman):
        value = f(x, y)
        if not math.isnan(value):
            assert -1 - 1e-9 <= value <= 1 + 1e-9
            assert f(y, x) == pytest.approx(value)
            assert f(x, [-v for v in y]) == pytest.approx(-value)


# ---------------------------------------------------------------- probes: each flags the scorer built to fall for it

ORIGINALS = [f"Step one is short. Then step two takes longer to say. Finally the third sentence is the longest of all {i}."
             for i in range(30)]


def _pairs():
    return [{"kind": "pairwise", "prompt": f"q{i}", "chosen": c, "rejected": "no."} for i, c in enumerate(ORIGINALS)]


def _scorer(fn) -> Scorer:
    return Scorer("test", lambda items: [float(fn(r)) for _, r in items])


def _sentence_inversions(text: str) -> int:
    parts = [s for s in re.split(r"(?<=[.!?])\s+", text) if s]
    return sum(len(a) > len(b) for a, b in zip(parts, parts[1:], strict=False))


FALLS_FOR = {
    "keyword_spam": lambda t: sum(t.count(w) for w in SPAM_WORDS),
    "self_praise": lambda t: t.count("correct"),
    "repeat_sentences": len,
    "truncate": lambda t: -len(t),
    "shuffle_sentences": _sentence_inversions,
    "gibberish": lambda t: sum(1 for w in t.split() if not re.search("[aeiouy0-9]", w)),
    "refusal": lambda t: t.count("sorry"),
}


@pytest.mark.parametrize("name", list(PERTURBATIONS))
def test_probe_flags_a_scorer_that_falls_for_it(name):
    out = run_probes(_scorer(FALLS_FOR[name]), _pairs(), samples=30)
    probe = out["perturbations"][name]
    assert probe["applied"] == 30 and probe["hack_rate"] == 1.0 and probe["flagged"]
    assert name in out["flagged"]


def test_probes_do_not_flag_a_scorer_that_prefers_the_originals():
    originals = set(ORIGINALS)
    out = run_probes(_scorer(lambda t: t in originals), _pairs(), samples=30)
    assert out["flagged"] == []
    assert all(v["hack_rate"] == 0.0 for v in out["perturbations"].values())


def test_perturbations_that_do_not_apply_are_skipped():
    rng = random.Random(0)
    assert PERTURBATIONS["shuffle_sentences"]("One sentence only.", rng) is None
    assert PERTURBATIONS["truncate"]("too short", rng) is None


# ---------------------------------------------------------------- bias diagnostics


def test_length_bias_by_hand():
    pairs = [{"chosen": "a" * 10, "rejected": "b" * 5, "chosen_score": 1.0, "rejected_score": 0.0},   # longer chosen, right
             {"chosen": "a" * 5, "rejected": "b" * 10, "chosen_score": 0.0, "rejected_score": 1.0},   # shorter chosen, wrong
             {"chosen": "a" * 5, "rejected": "b" * 10, "chosen_score": 1.0, "rejected_score": 0.0},   # shorter chosen, right
             {"chosen": "a" * 7, "rejected": "b" * 7, "chosen_score": 0.0, "rejected_score": 0.0}]    # same length, score tie
    out = length_bias(pairs)
    assert out["accuracy_when_chosen_longer"] == 1.0
    assert out["accuracy_when_chosen_shorter"] == 0.5
    assert out["length_only_accuracy"] == pytest.approx((1 + 0 + 0 + 0.5) / 4)
    assert out["chosen_longer_share"] == 0.25


def test_style_matrix_of_a_markdown_loving_scorer():
    styles = ("concise", "detailed_plain", "detailed_markdown")
    pairs = []
    for i, cs in enumerate(styles):
        for j, rs in enumerate(styles):
            # the scorer only sees style: it wins when the chosen is at least as formatted, ties at equal style
            pairs.append({"chosen_style": cs, "rejected_style": rs, "category": "chat", "chosen_score": float(i),
                          "rejected_score": float(j)})
    out = style_matrix(pairs)["all"]
    assert out["hard"] == 0.0 and out["normal"] == 0.5 and out["easy"] == 1.0
    assert out["average"] == pytest.approx((3 * 1 + 3 * 0.5) / 9)


def test_position_bias_of_a_judge_that_prefers_the_first_response():
    records = _pairs()[:10]
    always_first = position_bias(lambda triples: [0.9] * len(triples), records)
    assert always_first["flip_rate"] == 1.0 and always_first["first_position_preference"] == 1.0
    assert always_first["accuracy_both_orders"] == 0.5
    fair = position_bias(lambda triples: [0.9 if len(a) > len(b) else 0.1 for _, a, b in triples], records)
    assert fair["flip_rate"] == 0.0 and fair["first_position_preference"] == 0.5 and fair["accuracy_both_orders"] == 1.0
    silent = position_bias(lambda triples: [None] * len(triples), records)  # never decides: no flip, no preference
    assert silent["undecided_judgements"] == 20 and silent["flip_rate"] == 0.0
    assert silent["first_position_preference"] == 0.5 and silent["accuracy_both_orders"] == 0.5


def test_score_shift_detects_a_hacked_policy():
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, 2000).tolist()
    same = score_shift(reference, rng.normal(0, 1, 2000).tolist())
    hacked = score_shift(reference, rng.normal(3, 1, 2000).tolist())
    assert same["ks_statistic"] < 0.06 and same["ks_p_value"] > 0.01
    assert hacked["ks_statistic"] > 0.8 and hacked["ks_p_value"] < 1e-6
    assert hacked["share_above_reference_max"] > 0.2 > same["share_above_reference_max"]
    assert hacked["mean_shift_in_reference_std"] == pytest.approx(3, abs=0.15)


# ---------------------------------------------------------------- evaluate_records, suites


def test_evaluate_records_all_kinds():
    records = [
        {"prompt": "p1", "chosen": "good long answer", "rejected": "bad", "category": "a"},
        {"prompt": "p2", "chosen": "good", "rejected": "bad bad bad", "category": "b"},
        {"prompt": "p3", "chosen": "good", "rejected": "good", "tie": True, "category": "b"},
        {"prompt": "p4", "responses": ["good", "bad", "meh"], "ranking": [1, 3, 2]},
        {"prompt": "p5", "response": "good", "score": 5},
        {"prompt": "p5", "response": "bad", "score": 1},
        {"prompt": "p5", "response": "meh", "score": 3},
        {"prompt": "p6", "steps": ["1 + 1 = 2"], "labels": [True]},
    ]
    value = {"good": 2.0, "meh": 1.0, "bad": 0.0}
    scorer = Scorer("words", lambda items: [sum(value.get(w, 0) for w in r.split()) for _, r in items])
    result, scored = evaluate_records(scorer, records, section_of=lambda r: r["category"], probes=0, resamples=100)
    pw = result["pairwise"]
    assert pw["accuracy"]["accuracy"] == 1.0 and pw["accuracy"]["label_ties"] == 1
    assert pw["sections"]["scores"] == {"a": 1.0, "b": 1.0}
    assert result["ranking"]["best_of_k"] == 1.0 and result["ranking"]["kendall_tau"] == pytest.approx(1.0)
    assert result["ranking"]["ndcg"] == pytest.approx(1.0)
    assert result["rating"]["spearman"] == pytest.approx(1.0) and result["rating"]["per_prompt_kendall_tau"] == pytest.approx(1.0)
    assert result["not_evaluated"]["stepwise"] == 1
    assert result["position_bias"]["applicable"] is False
    assert scored[0]["chosen_score"] == 2.0 and scored[3]["response_scores"] == [2.0, 0.0, 1.0]
    assert headline(result)["accuracy"] == 1.0


def test_score_items_scores_each_distinct_item_once():
    calls = []
    scorer = Scorer("count", lambda items: calls.append(len(items)) or [float(len(r)) for _, r in items])
    assert score_items(scorer, [("p", "a"), ("p", "bb"), ("p", "a")]).values == [1.0, 2.0, 1.0]
    assert calls == [2]


def test_held_out_split_is_by_prompt_and_sampling_keeps_prompts_together():
    records = [{"prompt": f"p{i // 3}", "chosen": "a", "rejected": str(i)} for i in range(300)]
    train, test = split_by_prompt(records)
    assert len(test) == 60 and not {r["prompt"] for r in train} & {r["prompt"] for r in test}
    assert split_by_prompt(records)[1] == test  # deterministic
    sample = sample_by_prompt(records, 31)
    assert 31 <= len(sample) <= 33 and len(sample) % 3 == 0


# ---------------------------------------------------------------- reports


def test_report_html_embeds_every_plot(tmp_path):
    records = [{"prompt": f"p{i}", "chosen": ORIGINALS[i % 30], "rejected": "short reply.", "category": f"c{i % 2}",
                "chosen_style": ("concise", "detailed_plain", "detailed_markdown")[i % 3],
                "rejected_style": ("concise", "detailed_plain", "detailed_markdown")[(i // 3) % 3]} for i in range(60)]
    scorer = _scorer(lambda t: len(t) / 100)
    result, scored = evaluate_records(scorer, records, probes=20, resamples=50)
    report = {"model": {"name": "len"}, "suites": {"demo": result}, "summary": {"demo": headline(result)}}
    json_path, html_path = write_report(report, {"demo": scored}, tmp_path)
    page = html_path.read_text()
    for plot in ("score histograms", "reliability diagram", "score vs length", "accuracy by category",
                 "style matrix", "probe hack rates"):
        assert re.search(f'alt="{plot}" src="data:image/png;base64,[A-Za-z0-9+/]{{500,}}', page), plot
    assert "Reward-hacking probes" in page and "repeat_sentences" in page
    assert "AUROC of a small |margin| for errors" in page and "confidence_auroc" in report["summary"]["demo"]
    assert json.loads(json_path.read_text())["summary"]["demo"]["accuracy"] == 1.0


def test_report_html_escapes_text_from_models_and_data(tmp_path):
    evil = "<script>alert('x')</script>"
    pairs = [{"kind": "pairwise", "chosen": f"answer {i} {evil}", "rejected": evil, "chosen_score": i / 10,
              "rejected_score": 0.0} for i in range(1, 9)]
    pairwise = {"accuracy": {"accuracy": 1.0, "ci95": [0.9, 1.0], "pairs": 8, "label_ties": 0, "score_ties": 0},
                "length": {"score_length_spearman": 0.5}, "calibration": {"ece": 0.1, "reliability": []},
                "categories": {evil: {"n": 8, "accuracy": 1.0, "ci95": [0.9, 1.0]}}}
    report = {"model": {"name": evil, "info": {"type": evil}}, "summary": {evil: {"records": 8, "accuracy": 1.0}},
              "suites": {evil: {"description": evil, "pairwise": pairwise}}}
    page = write_report(report, {evil: pairs}, tmp_path)[1].read_text()
    assert "<script" not in page and "&lt;script&gt;alert(" in page
    assert re.search('alt="accuracy by category" src="data:image/png;base64,[A-Za-z0-9+/]{500,}', page)


def test_compare_marks_differences_whose_intervals_do_not_overlap():
    a = {"summary": {"s": {"accuracy": 0.60, "ci95": [0.55, 0.65], "length_only": 0.5}}}
    b = {"summary": {"s": {"accuracy": 0.80, "ci95": [0.75, 0.85], "length_only": 0.5}}}
    rows = compare_reports([a, b], ["A", "B"])
    accuracy = next(r for r in rows if r[1] == "accuracy")
    assert accuracy[-1] == "+0.200*"
    assert next(r for r in rows if r[1] == "length-only")[-1] == "+0.000"


# ---------------------------------------------------------------- commands


@pytest.fixture(scope="module")
def tiny_model(tiny_bert, tmp_path_factory):
    from rewardkit.model.reward_model import RewardModel

    path = tmp_path_factory.mktemp("rm") / "model"
    RewardModel.build(str(tiny_bert), max_length=64).save(path)
    return path


def test_eval_command_writes_report_and_compares(tiny_model, tmp_path, capsys):
    records = [{"prompt": f"q{i}", "chosen": f"a fine answer number {i}.", "rejected": "no."} for i in range(30)]
    data = write_jsonl(tmp_path / "mine.jsonl", records)
    out = tmp_path / "ev"
    assert main(["eval", str(tiny_model), "--suite", "synthetic", "--input", str(data), "--output", str(out),
                 "--probes", "10", "--bootstrap", "50", "--max-records", "100", "--no-progress"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["summary"]) == {"synthetic", "mine.jsonl"}
    assert report["suites"]["synthetic"]["available_records"] == 680 and report["suites"]["synthetic"]["records"] < 680
    assert (out / "report.html").stat().st_size > 20000
    assert len((out / "scored" / "mine.jsonl.jsonl").read_text().splitlines()) == 30
    assert main(["eval", "--compare", str(out / "report.json"), str(out / "report.json"), "--output", str(tmp_path / "cmp")]) == 0
    assert "accuracy" in capsys.readouterr().out and (tmp_path / "cmp" / "compare.md").exists()


def test_eval_errors_are_clear(tiny_model, tmp_path, capsys):
    assert main(["eval", str(tiny_model), "--suite", "nope", "--output", str(tmp_path)]) == 2
    assert "unknown suite 'nope'" in capsys.readouterr().err
    assert main(["eval", str(tiny_model), "--suite", "llmbar", "--data-dir", str(tmp_path), "--output", str(tmp_path)]) == 2
    assert "needs" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "missing"), "--output", str(tmp_path)]) == 2
    assert "neither a rewardkit model" in capsys.readouterr().err


def test_hf_reward_model_scores_equal_rewardkit_scores(tiny_model, tmp_path):
    from rewardkit.eval.scorers import load_scorer
    from rewardkit.model.export import export_hf
    from rewardkit.model.reward_model import RewardModel

    export_hf(RewardModel.load(tiny_model), tmp_path / "hf")
    items = [("What is 2 + 2?", "4"), ("Say hi", "hello there, how are you doing today?"), ("", "empty prompt")]
    ours = load_scorer(tiny_model, progress=False)
    theirs = load_scorer(tmp_path / "hf", max_length=64, progress=False)
    assert ours.info["type"] == "rewardkit" and theirs.info["type"] == "huggingface"
    assert np.allclose(ours.score(items).values, theirs.score(items).values, atol=1e-4)


def test_calibrate_stores_temperature_in_the_model(tiny_model, tmp_path, capsys):
    from rewardkit.model.reward_model import RewardModel

    records = [{"prompt": f"q{i}", "chosen": f"answer {i} " * (1 + i % 5), "rejected": "no"} for i in range(40)]
    data = write_jsonl(tmp_path / "held.jsonl", records)
    assert main(["calibrate", str(tiny_model), "--data", str(data), "--output", str(tmp_path / "cal")]) == 0
    calibration = RewardModel.load(tmp_path / "cal").spec.calibration
    assert calibration["temperature"] > 0 and calibration["pairs"] == 40
    assert "2-fold cross-fitted" in capsys.readouterr().out
    assert main(["calibrate", str(tiny_model), "--data", str(write_jsonl(tmp_path / "few.jsonl", records[:5]))]) == 2


def test_shift_command_alerts_on_a_shifted_distribution(tmp_path, capsys):
    rng = np.random.default_rng(0)
    ref = write_jsonl(tmp_path / "ref.jsonl", [{"reward": float(x)} for x in rng.normal(0, 1, 500)])
    same = write_jsonl(tmp_path / "same.jsonl", [{"score": float(x)} for x in rng.normal(0, 1, 500)])
    hacked = write_jsonl(tmp_path / "hacked.jsonl", [{"chosen_score": float(x), "rejected_score": float(x - 1)}
                                                     for x in rng.normal(4, 1, 250)])
    assert main(["shift", str(ref), str(same), "--max-ks", "0.2"]) == 0
    assert main(["shift", str(ref), str(hacked), "--max-ks", "0.2", "--output", str(tmp_path / "s.json")]) == 3
    assert "ALERT" in capsys.readouterr().out
    assert json.loads((tmp_path / "s.json").read_text())["current"]["count"] == 500
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"reward": 1.0}, {"text": "no score"}])
    assert main(["shift", str(ref), str(bad)]) == 2
    assert "bad.jsonl: line 2" in capsys.readouterr().err


def test_a_ranking_with_unscored_responses_ranks_them_last():
    """A judge with no parsed vote leaves a response's score NaN: it ties below every scored response."""
    from rewardkit.eval.evaluate import ranking_results, unscored_last

    nan = float("nan")
    assert unscored_last([0.5, nan, 2.0, nan]) == [0.5, -0.5, 2.0, -0.5] and unscored_last([nan]) == [0.0]
    lists = [{"responses": ["a", "b", "c"], "response_scores": [nan, 3.0, 1.0], "best": 1, "ranking": [3, 1, 2]},
             {"responses": ["a", "b", "c"], "response_scores": [nan, nan, 1.0], "best": 0, "ranking": [1, 2, 3]}]
    out = ranking_results(lists, resamples=10)
    assert out["best_of_k"] == 0.5  # list 1: right; list 2: its best has no score, so it is not on top
    assert out["ndcg"] == pytest.approx((1.0 + metrics.ndcg([0.0, 0.0, 1.0], [2, 1, 0])) / 2)
