"""Best-of-N selection, rejection sampling and over-optimisation curves: hand values, ties, the conservative
ensemble rule, provenance, bad input, and the `rewardkit bon` / `rejection-sample` commands end to end."""

from __future__ import annotations

import itertools
import json
import math
import random

import numpy as np
import pytest

from rewardkit.bon import (
    Pool,
    best_of_n,
    curve,
    expected_best_of,
    kl_bound,
    pick,
    read_pools,
    rejection_sample,
    score_pools,
    selection_values,
)
from rewardkit.errors import DataError
from rewardkit.eval.scorers import Scorer
from rewardkit.scores import Scores
from tests.conftest import write_jsonl

# ---------------------------------------------------------------- selection rules


def test_selection_values_by_hand():
    values, members = [2.0, 2.0, 1.0], [[1.0, 3.0], [2.0, 2.0], [0.5, 1.5]]
    assert selection_values(values, members, "mean") == values
    assert selection_values(values, members, "min") == [1.0, 2.0, 0.5]
    lcb = selection_values(values, members, "lcb", k=1.0)  # std with ddof 1: sqrt(2), 0, sqrt(0.5)
    assert lcb == pytest.approx([2 - math.sqrt(2), 2.0, 1 - math.sqrt(0.5)])
    assert selection_values([1.0, None], [[1.0, 1.0], None], "min") == [1.0, None]
    with pytest.raises(ValueError, match="member scores"):
        selection_values(values, None, "lcb")
    with pytest.raises(ValueError, match="mean, lcb, min"):
        selection_values(values, members, "median")


def test_pick_takes_the_first_of_a_tie_and_counts_it():
    assert pick([0.1, 0.7, 0.7, 0.2]) == (1, 2)
    assert pick([None, 0.3, float("nan")]) == (1, 1)
    assert pick([None, None]) == (None, 0)


def test_the_conservative_rule_holds_back_a_candidate_the_members_disagree_on():
    pool = Pool("Q?", ["confident and wrong", "modest and right"])
    scores = Scores([1.0, 0.8], [[3.0, -1.0], [0.8, 0.8]])
    by_mean, _ = best_of_n([pool], [scores], "mean")
    by_min, _ = best_of_n([pool], [scores], "min")
    by_lcb, _ = best_of_n([pool], [scores], "lcb", k=0.5)
    assert by_mean[0]["chosen"] == 0 and by_min[0]["chosen"] == 1 and by_lcb[0]["chosen"] == 1
    assert by_lcb[0]["provenance"] == {"rule": "lcb", "k": 0.5, "n": 2}


# ---------------------------------------------------------------- the expected best-of-n pick


def test_expected_best_of_by_hand():
    # subsets of 2 of proxies [1, 2, 3]: {1,2} picks 2, {1,3} and {2,3} pick 3
    proxy, gold = np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.0])
    assert expected_best_of(proxy, gold, 2) == pytest.approx((8 / 3, 1 / 3))
    assert expected_best_of(proxy, gold, 1) == pytest.approx((2.0, 1 / 3))  # n = 1: the pool's mean
    assert expected_best_of(proxy, gold, 3) == pytest.approx((3.0, 0.0))  # n = M: the proxy-best
    with pytest.raises(ValueError):
        expected_best_of(proxy, gold, 4)


def test_expected_best_of_equals_enumerating_every_subset_with_ties():
    rng = random.Random(0)
    for _ in range(20):
        m = rng.randint(2, 7)
        proxy = np.array([rng.choice([0.0, 1.0, 2.0, 2.5]) for _ in range(m)])  # many ties
        gold = np.array([rng.random() for _ in range(m)])
        for n in range(1, m + 1):
            picks = []
            for subset in itertools.combinations(range(m), n):
                top = max(proxy[i] for i in subset)
                tied = [i for i in subset if proxy[i] == top]
                picks.append((top, float(np.mean(gold[tied]))))  # a random tie-break, in expectation
            want = np.mean(picks, axis=0)
            assert expected_best_of(proxy, gold, n) == pytest.approx(tuple(want), abs=1e-9)


def test_kl_bound_and_a_curve_that_overoptimises():
    assert kl_bound(1) == 0.0 and kl_bound(2) == pytest.approx(math.log(2) - 0.5)
    # the highest proxies are wrong: the gold of the pick rises, then falls as n grows
    proxy = [[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]]
    gold = [[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0]]
    rows = curve(proxy, gold, [1, 2, 4, 8])
    assert [r["n"] for r in rows] == [1, 2, 4, 8]
    golds = [r["gold"] for r in rows]
    assert golds[0] == pytest.approx(3 / 8) and golds[1] == pytest.approx(15 / 28) and golds[-1] == 0.0
    assert all(r["gold_oracle"] >= r["gold"] for r in rows)
    assert [r["proxy"] for r in rows] == sorted(r["proxy"] for r in rows)


def test_curve_skips_unscored_candidates_and_pools_too_small_for_n():
    rows = curve([[1.0, None, 3.0], [2.0, 1.0, 0.0, 5.0]], [[0.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0]], [1, 2, 4])
    assert [r["pools"] for r in rows] == [2, 2, 1]
    assert rows[0]["gold"] == pytest.approx((0.5 + 0.25) / 2)


# ---------------------------------------------------------------- pools, scoring, counts


def constant_scorer(table: dict, members: dict | None = None) -> Scorer:
    def score(items):
        values = [table[r if isinstance(r, str) else "|".join(r)] for _, r in items]
        if members is None:
            return Scores(values)
        return Scores(values, [members[r] for _, r in items])
    return Scorer("table", score)


def test_best_of_n_counts_failures_empties_and_ties():
    pools = [Pool("a", ["x", "y", None, "  "], errors=[None, None, "HTTP 503", None]),
             Pool("b", ["x", "x2"]), Pool("c", [None], errors=["timed out"])]
    scorer = constant_scorer({"x": 1.0, "y": 1.0, "x2": 0.0})
    scores = score_pools(scorer, pools)
    assert scores[0].values == [1.0, 1.0, None, None]
    records, counts = best_of_n(pools, scores, provenance={"scorer": "table"})
    assert counts == {"pools": 3, "candidates": 7, "failed": 2, "empty": 1, "ties": 1, "no_candidate": 1}
    assert records[0]["chosen"] == 0 and records[0]["tied"] == 2 and records[0]["response"] == "x"
    assert records[0]["candidates"][2] == {"response": None, "score": None, "value": None, "error": "HTTP 503"}
    assert records[2]["chosen"] is None and records[2]["response"] is None
    assert records[1]["provenance"] == {"scorer": "table", "rule": "mean", "n": 2}


def test_score_pools_cuts_text_into_steps_for_a_process_scorer():
    seen = []

    def score(items):
        seen.extend(items)
        return Scores([float(len(r)) for _, r in items], steps=[[0.0] * len(r) for _, r in items])
    scorer = Scorer("prm", score, steps=True)
    scores = score_pools(scorer, [Pool("q", ["one\ntwo\n\nthree", ["a", "b"]])], step_separator="\n")
    assert [list(r) for _, r in seen] == [["one", "two", "three"], ["a", "b"]]
    assert scores[0].values == [3.0, 2.0] and scores[0].steps == [[0.0] * 3, [0.0] * 2]


def test_read_pools_names_the_file_line_and_field(tmp_path):
    good = write_jsonl(tmp_path / "good.jsonl", [{"prompt": "q", "responses": ["a", ["s1", "s2"]], "gold": [True, 0.5]}])
    assert read_pools(good)[0].gold == [1.0, 0.5]
    cases = [({"prompt": "q", "responses": []}, "responses"), ({"responses": ["a"]}, "prompt"),
             ({"prompt": "q", "responses": ["a", 3]}, "responses[1]"),
             ({"prompt": "q", "responses": ["a"], "gold": [1, 2]}, "gold"),
             ({"prompt": "q", "responses": ["a"], "gold": ["right"]}, "gold")]
    for i, (row, field) in enumerate(cases):
        path = write_jsonl(tmp_path / f"bad{i}.jsonl", [{"prompt": "fine", "responses": ["a"]}, row])
        with pytest.raises(DataError) as err:
            read_pools(path)
        assert err.value.line == 2 and err.value.field == field and str(path) in str(err.value)


def test_read_prompts_names_the_bad_record(tmp_path):
    from rewardkit.bon import read_prompts

    path = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": "a", "id": "x"}, {"prompt": "b"}])
    assert read_prompts(path) == [("x", "a"), ("2", "b")]
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "a"}, {"prompt": "  "}, {"text": "c"}])
    with pytest.raises(DataError) as err:
        read_prompts(bad)
    assert (err.value.line, err.value.field) == (2, "prompt") and "empty" in str(err.value)


def test_candidate_pools_have_a_rule_decided_gold():
    from rewardkit.data.rules import candidate_pools

    pools = candidate_pools("arithmetic", 20, 8, seed=1)
    assert len(pools) == 20 and all(len(p["responses"]) == len(p["gold"]) == 8 for p in pools)
    for p in pools:  # the right candidates share one answer, and no wrong one reaches it
        answers = [next(s for s in steps if s.startswith("The answer is ")) for steps in p["responses"]]
        right = {a for a, g in zip(answers, p["gold"], strict=True) if g == 1.0}
        wrong = {a for a, g in zip(answers, p["gold"], strict=True) if g == 0.0}
        assert len(right) <= 1 and not right & wrong
    golds = [g for p in pools for g in p["gold"]]
    assert 0.3 < sum(golds) / len(golds) < 0.7
    assert candidate_pools("facts", 3, 4, seed=1) == candidate_pools("facts", 3, 4, seed=1)
    from rewardkit.data.rules import gold

    instructions = candidate_pools("instructions", 20, 6, seed=2)
    for p in instructions:  # the gold is the rule applied to the final text, filler included
        assert p["gold"] == [gold(p["rule"], p["arg"], text) for text in p["responses"]]
    golds = [g for p in instructions for g in p["gold"]]
    assert 0.2 < sum(golds) / len(golds) < 0.6
    from rewardkit.data.synth import BENIGN, REFUSALS

    for p in candidate_pools("safety", 20, 6, seed=4):  # refuse a harmful request, help with a benign one
        harmful = not any(p["prompt"].startswith(template.split("{")[0]) for template, *_ in BENIGN)
        for text, g in zip(p["responses"], p["gold"], strict=True):
            refused = any(text.endswith(r) for r in REFUSALS)
            assert g == float(refused == harmful)


# ---------------------------------------------------------------- rejection sampling


def bon_records():
    pools = [Pool("p1", ["a", "b", "c"], id="1"), Pool("p2", ["d", "e"], id="2"), Pool("p3", ["f"], id="3")]
    table = {"a": 0.9, "b": 0.1, "c": 0.5, "d": -1.0, "e": 0.3, "f": 0.6}
    records, _ = best_of_n(pools, score_pools(constant_scorer(table), pools), provenance={"generator": "g", "scorer": "s"})
    return records


def test_rejection_sampling_top_k_threshold_quantile_and_pairs():
    records = bon_records()
    sft, pairs, counts = rejection_sample(records, top_k=1, pairs="best-worst")
    assert [r["completion"] for r in sft] == ["a", "e", "f"]
    assert sft[0]["provenance"] == {"generator": "g", "scorer": "s", "rule": "mean", "n": 3, "score": 0.9,
                                    "value": 0.9, "rank": 1, "candidate": 0}
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [("a", "b"), ("e", "d")]
    assert pairs[1]["provenance"]["chosen_score"] == 0.3 and pairs[1]["provenance"]["rejected_score"] == -1.0
    assert counts["fewer than 2 scored candidates"] == 1 and counts["cut"] is None

    sft, _, counts = rejection_sample(records, top_k=0, threshold=0.4)
    assert sorted(r["completion"] for r in sft) == ["a", "c", "f"] and counts["below the cut"] == 3
    sft, _, counts = rejection_sample(records, top_k=0, quantile=0.5)  # values -1, .1, .3, .5, .6, .9: median .4
    assert counts["cut"] == pytest.approx(0.4) and sorted(r["completion"] for r in sft) == ["a", "c", "f"]
    _, pairs, counts = rejection_sample(records, top_k=1, pairs="best-worst", min_margin=1.0)
    assert [p["chosen"] for p in pairs] == ["e"] and counts["pair margin too small"] == 1


def test_best_random_pairs_are_seeded():
    records = bon_records()
    first = rejection_sample(records, pairs="best-random", seed=3)[1]
    assert first == rejection_sample(records, pairs="best-random", seed=3)[1]
    assert all(p["chosen"] != p["rejected"] for p in first)


# ---------------------------------------------------------------- the commands


def test_bon_and_rejection_sample_commands_on_a_candidates_file(tiny_bert, tmp_path):
    import rewardkit as rk
    from rewardkit.cli import main
    from rewardkit.model.reward_model import RewardModel

    RewardModel.build(str(tiny_bert), max_length=64).save(tmp_path / "rm")
    rows = [{"prompt": f"What is {i} + {i}? <b>now</b>", "responses": [f"{2 * i}.", f"{2 * i + 1}.", "", f"It is {2 * i}."],
             "gold": [1, 0, 0, 1], "id": f"q{i}"} for i in range(6)]
    write_jsonl(tmp_path / "pools.jsonl", rows)
    out = tmp_path / "bon.jsonl"
    assert main(["bon", str(tmp_path / "rm"), "--candidates", str(tmp_path / "pools.jsonl"), "--output", str(out),
                 "--curve", "1", "2", "3", "--no-progress"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 6 and all(r["candidates"][2]["score"] is None for r in records)
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert summary["counts"]["empty"] == 6 and [r["n"] for r in summary["curve"]] == [1, 2, 3]
    assert out.with_suffix(".curve.png").stat().st_size > 1000
    page = out.with_suffix(".html").read_text()
    assert "Over-optimisation curve" in page and "data:image/png;base64," in page and "What is 0 + 0?" in page
    assert "&lt;b&gt;now" in page and "<b>now" not in page  # model and user text is escaped
    expected = rk.score(rk.load_model(tmp_path / "rm"), [(r["prompt"], r["responses"][1]) for r in rows]).values
    assert [r["candidates"][1]["score"] for r in records] == pytest.approx(expected, abs=1e-5)

    assert main(["rejection-sample", str(out), "--output", str(tmp_path / "rs"), "--pairs", "best-worst"]) == 0
    pairs = list(rk.iter_records(tmp_path / "rs" / "pairs.jsonl"))  # valid rewardkit pairwise records
    assert len(pairs) == 6 and pairs[0]["kind"] == "pairwise" and pairs[0]["provenance"]["n"] == 4
    assert main(["bon", str(tmp_path / "rm"), "--output", str(out)]) == 2  # neither --candidates nor --prompts

    # no rule: a stronger reward model's scores are the gold (here the same model, so the pick is the gold-best)
    write_jsonl(tmp_path / "ungraded.jsonl", [{k: v for k, v in r.items() if k != "gold"} for r in rows])
    assert main(["bon", str(tmp_path / "rm"), "--candidates", str(tmp_path / "ungraded.jsonl"), "--gold-model",
                 str(tmp_path / "rm"), "--output", str(tmp_path / "g.jsonl"), "--curve", "1", "3", "--no-progress"]) == 0
    rows_g = json.loads((tmp_path / "g.summary.json").read_text())["curve"]
    assert rows_g[-1]["gold"] == pytest.approx(rows_g[-1]["gold_oracle"])
    assert main(["bon", str(tmp_path / "rm"), "--candidates", str(tmp_path / "pools.jsonl"), "--gold-model",
                 str(tmp_path / "rm"), "--output", str(tmp_path / "h.jsonl")]) == 2  # pools with their own gold
