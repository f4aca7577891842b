"""Evaluate one scorer on one set of records: every metric and diagnostic the record kinds allow.

`evaluate_records` returns (result, scored records) for one set; `evaluate_datasets` runs it over several
named sets (suites and files) and returns the report `rewardkit eval` writes. The result is plain JSON; the
scored records keep what the plots need (scores, lengths, categories) and are written beside the report.
Stepwise records scored step by step get the process metrics of rewardkit.eval.process, their ProcessBench
threshold chosen on a *threshold split*: another set, never the one reported.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rewardkit.data.kinds import KINDS, score_records
from rewardkit.data.prompts import prompt_key, sample_by_prompt
from rewardkit.data.records import normalize_record
from rewardkit.errors import ConfigError
from rewardkit.eval.bias import length_bias, position_bias, style_matrix
from rewardkit.eval.metrics import (
    auroc,
    best_of_k,
    bootstrap_ci,
    calibration,
    kendall_tau,
    ndcg,
    pair_credit,
    pairwise_accuracy,
    spearman,
)
from rewardkit.eval.probes import run_probes
from rewardkit.eval.process import process_results, select_threshold
from rewardkit.eval.scorers import Scorer, score_items


def score_all(scorer: Scorer, records: list[dict]) -> list[dict]:
    """Copies of the records with the scorer's scores, in the one scored-record schema (rewardkit.data.kinds)."""
    return score_records(records, lambda items: score_items(scorer, items), KINDS)


def flags_errors(signal: list[float], pairs: list[dict]) -> dict:
    """Does a high signal mark the pairs the model ranks wrongly? AUROC of the signal for 'wrong'
    (0.5 = no signal, 1 = every wrong pair is flagged before every right one), and accuracy on the half
    with the lowest and the highest signal."""
    wrong = [r["score_margin"] < 0 for r in pairs]
    out = {"auroc_wrong": auroc(signal, wrong)}
    order = np.argsort(np.asarray(signal, dtype=float), kind="stable")
    half = len(order) // 2
    credit = np.array([pair_credit(r["score_margin"]) for r in pairs])
    if half:
        out["accuracy_most_certain_half"] = float(credit[order[:half]].mean())
        out["accuracy_least_certain_half"] = float(credit[order[half:]].mean())
    return out


def confidence_results(pairs: list[dict]) -> dict:
    """The baseline any uncertainty signal has to beat: the model's own confidence. A pair whose margin is
    close to zero is one the model barely ranks, so -|margin| is the signal; it needs no ensemble."""
    return flags_errors([-abs(r["score_margin"]) for r in pairs], pairs)


def uncertainty_results(pairs: list[dict]) -> dict:
    """Does the ensemble's disagreement mark the pairs it gets wrong? A pair's uncertainty is
    preference_uncertainty: how much the members disagree about P(chosen beats rejected)."""
    u = [r["preference_uncertainty"] for r in pairs]
    return {"pairs": len(pairs), "mean_uncertainty": float(np.mean(u)), **flags_errors(u, pairs)}


def _with_ci(credit: list[float], groups: list | None, resamples: int, seed: int) -> dict:
    return {"accuracy": float(np.mean(credit)) if credit else float("nan"), "n": len(credit),
            "ci95": bootstrap_ci(credit, groups=groups, resamples=resamples, seed=seed) if credit else None}


def pairwise_results(pairs: list[dict], scorer: Scorer, section_of=None, resamples: int = 1000, seed: int = 0) -> dict:
    strict = [r for r in pairs if not r.get("tie")]
    credit = [pair_credit(r["score_margin"]) for r in strict]
    groups = [prompt_key(r.get("prompt")) for r in strict]  # the pairs of one prompt are resampled together
    headline = pairwise_accuracy([r["score_margin"] for r in pairs], [bool(r.get("tie")) for r in pairs])
    headline["ci95"] = bootstrap_ci(credit, groups=groups, resamples=resamples, seed=seed) if credit else None
    out: dict = {"accuracy": headline}
    by_category: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(strict):
        by_category[str(r.get("category") or "all")].append(i)
    if len(by_category) > 1:
        out["categories"] = {c: _with_ci([credit[i] for i in idx], [groups[i] for i in idx], resamples, seed)
                             for c, idx in sorted(by_category.items())}
    if section_of is not None:
        by_section: dict[str, list[float]] = defaultdict(list)
        for c, r in zip(credit, strict, strict=True):
            by_section[str(section_of(r))].append(c)
        sections = {s: float(np.mean(v)) for s, v in sorted(by_section.items())}
        out["sections"] = {"scores": sections, "counts": {s: len(v) for s, v in sorted(by_section.items())},
                           "section_average": float(np.mean(list(sections.values())))}
    cal = scorer.calibration or {}
    out["calibration"] = calibration([r["score_margin"] for r in strict], cal.get("temperature", 1.0), cal.get("bias", 0.0))
    out["length"] = length_bias(pairs)
    if strict:
        out["confidence"] = confidence_results(strict)
        if "preference_uncertainty" in strict[0]:
            out["uncertainty"] = uncertainty_results(strict)
    out["style"] = style_matrix(strict)
    chosen = np.array([r["chosen_score"] for r in strict])
    rejected = np.array([r["rejected_score"] for r in strict])
    if len(strict):
        out["scores"] = {"chosen_mean": float(chosen.mean()), "chosen_std": float(chosen.std()),
                         "rejected_mean": float(rejected.mean()), "rejected_std": float(rejected.std()),
                         "margin_mean": float((chosen - rejected).mean())}
    return out


def unscored_last(scores: list[float]) -> list[float]:
    """The scores with every NaN (no score: a judge with no parsed vote) tied below the lowest real score."""
    values = np.asarray(scores, dtype=float)
    real = values[~np.isnan(values)]
    return np.where(np.isnan(values), real.min() - 1.0 if len(real) else 0.0, values).tolist()


def ranking_results(rankings: list[dict], resamples: int = 1000, seed: int = 0) -> dict:
    """Per-list Kendall tau / Spearman rho against the human ranks, best-of-K credit and NDCG; a response without a
    score ranks last (tied with any other unscored one)."""
    taus, rhos, bok, gains = [], [], [], []
    for r in rankings:
        scores = unscored_last(r["response_scores"])
        if r.get("best") is not None:
            bok.append(best_of_k(scores, r["best"]))
        if r.get("ranking") is not None:
            goodness = [-rank for rank in r["ranking"]]  # rank 1 is best
            taus.append(kendall_tau(scores, goodness))
            rhos.append(spearman(scores, goodness))
            worst = max(r["ranking"])
            gains.append(ndcg(scores, [worst - rank for rank in r["ranking"]]))
    def mean(values):
        values = [v for v in values if v == v]
        return float(np.mean(values)) if values else float("nan")
    k = Counter(len(r["responses"]) for r in rankings)
    return {"lists": len(rankings), "k": dict(sorted(k.items())),
            "best_of_k": mean(bok), "best_of_k_ci95": bootstrap_ci(bok, resamples=resamples, seed=seed) if bok else None,
            "best_of_k_random": float(np.mean([1 / len(r["responses"]) for r in rankings if r.get("best") is not None] or [np.nan])),
            "kendall_tau": mean(taus), "spearman": mean(rhos), "ndcg": mean(gains)}


def rating_results(ratings: list[dict]) -> dict:
    """Correlation of model scores with human ratings: pooled over all responses and per prompt.
    Several annotators' ratings of one response are averaged first."""
    by_item: dict[tuple, list] = {}
    for r in ratings:
        key = (prompt_key(r.get("prompt")), json.dumps(r["response"]))
        by_item.setdefault(key, [r["response_score"], []])[1].append(r["score"] if r.get("score") is not None
                                                                   else float(np.mean(list(r["scores"].values()))))
    model = [v[0] for v in by_item.values()]
    human = [float(np.mean(v[1])) for v in by_item.values()]
    per_prompt: dict[str, list[int]] = defaultdict(list)
    for i, (prompt, _) in enumerate(by_item):
        per_prompt[prompt].append(i)
    taus = [kendall_tau([model[i] for i in idx], [human[i] for i in idx]) for idx in per_prompt.values() if len(idx) > 1]
    taus = [t for t in taus if t == t]
    return {"responses": len(by_item), "ratings": len(ratings), "kendall_tau": kendall_tau(model, human),
            "spearman": spearman(model, human), "per_prompt_kendall_tau": float(np.mean(taus)) if taus else float("nan"),
            "prompts_with_several_responses": len(taus)}


@dataclass(frozen=True)
class ThresholdSplit:
    """Stepwise records the ProcessBench threshold is chosen on, then applied to the sets reported; it must
    share no prompt with them (a threshold tuned on the reported set would overstate its F1)."""

    name: str
    load: Callable[[], list[dict]]


def stepwise_results(scorer: Scorer, solutions: list[dict], threshold_split: ThresholdSplit | None = None) -> dict:
    """Process metrics of scored stepwise records (rewardkit.eval.process) at the threshold with the best
    ProcessBench F1 on `threshold_split`, scored by the same scorer; at 0.5 without a split."""
    if threshold_split is None:
        return process_results(solutions)
    split = [r if "kind" in r else normalize_record(r) for r in threshold_split.load()]
    shared = {prompt_key(r.get("prompt")) for r in split} & {prompt_key(r.get("prompt")) for r in solutions}
    if shared:
        raise ConfigError(f"threshold split {threshold_split.name!r} shares {len(shared)} prompts with the records "
                          "evaluated; choose the threshold on a set that is not reported")
    scored = [r for r in score_all(scorer, split) if r.get("step_scores") is not None]
    try:
        chosen = select_threshold(scored)
    except ValueError as err:  # a user's split: say which one, as a ConfigError the CLI prints
        raise ConfigError(f"threshold split {threshold_split.name!r}: {err}") from None
    return process_results(solutions, chosen["threshold"], {"chosen_on": threshold_split.name, "f1_on_split": chosen["f1"],
                                                            "split_solutions": len(scored)})


def evaluate(model, records, probes: int = 200, resamples: int = 1000, seed: int = 0, batch_size: int = 32) -> dict:
    """Every metric and diagnostic on `records` (a list of records or a file) for a model (loaded, a directory,
    or a Scorer); the result `rewardkit eval` reports for one suite."""
    from rewardkit.data.io import iter_records
    from rewardkit.eval.scorers import as_scorer

    if isinstance(records, str | Path):
        records = list(iter_records(records))
    return evaluate_records(as_scorer(model, batch_size), list(records), probes=probes, resamples=resamples, seed=seed)[0]


def evaluate_records(scorer: Scorer, records: list[dict], section_of=None, probes: int = 200, resamples: int = 1000,
                     seed: int = 0, threshold_split: ThresholdSplit | None = None) -> tuple[dict, list[dict]]:
    records = [r if "kind" in r else normalize_record(r) for r in records]
    kinds = Counter(r["kind"] for r in records)
    scored = score_all(scorer, records)
    result: dict = {"records": len(records), "kinds": dict(kinds)}
    pairs = [r for r in scored if r["kind"] == "pairwise"]
    if pairs:
        result["pairwise"] = pairwise_results(pairs, scorer, section_of, resamples, seed)
        if probes:
            result["probes"] = run_probes(scorer, pairs, samples=probes, seed=seed)
        if scorer.compare is not None:
            result["position_bias"] = {"applicable": True, **position_bias(scorer.compare, pairs)}
        else:
            result["position_bias"] = {"applicable": False, "reason": "this scorer rates each response on its own, so "
                                       "the order of a pair cannot change its scores"}
    rankings = [r for r in scored if r["kind"] == "ranking"]
    if rankings:
        result["ranking"] = ranking_results(rankings, resamples, seed)
    ratings = [r for r in scored if r["kind"] == "rating"]
    if ratings:
        result["rating"] = rating_results(ratings)
    solutions = [r for r in scored if r["kind"] == "stepwise" and r.get("step_scores") is not None]
    if solutions:
        result["stepwise"] = stepwise_results(scorer, solutions, threshold_split)
    if kinds.get("stepwise", 0) > len(solutions):
        result["not_evaluated"] = {"stepwise": kinds["stepwise"] - len(solutions),
                                   "reason": "no step scores: step labels need a process reward model"}
    return result, scored


def headline(result: dict) -> dict:
    """The numbers of a suite's summary row."""
    row: dict = {"records": result["records"]}
    pw = result.get("pairwise")
    if pw:
        row.update(accuracy=pw["accuracy"]["accuracy"], ci95=pw["accuracy"]["ci95"], pairs=pw["accuracy"]["pairs"],
                   length_only=pw["length"].get("length_only_accuracy"),
                   score_length_spearman=pw["length"].get("score_length_spearman"), ece=pw["calibration"].get("ece"))
        if "sections" in pw:
            row["section_average"] = pw["sections"]["section_average"]
        if pw.get("confidence"):
            row["confidence_auroc"] = pw["confidence"]["auroc_wrong"]
        if pw.get("uncertainty"):
            row["uncertainty_auroc"] = pw["uncertainty"].get("auroc_wrong")
        if pw.get("style"):
            row.update({f"style_{k}": pw["style"]["all"][k] for k in ("easy", "normal", "hard")})
    if result.get("position_bias", {}).get("applicable"):
        row["position_flip_rate"] = result["position_bias"]["flip_rate"]
    if result.get("ranking"):
        row["best_of_k"] = result["ranking"]["best_of_k"]
    if result.get("rating"):
        row["rating_spearman"] = result["rating"]["spearman"]
    sw = result.get("stepwise")
    if sw:
        row.update(processbench_f1=sw["model"]["processbench"]["f1"], processbench_threshold=sw["threshold"]["value"],
                   prmscore=sw["model"]["prmscore"]["prmscore"], step_auroc=sw["model"]["step_auroc"])
    if result.get("probes"):
        applied = sum(1 for v in result["probes"]["perturbations"].values() if v.get("applied"))
        row["probes_flagged"] = f"{len(result['probes']['flagged'])} of {applied}"
    return row


@dataclass(frozen=True)
class Dataset:
    """A named set of records to evaluate on: a suite (rewardkit.eval.suites) or a file; `threshold_split` is
    where its stepwise records' ProcessBench threshold is chosen (None: 0.5)."""

    name: str
    description: str
    load: Callable[[], list[dict]]
    section_of: Callable[[dict], str] | None = None
    threshold_split: ThresholdSplit | None = None


def evaluate_datasets(scorer: Scorer, datasets: list[Dataset], max_records: int = 0, probes: int = 200,
                      resamples: int = 1000, seed: int = 0) -> tuple[dict, dict[str, list[dict]]]:
    """({"suites": per-set results, "summary": per-set headline rows}, scored records per set). Each set is
    sampled by prompt to at most about `max_records` records (0 = all)."""
    report: dict = {"suites": {}, "summary": {}}
    scored_by_set: dict[str, list[dict]] = {}
    for dataset in datasets:
        started = time.perf_counter()
        records = dataset.load()
        sampled = sample_by_prompt(records, max_records, seed)
        print(f"[{dataset.name}] {len(sampled)} records"
              + (f" (sampled from {len(records)})" if len(sampled) < len(records) else ""))
        result, scored = evaluate_records(scorer, sampled, dataset.section_of, probes, resamples, seed,
                                          dataset.threshold_split)
        result.update(description=dataset.description, available_records=len(records),
                      seconds=round(time.perf_counter() - started, 1))
        report["suites"][dataset.name], report["summary"][dataset.name] = result, headline(result)
        scored_by_set[dataset.name] = scored
    return report, scored_by_set
