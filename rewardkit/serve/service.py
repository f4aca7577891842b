"""The model side of the server: encode, check and score the requests of one batch, in the model thread."""

from __future__ import annotations

import numpy as np

from rewardkit.model.precision import compile_for_inference
from rewardkit.scores import Scores, normalize
from rewardkit.serve.protocol import RequestError


class ModelService:
    """Scores batches of requests for the DynamicBatcher: `process` returns, per request, the Scores of its
    items or the RequestError that refuses it alone (the other requests of the batch are still scored)."""

    def __init__(self, model, cfg):
        """`cfg` is the ServeConfig: batch limits, precision, the longest sequence accepted, clipping."""
        from rewardkit.model.scoring import encode_items

        self.model, self.cfg, self.encode = model, cfg, encode_items
        if cfg.compile:  # compile now, on two sequences of different lengths, not in the first request
            compile_for_inference(model)
            self.process([[("warm-up", "a short response"), ("warm-up", "a somewhat longer response than the first")]])

    def process(self, requests: list[list]) -> list[Scores | RequestError]:
        """Encode every request, refuse those with a sequence that is too long, score the rest in one call."""
        from rewardkit.model.scoring import score_encoded

        results: list[Scores | RequestError | None] = []
        flat: list = []
        spans: list[tuple[int, int] | None] = []
        for items in requests:
            encoded = self.encode(self.model, items)
            refusal = self._check(encoded)
            if refusal is not None:
                spans.append(None)
                results.append(refusal)
                continue
            spans.append((len(flat), len(flat) + len(encoded)))
            results.append(None)
            flat.extend(encoded)
        scores = score_encoded(self.model, flat, self.cfg.max_batch_size, self.cfg.max_batch_tokens,
                               precision=self.cfg.precision) if flat else Scores([])
        return [r if span is None else scores[span[0]:span[1]] for r, span in zip(results, spans, strict=True)]

    def _check(self, encoded: list) -> RequestError | None:
        """A 422 naming the first sequence longer than --max-sequence-tokens (before truncation), or None."""
        limit = self.cfg.max_sequence_tokens
        too_long = [i for i, e in enumerate(encoded) if self._original_length(e) > limit]
        if too_long:
            return RequestError(422, f"sequence {too_long[0]} has more than {limit} tokens (--max-sequence-tokens)")
        return None

    @staticmethod
    def _original_length(encoded) -> int:
        """Tokens of a sequence before it was cut to the model's maximum length."""
        if isinstance(encoded, list):  # feature vectors
            return len(encoded)
        return len(encoded.input_ids) + encoded.notes["prompt_cut"] + encoded.notes["response_cut"]

    def normalized(self, raw: list[float]) -> list[float]:
        """Rewards normalised with the model's stored mean/std (unchanged when it has none)."""
        return normalize(np.asarray(raw, dtype=float), self.model.spec.normalization).tolist()

    def clipped(self, values: list[float]) -> list[float]:
        """Values clipped to [-clip, clip] when --clip is set."""
        c = self.cfg.clip
        return [min(max(v, -c), c) for v in values] if c > 0 else values
