"""`rewardkit bon` and `rewardkit rejection-sample`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tyro.conf import Positional

from rewardkit.config import Command, ConfigError
from rewardkit.options import Precision, Progress, ScoringBatchSize, Threads


@dataclass
class BonConfig:
    """Best-of-N: score every candidate of each prompt and choose one. Candidates come from a file (--candidates:
    records with prompt and responses [M], optional gold [M]) or are generated (--prompts: records with a prompt)
    by a local model (--generator local:smollm2, a directory or .gguf) or an OpenAI-compatible server
    (--generator http://HOST:PORT/v1 --server-model NAME, key from $OPENAI_API_KEY). Writes OUTPUT (one record per
    prompt: the chosen candidate and every candidate with its score), OUTPUT.summary.json and a page OUTPUT.html; with
    gold values, also the over-optimisation curve (in the summary and the page, and OUTPUT.curve.png)."""

    model: Positional[str]
    """the scorer: a rewardkit model or ensemble directory, or a local Hugging Face reward model (sequence or process)"""
    candidates: str = ""
    """a file of pools: prompt, responses [M] (texts, or lists of steps), optional gold [M] and id"""
    prompts: str = ""
    """a file of prompts to generate N candidates for (instead of --candidates)"""
    output: str = "bon.jsonl"
    """where the chosen and scored candidates go"""
    n: int = 8
    """candidates to generate per prompt"""
    generator: str = "local:smollm2"
    """local:MODEL (a directory, a .gguf file or smollm2) or an OpenAI-compatible base URL (http://host:port/v1)"""
    server_model: str = ""
    """the model name to ask an OpenAI-compatible server for"""
    api_key_env: str = "OPENAI_API_KEY"
    """environment variable holding the server's API key (sent only when set)"""
    concurrency: int = 8
    """requests in flight to a server"""
    timeout: float = 120.0
    """seconds per request before it is retried"""
    retries: int = 4
    """retries per request (timeouts, 429, 5xx, malformed bodies), with exponential back-off"""
    max_new_tokens: int = 256
    """longest candidate to generate, in tokens"""
    temperature: float = 1.0
    """sampling temperature (0 = greedy)"""
    top_p: float = 1.0
    """nucleus sampling: keep the smallest set of tokens with this much probability"""
    seed: int = 0
    """sampling seed (sample j of prompt i uses seed + i * 100003 + j; a server may ignore it)"""
    generation_batch_size: int = 16
    """a local model's samples per forward pass"""
    rule: Literal["mean", "lcb", "min"] = "mean"
    """choose by the reward (an ensemble's mean), by mean - k * std over the members, or by the members' minimum"""
    k: float = 1.0
    """the k of the lcb rule"""
    steps_separator: str = ""
    """cut text candidates into steps at this string for a process reward model (e.g. a newline); empty = as given"""
    gold_model: str = ""
    """a stronger scorer whose scores are the gold of the curve, for pools with no gold values (no rule exists)"""
    curve: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16, 32, 64])
    """n at which to report the over-optimisation curve (needs gold values)"""
    batch_size: ScoringBatchSize = 32
    precision: Precision = "fp32"
    threads: Threads = 0
    progress: Progress = True


def make_generator(cfg: BonConfig):
    from rewardkit.generation import load_generator

    if cfg.generator.startswith(("http://", "https://")):
        if not cfg.server_model:
            raise ConfigError("an OpenAI-compatible server needs --server-model NAME (the model it serves)")
        return load_generator(cfg.generator, model=cfg.server_model, api_key_env=cfg.api_key_env,
                              concurrency=cfg.concurrency, timeout=cfg.timeout, retries=cfg.retries)
    return load_generator(cfg.generator, batch_size=cfg.generation_batch_size)


def run_bon(cfg: BonConfig) -> int:
    from rewardkit.bon import best_of_n
    from rewardkit.bon.overopt import write_outputs
    from rewardkit.bon.pools import generate_pools, gold_from, read_pools, read_prompts, score_pools
    from rewardkit.data.io import write_records
    from rewardkit.eval.scorers import load_scorer
    from rewardkit.generation import Sampling
    from rewardkit.model.backbone import set_threads

    if bool(cfg.candidates) == bool(cfg.prompts):
        raise ConfigError("give either --candidates FILE (pools to choose from) or --prompts FILE (to generate for)")
    set_threads(cfg.threads)
    if cfg.candidates:
        pools, provenance = read_pools(cfg.candidates), {"candidates": cfg.candidates}
    else:
        sampling = Sampling(cfg.max_new_tokens, cfg.temperature, cfg.top_p, cfg.seed)
        pools, provenance = generate_pools(make_generator(cfg), read_prompts(cfg.prompts), cfg.n, sampling, cfg.progress)
    if cfg.gold_model:
        gold_from(load_scorer(cfg.gold_model, cfg.batch_size, progress=cfg.progress, precision=cfg.precision), pools,
                  cfg.steps_separator)
        provenance["gold_model"] = cfg.gold_model
    scorer = load_scorer(cfg.model, cfg.batch_size, progress=cfg.progress, precision=cfg.precision)
    provenance["scorer"] = scorer.path or scorer.name
    records, counts = best_of_n(pools, score_pools(scorer, pools, cfg.steps_separator), cfg.rule, cfg.k, provenance)
    output = Path(cfg.output)
    write_records(output, records)
    for r in write_outputs(records, counts, pools, provenance, scorer.name, cfg.rule, cfg.curve, output):
        print(f"n={r['n']:<3} KL bound {r['kl_bound']:.3f}  proxy {r['proxy']:8.3f}  gold {r['gold']:.3f}  "
              f"gold-best of n {r['gold_oracle']:.3f}")
    print(f"best-of-N: {counts.get('pools', 0)} prompts, {counts.get('candidates', 0)} candidates "
          f"({counts.get('failed', 0)} failed, {counts.get('empty', 0)} empty), {counts.get('ties', 0)} tie(s) at the top, "
          f"{counts.get('no_candidate', 0)} prompt(s) with nothing to choose -> {output}")
    return 0


@dataclass
class RejectionConfig:
    """Rejection sampling: training data from best-of-N output (rewardkit bon). Keeps each prompt's top-k
    candidates above a score threshold or quantile as SFT records (prompt, completion) and, with --pairs, one
    preference pair per prompt (prompt, chosen, rejected) for the next round of reward-model or DPO training.
    Every record carries its provenance (generator, scorer, rule, scores, N)."""

    scored: Positional[str]
    """a `rewardkit bon` output file"""
    output: str = "rejection-sampled"
    """directory for sft.jsonl, pairs.jsonl and summary.json"""
    top_k: int = 1
    """candidates kept per prompt (0 = every one above the cut)"""
    threshold: float | None = None
    """keep only candidates whose selection value is at least this"""
    quantile: float | None = None
    """keep only candidates at or above this quantile of all scored candidates' values (e.g. 0.75)"""
    pairs: Literal["", "best-worst", "best-random"] = ""
    """also write preference pairs: the best against the worst, or against a random other candidate"""
    min_margin: float = 0.0
    """a pair's two values must differ by more than this"""
    seed: int = 0
    """seed of the random partner in best-random pairs"""


def run_rejection(cfg: RejectionConfig) -> int:
    from rewardkit.bon import rejection_sample
    from rewardkit.data.io import iter_raw, write_records
    from rewardkit.errors import DataError

    if cfg.quantile is not None and not 0 <= cfg.quantile <= 1:
        raise ConfigError(f"--quantile must be in [0, 1], got {cfg.quantile}")
    records = []
    for line, raw in iter_raw(cfg.scored):
        if not isinstance(raw, dict) or not isinstance(raw.get("candidates"), list) or "provenance" not in raw:
            raise DataError("not a `rewardkit bon` record (needs candidates and provenance)", source=cfg.scored, line=line)
        records.append(raw)
    sft, pairs, counts = rejection_sample(records, cfg.top_k, cfg.threshold, cfg.quantile, cfg.pairs, cfg.min_margin,
                                          cfg.seed)
    output = Path(cfg.output)
    write_records(output / "sft.jsonl", sft)
    if cfg.pairs:
        write_records(output / "pairs.jsonl", pairs)
    (output / "summary.json").write_text(json.dumps({"scored": cfg.scored, **counts}, indent=2))
    print(f"rejection sampling: {len(sft)} SFT record(s){f', {len(pairs)} pair(s)' if cfg.pairs else ''} from "
          f"{counts['prompts']} prompt(s); cut {counts['cut']}; {', '.join(f'{k}: {v}' for k, v in counts.items() if k not in ('prompts', 'sft', 'pairs', 'cut')) or 'nothing left out'} -> {output}")
    return 0


def register(commands: dict[str, Command]) -> None:
    """Add bon and rejection-sample to the command table."""
    commands["bon"] = Command(BonConfig, run_bon, "best-of-N: score candidates (from a file or generated) and choose")
    commands["rejection-sample"] = Command(RejectionConfig, run_rejection,
                                           "training data (SFT records, preference pairs) from best-of-N output")
