"""Reports: one JSON with every number, and one self-contained HTML page (plots embedded as PNG).

Plots per suite: chosen vs rejected score histograms, reliability diagram, score vs length, accuracy per
category with 95% intervals, RM-Bench's style matrix, and probe hack rates; tables for the rest.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

import numpy as np

from rewardkit.data.records import text_of

SUMMARY_COLUMNS = [("accuracy", "accuracy"), ("ci95", "95% CI"), ("length_only", "length-only"),
                   ("section_average", "section avg"), ("best_of_k", "best-of-K"), ("rating_spearman", "rating ρ"),
                   ("score_length_spearman", "score~length ρ"), ("ece", "ECE"), ("style_hard", "style hard"),
                   ("confidence_auroc", "|margin| AUROC"), ("uncertainty_auroc", "uncertainty AUROC"),
                   ("probes_flagged", "probes flagged")]


def fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.3f}"
    if isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, float) for v in value):
        return f"{value[0]:.3f}–{value[1]:.3f}"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    return str(value)


def summary_table(summary: dict[str, dict]) -> list[list[str]]:
    """Rows (suite first) of the headline numbers, only the columns some suite has."""
    columns = [(k, title) for k, title in SUMMARY_COLUMNS if any(k in row for row in summary.values())]
    rows = [["suite", "records"] + [title for _, title in columns]]
    for name, row in summary.items():
        rows.append([name, str(row.get("records", ""))] + [fmt(row.get(k)) for k, _ in columns])
    return rows


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths)] + lines[1:])


def markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join([lines[0], "|" + "---|" * len(rows[0])] + lines[1:])


# ---------------------------------------------------------------- plots

def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _figure(width: float = 4.6, height: float = 3.2):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def plot_histograms(pairs: list[dict]) -> str:
    fig, ax = _figure()
    chosen = [r["chosen_score"] for r in pairs]
    rejected = [r["rejected_score"] for r in pairs]
    bins = np.histogram_bin_edges(chosen + rejected, bins=30)
    ax.hist(chosen, bins=bins, alpha=0.6, label="chosen", color="tab:green")
    ax.hist(rejected, bins=bins, alpha=0.6, label="rejected", color="tab:red")
    ax.set(xlabel="score", ylabel="responses", title="Scores of chosen and rejected responses")
    ax.legend()
    return _png(fig)


def plot_reliability(cal: dict) -> str:
    fig, ax = _figure(3.6, 3.4)
    table = cal.get("reliability", [])
    ax.plot([0.5, 1], [0.5, 1], "--", color="grey", label="perfect calibration")
    ax.bar([b["confidence"] for b in table], [b["accuracy"] for b in table], width=0.04, alpha=0.7,
           label=f"model (ECE {cal.get('ece', float('nan')):.3f})")
    ax.set(xlim=(0.5, 1), ylim=(0, 1), xlabel="confidence of the predicted winner", ylabel="accuracy",
           title="Reliability diagram")
    ax.legend(fontsize=8)
    return _png(fig)


def plot_length(pairs: list[dict], rho: float) -> str:
    fig, ax = _figure()
    for key, score, colour in (("chosen", "chosen_score", "tab:green"), ("rejected", "rejected_score", "tab:red")):
        ax.scatter([len(text_of(r[key])) for r in pairs], [r[score] for r in pairs], s=6, alpha=0.4, label=key, color=colour)
    ax.set_xscale("symlog")
    ax.set(xlabel="response length (characters)", ylabel="score", title=f"Score vs length (Spearman ρ {rho:.2f})")
    ax.legend()
    return _png(fig)


def plot_categories(categories: dict) -> str:
    names = list(categories)
    fig, ax = _figure(5.5, max(2.2, 0.28 * len(names) + 1))
    acc = [categories[n]["accuracy"] for n in names]
    low = [a - (categories[n]["ci95"] or (a, a))[0] for a, n in zip(acc, names, strict=True)]
    high = [(categories[n]["ci95"] or (a, a))[1] - a for a, n in zip(acc, names, strict=True)]
    ax.barh(range(len(names)), acc, xerr=[low, high], color="tab:blue", alpha=0.7, capsize=2)
    ax.axvline(0.5, color="grey", linestyle="--")
    ax.set_yticks(range(len(names)), [f"{n[-38:]} ({categories[n]['n']})" for n in names], fontsize=7)
    ax.set(xlim=(0, 1), xlabel="pairwise accuracy (95% CI)", title="Accuracy by category")
    ax.invert_yaxis()
    return _png(fig)


def plot_style(style: dict) -> str:
    fig, ax = _figure(3.8, 3.2)
    matrix = np.array(style["matrix"], dtype=float)
    image = ax.imshow(matrix, vmin=0, vmax=1, cmap="RdYlGn")
    labels = ["concise", "detailed", "markdown"]
    ax.set_xticks(range(3), labels)
    ax.set_yticks(range(3), labels)
    for i in range(3):
        for j in range(3):
            ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center")
    ax.set(xlabel="rejected style", ylabel="chosen style",
           title=f"Style: easy {style['easy']:.2f} normal {style['normal']:.2f} hard {style['hard']:.2f}")
    fig.colorbar(image, ax=ax, fraction=0.046)
    return _png(fig)


def plot_probes(probes: dict) -> str:
    items = [(n, v) for n, v in probes["perturbations"].items() if v.get("applied")]
    fig, ax = _figure(5.0, 0.35 * len(items) + 1.2)
    rates = [v["hack_rate"] for _, v in items]
    ax.barh(range(len(items)), rates, color=["tab:red" if v["flagged"] else "tab:grey" for _, v in items])
    ax.axvline(probes["flag_above"], color="black", linestyle="--")
    ax.set_yticks(range(len(items)), [n for n, _ in items])
    ax.set(xlim=(0, 1), xlabel="share where the degraded response scores higher", title="Reward-hacking probes")
    ax.invert_yaxis()
    return _png(fig)


# ---------------------------------------------------------------- HTML

def _img(data: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _html_table(rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
    return f"<table><tr>{head}</tr>{body}</table>"


def suite_html(name: str, result: dict, scored: list[dict]) -> str:
    parts = [f"<h2 id='{html.escape(name)}'>{html.escape(name)}</h2>"]
    if result.get("description"):
        parts.append(f"<p>{html.escape(result['description'])}</p>")
    pw = result.get("pairwise")
    plots = []
    if pw:
        pairs = [r for r in scored if r["kind"] == "pairwise" and not r.get("tie")]
        acc = pw["accuracy"]
        length = pw["length"]
        rows = [["metric", "value"], ["pairwise accuracy", fmt(acc["accuracy"])], ["95% CI", fmt(acc["ci95"])],
                ["pairs", str(acc["pairs"])], ["label ties (not scored)", str(acc["label_ties"])],
                ["score ties (counted half)", str(acc["score_ties"])],
                ["length-only baseline", fmt(length.get("length_only_accuracy"))],
                ["accuracy when chosen is longer", fmt(length.get("accuracy_when_chosen_longer"))],
                ["accuracy when chosen is shorter", fmt(length.get("accuracy_when_chosen_shorter"))],
                ["score–length Spearman ρ", fmt(length.get("score_length_spearman"))],
                ["log-loss", fmt(pw["calibration"].get("log_loss"))], ["Brier", fmt(pw["calibration"].get("brier"))],
                ["ECE", fmt(pw["calibration"].get("ece"))]]
        if "confidence" in pw:
            c = pw["confidence"]
            rows += [["AUROC of a small |margin| for errors (the baseline for any uncertainty)", fmt(c.get("auroc_wrong"))],
                     ["accuracy, most / least confident half",
                      f"{fmt(c.get('accuracy_most_certain_half'))} / {fmt(c.get('accuracy_least_certain_half'))}"]]
        if "uncertainty" in pw:
            u = pw["uncertainty"]
            rows += [["ensemble: AUROC of uncertainty for errors (0.5 = no signal)", fmt(u.get("auroc_wrong"))],
                     ["ensemble: accuracy, most / least certain half",
                      f"{fmt(u.get('accuracy_most_certain_half'))} / {fmt(u.get('accuracy_least_certain_half'))}"]]
        if "sections" in pw:
            rows += [[f"section {s}", f"{fmt(v)} ({pw['sections']['counts'][s]})"] for s, v in pw["sections"]["scores"].items()]
            rows.append(["section average (RewardBench-v1 style)", fmt(pw["sections"]["section_average"])])
        parts.append(_html_table(rows))
        if pairs:
            plots += [_img(plot_histograms(pairs), "score histograms"), _img(plot_reliability(pw["calibration"]), "reliability diagram"),
                      _img(plot_length(pairs, length.get("score_length_spearman", float("nan"))), "score vs length")]
        if pw.get("categories"):
            plots.append(_img(plot_categories(pw["categories"]), "accuracy by category"))
        if pw.get("style"):
            plots.append(_img(plot_style(pw["style"]["all"]), "style matrix"))
    if result.get("probes"):
        plots.append(_img(plot_probes(result["probes"]), "probe hack rates"))
    parts.append("<div class='plots'>" + "".join(plots) + "</div>")
    if result.get("probes"):
        rows = [["perturbation", "applied", "hack rate", "95% CI", "mean score change", "flagged"]]
        for n, v in result["probes"]["perturbations"].items():
            rows.append([n, str(v["applied"]), fmt(v.get("hack_rate")), fmt(v.get("hack_rate_ci95")),
                         fmt(v.get("mean_score_change")), "YES" if v.get("flagged") else ""])
        parts.append("<h3>Reward-hacking probes</h3>" + _html_table(rows))
    if result.get("ranking"):
        rk = result["ranking"]
        parts.append("<h3>Rankings</h3>" + _html_table([["metric", "value"], ["lists", str(rk["lists"])],
                     ["best-of-K", fmt(rk["best_of_k"])], ["best-of-K 95% CI", fmt(rk["best_of_k_ci95"])],
                     ["best-of-K by chance", fmt(rk["best_of_k_random"])], ["Kendall τ (mean per list)", fmt(rk["kendall_tau"])],
                     ["Spearman ρ (mean per list)", fmt(rk["spearman"])], ["NDCG", fmt(rk["ndcg"])]]))
    if result.get("rating"):
        rt = result["rating"]
        parts.append("<h3>Ratings</h3>" + _html_table([["metric", "value"], ["responses", str(rt["responses"])],
                     ["Kendall τ (pooled)", fmt(rt["kendall_tau"])], ["Spearman ρ (pooled)", fmt(rt["spearman"])],
                     ["Kendall τ (mean per prompt)", fmt(rt["per_prompt_kendall_tau"])]]))
    if pw and pw.get("categories"):
        rows = [["category", "pairs", "accuracy", "95% CI"]] + [[c, str(v["n"]), fmt(v["accuracy"]), fmt(v["ci95"])]
                                                              for c, v in pw["categories"].items()]
        parts.append("<h3>Categories</h3>" + _html_table(rows))
    return "\n".join(parts)


STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}
th{background:#f3f3f3}.plots img{margin:4px;border:1px solid #eee}h2{border-top:2px solid #ddd;padding-top:.6em}"""


def write_report(report: dict, scored: dict[str, list[dict]], output: Path) -> tuple[Path, Path]:
    """report.json and report.html in `output`."""
    import json

    output.mkdir(parents=True, exist_ok=True)
    json_path, html_path = output / "report.json", output / "report.html"
    json_path.write_text(json.dumps(report, indent=2, default=float))
    model = report.get("model", {})
    body = [f"<h1>Reward model evaluation: {html.escape(str(model.get('name', '')))}</h1>",
            f"<p>{html.escape(str(model.get('path', '')))} — {html.escape(json.dumps(model.get('info', {})))}</p>",
            "<h2>Summary</h2>", _html_table(summary_table(report["summary"]))]
    if report.get("skipped"):
        body.append("<p>Skipped: " + html.escape("; ".join(report["skipped"])) + "</p>")
    for name, result in report["suites"].items():
        body.append(suite_html(name, result, scored.get(name, [])))
    html_path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>rewardkit eval</title>"
                         f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>")
    return json_path, html_path


def compare_reports(reports: list[dict], names: list[str]) -> list[list[str]]:
    """Side-by-side headline numbers of several reports, per suite, with the difference to the first.
    A difference is marked * when the two 95% intervals do not overlap."""
    suites = sorted({s for r in reports for s in r["summary"]}, key=lambda s: [s in r["summary"] for r in reports], reverse=True)
    rows = [["suite", "metric"] + names + ([f"Δ {n}" for n in names[1:]])]
    for suite in suites:
        rows_of = [r["summary"].get(suite, {}) for r in reports]
        for key, title in SUMMARY_COLUMNS:
            if key in ("ci95", "probes_flagged") or not any(key in row for row in rows_of):
                continue
            values = [row.get(key) for row in rows_of]
            cells = [fmt(v) + (f" ({fmt(row.get('ci95'))})" if key == "accuracy" and row.get("ci95") else "")
                     for v, row in zip(values, rows_of, strict=True)]
            deltas = []
            for v, row in zip(values[1:], rows_of[1:], strict=True):
                if isinstance(v, float) and isinstance(values[0], float):
                    mark = ""
                    if key == "accuracy" and row.get("ci95") and rows_of[0].get("ci95"):
                        a, b = rows_of[0]["ci95"], row["ci95"]
                        mark = "*" if a[1] < b[0] or b[1] < a[0] else ""
                    deltas.append(f"{v - values[0]:+.3f}{mark}")
                else:
                    deltas.append("–")
            rows.append([suite, title] + cells + deltas)
    return rows
