"""What every generation backend shares: a prompt in, n sampled responses out, failures kept as failures.

A *prompt* is a string (one user turn) or a list of chat messages ({role, content}). A backend returns, per prompt,
n Samples in a fixed order; a sample whose generation failed has text None and says why in `error`, so one bad
request never loses the samples already made. `Sampling.seed` makes a run repeatable where the backend honours it:
sample j of prompt i draws with seed + i * 100_003 + j (a local model always; a server when it supports seeds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

Prompt = str | list[dict]


@dataclass(frozen=True)
class Sampling:
    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = 0

    def sample_seed(self, prompt_index: int, sample_index: int) -> int | None:
        return None if self.seed is None else self.seed + prompt_index * 100_003 + sample_index


@dataclass
class Sample:
    text: str | None
    error: str | None = None
    finish_reason: str | None = None  # 'stop' (an end token) or 'length' (max_new_tokens), as servers report it
    tokens: int | None = None


@dataclass
class Generated:
    """Per prompt, its samples (n each); `info` names the generator for provenance."""

    samples: list[list[Sample]]
    info: dict = field(default_factory=dict)

    @property
    def failures(self) -> int:
        return sum(s.text is None for row in self.samples for s in row)


class Generator(Protocol):
    name: str

    def generate(self, prompts: list[Prompt], n: int, sampling: Sampling, progress: bool = False) -> Generated:
        """n samples for each prompt, in prompt order."""
        ...


def as_messages(prompt: Prompt) -> list[dict]:
    """A prompt as chat messages: a string is one user turn."""
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
