"""Language instructions as vectors: the bundled MiniLM sentence encoder, frozen, one embedding per distinct text."""

from __future__ import annotations

import torch

from rewardkit.model.backbone import load_tokenizer, resolve_backbone


class InstructionEncoder:
    """texts [B] -> unit-length embeddings [B, 384]: all-MiniLM-L6-v2's mean-pooled sentence vectors."""

    def __init__(self, backbone: str = "minilm"):
        from transformers import AutoModel

        path = resolve_backbone(backbone)
        self.tokenizer = load_tokenizer(path)
        self.model = AutoModel.from_pretrained(str(path), trust_remote_code=False).eval()
        self.cache: dict[str, torch.Tensor] = {}

    @torch.inference_mode()
    def __call__(self, texts: list[str]) -> torch.Tensor:
        new = sorted({t for t in texts if t not in self.cache})
        if new:
            batch = self.tokenizer(new, padding=True, truncation=True, max_length=128, return_tensors="pt")
            states = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
            vectors = torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=-1)
            self.cache.update(zip(new, vectors, strict=True))
        return torch.stack([self.cache[t] for t in texts])
