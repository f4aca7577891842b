"""`rewardkit judge label`: preference labels from a generative judge, to distil into a scalar reward model."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from tyro.conf import Positional

from rewardkit.config import Command, ConfigError
from rewardkit.judge.judge import verdict_summary
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
    meta: str = ""
    """a meta reward model (from `rewardkit judge meta-data` + `rewardkit train`) that picks the critiques to vote"""
    k_meta: int = 0
    """with --meta: vote only the k_meta critiques per order that the meta RM rates highest"""
    progress: Progress = True


def make_judge(spec: str, k: int, max_new_tokens: int, temperature: float, seed: int, meta: str = "", k_meta: int = 0):
    """The judge of the commands below, sampling as asked, with its meta RM when one is given."""
    from rewardkit.generation import Sampling
    from rewardkit.judge import load_judge

    if k < 1:
        raise ConfigError(f"--k must be at least 1, got {k}")
    if bool(meta) != bool(k_meta) or k_meta > k:
        raise ConfigError("--meta and --k-meta go together, with 1 <= k_meta <= k")
    judge = load_judge(spec, k)
    judge.sampling = Sampling(max_new_tokens, temperature if judge.k > 1 else 0.0, 1.0, seed)
    if meta:
        from rewardkit.eval.scorers import load_scorer

        judge.meta, judge.k_meta = load_scorer(meta, progress=False), k_meta
        judge.name += f"+meta@{k_meta}"
    return judge


def run_label(cfg: JudgeLabelConfig) -> int:
    from rewardkit.data.io import write_records
    from rewardkit.judge.records import distillation_records

    pairs = strict_pairs(cfg.data, cfg.max_records)
    judge = make_judge(cfg.judge, cfg.k, cfg.max_new_tokens, cfg.temperature, cfg.seed, cfg.meta, cfg.k_meta)
    started = time.perf_counter()
    verdicts = judge.compare([(r["prompt"], r["chosen"], r["rejected"]) for r in pairs], cfg.both_orders, cfg.progress)
    seconds = time.perf_counter() - started
    labelled = distillation_records(pairs, verdicts, judge.name)
    write_records(cfg.output, labelled)
    judgements = len(pairs) * judge.k * (2 if cfg.both_orders else 1)
    summary = {"data": cfg.data, "judge": judge.name, "labelled": len(labelled),
               **verdict_summary(verdicts, judge.k, cfg.both_orders),
               "seconds_per_judgement": seconds / judgements, "seconds": round(seconds, 1)}
    Path(cfg.output).with_suffix(".summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


def strict_pairs(path: str, most: int) -> list[dict]:
    from rewardkit.data.io import iter_records

    pairs = [r for r in iter_records(path) if r["kind"] == "pairwise" and not r.get("tie")][: most or None]
    if not pairs:
        raise ConfigError(f"{path} holds no strict pairwise records")
    return pairs


@dataclass
class MetaDataConfig:
    """Training data for a meta reward model (DeepSeek-GRM's meta RM): the judge writes k critiques per labelled pair
    in each answer order; each parsed critique becomes a rating record whose prompt is the judge prompt, whose
    response is the critique and whose score is 1 when its verdict matches the pair's label, else 0. Train it with
    `rewardkit train --train OUTPUT` and give it to `rewardkit judge label --meta`."""

    data: Positional[str]
    """labelled pairwise records (chosen is the label)"""
    judge: str = "local:smollm2"
    """local:MODEL or an OpenAI-compatible server as URL#MODEL"""
    output: str = "meta-data.jsonl"
    """where the rating records go"""
    k: int = 8
    """critiques per pair and order (sampled)"""
    max_new_tokens: int = 384
    """longest critique"""
    temperature: float = 0.7
    """sampling temperature"""
    seed: int = 0
    """sampling seed"""
    max_records: int = 0
    """use at most this many pairs (0 = all)"""
    progress: Progress = True


def run_meta_data(cfg: MetaDataConfig) -> int:
    from rewardkit.data.io import write_records
    from rewardkit.judge.records import meta_rm_records

    pairs = strict_pairs(cfg.data, cfg.max_records)
    judge = make_judge(cfg.judge, cfg.k, cfg.max_new_tokens, cfg.temperature, cfg.seed)
    records, unparsed = meta_rm_records(judge, pairs, cfg.progress)
    write_records(cfg.output, records)
    right = sum(r["score"] for r in records)
    print(f"{len(records)} critiques ({right:.0f} with the labelled verdict, {len(records) - right:.0f} without); "
          f"{unparsed} unparseable left out -> {cfg.output}")
    return 0


@dataclass
class GradeConfig:
    """Grade responses against a rubric (Prometheus style: feedback, then a grade from 1 to 5), k votes each.
    Writes rating records (prompt, response, score = the mean parsed grade, a `judge` field with the votes); a
    response with no parsed vote is left out and counted."""

    data: Positional[str]
    """records with prompt and response (rating records), or pairwise records (both responses are graded)"""
    rubric: str = ""
    """a text file: the criteria and what each grade 1..5 means"""
    judge: str = "local:smollm2"
    """local:MODEL or an OpenAI-compatible server as URL#MODEL"""
    output: str = "graded.jsonl"
    """where the graded rating records go"""
    k: int = 1
    """votes per response"""
    max_new_tokens: int = 384
    """longest feedback"""
    temperature: float = 0.7
    """sampling temperature of the k votes (k = 1 is greedy)"""
    seed: int = 0
    """sampling seed"""
    progress: Progress = True


def run_grade(cfg: GradeConfig) -> int:
    from rewardkit.data.io import iter_records, write_records
    from rewardkit.judge.records import graded_records

    if not cfg.rubric or not Path(cfg.rubric).is_file():
        raise ConfigError("--rubric FILE is needed: the criteria and what each grade from 1 to 5 means")
    items = []
    for r in iter_records(cfg.data):
        if r["kind"] == "rating":
            items.append((r["prompt"], r["response"]))
        elif r["kind"] == "pairwise":
            items += [(r["prompt"], r["chosen"]), (r["prompt"], r["rejected"])]
    if not items:
        raise ConfigError(f"{cfg.data} holds no rating or pairwise records to grade")
    judge = make_judge(cfg.judge, cfg.k, cfg.max_new_tokens, cfg.temperature, cfg.seed)
    ratings = judge.grade(items, Path(cfg.rubric).read_text(), cfg.progress)
    graded = graded_records(items, ratings, judge.name)
    write_records(cfg.output, graded)
    print(f"{len(graded)} of {len(items)} responses graded ({len(items) - len(graded)} with no parsed grade; "
          f"{ratings.failures} unparseable votes) -> {cfg.output}")
    return 0


@dataclass
class TuningConfig:
    """What the judge-tuning commands share: the labelled pairs, the judge, the held-out comparison."""

    data: Positional[str]
    """labelled pairwise records (chosen is the better response)"""
    judge: str = "local:smollm2"
    """the judge to tune: local:MODEL (a directory, .gguf or smollm2)"""
    held_out: float = 0.25
    """share of the pairs kept apart to compare the judge before and after"""
    eval_data: str = ""
    """labelled pairs to compare the judge on before and after instead (then every pair of DATA trains)"""
    max_records: int = 0
    """use at most this many pairs (0 = all)"""
    lora_r: int = 16
    """LoRA rank (adapters are merged into the saved judge)"""
    max_new_tokens: int = 384
    """longest critique sampled or written when evaluating"""
    seed: int = 0
    """seed of the split, the sampling and the training"""
    progress: Progress = True


@dataclass
class RFTConfig(TuningConfig):
    """Rejective fine-tuning of a local judge (DeepSeek-GRM's SPCT, stage 1; rewardkit.judge.rft): sample k critiques
    of each labelled training pair in both answer orders, keep those whose verdict matches the label (dropping pairs
    every sample already gets right), fine-tune the judge on them with LoRA, and compare the judge before and after
    on held-out pairs (greedy, both orders: agreement with the labels, position flips, parse failures). Writes
    OUTPUT/judge (a causal LM directory: judge with local:OUTPUT/judge), OUTPUT/rft-data.jsonl (the kept critiques)
    and OUTPUT/summary.json."""

    output: str = "runs/judge-rft"
    """output directory"""
    k: int = 4
    """critiques sampled per pair and order"""
    keep_easy: bool = False
    """also keep the critiques of pairs every sample already gets right"""
    balance: bool = True
    """keep as many critiques whose right verdict is A as B (--no-balance keeps all: a position bias gets taught)"""
    hinted: bool = False
    """ask the pairs no sample got right again with the better response named (judge/templates/pairwise_hint.txt);
    their right critiques are kept with the plain prompt and flagged "hinted" (they may shortcut to the answer)"""
    epochs: float = 1.0
    """passes over the kept critiques"""
    lr: float = 1e-4
    """learning rate"""
    batch_size: int = 4
    """critiques per optimizer step"""
    max_length: int = 1024
    """longest judge prompt + critique in tokens while fine-tuning"""
    temperature: float = 0.7
    """sampling temperature of the k critiques"""


def tuning_split(cfg: TuningConfig) -> tuple[list[dict], list[dict]]:
    """(training pairs, held-out pairs) of a judge-tuning command: --eval-data, or --held-out of DATA."""
    import random

    if not cfg.judge.startswith("local:"):
        raise ConfigError(f"--judge must be local:MODEL to be fine-tuned here, got {cfg.judge!r}")
    if not 0 < cfg.held_out < 1:
        raise ConfigError(f"--held-out must be between 0 and 1, got {cfg.held_out}")
    pairs = strict_pairs(cfg.data, cfg.max_records)
    random.Random(cfg.seed).shuffle(pairs)
    n_held = 0 if cfg.eval_data else max(1, round(cfg.held_out * len(pairs)))
    held = strict_pairs(cfg.eval_data, 0) if cfg.eval_data else pairs[:n_held]
    train = pairs[n_held:]
    if not train:
        raise ConfigError(f"{len(pairs)} pairs leave none to train on after holding out {n_held}")
    return train, held


def run_rft(cfg: RFTConfig) -> int:
    from rewardkit.data.io import write_records
    from rewardkit.generation.local import plain_lm_directory
    from rewardkit.judge import load_judge
    from rewardkit.judge.judge import TEMPLATES
    from rewardkit.judge.rft import fine_tune, rejective_samples
    from rewardkit.judge.tuning import greedy_comparison, save_tuned_judge, scratch_directory

    train, held = tuning_split(cfg)
    sampler = make_judge(cfg.judge, cfg.k, cfg.max_new_tokens, cfg.temperature, cfg.seed)
    before = greedy_comparison(sampler.generator, held, cfg.max_new_tokens, cfg.seed, cfg.progress)
    hint = (TEMPLATES / "pairwise_hint.txt").read_text() if cfg.hinted else None
    records, counts = rejective_samples(sampler, train, cfg.keep_easy, cfg.balance, cfg.seed, cfg.progress, hint)
    if not records:
        raise ConfigError(f"no critique to learn from: {counts}")
    tmp = scratch_directory(Path(cfg.output))
    base = plain_lm_directory(cfg.judge.removeprefix("local:"), tmp / "base")
    training = fine_tune(base, records, tmp, cfg.lora_r, cfg.epochs, cfg.lr, cfg.batch_size, cfg.max_length, cfg.seed)
    after = greedy_comparison(load_judge(f"local:{tmp / 'judge'}").generator, held, cfg.max_new_tokens, cfg.seed,
                              cfg.progress)
    write_records(tmp / "rft-data.jsonl", records)
    save_tuned_judge(tmp, Path(cfg.output), {
        "data": cfg.data, "eval_data": cfg.eval_data or f"{cfg.held_out:.0%} of data", "judge": cfg.judge,
        "train_pairs": len(train), "held_out_pairs": len(held), "k": cfg.k, "rejective_sampling": counts,
        "fine_tuning": training, "held_out_before": before, "held_out_after": after})
    print((Path(cfg.output) / "summary.json").read_text())
    return 0


@dataclass
class OnlineRLConfig(TuningConfig):
    """Rule-based online RL of a local judge (DeepSeek-GRM's SPCT, stage 2; rewardkit.judge.online): GRPO (TRL) on
    the judge prompts of labelled pairs in both answer orders, reward +1 when a sampled critique's verdict names the
    labelled better response and -1 otherwise (unparsed included), a KL penalty to the starting judge, LoRA merged
    afterwards; compares the judge before and after on held-out pairs (greedy, both orders). Start from a judge
    that writes the verdict format (e.g. after `judge rft`): a group whose samples all earn the same reward teaches
    nothing. Writes OUTPUT/judge and OUTPUT/summary.json (with the reward and KL of every step)."""

    output: str = "runs/judge-rl"
    """output directory"""
    steps: int = 20
    """GRPO optimizer steps"""
    prompts_per_step: int = 2
    """judge questions per step"""
    num_generations: int = 4
    """critiques sampled per question (GRPO's group)"""
    temperature: float = 1.0
    """sampling temperature of the critiques"""
    lr: float = 1e-5
    """learning rate"""
    beta: float = 0.04
    """KL coefficient (TRL's k3 in the loss)"""


def run_online_rl(cfg: OnlineRLConfig) -> int:
    from rewardkit.generation.local import plain_lm_directory
    from rewardkit.judge import load_judge
    from rewardkit.judge.online import judge_questions, train_online
    from rewardkit.judge.tuning import greedy_comparison, save_tuned_judge, scratch_directory

    if cfg.num_generations < 2:
        raise ConfigError(f"--num-generations must be at least 2 (GRPO compares samples), got {cfg.num_generations}")
    train, held = tuning_split(cfg)
    judge = load_judge(cfg.judge)
    before = greedy_comparison(judge.generator, held, cfg.max_new_tokens, cfg.seed, cfg.progress)
    rows = judge_questions(judge, train)
    del judge  # GRPO loads its own copy
    tmp = scratch_directory(Path(cfg.output))
    base = plain_lm_directory(cfg.judge.removeprefix("local:"), tmp / "base")
    training = train_online(base, rows, tmp, cfg.steps, cfg.prompts_per_step, cfg.num_generations, cfg.max_new_tokens,
                            cfg.temperature, cfg.lr, cfg.beta, cfg.lora_r, cfg.seed)
    after = greedy_comparison(load_judge(f"local:{tmp / 'judge'}").generator, held, cfg.max_new_tokens, cfg.seed,
                              cfg.progress)
    save_tuned_judge(tmp, Path(cfg.output), {
        "data": cfg.data, "eval_data": cfg.eval_data or f"{cfg.held_out:.0%} of data", "judge": cfg.judge,
        "train_pairs": len(train), "held_out_pairs": len(held), "online_rl": training,
        "held_out_before": before, "held_out_after": after})
    print((Path(cfg.output) / "summary.json").read_text())
    return 0


def register(commands: dict[str, Command]) -> None:
    """Add the judge commands to the command table."""
    commands["judge label"] = Command(JudgeLabelConfig, run_label,
                                      "label preference pairs with a generative judge (soft labels to distil)")
    commands["judge meta-data"] = Command(MetaDataConfig, run_meta_data,
                                          "critiques labelled right or wrong: training data for a meta reward model")
    commands["judge grade"] = Command(GradeConfig, run_grade, "grade responses against a rubric (1-5) with a judge")
    commands["judge rft"] = Command(RFTConfig, run_rft, "rejective fine-tuning of a local judge on its right critiques")
    commands["judge rl"] = Command(OnlineRLConfig, run_online_rl,
                                   "online RL of a local judge (GRPO) with a +1/-1 reward for the labelled verdict")
