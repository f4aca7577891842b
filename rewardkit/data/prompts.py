"""Prompts as keys: grouping records by prompt, and seeded splits and samples that keep a prompt's records
together (so no prompt of a held-out split is seen in training, and a bootstrap resamples a prompt's pairs
together).

A prompt's key is its JSON text: a string prompt is itself, a conversation its messages in order.
"""

from __future__ import annotations

import json
import random
from typing import Any


def prompt_key(prompt: Any) -> str:
    return json.dumps(prompt)


def group_by_prompt(records: list[dict]) -> dict[str, list[dict]]:
    """Records by prompt key, in first-seen order."""
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(prompt_key(r.get("prompt")), []).append(r)
    return groups


def split_by_prompt(records: list[dict], fraction: float = 0.2, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(kept, held out): a seeded shuffle of the distinct prompts, the first `fraction` of them held out."""
    prompts = sorted({prompt_key(r.get("prompt")) for r in records})
    random.Random(seed).shuffle(prompts)
    held = set(prompts[: int(len(prompts) * fraction + 1e-9)])
    return ([r for r in records if prompt_key(r.get("prompt")) not in held],
            [r for r in records if prompt_key(r.get("prompt")) in held])


def sample_by_prompt(records: list[dict], limit: int, seed: int = 0) -> list[dict]:
    """At most about `limit` records (0 = all), whole prompts drawn in a seeded order."""
    if not limit or len(records) <= limit:
        return records
    groups = group_by_prompt(records)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    out: list[dict] = []
    for key in keys:
        if len(out) >= limit:
            break
        out.extend(groups[key])
    return out


def comparable_forms(prompt: Any) -> set[str]:
    """Forms of a prompt to match across data sets: all its text, and its last user turn, without roles, case or
    spacing, so that 'How do I ...?' in one set matches [{"role": "user", "content": "How do I ...?"}] in another."""
    def norm(text: str) -> str:
        return " ".join(str(text).lower().split())

    if isinstance(prompt, list):
        keys = {norm(" ".join(str(m.get("content", "")) for m in prompt))}
        users = [m for m in prompt if m.get("role") == "user"]
        if users:
            keys.add(norm(users[-1].get("content", "")))
        return keys - {""}
    return {norm(prompt)} - {""}
