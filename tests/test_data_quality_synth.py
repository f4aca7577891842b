"""Quality checks against hand-computed agreement, and the generators' known truth."""

import re

import pytest

from rewardkit.data.quality import check_records, cohens_kappa, fleiss_kappa, near_duplicate_pairs
from rewardkit.data.records import normalize_record
from rewardkit.data.synth import TASKS, generate


def test_cohens_kappa_hand_value():
    a = ["y", "y", "n", "n", "y", "n"]
    b = ["y", "n", "n", "n", "y", "y"]
    # observed 4/6; expected (3*3 + 3*3)/36 = 0.5 -> (2/3 - 1/2) / (1/2) = 1/3
    assert cohens_kappa(a, b) == pytest.approx(1 / 3)


def test_fleiss_kappa_hand_value():
    items = [["a", "a", "a"], ["a", "b", "b"], ["b", "b", "b"], ["a", "a", "b"]]
    # P_i = 1, 1/3, 1, 1/3 -> P̄ = 2/3; p_a = 6/12, p_b = 6/12 -> P_e = 1/2; kappa = (2/3-1/2)/(1/2) = 1/3
    assert fleiss_kappa(items) == pytest.approx(1 / 3)


def test_check_finds_each_problem():
    base = {"prompt": "p", "chosen": "a", "rejected": "b"}
    long_text = "the quick brown fox jumps over the lazy dog near the river bank today"
    rows = [base, dict(base), {"prompt": "p", "chosen": "b", "rejected": "a"}, {"prompt": "q", "chosen": "x", "rejected": "x"},
            {"prompt": "t", "chosen": "1", "rejected": "2", "tie": True},
            {"prompt": long_text, "chosen": "yes indeed", "rejected": "no"},
            {"prompt": long_text + "!", "chosen": "yes indeed", "rejected": "no"},
            {"prompt": "k", "chosen": "c", "rejected": "d", "annotator_labels": {"u": "chosen", "v": "chosen"}},
            {"prompt": "k2", "chosen": "c", "rejected": "d", "annotator_labels": {"u": "chosen", "v": "rejected"}}]
    records = [normalize_record(r) for r in rows]
    report, drop = check_records(records)
    assert report["exact_duplicates"]["count"] == 1
    assert report["contradictory_pairs"]["count"] == 1
    assert report["chosen_equals_rejected"]["count"] == 1
    assert report["ties"]["count"] == 1
    assert report["near_duplicates"]["count"] == 1
    assert report["pairwise_annotator_agreement"]["unanimous_share"] == 0.5
    assert "cohens_kappa" in report["pairwise_annotator_agreement"]
    assert drop[1].startswith("exact duplicate") and 3 in drop and 6 in drop


def test_near_duplicates_confirmed_by_exact_jaccard():
    texts = ["one two three four five six seven eight", "one two three four five six seven nine", "completely different words here"]
    pairs = near_duplicate_pairs(texts, threshold=0.6)
    assert [(i, j) for i, j, _ in pairs] == [(0, 1)]


@pytest.mark.parametrize("task", TASKS)
def test_generators_are_valid_deterministic_and_fast(task):
    a = generate(task, 200, seed=3, split="train")
    assert a == generate(task, 200, seed=3, split="train")
    assert a != generate(task, 200, seed=4, split="train")
    for r in a:
        normalize_record(r)


def test_train_and_test_use_disjoint_templates():
    train = generate("mix", 2000, seed=0, split="train")
    test = generate("mix", 400, seed=0, split="test")
    assert not {r["prompt"] for r in train} & {r["prompt"] for r in test}
    cats_train, cats_test = {r["category"] for r in train}, {r["category"] for r in test}
    assert cats_test - cats_train  # held-out instruction templates appear only in test


def test_arithmetic_truth_is_checkable():
    for r in generate("arithmetic", 100, seed=1):
        good = int(re.search(r"The answer is (-?\d+)", r["chosen"]).group(1))
        bad = int(re.search(r"The answer is (-?\d+)", r["rejected"]).group(1))
        assert good == r["answer"] and bad != r["answer"]
    for r in generate("arithmetic", 50, seed=1, kind="stepwise"):
        if r["first_error"] >= 0:
            assert r["labels"].index(False) == r["first_error"] and not any(r["labels"][r["first_error"]:])
    for r in generate("arithmetic", 50, seed=1, kind="ranking"):
        assert f"The answer is {r['answer']}." in r["responses"][r["best"]]
        assert sum(f"The answer is {r['answer']}." in x for x in r["responses"]) == 1


def test_length_trap_ratings_and_trajectories_truth():
    assert all(len(r["chosen"]) < len(r["rejected"]) for r in generate("length-trap", 100))
    ratings = generate("ratings", 300, seed=0)
    by_quality = {}
    for r in ratings:
        by_quality.setdefault(r["true_quality"], []).append(r["score"])
    means = [sum(v) / len(v) for _, v in sorted(by_quality.items())]
    assert means == sorted(means)  # noisy ratings still follow the true quality
    traj = generate("trajectories", 300, seed=0)
    assert 0.8 < sum(r["teacher_agrees_with_truth"] for r in traj) / 300 < 1.0  # Boltzmann-rational, not perfect
    assert all(len(step) == 3 for step in traj[0]["chosen"])
