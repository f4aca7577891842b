"""`rewardkit judge label`: preference labels from a generative judge, to distil into a scalar reward model."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from tyro.conf import Positional

from rewardkit.config import Command, ConfigError
from rewardkit.options import Progress


@dataclass
class JudgeLabelConfig:
    """Label preference pairs with a generative judge (RLAIF): each pair is judged k times in each answer order;
    the judge's vote share becomes a soft label. Writes OUTPUT (pairwise records, the judge-preferred response as
    chosen, `probability` = the judge's share for it, and a `judge` field with the votes, failures, position flip and
    agreement with the file's own label) and OUTPUT.summary.json (agreement with the labels, position-flip rate,
    parse-failure rate, seconds per judgement). `rewardkit train --train OUTPUT` then distils the judge into a scalar
    reward model (the bt objective trains on the soft labels)."""

    data: Positional[str]
    """pairwise records to label (their own chosen/rejected, if any, is only compared with the judge)"""
    judge: str = "local:smollm2"
    """local:MODEL (a directory, .gguf or smollm2) or an OpenAI-compatible server as URL#MODEL"""
    output: str = "judge-labels.jsonl"
    """where the labelled pairs go (and OUTPUT.summary.json)"""
    k: int = 4
    """votes per order (sampled; 1 = greedy)"""
    both_orders: bool = True
    """judge each pair again with the responses swapped (a verdict that changes is a position flip)"""
    max_new_tokens: int = 384
    """longest critique a vote may write"""
    temperature: float = 0.7
    """sampling temperature of the k votes (k = 1 is greedy)"""
    seed: int = 0
    """sampling seed"""
    max_records: int = 0
    """label at most this many pairs (0 = all)"""
    progress: Progress = True


def run_label(cfg: JudgeLabelConfig) -> int:
    from rewardkit.data.io import iter_records, write_records
    from rewardkit.generation import Sampling
    from rewardkit.judge import load_judge

    if cfg.k < 1:
        raise ConfigError(f"--k must be at least 1, got {cfg.k}")
    pairs = [r for r in iter_records(cfg.data) if r["kind"] == "pairwise" and not r.get("tie")]
    pairs = pairs[: cfg.max_records or None]
    if not pairs:
        raise ConfigError(f"{cfg.data} holds no strict pairwise records to label")
    judge = load_judge(cfg.judge, cfg.k)
    judge.sampling = Sampling(cfg.max_new_tokens, cfg.temperature if cfg.k > 1 else 0.0, 1.0, cfg.seed)
    started = time.perf_counter()
    verdicts = judge.compare([(r["prompt"], r["chosen"], r["rejected"]) for r in pairs], cfg.both_orders, cfg.progress)
    seconds = time.perf_counter() - started
    labelled, unparsed, ties, agree, flips = [], 0, 0, [], 0
    for r, v in zip(pairs, verdicts, strict=True):
        flips += v.flip
        if v.p_first is None:
            unparsed += 1
            continue
        agree.append(v.p_first > 0.5 if v.p_first != 0.5 else None)
        if v.p_first == 0.5:
            ties += 1
            continue
        keep = v.p_first > 0.5
        labelled.append({"prompt": r["prompt"], "chosen": r["chosen"] if keep else r["rejected"],
                         "rejected": r["rejected"] if keep else r["chosen"], "probability": max(v.p_first, 1 - v.p_first),
                         "id": r.get("id"), "judge": {"name": judge.name, "p_labelled_chosen": v.p_first, "votes": v.votes,
                                                      "failures": v.failures, "position_flip": v.flip,
                                                      "agrees_with_label": keep}})
    write_records(cfg.output, labelled)
    decided = [a for a in agree if a is not None]
    judgements = len(pairs) * cfg.k * (2 if cfg.both_orders else 1)
    summary = {"data": cfg.data, "judge": judge.name, "pairs": len(pairs), "labelled": len(labelled),
               "left_out": {"no vote parsed": unparsed, "judge tie": ties},
               "agreement_with_labels": sum(decided) / len(decided) if decided else None,
               "position_flip_rate": flips / len(pairs) if cfg.both_orders else None,
               "parse_failure_rate": sum(v.failures for v in verdicts) / judgements,
               "seconds_per_judgement": seconds / judgements, "seconds": round(seconds, 1)}
    Path(cfg.output).with_suffix(".summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


def register(commands: dict[str, Command]) -> None:
    """Add judge label to the command table."""
    commands["judge label"] = Command(JudgeLabelConfig, run_label,
                                      "label preference pairs with a generative judge (soft labels to distil)")
