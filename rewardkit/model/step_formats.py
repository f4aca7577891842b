"""Step formats: how public process reward models (PRMs) want a solution written, and where each step's score is.

Vocabulary
- A *solution* is a prompt and its steps (rewardkit.model.steps). A *step format* writes it the way one family of
  PRMs was trained to read it, as text (or chat messages) and token ids, and gives the *score positions*: for each
  step, in order, the token whose output holds that step's score. Steps that do not fit in `max_length` tokens are
  not scored, so a solution may have fewer positions than steps.
- The *read-out* is a pair of output columns (right, wrong) at a score position: the step's score is the log-odds
  out[right] - out[wrong], so P(step is right) = sigmoid(score) = the softmax over those two columns. The *head*
  says what the columns index: a token-classification PRM's two labels (1 = right, 0 = wrong), or a causal LM's
  vocabulary (the ids of its "good" and "bad" tokens).
- The formats (FORMATS; HEADS gives each one's head):
  separator      TRL's PRMTrainer and rewardkit: the BOS token where the tokenizer has one, the prompt, then each
                 step followed by the separator ("\\n" by default), every part tokenised on its own; a step's
                 score is at its separator's last token (rewardkit.model.text.TextEncoder.encode_steps).
  qwen           Qwen2.5-Math-PRM: a chat of a system turn, the prompt as the user turn and an assistant turn of
                 the steps, each followed by "<extra_0>"; tokenised whole; scores at the "<extra_0>" tokens.
  math-shepherd  f"{prompt} {step 1} ки\\n{step 2} ки…" (the last step ends with " ки"), tokenised whole with the
                 tokenizer's special tokens; scores at the "ки" tokens, P("+") against P("-").
  rlhflow        RLHFlow's PRMs: a chat where each step is a user turn (the first is the prompt, a space and the
                 step) answered by an assistant turn "+"; a step's score is at the token that predicts that "+",
                 P("+") against P("-").
- A marker (ки, <extra_0>) that also occurs in the prompt or a step would shift every score position after it, so a
  solution whose marker count differs from its step count is refused, not scored wrongly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rewardkit.data.texts import is_conversation, text_of
from rewardkit.errors import ConfigError, DataError, ModelError
from rewardkit.model.text import TextEncoder

TOKEN_CLASSIFICATION, CAUSAL_LM = "token-classification", "causal-lm"
LABEL_COLUMNS = (1, 0)  # (right, wrong) labels of a two-label token-classification PRM
QWEN_TAG, QWEN_SYSTEM = "<extra_0>", "Please reason step by step, and put your final answer within \\boxed{}."
SHEPHERD_TAG = "ки"


@dataclass(frozen=True)
class StepOptions:
    separator: str = "\n"        # separator format: what follows every step
    chat_template: bool = False  # separator format: the prompt goes through the tokenizer's chat template
    system: str = QWEN_SYSTEM    # qwen format: the system turn
    max_length: int = 4096       # tokens; later steps are not scored


@dataclass(frozen=True)
class StepInput:
    """One solution written in a step format."""

    text: str                      # what the model reads, as text (a chat rendered by its template)
    input_ids: list[int]
    positions: list[int]           # the score position of each step that fits, in step order
    columns: tuple[int, int]       # (right, wrong) output columns read at a score position
    messages: list[dict] | None = None


# ---------------------------------------------------------------- one function per format

def separator(tokenizer, prompt, steps: list[str], options: StepOptions) -> StepInput:
    """TRL's and rewardkit's layout; the ids are rewardkit's own encoding of a decoder solution, truncation included
    (the prompt is cut from the left first, then trailing steps are dropped)."""
    encoder = TextEncoder(tokenizer, options.max_length, is_decoder=True, chat_template=options.chat_template)
    encoded = encoder.encode_steps(prompt, steps, options.separator)
    return StepInput(tokenizer.decode(encoded.input_ids), encoded.input_ids, encoded.ends, LABEL_COLUMNS)


def qwen(tokenizer, prompt, steps: list[str], options: StepOptions) -> StepInput:
    """Qwen2.5-Math-PRM's model-card layout."""
    turns = list(prompt) if is_conversation(prompt) else [{"role": "user", "content": text_of(prompt)}]
    system = [] if turns and turns[0]["role"] == "system" else [{"role": "system", "content": options.system}]
    messages = system + turns + [{"role": "assistant", "content": "".join(step + QWEN_TAG for step in steps)}]
    text = _chat(tokenizer, messages, "qwen")
    ids = _ids(tokenizer, text)
    positions = _marked(ids, _one_token(tokenizer, QWEN_TAG), QWEN_TAG, len(steps))
    return _fit(StepInput(text, ids, positions, LABEL_COLUMNS, messages), options.max_length)


def math_shepherd(tokenizer, prompt, steps: list[str], options: StepOptions) -> StepInput:
    """Math-Shepherd's layout; its step tag is the last token of "ки", its columns the tokens of "+ -"."""
    text = f"{text_of(prompt)} " + "\n".join(f"{step} {SHEPHERD_TAG}" for step in steps)
    ids = tokenizer(text, verbose=False)["input_ids"]  # with special tokens, as its reference code encodes it
    positions = _marked(ids, _ids(tokenizer, SHEPHERD_TAG)[-1], SHEPHERD_TAG, len(steps))
    good_bad = _ids(tokenizer, "+ -")
    if len(good_bad) != 2:
        raise ModelError(f"the math-shepherd format reads two tokens '+' and '-'; this tokenizer makes {good_bad}")
    return _fit(StepInput(text, ids, positions, (good_bad[0], good_bad[1])), options.max_length)


def rlhflow(tokenizer, prompt, steps: list[str], options: StepOptions) -> StepInput:
    """RLHFlow's layout. The text before each assistant turn is rendered on its own to find where that turn's "+" is
    predicted: a "+" inside a step cannot be confused with it."""
    messages: list[dict] = []
    positions: list[int] = []
    for j, step in enumerate(steps):
        messages.append({"role": "user", "content": f"{text_of(prompt)} {step}" if j == 0 else step})
        before = _ids(tokenizer, _chat(tokenizer, messages, "rlhflow", generation_prompt=True))
        positions.append(len(before) - 1)
        messages.append({"role": "assistant", "content": "+"})
    text = _chat(tokenizer, messages, "rlhflow")
    ids = _ids(tokenizer, text)
    columns = (_ids(tokenizer, "+")[-1], _ids(tokenizer, "-")[-1])
    if any(p + 1 >= len(ids) or ids[p + 1] != columns[0] for p in positions):
        raise ModelError("in the rendered chat an assistant '+' is not the token after the text before it (the chat "
                         "template renders a conversation's start differently alone, or '+' merges with its "
                         "neighbours), so the rlhflow format cannot find where each step's '+' is predicted")
    return _fit(StepInput(text, ids, positions, columns, messages), options.max_length)


FORMATS: dict[str, Callable[[Any, Any, list[str], StepOptions], StepInput]] = {
    "separator": separator,
    "qwen": qwen,
    "math-shepherd": math_shepherd,
    "rlhflow": rlhflow,
}
HEADS = {"separator": TOKEN_CLASSIFICATION, "qwen": TOKEN_CLASSIFICATION, "math-shepherd": CAUSAL_LM,
         "rlhflow": CAUSAL_LM}


def render(step_format: str, tokenizer, prompt, steps: list[str], options: StepOptions | None = None) -> StepInput:
    """A solution in the named step format."""
    if step_format not in FORMATS:
        raise ConfigError(f"unknown step format {step_format!r}; choose from {', '.join(FORMATS)}")
    return FORMATS[step_format](tokenizer, prompt, list(steps), options or StepOptions())


# ---------------------------------------------------------------- shared pieces

def _ids(tokenizer, text: str) -> list[int]:
    # A rendered chat already holds its special tokens; adding them again would double the BOS.
    return tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]


def _chat(tokenizer, messages: list[dict], name: str, generation_prompt: bool = False) -> str:
    if not getattr(tokenizer, "chat_template", None):
        raise ModelError(f"the {name} format writes a chat, and this tokenizer has no chat template")
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def _one_token(tokenizer, text: str) -> int:
    ids = _ids(tokenizer, text)
    if len(ids) != 1:
        raise ModelError(f"{text!r} is {len(ids)} tokens for this tokenizer; the format needs it as one token")
    return ids[0]


def _marked(ids: list[int], marker_id: int, marker: str, n_steps: int) -> list[int]:
    positions = [i for i, t in enumerate(ids) if t == marker_id]
    if len(positions) != n_steps:
        raise DataError(f"{len(positions)} {marker!r} tokens for {n_steps} steps: the marker also occurs in the "
                        "prompt or inside a step, so step scores cannot be located")
    return positions


def _fit(step_input: StepInput, max_length: int) -> StepInput:
    """Cut the ids to max_length from the right; steps whose score position is cut are not scored."""
    if len(step_input.input_ids) <= max_length:
        return step_input
    positions = [p for p in step_input.positions if p < max_length]
    if not positions:
        raise DataError(f"no step fits in {max_length} tokens ({len(step_input.input_ids)} in all); raise max_length")
    return StepInput(step_input.text, step_input.input_ids[:max_length], positions, step_input.columns,
                     step_input.messages)
