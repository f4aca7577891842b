"""A generative judge against a scalar reward model on the same held-out pairs: accuracy at several k, with and
without a meta reward model, position flips, parse failures and seconds per judgement.

    python bench/judge_eval.py --judge local:smollm2 --rm runs/demo/run [--pairs 24] [--k 1,4,16]
        [--meta runs/meta-rm]

Pairs: the built-in tasks on held-out templates (rewardkit.data.synth, 'mix'), or --data FILE. For each k the
judge compares every pair k times in the given order and k times swapped (rewardkit.judge.Judge.compare):
accuracy = share of pairs whose vote share for the labelled-better response is above 1/2 (a tie or no parsed vote
counts as wrong), with both orders and with the given order only; position-flip rate = pairs whose majority verdict
changes with the order; parse-failure rate = votes that did not parse. k = 1 is one greedy vote per order; larger
k are sampled (temperature 0.7) once, at the largest k, and Voting@k counts the first k samples of each question
(sampled votes are independent, so these are k fresh votes; the seconds of a k are its share of that generation
plus its own parsing and meta scoring). With --meta (a meta reward model from `rewardkit judge meta-data` + `rewardkit train`) every sampled
k also runs as MetaRM@k: only the k/2 critiques per order the meta RM rates highest are voted, on the same samples.
The scalar reward model scores the same responses (rk.score) for its accuracy and its seconds per pair. Writes
bench/results/judge_eval.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class FirstSamples:
    """A generator that samples n answers per prompt once and serves any later request for k <= n samples of that
    prompt with its first k, so Voting@k for several k (and MetaRM@k) read one set of samples."""

    def __init__(self, generator, n: int):
        self.generator, self.n, self.name = generator, n, generator.name
        self.cache: dict[str, list] = {}
        self.seconds = 0.0  # spent generating

    def generate(self, prompts, n, sampling, progress=False):
        from rewardkit.generation.base import Generated

        missing = [p for p in dict.fromkeys(prompts) if p not in self.cache]
        if missing:
            started = time.perf_counter()
            self.cache.update(zip(missing, self.generator.generate(missing, self.n, sampling, progress).samples, strict=True))
            self.seconds += time.perf_counter() - started
        return Generated([self.cache[p][:n] for p in prompts], {"generator": self.name})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--judge", default="local:smollm2")
    parser.add_argument("--rm", default="", help="a scalar reward model to compare with (optional)")
    parser.add_argument("--data", default="", help="pairwise records (default: built-in held-out pairs)")
    parser.add_argument("--pairs", type=int, default=24)
    parser.add_argument("--k", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4, 16])
    parser.add_argument("--meta", default="", help="a meta reward model: also run MetaRM@k (k/2 kept) for every k > 1")
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "judge_eval.json"))
    args = parser.parse_args()

    import torch

    import rewardkit as rk
    from rewardkit.data.synth import generate
    from rewardkit.eval.scorers import load_scorer
    from rewardkit.generation import Sampling
    from rewardkit.judge import Judge, load_judge
    from rewardkit.model.machine import machine_info

    torch.set_num_threads(args.threads)
    pairs = list(rk.iter_records(args.data)) if args.data else generate("mix", args.pairs, 0, "test")
    pairs = [p for p in pairs if p.get("chosen") is not None][: args.pairs]
    triples = [(p["prompt"], p["chosen"], p["rejected"]) for p in pairs]
    result = {"benchmark": "judge_eval", "judge": args.judge, "meta": args.meta, "pairs": len(pairs), "max_new_tokens": args.max_new_tokens,
              "data": args.data or "built-in mix, held-out templates", "machine": machine_info(), "judge_runs": []}
    generator = load_judge(args.judge).generator
    sampled = FirstSamples(generator, max(args.k))
    meta = load_scorer(args.meta, progress=False) if args.meta else None
    runs = [(k, 0) for k in args.k] + ([(k, k // 2) for k in args.k if k > 1] if meta else [])
    for k, k_meta in runs:
        judge = Judge(sampled if k > 1 else generator, k, meta=meta if k_meta else None, k_meta=k_meta)
        judge.sampling = Sampling(args.max_new_tokens, 0.0 if k == 1 else 0.7, 1.0, 0)
        started, generating = time.perf_counter(), sampled.seconds
        verdicts = judge.compare(triples, both_orders=True, progress=True)
        seconds = time.perf_counter() - started
        if k > 1:  # this k's share of the one generation, plus its own parsing and meta scoring
            seconds += sampled.seconds * k / sampled.n - (sampled.seconds - generating)
        first_order = [[v for v in verdict.votes[:k] if v is not None] for verdict in verdicts]  # the given order's votes
        value = {"first": 1.0, "second": 0.0, "tie": 0.5}
        one_order = [sum(value[v] for v in votes) / len(votes) > 0.5 if votes else False for votes in first_order]
        row = {"k": k, "k_meta": k_meta, "accuracy_both_orders": sum((v.p_first or 0) > 0.5 for v in verdicts) / len(verdicts),
               "accuracy_given_order_only": sum(one_order) / len(one_order),
               "position_flip_rate": sum(v.flip for v in verdicts) / len(verdicts),
               "parse_failure_rate": sum(v.failures for v in verdicts) / (len(verdicts) * 2 * k),
               "pairs_without_a_parsed_vote": sum(v.p_first is None for v in verdicts),
               "seconds": round(seconds, 1), "seconds_per_pair": round(seconds / len(verdicts), 3),
               "seconds_per_vote": round(seconds / (len(verdicts) * 2 * k), 3)}
        result["judge_runs"].append(row)
        print(json.dumps(row), flush=True)
    if args.rm:
        model = rk.load_model(args.rm)
        items = [(p, r) for p, a, b in triples for r in (a, b)]
        started = time.perf_counter()
        scores = rk.score(model, items).values
        seconds = time.perf_counter() - started
        result["scalar_rm"] = {"path": args.rm, "accuracy": sum(scores[2 * i] > scores[2 * i + 1] for i in range(len(triples))) / len(triples),
                               "seconds": round(seconds, 3), "seconds_per_pair": round(seconds / len(triples), 4)}
        print(json.dumps(result["scalar_rm"]))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
