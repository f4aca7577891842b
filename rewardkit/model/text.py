"""Turning (prompt, response) into token ids: chat templates, special tokens, truncation, padding.

Truncation never silently erases the difference between two responses: the prompt is cut from the
left first (its oldest turns go), the same cut for every response to that prompt, and a response is
cut from the right only when the prompt cannot shrink further. The prompt keeps at least a quarter of
the budget (a response scored without its question means little). Every cut is counted in
`TruncationStats`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from rewardkit.data.texts import is_conversation, text_of


@dataclass
class TruncationStats:
    sequences: int = 0
    prompt_truncated: int = 0
    response_truncated: int = 0
    groups: int = 0
    groups_identical_after_truncation: int = 0  # e.g. chosen and rejected became the same ids
    steps_dropped: int = 0                      # trailing steps of solutions that did not fit (rewardkit.model.steps)

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    def reset(self) -> None:
        self.__init__()


@dataclass
class Encoded:
    input_ids: list[int]
    token_type_ids: list[int] | None = None
    notes: dict = field(default_factory=dict)


@dataclass
class EncodedSteps(Encoded):
    """A solution: prompt ids then, per step, its own ids and the separator's; `ends` are the positions where each
    kept step ends (its reward is read there), `step_of` the step each token belongs to (-1 = the prompt)."""

    ends: list[int] = field(default_factory=list)
    step_of: list[int] = field(default_factory=list)


class TextEncoder:
    def __init__(self, tokenizer, max_length: int, is_decoder: bool, chat_template: bool = True):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.is_decoder = is_decoder
        self.use_template = bool(chat_template and getattr(tokenizer, "chat_template", None))
        self.stats = TruncationStats()

    # ------------------------------------------------------------ text -> (prompt ids, response ids)

    def _ids(self, text: str) -> list[int]:
        # verbose=False: lengths past the model maximum are expected here; truncation happens below, counted.
        return self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"] if text else []

    def _split_texts(self, prompt, response) -> tuple[str, str]:
        """The prompt part and the response part of the rendered sequence, as text."""
        if self.use_template:
            messages = list(prompt) if is_conversation(prompt) else ([{"role": "user", "content": prompt}] if prompt else [])
            reply = list(response) if is_conversation(response) else [{"role": "assistant", "content": response}]
            prompt_text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) if messages else ""
            full_text = self.tokenizer.apply_chat_template(messages + reply, tokenize=False)
            if full_text.startswith(prompt_text):
                return prompt_text, full_text[len(prompt_text):]
            return prompt_text, text_of(response)
        return text_of(prompt) if prompt else "", text_of(response)

    def _special(self) -> tuple[list[int], list[int], list[int]]:
        """(before prompt, between prompt and response, after response) special tokens."""
        tok = self.tokenizer
        if self.use_template:
            return [], [], []
        if not self.is_decoder and tok.cls_token_id is not None and tok.sep_token_id is not None:
            return [tok.cls_token_id], [tok.sep_token_id], [tok.sep_token_id]
        bos = [tok.bos_token_id] if self.is_decoder and tok.bos_token_id is not None else []
        return bos, [], []

    def encode_group(self, prompt, responses: list) -> list[Encoded]:
        """Encode responses to one prompt with one shared prompt cut (K = 2 for a chosen/rejected pair)."""
        texts = [self._split_texts(prompt, r) for r in responses]
        prompt_ids = self._ids(texts[0][0])
        response_ids = [self._ids(t[1]) for t in texts]
        before, between, after = self._special()
        budget = self.max_length - len(before) - len(between) - len(after)
        longest = max(len(r) for r in response_ids)
        prompt_floor = min(len(prompt_ids), budget // 4)
        keep_prompt = max(prompt_floor, min(len(prompt_ids), budget - longest))
        prompt_cut = len(prompt_ids) - keep_prompt
        kept_prompt = prompt_ids[prompt_cut:]
        out = []
        for ids in response_ids:
            room = budget - len(kept_prompt)
            response_cut = max(0, len(ids) - room)
            ids = ids[: len(ids) - response_cut] if response_cut else ids
            sequence = before + kept_prompt + between + ids + after
            token_types = None
            if between:  # BERT-style pair: segment 0 is the prompt, segment 1 the response
                token_types = [0] * (len(before) + len(kept_prompt) + len(between)) + [1] * (len(ids) + len(after))
            self.stats.sequences += 1
            self.stats.prompt_truncated += prompt_cut > 0
            self.stats.response_truncated += response_cut > 0
            out.append(Encoded(sequence, token_types, {"prompt_cut": prompt_cut, "response_cut": response_cut}))
        self.stats.groups += 1
        if len(responses) > 1 and len({tuple(e.input_ids) for e in out}) < len(out) and len({text_of(r) for r in responses}) == len(responses):
            self.stats.groups_identical_after_truncation += 1
        return out

    def encode(self, prompt, response) -> Encoded:
        return self.encode_group(prompt, [response])[0]

    def encode_steps(self, prompt, steps: list[str], separator: str = "\n") -> EncodedSteps:
        """A solution for step rewards (rewardkit.model.steps): each step is tokenised on its own and followed by
        the separator, so the ids of a prefix of the steps are a prefix of the ids. The prompt is cut from the left
        first (down to a quarter of the budget), then trailing steps are dropped whole (counted in notes and
        stats); a first step that alone does not fit is cut from the right, its separator kept."""
        prompt_text = self._split_texts(prompt, "")[0] if prompt else ""
        before, between, _ = self._special()
        prompt_ids, sep = self._ids(prompt_text), self._ids(separator) or self._fallback_separator()
        pieces = [self._ids(step) + sep for step in steps]
        budget = self.max_length - len(before) - len(between)
        keep_prompt = max(min(len(prompt_ids), budget // 4), min(len(prompt_ids), budget - sum(map(len, pieces))))
        prompt_cut = len(prompt_ids) - keep_prompt
        head = before + prompt_ids[prompt_cut:] + between
        ids, step_of, ends = list(head), [-1] * len(head), []
        for j, piece in enumerate(pieces):
            if len(ids) + len(piece) > self.max_length:
                if j == 0:  # keep at least one step: cut it from the right, end it with the separator
                    piece = piece[: max(self.max_length - len(ids) - len(sep), 0)] + sep
                else:
                    break
            ids += piece
            step_of += [j] * len(piece)
            ends.append(len(ids) - 1)
        dropped = len(steps) - len(ends)
        self.stats.sequences += 1
        self.stats.prompt_truncated += prompt_cut > 0
        self.stats.steps_dropped += dropped
        token_types = [0] * len(head) + [1] * (len(ids) - len(head)) if between else None
        return EncodedSteps(ids, token_types, {"prompt_cut": prompt_cut, "response_cut": 0, "steps_dropped": dropped},
                            ends, step_of)

    def _fallback_separator(self) -> list[int]:
        """A separator that tokenises to nothing (a newline for WordPiece) is replaced by [SEP] / the EOS token, so
        every step still ends on a token of its own."""
        tok = self.tokenizer
        token = tok.sep_token_id if tok.sep_token_id is not None else tok.eos_token_id
        return [token] if token is not None else []

    # ------------------------------------------------------------ padding

    def collate(self, sequences: list[Encoded], padding_side: str = "right") -> dict[str, torch.Tensor]:
        return pad_batch(sequences, self.tokenizer.pad_token_id, padding_side)


def pad_batch(sequences: list[Encoded], pad_id: int, padding_side: str = "right") -> dict[str, torch.Tensor]:
    """Pad to the longest sequence in the batch (dynamic padding)."""
    width = max(len(s.input_ids) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    with_types = sequences[0].token_type_ids is not None
    types = torch.zeros((len(sequences), width), dtype=torch.long) if with_types else None
    for i, s in enumerate(sequences):
        n = len(s.input_ids)
        span = slice(width - n, width) if padding_side == "left" else slice(0, n)
        ids[i, span] = torch.tensor(s.input_ids, dtype=torch.long)
        mask[i, span] = 1
        if types is not None:
            types[i, span] = torch.tensor(s.token_type_ids, dtype=torch.long)
    batch = {"input_ids": ids, "attention_mask": mask}
    if types is not None:
        batch["token_type_ids"] = types
    return batch


def pad_features(items: list[list]) -> dict[str, torch.Tensor]:
    """Feature vectors [D] or trajectories [T, D] -> features [B, T, D] and a step mask [B, T]."""
    tensors = [torch.tensor(x, dtype=torch.float32) for x in items]
    tensors = [t.unsqueeze(0) if t.dim() == 1 else t for t in tensors]
    steps = max(t.shape[0] for t in tensors)
    features = torch.zeros(len(tensors), steps, tensors[0].shape[1])
    mask = torch.zeros(len(tensors), steps, dtype=torch.bool)
    for i, t in enumerate(tensors):
        features[i, : t.shape[0]] = t
        mask[i, : t.shape[0]] = True
    return {"features": features, "mask": mask}
