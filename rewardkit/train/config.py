"""TrainConfig: the flags of `rewardkit train`, the schema of its YAML file and its --help, in one place.

Each field's docstring is its help text. validate() holds every check that needs only the options, so that a
bad combination stops before any data or model loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from rewardkit.config import Checked, ConfigError
from rewardkit.data.kinds import OBJECTIVES
from rewardkit.options import Precision, Progress, Threads

Objective = Literal[("auto", *OBJECTIVES)]


@dataclass
class TrainConfig(Checked):
    """Train a reward model r(x, y) = W·h(x, y) + b on feedback records."""

    # data
    train: str
    """training records (pairwise, ranking and/or rating; any reader format)"""
    output: str = "runs/reward-model"
    """output directory: model/, checkpoints/, metrics.jsonl, train_summary.json, train_config.yaml"""
    eval: str | None = None
    """evaluation records; without it a seeded share of --train is held out"""
    eval_fraction: float = 0.1
    """share of --train held out for evaluation when --eval is not given (0 = none)"""
    skip_invalid: bool = False
    """skip invalid records (counted, written to OUTPUT/rejects.jsonl) instead of stopping"""

    # model
    backbone: str = "minilm"
    """local HF model directory, .gguf file, built-in 'minilm' / 'smollm2', or 'mlp' for feature vectors"""
    init: Literal["pretrained", "random"] = "pretrained"
    """backbone weights: pretrained, or random from its config"""
    pooling: Literal["last", "mean", "first", "pooler"] | None = None
    """how the backbone's token states become one vector; None: last for decoders, pooler for BERT-style encoders"""
    heads: list[str] = field(default_factory=lambda: ["reward"])
    """names of the reward heads (several = multi-objective)"""
    head_weights: list[float] | None = None
    """weights of the heads in the aggregate score, one per head (None: all 1)"""
    max_length: int = 512
    """maximum tokens per sequence; the prompt is truncated from the left first"""
    chat_template: bool = True
    """render conversations with the tokenizer's chat template when it has one"""
    freeze_backbone: bool = False
    """train only the heads"""
    disable_dropout: bool = True
    """turn the backbone's dropout off, as is usual for reward models (it also lets attention use its fast kernels); --no-disable-dropout keeps it"""
    lora_r: int = 0
    """LoRA rank for the backbone's linear layers (0 = full fine-tuning; needs peft)"""
    lora_alpha: int = 16
    """LoRA scaling alpha"""
    mlp_hidden: int = 64
    """hidden width of the MLP backbone"""
    mlp_layers: int = 2
    """hidden layers of the MLP backbone"""

    # objective
    objective: Objective = "auto"
    """loss for the records it fits: auto (bt for pairs, listwise for best-of-K, regression for ratings, step-bce for stepwise solutions) or a named objective"""
    margin: float = 1.0
    """margin for hinge, and for 'margin' when a pair has no 'margin' field"""
    label_smoothing: float = 0.0
    """bt and margin: treat each pair's label as right with probability 1 - eps, which caps how far one pair can push the margin (noisy human labels; 0 = off; below 0.5)"""
    temperature: float = 1.0
    """temperature T for listwise softmax and contrastive objectives"""
    mix_weights: dict[str, float] = field(default_factory=dict)
    """loss weight per record kind in mixed data, e.g. pairwise=1 rating=0.5"""
    center_weight: float = 0.0
    """weight of the reward-centering penalty mean((r+ + r-)^2)"""
    l2_weight: float = 0.0
    """weight of the L2 penalty on the reward head's parameters"""
    length_penalty: float = 0.0
    """weight of the length penalty in each batch (length de-biasing)"""
    length_penalty_kind: Literal["correlation", "covariance"] = "correlation"
    """correlation: corr(reward, length)^2, scale-free, strong from the first step; covariance: cov(reward, standardised length)^2, in reward units, grows with the rewards' spread"""
    length_head: bool = False
    """ODIN-style: a second head absorbs length during training and is left out at inference (uses --length-penalty as the weight of its correlation terms); not with --ensemble"""
    balance_length: bool = False
    """repeat pairs so that 'chosen is longer' and 'chosen is shorter' are equally common"""
    ensemble: int = 0
    """train K reward heads on Poisson bootstrap resamples (K >= 2, 0 = one head, no --heads); their spread is the uncertainty reported by score, eval and serve"""
    aggregate: Literal["weighted", "min"] = "weighted"
    """ensemble score: weighted (the mean of the members) or min (conservative)"""
    standardize_annotators: bool = False
    """z-score rating targets per annotator before regression"""
    # process reward models (stepwise records)
    step_separator: str = "\n"
    """text that ends every step of a solution; a step's reward is read at its last token (a separator that tokenises to nothing becomes the tokenizer's [SEP] / EOS)"""
    step_aggregate: Literal["min", "last", "mean", "product"] = "min"
    """a solution's reward from its step rewards: min, last, mean (of the logits), or product (of the step probabilities, as a log)"""
    last_step_only: bool = False
    """stepwise records: train on the last step's label only (an outcome reward model from the same data)"""
    after_first_error: Literal["as-labelled", "wrong", "ignore"] = "as-labelled"
    """stepwise records: steps after the first wrong one keep their labels, count as wrong, or are left out of the loss"""

    # optimisation
    epochs: float = 1.0
    """passes over the training data"""
    max_steps: int = 0
    """stop after this many optimizer steps (0 = no limit)"""
    batch_size: int = 16
    """records per optimizer step per micro-batch (all processes together; at least 1)"""
    grad_accum: int = 1
    """micro-batches accumulated per optimizer step (at least 1)"""
    lr: float = 2e-5
    """peak learning rate of the backbone"""
    head_lr: float | None = None
    """learning rate of the heads (None: 10x --lr, at most 1e-3)"""
    weight_decay: float = 0.0
    """AdamW weight decay"""
    warmup_ratio: float = 0.1
    """share of steps spent warming up the learning rate linearly"""
    scheduler: Literal["linear", "cosine", "constant"] = "linear"
    """learning-rate decay after warm-up"""
    max_grad_norm: float = 1.0
    """gradient clipping norm (0 = off)"""

    # evaluation, checkpoints, logging
    eval_every: int = 0
    """evaluate every N optimizer steps (0 = only at the end of each epoch)"""
    save_every: int = 0
    """write checkpoints/last every N optimizer steps (0 = at each evaluation)"""
    early_stopping_patience: int = 0
    """stop after N evaluations without improvement (0 = never)"""
    final_model: Literal["best", "last"] = "best"
    """which checkpoint becomes OUTPUT/model"""
    resume: bool = False
    """continue from OUTPUT/checkpoints/last, reproducing the uninterrupted run"""
    seed: int = 0
    """random seed for initialisation (unless --init-seed), splits and data order"""
    init_seed: int | None = None
    """torch seed for new weights (head, random backbone) and dropout instead of --seed: runs that share it start alike and differ only in data order, as `rewardkit merge` needs"""
    threads: Threads = 0
    precision: Precision = "fp32"
    max_batch_tokens: int = 4096
    """most padded tokens per forward pass: a longer batch is split and its gradients accumulated (same update, bounded memory; 0 = no cap)"""
    gradient_checkpointing: bool = False
    """recompute each backbone layer's activations in the backward pass instead of keeping them: less memory for long sequences and larger backbones, one more forward pass of compute (13% slower in the PRMBench benchmark; Transformers backbones being trained)"""
    cache_features: bool = False
    """with --freeze-backbone and no LoRA: compute the backbone's features once, then train only the heads on them (much faster for many epochs; dropout in the backbone is off)"""
    packing: bool = False
    """put several sequences in one row with a block-diagonal mask instead of padding them"""
    prefix_sharing: bool = False
    """decoders: compute each prompt once for all its responses (one row, responses see the prompt but not each other); implies packing"""
    group_by_length: bool = True
    """batch records of similar length together (less padding; order stays random)"""
    padding_side: Literal["right", "left"] = "right"
    """pad sequences on this side (scores are the same either way)"""
    progress: Progress = True

    def validate(self) -> None:
        """Options that do not fit together. Whether the backbone is a decoder (for --prefix-sharing) is known
        only once its config loads, so the trainer checks that."""
        if self.batch_size < 1 or self.grad_accum < 1:
            raise ConfigError("batch_size and grad_accum must be at least 1")
        if not 0 <= self.label_smoothing < 0.5:
            raise ConfigError(f"label_smoothing must be in [0, 0.5), got {self.label_smoothing} (0.5 would make "
                              "every label a coin flip)")
        if self.head_weights is not None and len(self.head_weights) != len(self.heads):
            raise ConfigError(f"{len(self.heads)} heads ({', '.join(self.heads)}) but {len(self.head_weights)} "
                              "head weights: give one weight per head")
        if self.ensemble and (self.ensemble < 2 or self.heads != ["reward"]):
            raise ConfigError("--ensemble K needs K >= 2 and no --heads (its heads are the K members)")
        if self.length_head and self.ensemble:
            raise ConfigError("--length-head and --ensemble cannot be combined")
        if self.cache_features and (not self.freeze_backbone or self.lora_r or self.backbone == "mlp"):
            raise ConfigError("--cache-features needs --freeze-backbone, no LoRA, and a transformer backbone")
        if self.gradient_checkpointing and (self.backbone == "mlp" or self.cache_features
                                            or (self.freeze_backbone and not self.lora_r)):
            # a frozen backbone keeps no activations for its own gradients: checkpointing would only add a backward
            # pass through it (Transformers makes the embeddings require gradients when checkpointing)
            raise ConfigError("--gradient-checkpointing applies to a Transformers backbone being trained (fully or "
                              "with LoRA), not an MLP, a frozen backbone or cached features")
        if self.prefix_sharing and self.backbone == "mlp":
            raise ConfigError("--prefix-sharing needs a decoder backbone, not an MLP over feature vectors")
