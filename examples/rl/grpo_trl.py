"""GRPO with TRL against a rewardkit reward model, judged by a rule the reward model never sees.

    bash scripts/install.sh "[rl]"
    .venv/bin/python examples/rl/grpo_trl.py --output runs/grpo            # SmolLM2-135M-Instruct, ~40 min on 2 cores

The policy (default: the bundled SmolLM2-135M-Instruct, converted once from GGUF to safetensors under OUTPUT) is
trained by TRL's GRPOTrainer on built-in prompts with a gold rule (rewardkit.data.rules: arithmetic answers,
instruction constraints). The reward it optimises is a rewardkit reward model — a model directory (in process) or
a `rewardkit serve` URL — wrapped by rewardkit.rl.RewardMonitor (its reference: the reward model's scores on the
built-in held-out pairs). With --reward demo, the demo reward model is trained into OUTPUT/rm first (~2 min).
TRL logs, per step: the proxy reward (rewards/proxy/mean), the gold (rewards/gold/mean, weight 0: logged, not
optimised), KL to the reference policy (kl), completion length; rewardkit adds the monitor's flagged share and
KS drift and the reward side's share of the step time. Writes OUTPUT/metrics.jsonl, OUTPUT/summary.json and
OUTPUT/curves.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def policy_directory(policy: str, output: Path) -> str:
    """A local Hugging Face directory for the policy (TRL loads the reference policy from the same directory)."""
    from rewardkit.generation.local import plain_lm_directory

    return str(plain_lm_directory(policy, output / "policy-init"))


def reward_target(reward: str, output: Path) -> str:
    if reward != "demo":
        return reward
    from rewardkit.data.io import write_records
    from rewardkit.data.synth import generate
    from rewardkit.train.config import TrainConfig
    from rewardkit.train.trainer import train

    if not (output / "rm" / "model").exists():
        write_records(output / "rm-data" / "train.jsonl", generate("mix", 1600, 0, "train"))
        write_records(output / "rm-data" / "test.jsonl", generate("mix", 400, 0, "test"))
        train(TrainConfig(train=str(output / "rm-data" / "train.jsonl"), eval=str(output / "rm-data" / "test.jsonl"),
                          output=str(output / "rm"), lr=5e-5, batch_size=16, progress=False))
    return str(output / "rm")


def reference_scores(reward_fn, n: int = 200) -> tuple[list[float], list[float] | None]:
    """The reward model's scores on built-in held-out pairs (both responses): what it has seen, for the monitor;
    and an ensemble's member spreads on them (None for a single model)."""
    from rewardkit.data.synth import generate

    pairs = generate("mix", n, 0, "test")
    prompts = [r["prompt"] for r in pairs for _ in range(2)]
    responses = [r[side] for r in pairs for side in ("chosen", "rejected")]
    return [float(x) for x in reward_fn(prompts, responses)], reward_fn.last_spreads


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    panels = [("rewards/proxy/mean", "proxy reward (reward model)"), ("rewards/gold/mean", "gold (rule, not optimised)"),
              ("kl", "KL to the reference policy"), ("completions/mean_length", "completion length (tokens)"),
              ("monitor/ks_recent", "KS drift of recent rewards vs reference"), ("reward_side_share", "reward side / step time")]
    fig, axes = plt.subplots(2, 3, figsize=(14, 7))
    for ax, (key, title) in zip(axes.flat, panels, strict=True):
        values = [r.get(key) if r.get(key) is not None else float("nan") for r in rows]
        ax.plot(steps, values, ".", alpha=0.4)
        window = [sum(values[max(0, i - 4):i + 1]) / len(values[max(0, i - 4):i + 1]) for i in range(len(values))]
        ax.plot(steps, window, "-", label="mean of the last 5 steps")  # one step holds few completions: noisy
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--policy", default="smollm2", help="a local causal LM directory, a .gguf file, or smollm2")
    parser.add_argument("--reward", default="demo", help="a rewardkit model directory, a `rewardkit serve` URL, or demo")
    parser.add_argument("--task", default="mix", choices=["arithmetic", "instructions", "mix"])
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--prompts-per-step", type=int, default=2)
    parser.add_argument("--num-generations", type=int, default=4)
    parser.add_argument("--max-completion-length", type=int, default=48)
    parser.add_argument("--lr", type=float, default=5e-6)
    parser.add_argument("--beta", type=float, default=0.04, help="KL coefficient (k3, in the loss, as TRL does)")
    parser.add_argument("--monitor", default="flag", choices=["flag", "clip", "penalise"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="runs/grpo")
    args = parser.parse_args()

    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from rewardkit.data.rules import rule_prompts
    from rewardkit.model.machine import machine_info
    from rewardkit.rl import RewardMonitor
    from rewardkit.rl.trl import MonitoredReward, RLLogCallback, gold_reward
    from rewardkit.serve.adapters import TRLReward

    torch.set_num_threads(args.threads)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    policy = policy_directory(args.policy, output)
    target = reward_target(args.reward, output)
    rm = TRLReward(target, normalize=False, name="proxy")
    reference, spreads = reference_scores(rm)
    proxy = MonitoredReward(rm, RewardMonitor(reference, args.monitor, reference_spreads=spreads), name="proxy")
    rows = rule_prompts(args.task, args.prompts, args.seed, "train")
    dataset = Dataset.from_list([{"prompt": [{"role": "user", "content": r["prompt"]}], "rule": r["rule"],
                                  "arg": r["arg"]} for r in rows])
    config = GRPOConfig(output_dir=str(output / "trl"), max_steps=args.steps, learning_rate=args.lr, beta=args.beta,
                        num_generations=args.num_generations, max_completion_length=args.max_completion_length,
                        per_device_train_batch_size=args.prompts_per_step * args.num_generations,
                        reward_weights=[1.0, 0.0], logging_steps=1, save_strategy="no", report_to="none",
                        use_cpu=True, bf16=False, gradient_checkpointing=False, seed=args.seed, disable_tqdm=True)
    callback = RLLogCallback(proxy, output / "metrics.jsonl")
    trainer = GRPOTrainer(model=policy, reward_funcs=[proxy, gold_reward], args=config, train_dataset=dataset,
                          callbacks=[callback])
    trainer.train()
    logged = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    plot(logged, output / "curves.png")
    first, last = logged[: max(1, len(logged) // 5)], logged[-max(1, len(logged) // 5):]

    def mean(part, key):
        values = [r[key] for r in part if r.get(key) is not None]
        return sum(values) / len(values) if values else None

    keys = ("rewards/proxy/mean", "rewards/gold/mean", "kl", "completions/mean_length", "reward_side_share")
    summary = {"command": " ".join(["python", *sys.argv]), "policy": args.policy, "reward": target, "task": args.task,
               "steps": len(logged), "seconds": round(time.perf_counter() - started, 1), "machine": machine_info(),
               "first_fifth": {k: mean(first, k) for k in keys}, "last_fifth": {k: mean(last, k) for k in keys},
               "monitor": proxy.monitor.summary(), "drift_all": proxy.monitor.drift()}
    (output / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(json.dumps({k: summary[k] for k in ("steps", "seconds", "first_fifth", "last_fifth")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
