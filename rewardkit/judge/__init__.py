"""Generative judges: an LLM (local or behind an OpenAI-compatible server) that rates responses or compares two,
with strict parsing, both answer orders and Voting@k; usable as a scorer by eval and bon, and as a labeller whose
soft verdicts a scalar reward model is trained on (distillation)."""

from rewardkit.judge.judge import Judge, Ratings, Verdict
from rewardkit.judge.parse import parse_scores, parse_verdict

__all__ = ["Judge", "Ratings", "Verdict", "load_judge", "parse_scores", "parse_verdict"]


def load_judge(spec: str, k: int = 1, **generator_options) -> Judge:
    """A judge from 'local:MODEL' or 'http(s)://HOST/v1#MODEL' (an OpenAI-compatible server and the model it serves);
    a suffix '@K' asks for K votes in place of `k`."""
    from rewardkit.generation import load_generator

    head, _, votes = spec.rpartition("@")
    if head and votes.isdigit():
        spec, k = head, int(votes)
    if spec.startswith(("http://", "https://")):
        url, _, model = spec.partition("#")
        if not model:
            raise ValueError(f"a judge on a server is URL#MODEL, got {spec!r}")
        return Judge(load_generator(url, model=model, **generator_options), k)
    return Judge(load_generator(spec, **generator_options), k)
