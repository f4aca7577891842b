"""TrainConfig: the flags of `rewardkit train`, the schema of its YAML file and its --help, in one place."""

from __future__ import annotations

from dataclasses import dataclass

from rewardkit.config import option
from rewardkit.losses import OBJECTIVES
from rewardkit.model.precision import precision_option


@dataclass
class TrainConfig:
    """Train a reward model r(x, y) = W·h(x, y) + b on feedback records."""

    # data
    train: str = option(help="training records (pairwise, ranking and/or rating; any reader format)")
    output: str = option("runs/reward-model", help="output directory: model/, checkpoints/, metrics.jsonl, train_summary.json")
    eval: str | None = option(None, help="evaluation records; without it a seeded share of --train is held out")
    eval_fraction: float = option(0.1, help="share of --train held out for evaluation when --eval is not given (0 = none)")
    skip_invalid: bool = option(False, help="skip invalid records (counted, written to OUTPUT/rejects.jsonl) instead of stopping")
    # model
    backbone: str = option("minilm", help="local HF model directory, .gguf file, built-in 'minilm' / 'smollm2', or 'mlp' for feature vectors")
    init: str = option("pretrained", help="backbone weights: pretrained, or random from its config", choices=("pretrained", "random"))
    pooling: str | None = option(None, help="last | mean | first | pooler (default: last for decoders, pooler for BERT-style encoders)",
                                 choices=("last", "mean", "first", "pooler"))
    heads: list[str] = option(["reward"], help="names of the reward heads (several = multi-objective)")
    head_weights: list[float] | None = option(None, help="weights of the heads in the aggregate score (default: all 1)")
    max_length: int = option(512, help="maximum tokens per sequence; the prompt is truncated from the left first")
    chat_template: bool = option(True, help="render conversations with the tokenizer's chat template when it has one")
    freeze_backbone: bool = option(False, help="train only the heads")
    disable_dropout: bool = option(True, help="turn the backbone's dropout off, as is usual for reward models (it also "
                                   "lets attention use its fast kernels); --no-disable-dropout keeps it")
    lora_r: int = option(0, help="LoRA rank for the backbone's linear layers (0 = full fine-tuning; needs peft)")
    lora_alpha: int = option(16, help="LoRA scaling alpha")
    mlp_hidden: int = option(64, help="hidden width of the MLP backbone")
    mlp_layers: int = option(2, help="hidden layers of the MLP backbone")
    # objective
    objective: str = option("auto", help="loss for the records it fits: auto (bt for pairs, listwise for best-of-K, "
                            "regression for ratings) or one of " + ", ".join(OBJECTIVES), choices=("auto", *OBJECTIVES))
    margin: float = option(1.0, help="margin for hinge, and for 'margin' when a pair has no 'margin' field")
    label_smoothing: float = option(0.0, help="bt and margin: treat each pair's label as right with probability 1 - eps, "
                                    "which caps how far one pair can push the margin (noisy human labels; 0 = off)")
    temperature: float = option(1.0, help="temperature T for listwise softmax and contrastive objectives")
    mix_weights: dict[str, float] = option({}, help="loss weight per record kind in mixed data, e.g. pairwise=1 rating=0.5")
    center_weight: float = option(0.0, help="weight of the reward-centering penalty mean((r+ + r-)^2)")
    l2_weight: float = option(0.0, help="weight of the L2 penalty on the reward head's parameters")
    length_penalty: float = option(0.0, help="weight of the length penalty in each batch (length de-biasing)")
    length_penalty_kind: str = option("correlation", help="correlation: corr(reward, length)^2, scale-free, strong from "
                                      "the first step; covariance: cov(reward, standardised length)^2, in reward units, "
                                      "grows with the rewards' spread", choices=("correlation", "covariance"))
    length_head: bool = option(False, help="ODIN-style: a second head absorbs length during training and is left out "
                               "at inference (uses --length-penalty as the weight of its correlation terms)")
    balance_length: bool = option(False, help="repeat pairs so that 'chosen is longer' and 'chosen is shorter' are equally common")
    ensemble: int = option(0, help="train K reward heads on Poisson bootstrap resamples (K >= 2); their spread is the "
                           "uncertainty reported by score, eval and serve")
    aggregate: str = option("weighted", help="ensemble score: weighted (the mean of the members) or min (conservative)",
                            choices=("weighted", "min"))
    standardize_annotators: bool = option(False, help="z-score rating targets per annotator before regression")
    # optimisation
    epochs: float = option(1.0, help="passes over the training data")
    max_steps: int = option(0, help="stop after this many optimizer steps (0 = no limit)")
    batch_size: int = option(16, help="records per optimizer step per micro-batch (all processes together)")
    grad_accum: int = option(1, help="micro-batches accumulated per optimizer step")
    lr: float = option(2e-5, help="peak learning rate of the backbone")
    head_lr: float | None = option(None, help="learning rate of the heads (default: 10x --lr, at most 1e-3)")
    weight_decay: float = option(0.0, help="AdamW weight decay")
    warmup_ratio: float = option(0.1, help="share of steps spent warming up the learning rate linearly")
    scheduler: str = option("linear", help="learning-rate decay after warm-up", choices=("linear", "cosine", "constant"))
    max_grad_norm: float = option(1.0, help="gradient clipping norm (0 = off)")
    # evaluation, checkpoints, logging
    eval_every: int = option(0, help="evaluate every N optimizer steps (0 = only at the end of each epoch)")
    save_every: int = option(0, help="write checkpoints/last every N optimizer steps (0 = at each evaluation)")
    early_stopping_patience: int = option(0, help="stop after N evaluations without improvement (0 = never)")
    final_model: str = option("best", help="which checkpoint becomes OUTPUT/model", choices=("best", "last"))
    resume: bool = option(False, help="continue from OUTPUT/checkpoints/last, reproducing the uninterrupted run")
    seed: int = option(0, help="random seed for initialisation (unless --init-seed), splits and data order")
    init_seed: int | None = option(None, help="seed of the torch random state instead of --seed: new weights (the head, a "
                                   "random backbone) and dropout. Runs that share it start from the same weights and differ "
                                   "in data order only, as weight averaging (`rewardkit merge`) needs")
    threads: int = option(0, help="CPU threads for torch (0 = torch's default)")
    precision: str = precision_option()
    max_batch_tokens: int = option(4096, help="most padded tokens per forward pass: a longer batch is split and its "
                                   "gradients accumulated (same update, bounded memory; 0 = no cap)")
    cache_features: bool = option(False, help="with --freeze-backbone: compute the backbone's features once, then train "
                                  "only the heads on them (much faster for many epochs; dropout in the backbone is off)")
    packing: bool = option(False, help="put several sequences in one row with a block-diagonal mask instead of padding them")
    prefix_sharing: bool = option(False, help="decoders: compute each prompt once for all its responses (one row, responses "
                                  "see the prompt but not each other); implies packing")
    group_by_length: bool = option(True, help="batch records of similar length together (less padding; order stays random)")
    padding_side: str = option("right", help="pad sequences on this side (scores are the same either way)", choices=("right", "left"))
    progress: bool = option(True, help="show a progress bar")
