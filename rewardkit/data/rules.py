"""Prompts whose answers a rule can check: the gold a reward model never sees, for RL runs and best-of-N.

A rule is a name and an argument, stored with the prompt (`rule`, `arg`), so a prompt row can travel through a
dataset and an RL engine and still be judged: `gold(rule, arg, text)` is 1.0 when the text obeys, else 0.0.
    answer      the last integer in the text is `arg`              (arithmetic)
    uppercase   every letter is a capital, and there are some       ("Reply in capital letters only")
    max_words   1 to `arg` words                                    ("In at most N words")
    keyword     the word `arg` occurs (any case)                    ("... that includes the word 'K'")
    no_commas   some text and no comma                              ("... without using any commas")
    one_word    exactly one word                                    ("Give a one-word answer")
The phrasings are those of the built-in instruction pairs (rewardkit.data.synth), so a reward model trained on
them has seen what each constraint looks like, but never the rule.
"""

from __future__ import annotations

import random
import re

from rewardkit.data.synth import KEYWORDS, TOPICS, _arith_problem, _arith_solution

RULES = ("answer", "uppercase", "max_words", "keyword", "no_commas", "one_word")


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9']+", text)


def gold(rule: str, arg, text: str) -> float:
    """1.0 when `text` obeys the rule, else 0.0."""
    if rule == "answer":
        numbers = re.findall(r"-?\d+", text.replace(",", ""))
        return float(bool(numbers) and int(numbers[-1]) == int(arg))
    if rule == "uppercase":
        letters = [c for c in text if c.isalpha()]
        return float(len(letters) >= 3 and all(c.isupper() for c in letters))
    if rule == "max_words":
        return float(1 <= len(_words(text)) <= int(arg))
    if rule == "keyword":
        return float(str(arg).lower() in (w.lower() for w in _words(text)))
    if rule == "no_commas":
        return float(bool(text.strip()) and "," not in text)
    if rule == "one_word":
        return float(len(_words(text)) == 1)
    raise ValueError(f"unknown rule {rule!r}; choose from {', '.join(RULES)}")


def _instruction(rng: random.Random) -> dict:
    topic = rng.choice(TOPICS)
    rule = rng.choice(RULES[1:])
    if rule == "uppercase":
        return {"prompt": f"Reply in capital letters only: describe {topic} briefly.", "rule": rule, "arg": None}
    if rule == "max_words":
        n = rng.randint(5, 12)
        return {"prompt": f"In at most {n} words, tell me about {topic}.", "rule": rule, "arg": n}
    if rule == "keyword":
        word = rng.choice(KEYWORDS)
        return {"prompt": f"Write one sentence about {topic} that includes the word '{word}'.", "rule": rule, "arg": word}
    if rule == "no_commas":
        return {"prompt": f"Describe {topic} in one sentence without using any commas.", "rule": rule, "arg": None}
    return {"prompt": f"Give a one-word answer: what is {topic} best known for?", "rule": rule, "arg": None}


def _arithmetic(rng: random.Random, split: str) -> dict:
    if rng.random() < 0.5:  # one operation: within reach of a small model
        a, b = rng.randint(2, 30), rng.randint(2, 30)
        return {"prompt": f"What is {a} + {b}? Reply with the number.", "rule": "answer", "arg": a + b}
    template, values = _arith_problem(rng, split)
    _, answer = _arith_solution(template, values, None, rng)
    return {"prompt": template[0].format(**values), "rule": "answer", "arg": answer}


def rule_prompts(task: str, n: int, seed: int = 0, split: str = "train") -> list[dict]:
    """n prompt rows {prompt, rule, arg (a string), task} of 'arithmetic', 'instructions' or 'mix' (alternating); arithmetic
    word problems keep the train / test template split of rewardkit.data.synth."""
    if task not in ("arithmetic", "instructions", "mix"):
        raise ValueError(f"task must be arithmetic, instructions or mix, got {task!r}")
    rng = random.Random(f"rules:{task}:{split}:{seed}")
    rows = []
    for i in range(n):
        kind = task if task != "mix" else ("arithmetic", "instructions")[i % 2]
        row = _arithmetic(rng, split) if kind == "arithmetic" else _instruction(rng)
        rows.append({**row, "arg": "" if row["arg"] is None else str(row["arg"]), "task": kind})  # one column type
    return rows
