"""The server's wire protocol: JSON request bodies checked and turned into (prompt, response) items.

Plain functions over the decoded JSON, with no web framework: the adapters (OpenRLHF's query splitting)
use them in-process too. Every problem is a RequestError whose message names the offending field, with
the HTTP status the server answers: 400 malformed JSON, 413 too large, 422 invalid fields.
"""

from __future__ import annotations

import json

import numpy as np

from rewardkit.data.texts import Steps, check_text, is_conversation, text_steps
from rewardkit.errors import DataError
from rewardkit.scores import probability


class RequestError(Exception):
    """A request the server refuses, with the HTTP status to answer and a message for the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def parse_body(raw: bytes, max_body_mb: float) -> dict:
    """The request body as a JSON object; 413 above `max_body_mb` (a body sent without Content-Length
    reaches here whole), 400 when it is not a JSON object."""
    if len(raw) > max_body_mb * 2 ** 20:
        raise RequestError(413, f"request body exceeds --max-body-mb {max_body_mb}")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RequestError(400, f"malformed JSON: {err}") from None
    if not isinstance(data, dict):
        raise RequestError(400, "the request body must be a JSON object")
    return data


def _field(data: dict, name: str, kind: type, required: bool = True):
    """data[name] checked to be a `kind`; None when absent and not required."""
    if name not in data:
        if required:
            raise RequestError(422, f"field '{name}' is required")
        return None
    if not isinstance(data[name], kind):
        raise RequestError(422, f"field '{name}' must be a {kind.__name__}")
    return data[name]


def _text(value, where: str, allow_empty: bool = True) -> str:
    """A text field checked as records' texts are; `where` names it in the error."""
    try:
        return check_text(value, where, allow_empty=allow_empty)
    except DataError as err:
        raise RequestError(422, str(err)) from None


def split_query(query: str, prompt: str | None, strip_tokens: tuple[str, ...]) -> tuple[str, str]:
    """OpenRLHF sends prompt + response as one string: trailing pad/eos tokens are stripped and the prompt
    (when given and a prefix of the query) is split off, so the model sees the same (prompt, response)
    split it was trained on."""
    text = query
    changed = True
    while changed:
        changed = False
        for token in strip_tokens:
            if token and text.endswith(token):
                text, changed = text[: -len(token)], True
    if prompt and text.startswith(prompt):
        return prompt, text[len(prompt):]
    return "", text


def reward_items(data: dict, strip_tokens: tuple[str, ...]) -> list[tuple]:
    """POST /get_reward (OpenRLHF): {"query": [...], "prompts": [...] optional, "step_separator": optional} ->
    (prompt, response) items; with a step separator, (prompt, Steps) items: each response cut into steps there,
    for a process reward model."""
    separator = _field(data, "step_separator", str, required=False)
    if separator == "":
        raise RequestError(422, "'step_separator' must not be empty")
    queries = _field(data, "query", list)
    prompts = _field(data, "prompts", list, required=False)
    if prompts is not None and len(prompts) != len(queries):
        raise RequestError(422, f"'prompts' has {len(prompts)} entries for {len(queries)} queries")
    items = []
    for i, query in enumerate(queries):
        query = _text(query, f"query[{i}]")
        prompt = _text(prompts[i], f"prompts[{i}]") if prompts is not None else None
        items.append(split_query(query, prompt, strip_tokens))
    if separator is not None:
        items = [(prompt, Steps(text_steps(response, separator))) for prompt, response in items]
    return items


def step_statistics(step_scores: list[list[float]]) -> dict[str, list[float]]:
    """Per-solution numbers that stand for its step rewards where a framework takes one number per sample (OpenRLHF's
    extra_logs, verl's reward_extra_info): how many steps were scored, the lowest step's P(right), and the first
    step with P(right) < 0.5 (-1 when none)."""
    probs = [probability(steps) if steps else np.ones(1) for steps in step_scores]
    return {"steps": [float(len(x)) for x in step_scores],
            "lowest_step_probability": [float(p.min()) for p in probs],
            "first_weak_step": [float(np.argmax(p < 0.5)) if (p < 0.5).any() else -1.0 for p in probs]}


def process_reward_fields(raw: list[float], step_scores: list[list[float]], aggregate: str) -> tuple[list[float], dict]:
    """OpenRLHF's "scores" in [0, 1] and extra_logs for process rewards: the step statistics beside the raw reward. A
    score is P(every step right) for the product aggregate (a sum of log probabilities), else the sigmoid of the
    aggregate logit."""
    scores = np.exp(raw) if aggregate == "product" else probability(raw)
    return np.asarray(scores, dtype=float).tolist(), {"raw_reward": list(raw), **step_statistics(step_scores)}


def score_request(data: dict) -> tuple[list[tuple], bool | None]:
    """POST /v1/score: {"inputs": [{"prompt", "response"} | {"messages"}], "normalize": bool optional} ->
    (items, normalize). A conversation's last turn, the assistant's, is the response; the turns before it
    are the prompt."""
    inputs = _field(data, "inputs", list)
    normalize = _field(data, "normalize", bool, required=False)
    items = []
    for i, entry in enumerate(inputs):
        if not isinstance(entry, dict):
            raise RequestError(422, f"inputs[{i}] must be an object with prompt/response or messages")
        if "messages" in entry:
            messages = entry["messages"]
            if not is_conversation(messages) or messages[-1].get("role") != "assistant":
                raise RequestError(422, f"inputs[{i}].messages must be a conversation ending with an assistant turn")
            items.append((messages[:-1], _text(messages[-1].get("content"), f"inputs[{i}].messages[-1].content")))
        else:
            items.append((_text(entry.get("prompt", ""), f"inputs[{i}].prompt"),
                          _text(entry.get("response"), f"inputs[{i}].response")))
    return items, normalize


def steps_request(data: dict) -> tuple[list[tuple], bool | None]:
    """POST /v1/steps: {"inputs": [{"prompt", "steps": [str, ...]}], "normalize": bool optional} -> (items,
    normalize), one item per solution: its prompt and its steps (rewardkit.model.steps)."""
    inputs = _field(data, "inputs", list)
    normalize = _field(data, "normalize", bool, required=False)
    items = []
    for i, entry in enumerate(inputs):
        if not isinstance(entry, dict) or not isinstance(entry.get("steps"), list) or not entry["steps"]:
            raise RequestError(422, f"inputs[{i}] must be an object with a prompt and a non-empty list of steps")
        steps = [_text(step, f"inputs[{i}].steps[{j}]", allow_empty=False) for j, step in enumerate(entry["steps"])]
        items.append((_text(entry.get("prompt", ""), f"inputs[{i}].prompt"), Steps(steps)))
    return items, normalize


def compare_items(data: dict) -> list[tuple[str, str]]:
    """POST /v1/compare: {"prompt", "responses": [2..K]} -> one (prompt, response) item per response."""
    prompt = _text(data.get("prompt", ""), "prompt")
    responses = _field(data, "responses", list)
    if len(responses) < 2:
        raise RequestError(422, "'responses' needs at least 2 responses")
    return [(prompt, _text(r, f"responses[{i}]")) for i, r in enumerate(responses)]
