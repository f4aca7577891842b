"""Feedback quality: duplicates, degenerate and contradictory pairs, ties, annotator agreement.

`check_records` returns a report (plain dict, JSON-ready) and the indices a cleaned file would drop,
each with its reason, so `rewardkit data check --clean` can write both the file and the log.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict

import numpy as np

from rewardkit.data.texts import text_of

NEAR_DUPLICATE_JACCARD = 0.8
_MINHASH_BANDS, _MINHASH_ROWS = 16, 4


def _key(*parts) -> str:
    return hashlib.sha1(json.dumps(parts, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def _content(record: dict) -> tuple:
    kind = record["kind"]
    if kind == "pairwise":
        return kind, record.get("prompt"), record["chosen"], record["rejected"]
    if kind == "ranking":
        return kind, record["prompt"], record["responses"], record.get("ranking"), record.get("best")
    if kind == "rating":
        return kind, record["prompt"], record["response"], record.get("annotator"), record.get("score"), record.get("scores")
    return kind, record["prompt"], record["steps"], record["labels"]


def _normalise(text: str) -> list[str]:
    return re.sub(r"[^\w\s]", " ", text.lower()).split()


def _shingles(text: str, k: int = 3) -> set[str]:
    words = _normalise(text)
    return {" ".join(words[i:i + k]) for i in range(max(1, len(words) - k + 1))}


def near_duplicate_pairs(texts: list[str], threshold: float = NEAR_DUPLICATE_JACCARD) -> list[tuple[int, int, float]]:
    """Pairs (i, j, Jaccard) of texts whose word 3-shingle sets overlap by at least `threshold`.

    MinHash with locality-sensitive banding finds candidates in near-linear time; each candidate is
    then confirmed with its exact Jaccard similarity, so no pair is reported on an estimate alone.
    """
    n_hash = _MINHASH_BANDS * _MINHASH_ROWS
    rng = np.random.default_rng(0)
    a = rng.integers(1, 2**31 - 1, n_hash, dtype=np.int64)
    b = rng.integers(0, 2**31 - 1, n_hash, dtype=np.int64)
    prime = np.int64(2**31 - 1)
    shingle_sets = [_shingles(t) for t in texts]
    buckets: dict[tuple, list[int]] = defaultdict(list)
    for i, shingles in enumerate(shingle_sets):
        ids = np.array([int.from_bytes(hashlib.blake2b(s.encode(), digest_size=4).digest(), "little") for s in shingles],
                       dtype=np.int64)
        signature = ((ids[:, None] * a + b) % prime).min(axis=0)
        for band in range(_MINHASH_BANDS):
            buckets[(band, *signature[band * _MINHASH_ROWS:(band + 1) * _MINHASH_ROWS].tolist())].append(i)
    seen, out = set(), []
    for members in buckets.values():
        for x in range(len(members)):
            for y in range(x + 1, len(members)):
                i, j = members[x], members[y]
                if (i, j) in seen:
                    continue
                seen.add((i, j))
                si, sj = shingle_sets[i], shingle_sets[j]
                jaccard = len(si & sj) / len(si | sj)
                if jaccard >= threshold:
                    out.append((i, j, round(jaccard, 4)))
    return sorted(out)


# ---------------------------------------------------------------- agreement

def cohens_kappa(a: list, b: list) -> float:
    """Cohen's kappa for two raters' labels of the same items; 1.0 when both give every item one same
    label (perfect agreement, where the formula itself is 0 / 0)."""
    if len(a) != len(b) or not a:
        raise ValueError("two raters need the same, non-empty list of items")
    if len(set(a) | set(b)) == 1:
        return 1.0
    from sklearn.metrics import cohen_kappa_score  # imported here: `rewardkit data check` rarely needs it

    # Integer codes, so that any hashable labels work (scikit-learn compares mixed types such as 1 and "1"
    # as the same string).
    codes: dict = {}
    return float(cohen_kappa_score([codes.setdefault(x, len(codes)) for x in a], [codes.setdefault(y, len(codes)) for y in b]))


def fleiss_kappa(items: list[list]) -> float:
    """Fleiss' kappa; each item is the list of labels its raters gave (same number of raters per item).

    Written here rather than taken from statsmodels (a large dependency for twelve lines), and checked against
    it in the tests; 1.0 when every rating is one same label, where the formula itself is 0 / 0."""
    if not items:
        raise ValueError("no items")
    m = len(items[0])
    if m < 2 or any(len(item) != m for item in items):
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of ratings per item")
    categories = sorted({label for item in items for label in item}, key=str)
    counts = np.array([[item.count(c) for c in categories] for item in items], dtype=float)
    n = len(items)
    p_item = ((counts * (counts - 1)).sum(axis=1)) / (m * (m - 1))
    p_bar = p_item.mean()
    p_cat = counts.sum(axis=0) / (n * m)
    p_e = float((p_cat**2).sum())
    return 1.0 if p_e == 1 else float((p_bar - p_e) / (1 - p_e))


def agreement(label_sets: list[dict]) -> dict | None:
    """Agreement over items labelled by several annotators ({annotator: label} per item)."""
    label_sets = [s for s in label_sets if len(s) >= 2]
    if not label_sets:
        return None
    annotators = sorted({a for s in label_sets for a in s}, key=str)
    report: dict = {"items": len(label_sets), "annotators": len(annotators),
                    "unanimous_share": round(sum(len(set(s.values())) == 1 for s in label_sets) / len(label_sets), 4)}
    if len(annotators) == 2:
        a, b = annotators
        both = [s for s in label_sets if a in s and b in s]
        report["cohens_kappa"] = round(cohens_kappa([s[a] for s in both], [s[b] for s in both]), 4)
    else:
        m = Counter(len(s) for s in label_sets).most_common(1)[0][0]
        same = [list(s.values()) for s in label_sets if len(s) == m]
        report["fleiss_kappa"] = round(fleiss_kappa(same), 4)
        report["fleiss_items"] = len(same)
    return report


# ---------------------------------------------------------------- the check

def check_records(records: list[dict], near_threshold: float = NEAR_DUPLICATE_JACCARD) -> tuple[dict, dict[int, str]]:
    """Quality report for records, and {index: reason} of those a cleaned file would drop."""
    drop: dict[int, str] = {}
    kinds = Counter(r["kind"] for r in records)

    first_of: dict[str, int] = {}
    exact = []
    for i, r in enumerate(records):
        key = _key(*_content(r))
        if key in first_of:
            exact.append((first_of[key], i))
            drop.setdefault(i, f"exact duplicate of record {first_of[key]}")
        else:
            first_of[key] = i

    pairwise = [(i, r) for i, r in enumerate(records) if r["kind"] == "pairwise"]
    same = [i for i, r in pairwise if r["chosen"] == r["rejected"]]
    for i in same:
        drop.setdefault(i, "chosen equals rejected")
    empty = [i for i, r in pairwise if not text_of(r["chosen"]).strip() or not text_of(r["rejected"]).strip()]
    ties = [i for i, r in pairwise if r.get("tie")]

    # A > B and B > A for the same prompt (exact duplicates of each other are reported above).
    seen: dict[str, int] = {}
    contradictions = []
    for i, r in pairwise:
        if r.get("tie"):
            continue
        forward = _key(r.get("prompt"), r["chosen"], r["rejected"])
        backward = _key(r.get("prompt"), r["rejected"], r["chosen"])
        if backward in seen:
            j = seen[backward]
            contradictions.append((j, i))
            drop.setdefault(j, f"contradicts record {i}")
            drop.setdefault(i, f"contradicts record {j}")
        seen.setdefault(forward, i)

    texts = [text_of(_content(r)[1:]) for r in records]
    near = [(i, j, s) for i, j, s in near_duplicate_pairs(texts, near_threshold) if (i, j) not in set(exact)]
    for i, j, s in near:
        if i not in drop:
            drop.setdefault(j, f"near duplicate of record {i} (Jaccard {s})")

    pair_labels = [r["annotator_labels"] for r in records if r["kind"] == "pairwise" and r.get("annotator_labels")]
    rating_groups: dict[str, dict] = defaultdict(dict)
    for r in records:
        if r["kind"] == "rating" and r.get("annotator") is not None and r.get("score") is not None:
            rating_groups[_key(r["prompt"], r["response"])][str(r["annotator"])] = r["score"]

    def sample(pairs, k=5):
        return [list(p) for p in pairs[:k]]

    report = {
        "records": len(records),
        "kinds": dict(kinds),
        "categories": dict(Counter(str(r.get("category")) for r in records if r.get("category") is not None).most_common(20)),
        "exact_duplicates": {"count": len(exact), "examples": sample(exact)},
        "near_duplicates": {"count": len(near), "threshold": near_threshold, "examples": sample(near)},
        "chosen_equals_rejected": {"count": len(same), "examples": same[:5]},
        "empty_responses": {"count": len(empty), "examples": empty[:5]},
        "contradictory_pairs": {"count": len(contradictions), "examples": sample(contradictions)},
        "ties": {"count": len(ties)},
        "pairwise_annotator_agreement": agreement(pair_labels),
        "rating_annotator_agreement": agreement(list(rating_groups.values())),
        "would_remove": len(drop),
    }
    return report, drop
