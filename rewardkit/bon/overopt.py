"""Over-optimisation curves: what best-of-n selection by a proxy reward does to a gold score no proxy sees.

For each n in `ns`, the expected proxy score and gold score of the best-of-n pick (rewardkit.bon.select.
expected_best_of, exact per pool), averaged over pools, beside KL(best-of-n || sampling) <= log n - (n-1)/n.
A proxy that tracks the gold makes both rise together; one that is exploitable keeps rising while the gold
flattens or falls (Gao et al. 2022) — the picture to look at before optimising a policy against it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rewardkit.bon.select import expected_best_of, kl_bound


def curve(proxy: list[list[float | None]], gold: list[list[float]], ns: list[int]) -> list[dict]:
    """Rows {n, kl_bound, proxy, proxy_gain, gold, gold_oracle, pools} for each n; proxy and gold are per pool [M].
    Only candidates with a proxy score count; a pool joins the rows for n up to its number of such candidates.
    proxy_gain is the proxy's rise over n = 1 in units of its within-pool standard deviation (comparable across
    reward models); gold_oracle is the gold of the gold-best of n: the ceiling any proxy could reach."""
    pools = []
    for p, g in zip(proxy, gold, strict=True):
        keep = [i for i, v in enumerate(p) if v is not None]
        pools.append((np.array([p[i] for i in keep], dtype=float), np.array([g[i] for i in keep], dtype=float)))
    spread = float(np.mean([p.std() for p, _ in pools if len(p) > 1] or [0.0])) or 1.0
    base = float(np.mean([p.mean() for p, _ in pools if len(p)]))
    rows = []
    for n in ns:
        picks = [expected_best_of(p, g, n) for p, g in pools if len(p) >= n]
        oracle = [expected_best_of(g, g, n)[1] for _, g in pools if len(g) >= n]
        if picks:
            proxy_mean = float(np.mean([x for x, _ in picks]))
            rows.append({"n": n, "kl_bound": kl_bound(n), "proxy": proxy_mean, "proxy_gain": (proxy_mean - base) / spread,
                         "gold": float(np.mean([y for _, y in picks])), "gold_oracle": float(np.mean(oracle)),
                         "pools": len(picks)})
    return rows


def plot_curves(curves: dict[str, list[dict]], path, title: str = "best-of-n: proxy and gold score") -> None:
    """The best-of-n pick's proxy gain (in within-pool standard deviations) and gold score against n, and its
    gold score against the KL bound, one line per selector, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for name, rows in curves.items():
        ns = [r["n"] for r in rows]
        axes[0].plot(ns, [r["proxy_gain"] for r in rows], marker="o", label=name)
        axes[1].plot(ns, [r["gold"] for r in rows], marker="o", label=name)
        axes[2].plot([r["kl_bound"] for r in rows], [r["gold"] for r in rows], marker="o", label=name)
    if curves:
        rows = next(iter(curves.values()))
        axes[1].plot([r["n"] for r in rows], [r["gold_oracle"] for r in rows], "k--", label="gold-best of n (ceiling)")
    for ax in axes[:2]:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("n (candidates per prompt)")
    axes[0].set_ylabel("proxy score of the pick, gain over n = 1 (pool s.d.)")
    axes[1].set_ylabel("gold score of the pick")
    axes[2].set_xlabel("KL(best-of-n || sampling): the bound log n - (n-1)/n (nats)")
    axes[2].set_ylabel("gold score of the pick")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def write_page(records: list[dict], counts: dict, rows: list[dict], plot_png: bytes | None, scorer: str, rule: str,
               source: str, path, shown: int = 30) -> None:
    """The HTML page of a best-of-N run: counts, the curve (with gold values) and the first choices, autoescaped
    (prompts and candidates are model text)."""
    import base64

    import jinja2

    from rewardkit.bon.pools import response_text as text
    from rewardkit.data.texts import text_of

    def fmt(x) -> str:
        return "–" if x is None else f"{x:.3f}"

    choices = []
    for r in records[:shown]:
        scored = [c for c in r["candidates"] if c["value"] is not None]
        worst = min(scored, key=lambda c: c["value"]) if scored else None
        choices.append({"prompt": text_of(r["prompt"]), "n": r["provenance"]["n"], "tied": r["tied"],
                        "chosen": f"{text(r['response'])}  ({fmt(r['score'])})" if r["chosen"] is not None else "(none)",
                        "worst": f"{text(worst['response'])}  ({fmt(worst['value'])})" if worst else "(none)"})
    env = jinja2.Environment(loader=jinja2.PackageLoader("rewardkit.bon", "templates"), autoescape=True)
    page = env.get_template("bon.html.j2").render(
        scorer=scorer, rule=rule, source=source, counts=sorted(counts.items()), shown=choices,
        curve=[{"n": r["n"], "kl": f"{r['kl_bound']:.2f}", "proxy": fmt(r["proxy"]), "gold": fmt(r["gold"]),
                "oracle": fmt(r["gold_oracle"]), "pools": r["pools"]} for r in rows],
        plot=base64.b64encode(plot_png).decode() if plot_png else "")
    Path(path).write_text(page, encoding="utf-8")


def write_outputs(records: list[dict], counts: dict, pools: list, provenance: dict, scorer_name: str, rule: str,
                  ns: list[int], output: Path) -> list[dict]:
    """Beside the records at `output`: OUTPUT.summary.json, the page OUTPUT.html and, when every pool has gold
    values, the curve (in both, and OUTPUT.curve.png). Returns the curve's rows (none without gold)."""
    import json

    from rewardkit.data.io import atomic_path

    rows, png = [], None
    if pools and all(p.gold is not None for p in pools):
        rows = curve([[c["value"] for c in r["candidates"]] for r in records], [p.gold for p in pools], ns)
        with atomic_path(output.with_suffix(".curve.png")) as tmp:
            plot_curves({scorer_name: rows}, tmp)
            png = tmp.read_bytes()
    summary = {"output": str(output), "counts": counts, "provenance": provenance, "rule": rule,
               **({"curve": rows} if rows else {})}
    output.with_suffix(".summary.json").write_text(json.dumps(summary, indent=2, default=str))
    write_page(records, counts, rows, png, provenance["scorer"], rule,
               provenance.get("candidates") or provenance.get("generator", ""), output.with_suffix(".html"))
    return rows
