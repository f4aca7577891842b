"""Sampling from a local causal language model (a Hugging Face directory, a .gguf file, or the bundled 'smollm2').

A prompt's n samples are one batch that shares the prompt: its key/value cache is computed once (all but its last
token) and repeated n times, so the prompt is not recomputed per sample as `generate(num_return_sequences=n)`
does. Prompts go through the tokenizer's chat template when it has one. Samples above `batch_size` are drawn in
chunks from the same computed prompt.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from rewardkit.generation.base import Generated, Prompt, Sample, Sampling, as_messages
from rewardkit.model.backbone import _pretrained_kwargs, resolve_backbone
from rewardkit.model.shared_prompt import kv_cache


def plain_lm_directory(model: str, target: Path) -> Path:
    """A Hugging Face directory for a causal LM that trainers can load: a directory as it is; a .gguf file or the
    bundled 'smollm2' dequantised once into `target` as safetensors (Trainer refuses models loaded from GGUF as
    quantized although their weights are plain floats)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_backbone(model)
    if path.is_dir():
        return path
    if not (target / "config.json").exists():
        where, kwargs = _pretrained_kwargs(path)
        loaded = AutoModelForCausalLM.from_pretrained(where, **kwargs)
        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = AutoModelForCausalLM.from_config(config)
        plain.load_state_dict(loaded.state_dict())
        plain.save_pretrained(target, safe_serialization=True)
        AutoTokenizer.from_pretrained(where, **kwargs).save_pretrained(target)
    return target


class LocalGenerator:
    def __init__(self, model: str = "smollm2", batch_size: int = 16, threads: int = 0):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if threads:
            torch.set_num_threads(threads)
        path = resolve_backbone(model)
        where, kwargs = _pretrained_kwargs(path)
        self.tokenizer = AutoTokenizer.from_pretrained(where, trust_remote_code=False, **kwargs)
        safetensors_only = None if kwargs else True  # a directory: safetensors, never pickles; a .gguf: its own reader
        self.model = AutoModelForCausalLM.from_pretrained(where, trust_remote_code=False,
                                                          use_safetensors=safetensors_only, **kwargs).eval()
        self.name, self.batch_size = f"local:{model}", batch_size
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id

    def prompt_ids(self, prompt: Prompt) -> list[int]:
        if self.tokenizer.chat_template:
            text = self.tokenizer.apply_chat_template(as_messages(prompt), tokenize=False, add_generation_prompt=True)
        else:
            text = prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)
        return self.tokenizer(text, add_special_tokens=not self.tokenizer.chat_template)["input_ids"]

    @torch.inference_mode()
    def sample_prompt(self, ids: list[int], n: int, sampling: Sampling, seed: int | None) -> list[Sample]:
        """n samples of one tokenised prompt, its cache computed once."""
        prompt = torch.tensor([ids])
        prefix = kv_cache(self.model(prompt[:, :-1], use_cache=True)) if len(ids) > 1 else None
        samples: list[Sample] = []
        for start in range(0, n, self.batch_size):
            size = min(self.batch_size, n - start)
            cache = None
            if prefix is not None:
                cache = copy.deepcopy(prefix)
                cache.batch_repeat_interleave(size)
            if seed is not None:
                torch.manual_seed(seed + start)
            out = self.model.generate(prompt.repeat(size, 1), attention_mask=torch.ones(size, len(ids), dtype=torch.long),
                                      cache=cache, do_sample=sampling.temperature > 0,
                                      temperature=sampling.temperature or None, top_p=sampling.top_p,
                                      max_new_tokens=sampling.max_new_tokens, pad_token_id=self.pad_id)
            samples += [self.decode(row[len(ids):]) for row in out]
        return samples

    def decode(self, new: torch.Tensor) -> Sample:
        tokens = new.tolist()
        eos = self.tokenizer.eos_token_id
        stopped = eos in tokens
        tokens = tokens[:tokens.index(eos)] if stopped else tokens
        return Sample(self.tokenizer.decode(tokens, skip_special_tokens=True), None, "stop" if stopped else "length",
                      len(tokens))

    def generate(self, prompts: list[Prompt], n: int, sampling: Sampling, progress: bool = False) -> Generated:
        from tqdm.auto import tqdm

        samples = [self.sample_prompt(self.prompt_ids(p), n, sampling, sampling.sample_seed(i, 0))
                   for i, p in enumerate(tqdm(prompts, desc="generating", unit="prompt", disable=not progress))]
        return Generated(samples, {"generator": self.name, "n": n, **vars(sampling)})
