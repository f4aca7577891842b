"""What a judge's judgements become as training records: soft-labelled pairs to distil the judge into a scalar
reward model, critiques rated right or wrong to train a meta reward model, and graded responses.

Every record keeps the judge's votes beside the label, and nothing a judge could not decide becomes a label: a pair
with no parsed vote or a tie, a response with no parsed grade and an unparseable critique are left out and counted
by the caller (the counts are in the returned Verdicts and Ratings)."""

from __future__ import annotations

from rewardkit.judge.judge import Judge, Ratings, Verdict
from rewardkit.judge.parse import parse_verdict
from rewardkit.judge.tuning import labelled_questions


def distillation_records(pairs: list[dict], verdicts: list[Verdict], judge_name: str) -> list[dict]:
    """Pairwise records from the judge's verdicts on `pairs` (their own chosen first): the judge-preferred response
    as chosen, `probability` = the judge's vote share for it (a soft Bradley-Terry target) and a `judge` field with
    the votes, failures, position flip and agreement with the pair's own label."""
    labelled = []
    for r, v in zip(pairs, verdicts, strict=True):
        if v.p_first is None or v.p_first == 0.5:
            continue
        keep = v.p_first > 0.5
        labelled.append({"prompt": r["prompt"], "chosen": r["chosen"] if keep else r["rejected"],
                         "rejected": r["rejected"] if keep else r["chosen"], "probability": max(v.p_first, 1 - v.p_first),
                         "id": r.get("id"), "judge": {"name": judge_name, "p_labelled_chosen": v.p_first, "votes": v.votes,
                                                      "failures": v.failures, "position_flip": v.flip,
                                                      "agrees_with_label": keep}})
    return labelled


def meta_rm_records(judge: Judge, pairs: list[dict], progress: bool = False) -> tuple[list[dict], int]:
    """(rating records, unparsed critiques): the judge's k sampled critiques of each labelled pair (chosen = the
    better response) in both answer orders; a parsed critique becomes {"prompt": judge prompt, "response":
    critique, "score": 1.0 if its verdict names the better response else 0.0}."""
    questions = labelled_questions(judge, pairs)
    prompts = [prompt for _, prompt, _, _ in questions]
    outputs = judge.generator.generate(prompts, judge.k, judge.sampling, progress).samples
    records, unparsed = [], 0
    for (_, prompt, right, _), row in zip(questions, outputs, strict=True):
        for sample in row:
            verdict = None if sample.text is None else parse_verdict(sample.text)
            if verdict is None:
                unparsed += 1
                continue
            records.append({"prompt": prompt, "response": sample.text, "score": float(verdict == right)})
    return records, unparsed


def graded_records(items: list[tuple[str, str]], ratings: Ratings, judge_name: str) -> list[dict]:
    """Rating records {"prompt", "response", "score": the mean parsed grade, "judge"} for the (prompt, response)
    items that got at least one parsed grade."""
    return [{"prompt": p, "response": r, "score": s, "judge": {"name": judge_name, "votes": v}}
            for (p, r), s, v in zip(items, ratings.scores, ratings.votes, strict=True) if s == s]  # NaN: none parsed
