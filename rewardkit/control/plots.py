"""The control run's curve: the policy's recent true return and the labels asked, against environment steps."""

from __future__ import annotations

from pathlib import Path


def plot_curve(curve: list[dict], path: str | Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [p["env_steps"] for p in curve]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    returns = [(s, p["recent_true_return"]) for s, p in zip(steps, curve, strict=True) if p["recent_true_return"] is not None]
    ax.plot([s for s, _ in returns], [r for _, r in returns], marker="o", label="true return (last 10 episodes)")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("true return")
    labels = ax.twinx()
    labels.step(steps, [p["labelled"] for p in curve], where="post", color="grey", alpha=0.6, label="labels")
    labels.set_ylabel("labels so far")
    ax.set_title(title, fontsize=9)
    fig.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
