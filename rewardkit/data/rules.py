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

from rewardkit.data.synth import (
    ARITH_OPENERS,
    BENIGN,
    COMPLIANCE,
    FACT_SENTENCES,
    FACTS,
    HARMFUL,
    KEYWORDS,
    PADDING,
    REFUSALS,
    TOPICS,
    _arith_problem,
    _arith_solution,
    _templates,
)

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
    """A constraint prompt {prompt, rule, arg, topic}; arg is a string ("" when the rule takes none)."""
    topic = rng.choice(TOPICS)
    rule = rng.choice(RULES[1:])
    if rule == "uppercase":
        prompt, arg = f"Reply in capital letters only: describe {topic} briefly.", ""
    elif rule == "max_words":
        arg = str(rng.randint(5, 12))
        prompt = f"In at most {arg} words, tell me about {topic}."
    elif rule == "keyword":
        arg = rng.choice(KEYWORDS)
        prompt = f"Write one sentence about {topic} that includes the word '{arg}'."
    elif rule == "no_commas":
        prompt, arg = f"Describe {topic} in one sentence without using any commas.", ""
    else:
        prompt, arg = f"Give a one-word answer: what is {topic} best known for?", ""
    return {"prompt": prompt, "rule": rule, "arg": arg, "topic": topic}


def _arithmetic(rng: random.Random, split: str) -> dict:
    if rng.random() < 0.5:  # one operation: within reach of a small model
        a, b = rng.randint(2, 30), rng.randint(2, 30)
        return {"prompt": f"What is {a} + {b}? Reply with the number.", "rule": "answer", "arg": str(a + b)}
    template, values = _arith_problem(rng, split)
    _, answer = _arith_solution(template, values, None, rng)
    return {"prompt": template[0].format(**values), "rule": "answer", "arg": str(answer)}


def rule_prompts(task: str, n: int, seed: int = 0, split: str = "train") -> list[dict]:
    """n prompt rows {prompt, rule, arg (a string: one column type for a dataset), task} of 'arithmetic', 'instructions' or 'mix' (alternating); arithmetic
    word problems keep the train / test template split of rewardkit.data.synth."""
    if task not in ("arithmetic", "instructions", "mix"):
        raise ValueError(f"task must be arithmetic, instructions or mix, got {task!r}")
    rng = random.Random(f"rules:{task}:{split}:{seed}")
    rows = []
    for i in range(n):
        kind = task if task != "mix" else ("arithmetic", "instructions")[i % 2]
        row = _arithmetic(rng, split) if kind == "arithmetic" else _instruction(rng)
        rows.append({**row, "task": kind})
    return rows


# ---------------------------------------------------------------- best-of-n pools


POOL_TASKS = ("arithmetic", "facts", "instructions", "safety")


def _instruction_candidate(rng: random.Random, row: dict, obey: bool) -> str:
    """A response to an instruction prompt that means to obey its rule or not (the rule decides the gold)."""
    facts = FACT_SENTENCES[row["topic"]][:]
    rng.shuffle(facts)
    rule, arg = row["rule"], row["arg"]
    if rule == "uppercase":
        return (facts[0].upper() if obey else facts[0]) + "."
    if rule == "max_words":
        return " ".join(facts[0].split()[:int(arg)]) + "." if obey else " ".join(f + "." for f in facts)
    if rule == "keyword":
        return f"{facts[0]}, which is {arg}." if obey else f"{facts[0]}."
    if rule == "no_commas":
        return f"{facts[0]}." if obey else f"{facts[0]}, {facts[1].lower()}, {facts[2].lower()}."
    return facts[0].split()[-1] if obey else f"{facts[0]}."


def candidate_pools(task: str, n: int, m: int, seed: int = 0, split: str = "test") -> list[dict]:
    """n prompts with m sampled candidates each and a gold value per candidate (1 = right, 0 = wrong) that a rule
    decides, for best-of-n and over-optimisation curves. A simulated policy: about half the candidates mean to be
    right; a third carry filler sentences (confident, thorough-sounding, unrelated to being right), the kind of
    surface a proxy reward model can learn to like. arithmetic: solutions as lists of steps (an error at a random
    step makes the answer wrong); facts: one-line answers (the length-trap questions); instructions: responses to
    the constraint prompts above, judged by gold() on the final text (so filler can break a constraint); safety:
    harmful requests (right: a refusal) and benign ones that sound harmful (right: the help, not a refusal)."""
    if task not in POOL_TASKS:
        raise ValueError(f"candidate pools exist for {', '.join(POOL_TASKS)}, not {task!r}")
    rng = random.Random(f"pools:{task}:{split}:{seed}")
    pools = []
    for i in range(n):
        if task == "arithmetic":
            template, values = _arith_problem(rng, split)
            prompt, n_ops = template[0].format(**values), len(template[1])
        elif task == "facts":
            question, rows = rng.choice(_templates(FACTS, split))
            x, right, wrong = rng.choice(rows)
            prompt = question.format(x=x)
        elif task == "safety":
            harmful = rng.random() < 0.5
            template, things, *answer = rng.choice(_templates(HARMFUL if harmful else BENIGN, split))
            prompt = template.format(thing=rng.choice(things))
        else:
            row = _instruction(rng)
            prompt = row["prompt"]
        responses, golds = [], []
        for _ in range(m):
            is_right = rng.random() < 0.5
            filler = rng.sample(PADDING, k=rng.randint(1, 2)) if rng.random() < 1 / 3 else []
            if task == "arithmetic":
                steps, _ = _arith_solution(template, values, None if is_right else rng.randrange(n_ops), rng)
                responses.append([rng.choice(ARITH_OPENERS), *steps, *filler])
                golds.append(1.0 if is_right else 0.0)
            elif task == "facts":
                responses.append(" ".join([*filler, f"The answer is {right if is_right else wrong}."]))
                golds.append(1.0 if is_right else 0.0)
            elif task == "safety":
                refuse = is_right == harmful  # the right move refuses a harmful request and helps with a benign one
                reply = rng.choice(REFUSALS) if refuse else rng.choice(COMPLIANCE) if harmful else answer[0]
                responses.append(" ".join([*filler, reply]))
                golds.append(1.0 if is_right else 0.0)
            else:
                text = " ".join([*filler, _instruction_candidate(rng, row, is_right)])
                responses.append(text)
                golds.append(gold(row["rule"], row["arg"], text))
        pools.append({"prompt": prompt, "responses": responses, "gold": golds, "id": f"pools-{task}-{split}-{seed}-{i}",
                      "category": task, **({"rule": row["rule"], "arg": row["arg"]} if task == "instructions" else {})})
    return pools
