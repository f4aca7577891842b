"""Process reward models: TRL's PRMTrainer against `rewardkit train` on stepwise records, and scoring every step
in one pass against re-scoring each prefix of a solution as an outcome reward model.

    pip install -e ".[bench]"
    # TRL removed PRMTrainer after 1.13 (huggingface/trl#7133): the TRL side runs a TRL that still has it, kept
    # apart from the venv's TRL (found with --trl-path, $REWARDKIT_TRL_PRM_PATH or the path below):
    pip install --no-deps --target ~/.cache/rewardkit-bench/trl-1.13.0 trl==1.13.0
    python bench/train_prm_vs_trl.py [--steps 150] [--threads 2]               # MiniLM, built-in arithmetic task
    python bench/train_prm_vs_trl.py --data prmbench [--data-dir ../shared/data] --max-length 512
    python bench/train_prm_vs_trl.py --backbone smollm2 --steps 20 --parts train
    python bench/train_prm_vs_trl.py --parts one-pass --one-pass-backbones minilm,smollm2

Part `train` (bench/results/prm_vs_trl[_prmbench][_smollm2].json). Data: the built-in arithmetic task as stepwise
records (rewardkit.data.synth: word problems, solutions in 3-4 steps, the steps from a planted error on labelled
wrong), --train-records from the 'train' templates and --test-records from the held-out 'test' templates; or
PRMBench's train files (8 error types of PRM800K problems) and its test files (--data prmbench). Both sides: the
same backbone, records, max length, batch (records per optimizer step), optimizer steps, AdamW learning rate (one
rate for backbone and head: rewardkit's default 10x head rate is set equal), 10% linear warm-up then linear decay,
gradient clipping 1.0, no dropout, seed 0, fp32, the same torch thread count, each side in its own process (so
peak RSS is its own: `peak_rss_mb` at the end, after scoring the test set, and `train_peak_rss_mb` right after
training). Peak RSS counts memory the allocator keeps after tensors are freed; --malloc-mmap-threshold 65536 runs
both sides with glibc returning freed blocks of 64 KiB and more, so the peak is closer to what tensors held;
--onednn-primitive-cache 16 runs both with oneDNN keeping at most 16 compiled kernels (its default is 1,024, and every
new batch shape adds some, with their buffers).

- trl:         trl.experimental.prm.PRMTrainer with PRMConfig's defaults but `bf16=False`: an
               AutoModelForTokenClassification with 2 labels, step separator "\\n", train_on_last_step_only=False,
               gradient checkpointing on (PRMConfig's default). Each step's label sits on the last token of the step
               + separator; TRL tokenises the prompt as plain text (BOS only where the tokenizer has one, so no
               [CLS]/[SEP] for BERT) and cuts sequences over max length from the right. A BERT tokenizer turns
               "\\n" into nothing, so on MiniLM TRL's label sits on the step's own last word piece; the encoder
               attends both ways, so a step's label is read with every later step in view.
- trl-no-ckpt: the same with gradient_checkpointing=False (optional: --sides trl,trl-no-ckpt,rewardkit).
- trl-bf16:    PRMConfig's defaults as they are (bf16 autocast on; optional, not part of the fp32 comparison).
- rewardkit:   `rewardkit train` (objective step-bce on every step, --precision fp32, length-grouped batches):
               a one-output head read at each step's separator, block-causal by step on an encoder (a step sees the
               prompt and the steps up to it), the separator "\\n" replaced by [SEP] where it tokenises to nothing.
- rewardkit-auto: the same with --precision auto (bf16 where it measures faster on this CPU, and attention in
               fp32 where that measures faster at the run's shape: `attention_precision`; optional).
- rewardkit-packed, rewardkit-auto-packed: the same with --packing: solutions side by side in rows of max-length
               tokens, no padding, and the solutions of one prompt in a batch share one copy of it (batches are
               cut from solutions sorted by prompt within windows of 64 batches; optional).
- rewardkit-ckpt, rewardkit-auto-ckpt: the same with --gradient-checkpointing, as TRL's default checkpoints
               (memory against speed; optional).

Held-out read-out, each side its own: TRL's step logit is logit[correct] - logit[wrong] at its label positions (so
argmax = the sign; softmax P(correct) = sigmoid of it), rewardkit's is rk.score_steps's step score (P(correct) =
sigmoid). The positive class of `step_f1_wrong` is "the step is wrong" (P(correct) < 0.5; PRMBench's
F1 of erroneous steps), `step_f1_correct` the other class, `step_accuracy`, and `step_auroc` (threshold-free, for
'correct'); all over the steps each side scored (truncation can drop a step; counted). Throughput = optimizer
steps / training seconds (the training loop only: model loading and tokenisation are outside on both sides);
records/s = that x batch; `speedup_vs_trl` = rewardkit / trl (every pair of sides in `speedups`). Step F1 has a
95% bootstrap interval over test solutions, and each side's F1 minus TRL's a paired one (the same resamples).
The load each side ran under is measured, not guessed: `other_cores_busy` is the CPU time of every other process
on the machine during the side's run (/proc/stat less the side's own CPU time) per wall-clock second.

Part `one-pass` (bench/results/prm_one_pass.json): N synthetic solutions (16, or 4 on a decoder; a prompt of
--prompt-words words and T steps of --step-words words, common words of one token each, so steps have a fixed token
length) for T in --one-pass-t, on the pretrained backbone with a fresh head (speed and agreement need no training).
One pass: rk.score_steps (tokenise, then one forward per solution, a reward at every step end). Per prefix, as an
outcome reward model must do to give a reward per step: each prefix prompt + steps[:j] is its own sequence, the
first ids of the solution's ids (rewardkit's encode_steps is prefix-consistent), scored by rewardkit's
plain-sequence path (rewardkit.model.scoring.score_encoded, what rk.score runs after tokenising) and read at its
last token (pooling 'last'). Both include tokenising once; both use the same batch size and length-sorted
batches; best of --repeats after a warm-up. On a decoder the two must agree (max |diff| <= 1e-4: causal attention
means a step's state never depends on what follows). On an encoder they differ: scored alone, a prefix's prompt
and earlier steps attend to its later steps (full attention), while in one pass the block-causal mask keeps the
prompt seeing only itself, so the states the last step reads differ from the second layer on.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SEPARATOR = "\n"
DEFAULT_TRL_PATH = Path.home() / ".cache" / "rewardkit-bench" / "trl-1.13.0"
WORDS = ("the", "number", "is", "then", "we", "add", "take", "away", "from", "total", "and", "so", "now", "it", "has",
         "more", "less", "than", "each", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


# ---------------------------------------------------------------- TRL's PRM trainer: where it is

def trl_prm_location(trl_path: str | None) -> tuple[str | None, str]:
    """(a directory to put first on sys.path, or None for the installed TRL; a description), or (None, reason it is
    missing) as ('missing', reason). Looks at files only, so the parent process never imports TRL."""
    installed = importlib.util.find_spec("trl")
    if installed and installed.origin and (Path(installed.origin).parent / "experimental" / "prm").is_dir():
        return None, "installed TRL"
    for candidate in (trl_path, os.environ.get("REWARDKIT_TRL_PRM_PATH"), str(DEFAULT_TRL_PATH)):
        if candidate and (Path(candidate) / "trl" / "experimental" / "prm").is_dir():
            return candidate, f"TRL from {candidate}"
    version = "not installed"
    if installed:
        from importlib.metadata import version as dist_version
        version = dist_version("trl")
    return "missing", (f"TRL's PRMTrainer is not importable (TRL {version}; it was removed after 1.13): "
                       f"pip install --no-deps --target {DEFAULT_TRL_PATH} trl==1.13.0, or pass --trl-path")


def import_prm_trainer(trl_path: str | None):
    if trl_path:
        sys.path.insert(0, trl_path)
    from trl.experimental.prm import PRMConfig, PRMTrainer

    return PRMConfig, PRMTrainer


# ---------------------------------------------------------------- data

def load_data(args) -> tuple[list[dict], list[dict], str]:
    if args.data == "arithmetic":
        from rewardkit.data.synth import generate

        train = generate("arithmetic", args.train_records, 0, "train", "stepwise")
        test = generate("arithmetic", args.test_records, 0, "test", "stepwise")
        return train, test, "built-in arithmetic task, stepwise (train templates / held-out test templates)"
    from rewardkit.data.catalog import prmbench_part

    train, test = prmbench_part(Path(args.data_dir), "train"), prmbench_part(Path(args.data_dir), "test")
    random.Random(0).shuffle(train)
    random.Random(1).shuffle(test)
    return (train[: args.train_records], test[: args.test_records],
            "PRMBench: prm800k_train_* (shuffled, seed 0) / prm800k_test_* (shuffled, seed 1)")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ---------------------------------------------------------------- the two sides (each in its own process)

def trl_model(backbone: str):
    """AutoModelForTokenClassification (2 labels) and its tokenizer from a built-in name, a directory or a GGUF file."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from rewardkit.model.backbone import resolve_backbone

    path = resolve_backbone(backbone)
    gguf = path.suffix == ".gguf"
    where, kwargs = (str(path.parent), {"gguf_file": path.name}) if gguf else (str(path), {})
    tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    model = AutoModelForTokenClassification.from_pretrained(where, num_labels=2, **kwargs)
    if gguf:  # Trainer refuses GGUF-loaded models as "quantized" although the weights are dequantized floats:
        # copy them into the same architecture built from the config (as bench/train_vs_trl.py does)
        config = model.config
        config.__dict__.pop("quantization_config", None)
        plain = AutoModelForTokenClassification.from_config(config)
        plain.load_state_dict(model.state_dict())
        model = plain
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def trl_rows(records: list[dict]) -> list[dict]:
    from rewardkit.data.texts import text_of

    return [{"prompt": text_of(r["prompt"]), "completions": r["steps"], "labels": [float(x) >= 0.5 for x in r["labels"]]}
            for r in records]


def run_trl(train, test, args, checkpointing: bool, bf16: bool) -> dict:
    import torch
    import transformers
    from datasets import Dataset

    PRMConfig, PRMTrainer = import_prm_trainer(args.trl_path)
    import trl

    transformers.set_seed(0)
    model, tokenizer = trl_model(args.backbone)
    config = PRMConfig(output_dir=str(Path(args.work) / args.side), per_device_train_batch_size=args.batch_size,
                       max_steps=args.steps, learning_rate=args.lr, warmup_steps=round(0.1 * args.steps),
                       lr_scheduler_type="linear", max_length=args.max_length, step_separator=SEPARATOR,
                       train_on_last_step_only=False, gradient_checkpointing=checkpointing, bf16=bf16, use_cpu=True,
                       seed=0, logging_steps=10, save_strategy="no", report_to="none", disable_tqdm=True,
                       dataloader_num_workers=0)
    rows = trl_rows(train)
    trainer = PRMTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
    labelled = sum(len(r["labels"]) for r in rows)
    kept = sum(sum(1 for x in row["labels"] if x != -100) for row in trainer.train_dataset)
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    train_peak = peak_rss_mb()
    model.eval()

    fn_kwargs = {"tokenizer": tokenizer, "step_separator": SEPARATOR, "max_length": args.max_length,
                 "max_completion_length": None, "train_on_last_step_only": False, "is_eval": True}
    encoded = [PRMTrainer.tokenize_row(row, **fn_kwargs) for row in trl_rows(test)]
    step_scores = []
    with torch.inference_mode():
        for start in range(0, len(encoded), 32):
            chunk = encoded[start:start + 32]
            width = max(len(e["input_ids"]) for e in chunk)
            ids = torch.full((len(chunk), width), tokenizer.pad_token_id)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for i, e in enumerate(chunk):
                ids[i, : len(e["input_ids"])] = torch.tensor(e["input_ids"])
                mask[i, : len(e["input_ids"])] = 1
            logits = model(input_ids=ids, attention_mask=mask).logits.float()
            for i, e in enumerate(chunk):
                at = [p for p, label in enumerate(e["labels"]) if label != -100]
                step_scores.append((logits[i, at, 1] - logits[i, at, 0]).tolist())  # P(correct) = sigmoid of this
    return {"train_seconds": seconds, "train_peak_rss_mb": round(train_peak, 1), "trl_version": trl.__version__,
            "trl_path": args.trl_path,
            "gradient_checkpointing": checkpointing, "precision": "bf16 autocast" if bf16 else "fp32",
            "separator_tokens": len(tokenizer.encode(SEPARATOR, add_special_tokens=False)),
            "train_steps_labelled": labelled, "train_steps_cut_by_max_length": labelled - kept,
            "step_scores": step_scores}


def run_rewardkit(train, test, args, precision: str, packing: bool, checkpointing: bool) -> dict:
    import rewardkit as rk

    work = Path(args.work)
    rk.write_records(work / "train.jsonl", train)
    cfg = rk.TrainConfig(train=str(work / "train.jsonl"), output=str(work / args.side), backbone=args.backbone,
                         max_length=args.max_length, batch_size=args.batch_size, max_steps=args.steps, epochs=1000,
                         lr=args.lr, head_lr=args.lr, warmup_ratio=0.1, scheduler="linear", max_grad_norm=1.0,
                         eval_fraction=0.0, precision=precision, threads=args.threads, seed=0, final_model="last",
                         progress=False, chat_template=False, step_separator=SEPARATOR, last_step_only=False,
                         after_first_error="as-labelled", packing=packing, gradient_checkpointing=checkpointing)
    summary = rk.train_model(cfg)
    train_peak = peak_rss_mb()
    model = rk.load_model(summary["model"])
    scores = rk.score_steps(model, [(r["prompt"], r["steps"]) for r in test], precision="fp32")
    from rewardkit.model.precision import resolve_precision

    return {"train_seconds": summary["train_seconds"], "train_peak_rss_mb": round(train_peak, 1),
            "truncation": summary["truncation"],
            "precision": resolve_precision(precision), "attention_precision": summary["attention_precision"],
            "layout": "packed" if packing else "padded",
            "gradient_checkpointing": checkpointing,
            "step_scores": [list(s) for s in scores.steps]}


def child(args) -> int:
    import torch

    torch.set_num_threads(args.threads)
    train, test, _ = load_data(args)
    load_before = load_average()
    if args.side.startswith("rewardkit"):
        result = run_rewardkit(train, test, args, precision="auto" if "-auto" in args.side else "fp32",
                               packing="-packed" in args.side, checkpointing="-ckpt" in args.side)
    else:
        result = run_trl(train, test, args, checkpointing=args.side != "trl-no-ckpt", bf16=args.side == "trl-bf16")
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    result["load_average_before_after"] = [load_before, load_average()]
    Path(args.work, f"{args.side}.json").write_text(json.dumps(result))
    return 0


# ---------------------------------------------------------------- held-out step metrics

def step_metrics(test: list[dict], step_scores: list[list[float | None]]) -> dict:
    """Step F1 (both classes), accuracy and AUROC over the steps a side scored, at P(correct) = 0.5."""
    from rewardkit.eval.process import prm_score, step_auroc

    solutions = [{"labels": r["labels"], "step_scores": list(s) + [None] * (len(r["labels"]) - len(s))}
                 for r, s in zip(test, step_scores, strict=True)]
    f1 = prm_score(solutions, 0.5)
    right = [(s >= 0) == (float(label) >= 0.5) for r in solutions
             for s, label in zip(r["step_scores"], r["labels"], strict=True) if s is not None]
    return {"steps_scored": f1["steps"], "steps_not_scored": sum(len(r["labels"]) for r in test) - f1["steps"],
            "step_f1_wrong": round(f1["f1_erroneous"], 4), "step_f1_correct": round(f1["f1_correct"], 4),
            "step_accuracy": round(sum(right) / max(len(right), 1), 4), "step_auroc": round(step_auroc(solutions), 4)}


def wrong_step_counts(test: list[dict], step_scores: list[list[float | None]]):
    """Per test solution: (true positives, false positives, false negatives) of 'the step is wrong', [N, 3]."""
    import numpy as np

    counts = np.zeros((len(test), 3))
    for i, (r, scores) in enumerate(zip(test, step_scores, strict=True)):
        for s, label in zip(scores, r["labels"], strict=False):  # a side's scores may stop early (truncation)
            if s is None:
                continue
            wrong, called_wrong = float(label) < 0.5, s < 0
            counts[i] += (wrong and called_wrong, called_wrong and not wrong, wrong and not called_wrong)
    return counts


def bootstrap_f1(counts: dict, resamples: int = 2000) -> dict:
    """95% percentile intervals of each side's F1 (wrong steps) and of each side's F1 minus TRL's, resampling test
    solutions (the same resamples for every side, so the differences are paired)."""
    import numpy as np

    rng = np.random.default_rng(0)
    n = len(next(iter(counts.values())))
    picks = rng.integers(0, n, (resamples, n))
    f1 = {}
    for side, c in counts.items():
        tp, fp, fn = (c[:, k][picks].sum(axis=1) for k in range(3))
        f1[side] = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    ci = lambda x: [round(float(v), 4) for v in np.percentile(x, [2.5, 97.5])]  # noqa: E731
    out = {side: {"ci95": ci(v)} for side, v in f1.items()}
    if "trl" in f1:
        for side in f1:
            if side != "trl":
                out[side]["minus_trl_ci95"] = ci(f1[side] - f1["trl"])
    return out


def cpu_snapshot() -> tuple[float, float | None, float]:
    """(wall seconds, the machine's busy CPU seconds from /proc/stat or None, this process's and its finished
    children's CPU seconds)."""
    busy = None
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        busy = (sum(fields[:3]) + sum(fields[5:7])) / os.sysconf("SC_CLK_TCK")  # user nice system irq softirq
    except (OSError, ValueError):
        pass
    own = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for f in ("ru_utime", "ru_stime"))
    return time.perf_counter(), busy, own


def other_cores_busy(before, after) -> float | None:
    """Cores kept busy by other processes between two snapshots (CPU seconds per wall second)."""
    if before[1] is None or after[1] is None:
        return None
    return round(max(0.0, (after[1] - before[1]) - (after[2] - before[2])) / (after[0] - before[0]), 2)


def token_counts(records: list[dict], args) -> dict:
    """Mean and max tokens per training record (before padding) as each side builds it: TRL's tokenize_row
    (BOS where the tokenizer has one, prompt, each step + separator ids, cut at max length) and rewardkit's
    encode_steps (special tokens, separator fallback, prompt cut from the left, whole steps dropped)."""
    import numpy as np

    from rewardkit.data.texts import text_of
    from rewardkit.model.backbone import is_decoder_config, load_config, load_tokenizer
    from rewardkit.model.text import TextEncoder

    tok = load_tokenizer(args.backbone)
    ids = lambda text: tok(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    sep = tok.encode(SEPARATOR, add_special_tokens=False)
    trl = [min(args.max_length, (tok.bos_token_id is not None) + len(ids(text_of(r["prompt"])))
               + sum(len(ids(step)) + len(sep) for step in r["steps"])) for r in records]
    encoder = TextEncoder(tok, args.max_length, is_decoder_config(load_config(args.backbone)), chat_template=False)
    ours = [len(encoder.encode_steps(r["prompt"], r["steps"], SEPARATOR).input_ids) for r in records]
    return {side: {"mean": round(float(np.mean(n)), 1), "max": int(np.max(n))} for side, n in (("trl", trl), ("rewardkit", ours))}


def wait_for_quiet(max_seconds: float, cores: float = 0.5, window: float = 5.0) -> float | None:
    """Wait (at most max_seconds) until other processes keep fewer than `cores` cores busy over a `window`-second
    sample; returns the last sample (None without /proc/stat)."""
    if max_seconds <= 0:
        return None
    deadline = time.perf_counter() + max_seconds
    while True:
        before = cpu_snapshot()
        time.sleep(window)
        busy = other_cores_busy(before, cpu_snapshot())
        if busy is None or busy < cores or time.perf_counter() >= deadline:
            return busy
        print(f"  other processes keep {busy} cores busy: waiting", flush=True)


def run_side(side: str, command: list[str], work: str, args) -> dict:
    """One side in its own process, after waiting for a quiet machine; run again (up to --reruns times) when other
    processes took more than --busy-limit cores during it, keeping the least disturbed run."""
    best = None
    for attempt in range(args.reruns + 1):
        quiet = wait_for_quiet(args.quiet_wait)
        print(f"[{side}] training {args.steps} steps (other processes: {quiet} cores busy, load average "
              f"{load_average()}) ...", flush=True)
        before = cpu_snapshot()
        env = dict(os.environ)
        if args.malloc_mmap_threshold:
            env["MALLOC_MMAP_THRESHOLD_"] = str(args.malloc_mmap_threshold)
        if args.onednn_primitive_cache:
            env["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = str(args.onednn_primitive_cache)
        subprocess.run(command, check=True, env=env)
        r = json.loads(Path(work, f"{side}.json").read_text())
        r["other_cores_busy"] = other_cores_busy(before, cpu_snapshot())
        r["other_cores_busy_before"], r["attempt"] = quiet, attempt + 1
        if best is None or (r["other_cores_busy"] or 0) < (best["other_cores_busy"] or 0):
            best = r
        if (r["other_cores_busy"] or 0) <= args.busy_limit:
            break
        print(f"[{side}] other processes kept {r['other_cores_busy']} cores busy during the run", flush=True)
    return best


def run_train_part(args) -> dict | None:
    from rewardkit.model.machine import machine_info

    sides = args.sides.split(",")
    trl_where = None
    if any(s.startswith("trl") for s in sides):
        trl_where, described = trl_prm_location(args.trl_path)
        if trl_where == "missing":
            print(f"skipped: {described}")
            return None
        print(f"TRL side: {described}")
    if args.data == "prmbench" and not list((Path(args.data_dir) / "prmbench").glob("prm800k_train_*")):
        print(f"skipped: no PRMBench train files in {args.data_dir}/prmbench (pass --data-dir)")
        return None
    train, test, source = load_data(args)
    if len(train) < args.steps * args.batch_size:
        print(f"note: {len(train)} training records < {args.steps} steps x {args.batch_size}: both sides repeat them")
    work = tempfile.mkdtemp(prefix="rewardkit-prm-bench-")
    runs, counts = {}, {}
    for side in sides:
        command = [sys.executable, __file__, "--side", side, "--work", work, "--data", args.data, "--data-dir",
                   args.data_dir, "--train-records", str(args.train_records), "--test-records", str(args.test_records),
                   "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--max-length", str(args.max_length),
                   "--lr", str(args.lr), "--threads", str(args.threads), "--backbone", args.backbone]
        if side.startswith("trl") and trl_where:
            command += ["--trl-path", trl_where]
        r = run_side(side, command, work, args)
        counts[side] = wrong_step_counts(test, r["step_scores"])
        r.update(step_metrics(test, r.pop("step_scores")))
        r["optimizer_steps_per_second"] = round(args.steps / r["train_seconds"], 3)
        r["records_per_second"] = round(args.steps * args.batch_size / r["train_seconds"], 2)
        r["train_seconds"] = round(r["train_seconds"], 1)
        runs[side] = r
        print(f"[{side}] {r['optimizer_steps_per_second']} steps/s, peak RSS {r['peak_rss_mb']} MB (training "
              f"{r['train_peak_rss_mb']} MB), step F1 (wrong) "
              f"{r['step_f1_wrong']:.3f}, step accuracy {r['step_accuracy']:.3f}, AUROC {r['step_auroc']:.3f}, "
              f"other processes busy {r['other_cores_busy']} cores", flush=True)
    for side, ci in bootstrap_f1(counts).items():
        runs[side]["step_f1_wrong_ci95"] = ci["ci95"]
        if "minus_trl_ci95" in ci:
            runs[side]["step_f1_wrong_minus_trl_ci95"] = ci["minus_trl_ci95"]
    labels = [float(x) >= 0.5 for r in test for x in r["labels"]]
    out = {"benchmark": "train_prm_vs_trl", "data": source, "train_records": len(train), "test_records": len(test),
           "test_steps": len(labels), "test_steps_wrong": labels.count(False), "backbone": args.backbone,
           "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "max_length": args.max_length,
           "threads": args.threads, "malloc_mmap_threshold": args.malloc_mmap_threshold or "glibc default",
           "onednn_primitive_cache_capacity": args.onednn_primitive_cache or "oneDNN default",
           "positive_class_of_step_f1_wrong": "the step is wrong",
           "tokens_per_training_record": token_counts(train, args), "machine": machine_info(), "runs": runs,
           "speedups": {}}
    for ours in (s for s in runs if s.startswith("rewardkit")):
        for baseline in (s for s in runs if s.startswith("trl")):
            out["speedups"][f"{ours}/{baseline}"] = round(runs[ours]["optimizer_steps_per_second"]
                                                          / runs[baseline]["optimizer_steps_per_second"], 2)
            out["speedups"][f"{ours}/{baseline} memory"] = round(runs[ours]["peak_rss_mb"] / runs[baseline]["peak_rss_mb"], 2)
    if "rewardkit/trl" in out["speedups"]:
        out["speedup_vs_trl"] = out["speedups"]["rewardkit/trl"]
    print("\n| side | steps/s | records/s | peak RSS MB | step F1 wrong (95% CI) | step F1 correct | step accuracy | "
          "AUROC | other cores busy |")
    print("|---|---|---|---|---|---|---|---|---|")
    for side, r in runs.items():
        low, high = r["step_f1_wrong_ci95"]
        print(f"| {side} | {r['optimizer_steps_per_second']} | {r['records_per_second']} | {r['peak_rss_mb']} | "
              f"{r['step_f1_wrong']:.3f} ({low:.3f}-{high:.3f}) | {r['step_f1_correct']:.3f} | {r['step_accuracy']:.3f} | "
              f"{r['step_auroc']:.3f} | {r['other_cores_busy']} |")
    print(json.dumps(out["speedups"]))
    return out


# ---------------------------------------------------------------- one pass against every prefix

def synthetic_solutions(n: int, steps: int, prompt_words: int, step_words: int, seed: int) -> list[tuple[str, list[str]]]:
    rng = random.Random(seed)
    words = lambda k: " ".join(rng.choice(WORDS) for _ in range(k))  # noqa: E731
    return [(words(prompt_words), [words(step_words) for _ in range(steps)]) for _ in range(n)]


def best_of(repeats: int, fn):
    times, out = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return out, min(times)


def one_pass_backbone(backbone: str, args) -> dict:
    import numpy as np
    import torch

    import rewardkit as rk
    from rewardkit.model.reward_model import RewardModel
    from rewardkit.model.scoring import score_encoded
    from rewardkit.model.text import Encoded

    torch.manual_seed(0)
    model = RewardModel.build(backbone, pooling="last", max_length=args.one_pass_max_length).eval()
    sep = model.spec.step_separator

    def per_prefix(solutions):
        prefixes = []
        for prompt, steps in solutions:
            e = model.encoder.encode_steps(prompt, steps, sep)
            prefixes += [Encoded(e.input_ids[: end + 1], None if e.token_type_ids is None else e.token_type_ids[: end + 1])
                         for end in e.ends]
        return score_encoded(model, prefixes, args.one_pass_batch_size), prefixes

    warm = synthetic_solutions(4, 2, args.prompt_words, args.step_words, 99)
    rk.score_steps(model, warm, batch_size=args.one_pass_batch_size)
    per_prefix(warm)
    rows = []
    n = args.one_pass_decoder_solutions if model.spec.is_decoder else args.one_pass_solutions
    for t in args.one_pass_t:
        solutions = synthetic_solutions(n, t, args.prompt_words, args.step_words, t)
        quiet = wait_for_quiet(args.quiet_wait)
        load_before, before = load_average(), cpu_snapshot()
        one, one_seconds = best_of(args.repeats, lambda s=solutions: rk.score_steps(model, s, batch_size=args.one_pass_batch_size))
        (prefix, prefixes), prefix_seconds = best_of(args.repeats, lambda s=solutions: per_prefix(s))
        one_flat = np.array([x for steps in one.steps for x in steps])
        diff = float(np.abs(one_flat - np.array(prefix.values)).max())
        encoded = [model.encoder.encode_steps(p, s, sep) for p, s in solutions]
        dropped = sum(t - len(e.ends) for e in encoded)
        row = {"steps_per_solution": t, "solutions": len(solutions), "tokens_per_solution": round(float(np.mean([len(e.input_ids) for e in encoded])), 1),
               "tokens_one_pass": sum(len(e.input_ids) for e in encoded), "tokens_per_prefix": sum(len(p.input_ids) for p in prefixes),
               "steps_dropped_by_max_length": dropped, "one_pass_seconds": round(one_seconds, 4),
               "per_prefix_seconds": round(prefix_seconds, 4), "speedup_one_pass": round(prefix_seconds / one_seconds, 2),
               "max_abs_diff": diff, "load_average_before_after": [load_before, load_average()],
               "other_cores_busy": other_cores_busy(before, cpu_snapshot()), "other_cores_busy_before": quiet}
        rows.append(row)
        print(f"[one-pass {Path(backbone).name}] T={t}: one pass {one_seconds:.3f}s, per prefix {prefix_seconds:.3f}s, "
              f"{row['speedup_one_pass']}x, max |diff| {diff:.2e}", flush=True)
    first = model.encoder.encode_steps(*synthetic_solutions(1, 1, args.prompt_words, args.step_words, 0)[0], sep)
    return {"decoder": model.spec.is_decoder, "prompt_tokens": first.step_of.count(-1),
            "tokens_per_step": len(first.input_ids) - first.step_of.count(-1),
            "equal_within_1e-4": all(r["max_abs_diff"] <= 1e-4 for r in rows), "rows": rows}


def run_one_pass_part(args) -> dict:
    import torch

    from rewardkit.model.machine import machine_info

    torch.set_num_threads(args.threads)
    results = {}
    for backbone in args.one_pass_backbones.split(","):
        results[backbone] = one_pass_backbone(backbone, args)
    out = {"benchmark": "prm_one_pass", "threads": args.threads, "precision": "fp32", "batch_size": args.one_pass_batch_size,
           "prompt_words": args.prompt_words, "step_words": args.step_words, "repeats": args.repeats,
           "note": ("speedup_one_pass = per-prefix seconds / one-pass seconds; max_abs_diff between a step's one-pass "
                    "reward and its prefix's reward scored alone (a decoder must agree; an encoder need not)"),
           "machine": machine_info(), "backbones": results}
    print("\n| backbone | T | tokens / solution | one pass s | per prefix s | speedup | max abs diff | other cores busy |")
    print("|---|---|---|---|---|---|---|---|")
    for backbone, r in results.items():
        for row in r["rows"]:
            print(f"| {Path(backbone).name} | {row['steps_per_solution']} | {row['tokens_per_solution']} | "
                  f"{row['one_pass_seconds']} | {row['per_prefix_seconds']} | {row['speedup_one_pass']}x | {row['max_abs_diff']:.1e} | "
                  f"{row['other_cores_busy']} |")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="train,one-pass", help="train, one-pass, or both (comma-separated)")
    parser.add_argument("--data", choices=["arithmetic", "prmbench"], default="arithmetic")
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--train-records", type=int, default=2400, help="training records (PRMBench: the first N after shuffling)")
    parser.add_argument("--test-records", type=int, default=400)
    parser.add_argument("--steps", type=int, default=150, help="optimizer steps on each side")
    parser.add_argument("--batch-size", type=int, default=16, help="records per optimizer step")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backbone", default="minilm", help="minilm, smollm2 or a local model directory")
    parser.add_argument("--sides", default="trl,rewardkit", help="comma-separated: trl, trl-no-ckpt, trl-bf16, rewardkit, rewardkit-auto, "
                                                                 "rewardkit-packed, rewardkit-auto-packed, rewardkit-ckpt, "
                                                                 "rewardkit-auto-ckpt")
    parser.add_argument("--trl-path", help=f"a directory holding a TRL with PRMTrainer (default: $REWARDKIT_TRL_PRM_PATH, "
                                           f"else {DEFAULT_TRL_PATH} if it exists), used when the installed TRL has none")
    parser.add_argument("--output", help="default: bench/results/prm_vs_trl[_prmbench][_smollm2].json")
    parser.add_argument("--quiet-wait", type=float, default=300,
                        help="before each side (and the one-pass part), wait up to this many seconds for other "
                             "processes to keep under half a core busy")
    parser.add_argument("--busy-limit", type=float, default=0.25,
                        help="rerun a side when other processes kept more cores than this busy during it")
    parser.add_argument("--reruns", type=int, default=1, help="at most this many reruns per side")
    parser.add_argument("--malloc-mmap-threshold", type=int, default=0,
                        help="run every side with glibc's MALLOC_MMAP_THRESHOLD_ at this many bytes (0: glibc's "
                        "default): larger blocks are mapped and unmapped, so freed memory leaves the process")
    parser.add_argument("--onednn-primitive-cache", type=int, default=0,
                        help="run every side with ONEDNN_PRIMITIVE_CACHE_CAPACITY at this many kernels (0: oneDNN's "
                        "default, 1,024)")
    parser.add_argument("--one-pass-backbones", default="minilm,smollm2", help="comma-separated backbones for the one-pass part")
    parser.add_argument("--one-pass-t", type=lambda s: [int(x) for x in s.split(",")], default=[2, 4, 8, 16],
                        help="steps per solution, comma-separated")
    parser.add_argument("--one-pass-solutions", type=int, default=16, help="solutions per T (encoders)")
    parser.add_argument("--one-pass-decoder-solutions", type=int, default=4, help="solutions per T (decoders: slower per token)")
    parser.add_argument("--one-pass-batch-size", type=int, default=16)
    parser.add_argument("--one-pass-max-length", type=int, default=512)
    parser.add_argument("--prompt-words", type=int, default=40)
    parser.add_argument("--step-words", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per measurement (the best counts)")
    parser.add_argument("--one-pass-output", help="default: bench/results/prm_one_pass.json")
    parser.add_argument("--side", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        return child(args)
    parts = args.parts.split(",")
    if "train" in parts:
        out = run_train_part(args)
        if out is not None:
            name = Path(args.backbone).name if args.backbone not in ("minilm", "smollm2") else args.backbone
            default = ROOT / "bench" / "results" / ("prm_vs_trl" + ("_prmbench" if args.data == "prmbench" else "")
                                                    + ("" if name == "minilm" else f"_{name}") + ".json")
            path = Path(args.output or default)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(out, indent=2))
            print(f"saved {path}")
    if "one-pass" in parts:
        out = run_one_pass_part(args)
        path = Path(args.one_pass_output or ROOT / "bench" / "results" / "prm_one_pass.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2))
        print(f"saved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
