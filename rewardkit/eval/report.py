"""Reports: one JSON with every number, and one self-contained HTML page (plots embedded as PNG).

Plots per suite: chosen vs rejected score histograms, reliability diagram, score vs length, accuracy per
category with 95% intervals, RM-Bench's style matrix, and probe hack rates; tables for the rest, among them the
process (step-score) metrics beside their constant baselines.
The Python here computes the numbers (formatted) and the plots; templates/report.html.j2 lays out the page.
"""

from __future__ import annotations

import base64
import io
import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from rewardkit.data.texts import text_of

SUMMARY_COLUMNS = [("accuracy", "accuracy"), ("ci95", "95% CI"), ("length_only", "length-only"),
                   ("section_average", "section avg"), ("best_of_k", "best-of-K"), ("rating_spearman", "rating ρ"),
                   ("score_length_spearman", "score~length ρ"), ("ece", "ECE"), ("style_hard", "style hard"),
                   ("position_flip_rate", "position flips"),
                   ("confidence_auroc", "|margin| AUROC"), ("uncertainty_auroc", "uncertainty AUROC"),
                   ("processbench_f1", "ProcessBench F1"), ("prmscore", "PRMScore"), ("step_auroc", "step AUROC"),
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

def _pairwise_rows(pw: dict) -> list[list[str]]:
    """The pairwise metrics table: accuracy, length bias, calibration, confidence, uncertainty, sections."""
    acc, length, cal = pw["accuracy"], pw["length"], pw["calibration"]
    rows = [["metric", "value"], ["pairwise accuracy", fmt(acc["accuracy"])], ["95% CI", fmt(acc["ci95"])],
            ["pairs", str(acc["pairs"])], ["label ties (not scored)", str(acc["label_ties"])],
            ["score ties (counted half)", str(acc["score_ties"])],
            ["length-only baseline", fmt(length.get("length_only_accuracy"))],
            ["accuracy when chosen is longer", fmt(length.get("accuracy_when_chosen_longer"))],
            ["accuracy when chosen is shorter", fmt(length.get("accuracy_when_chosen_shorter"))],
            ["score–length Spearman ρ", fmt(length.get("score_length_spearman"))],
            ["log-loss", fmt(cal.get("log_loss"))], ["Brier", fmt(cal.get("brier"))], ["ECE", fmt(cal.get("ece"))]]
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
    return rows


def _plots(result: dict, scored: list[dict]) -> list[tuple[str, str]]:
    """(alt text, base64 PNG) of every plot the suite's results allow, in page order."""
    pw, plots = result.get("pairwise"), []
    if pw:
        pairs = [r for r in scored if r["kind"] == "pairwise" and not r.get("tie")]
        if pairs:
            rho = pw["length"].get("score_length_spearman", float("nan"))
            plots += [("score histograms", plot_histograms(pairs)), ("reliability diagram", plot_reliability(pw["calibration"])),
                      ("score vs length", plot_length(pairs, rho))]
        if pw.get("categories"):
            plots.append(("accuracy by category", plot_categories(pw["categories"])))
        if pw.get("style"):
            plots.append(("style matrix", plot_style(pw["style"]["all"])))
    if result.get("probes"):
        plots.append(("probe hack rates", plot_probes(result["probes"])))
    return plots


def _probe_rows(probes: dict) -> list[list[str]]:
    rows = [["perturbation", "applied", "hack rate", "95% CI", "mean score change", "flagged"]]
    for n, v in probes["perturbations"].items():
        rows.append([n, str(v["applied"]), fmt(v.get("hack_rate")), fmt(v.get("hack_rate_ci95")),
                     fmt(v.get("mean_score_change")), "YES" if v.get("flagged") else ""])
    return rows


def _ranking_rows(rk: dict) -> list[list[str]]:
    return [["metric", "value"], ["lists", str(rk["lists"])], ["best-of-K", fmt(rk["best_of_k"])],
            ["best-of-K 95% CI", fmt(rk["best_of_k_ci95"])], ["best-of-K by chance", fmt(rk["best_of_k_random"])],
            ["Kendall τ (mean per list)", fmt(rk["kendall_tau"])], ["Spearman ρ (mean per list)", fmt(rk["spearman"])],
            ["NDCG", fmt(rk["ndcg"])]]


def _rating_rows(rt: dict) -> list[list[str]]:
    return [["metric", "value"], ["responses", str(rt["responses"])], ["Kendall τ (pooled)", fmt(rt["kendall_tau"])],
            ["Spearman ρ (pooled)", fmt(rt["spearman"])], ["Kendall τ (mean per prompt)", fmt(rt["per_prompt_kendall_tau"])]]


def _category_rows(categories: dict) -> list[list[str]]:
    return [["category", "pairs", "accuracy", "95% CI"]] + [[c, str(v["n"]), fmt(v["accuracy"]), fmt(v["ci95"])]
                                                          for c, v in categories.items()]


STEPWISE_BASELINES = {"all_correct": "all correct", "error_at_step_0": "error at step 0", "orm": "outcome model"}


def _stepwise_note(sw: dict) -> str:
    """What the process numbers were computed on, and where the ProcessBench threshold came from."""
    t = sw["threshold"]
    source = (f"chosen on {t['chosen_on']} (F1 there {fmt(t.get('f1_on_split'))}), not on this set" if t.get("chosen_on")
              else "fixed, no threshold split given")
    return (f"{sw['solutions']} solutions, {sw['steps']} steps ({sw['unscored_steps']} unscored). A step is flagged "
            f"when P(correct) < {fmt(t['value'])} ({source}); the predicted first error is the first flagged step.")


def _stepwise_rows(sw: dict) -> list[list[str]]:
    """The process metrics: the model beside each baseline, metric by metric."""
    columns = [sw["model"]] + [sw["baselines"][k] for k in STEPWISE_BASELINES if k in sw["baselines"]]
    metrics = [("ProcessBench accuracy, erroneous solutions", lambda m: m["processbench"]["accuracy_erroneous"]),
               ("ProcessBench accuracy, correct solutions", lambda m: m["processbench"]["accuracy_correct"]),
               ("ProcessBench F1", lambda m: m["processbench"]["f1"]),
               ("PRMScore (at 0.5)", lambda m: m["prmscore"]["prmscore"]),
               ("F1, correct steps", lambda m: m["prmscore"]["f1_correct"]),
               ("F1, erroneous steps", lambda m: m["prmscore"]["f1_erroneous"]),
               ("step AUROC", lambda m: m["step_auroc"])]
    if sw["model"]["best_of_k"]["groups"]:
        metrics += [(f"best-of-K by {how}", lambda m, how=how: m["best_of_k"].get(how))
                    for how in ("min", "last", "mean", "product", "response_score")]
    rows = [["metric", "model"] + [v for k, v in STEPWISE_BASELINES.items() if k in sw["baselines"]]]
    rows += [[title] + [fmt(get(m)) for m in columns] for title, get in metrics]
    bok = sw["model"]["best_of_k"]
    if bok["groups"]:
        rows.append([f"best-of-K: {bok['groups']} prompts, {bok['candidates']} solutions; random / oracle pick",
                     f"{fmt(bok['random'])} / {fmt(bok['oracle'])}"] + [""] * (len(columns) - 1))
    return rows


def _stepwise_category_rows(categories: dict) -> list[list[str]]:
    return [["category", "solutions", "erroneous", "correct", "steps", "ProcessBench F1", "PRMScore", "step AUROC"]] + [
        [c, str(v["solutions"]), str(v["erroneous"]), str(v["correct"]), str(v["steps"]), fmt(v["f1"]), fmt(v["prmscore"]),
         fmt(v["step_auroc"])] for c, v in categories.items()]


def suite_view(name: str, result: dict, scored: list[dict]) -> dict:
    """What the page shows for one suite: formatted table rows (None for an absent table) and plots."""
    pw, sw = result.get("pairwise"), result.get("stepwise")
    return {"name": name, "description": result.get("description"), "metrics": _pairwise_rows(pw) if pw else None,
            "stepwise": _stepwise_rows(sw) if sw else None, "stepwise_note": _stepwise_note(sw) if sw else None,
            "stepwise_categories": _stepwise_category_rows(sw["categories"]) if sw and len(sw["categories"]) > 1 else None,
            "plots": _plots(result, scored), "probes": _probe_rows(result["probes"]) if result.get("probes") else None,
            "ranking": _ranking_rows(result["ranking"]) if result.get("ranking") else None,
            "rating": _rating_rows(result["rating"]) if result.get("rating") else None,
            "categories": _category_rows(pw["categories"]) if pw and pw.get("categories") else None}


@lru_cache(maxsize=1)
def _template():
    """The page template, autoescaped: suite names, categories and model details may contain HTML."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("rewardkit.eval", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.get_template("report.html.j2")


def render_html(report: dict, scored: dict[str, list[dict]]) -> str:
    """The self-contained HTML page of a report (plots embedded as PNG)."""
    model = report.get("model", {})
    return _template().render(
        model_name=str(model.get("name", "")), model_path=str(model.get("path", "")),
        model_info=json.dumps(model.get("info", {})), summary=summary_table(report["summary"]),
        skipped=report.get("skipped") or [],
        suites=[suite_view(name, result, scored.get(name, [])) for name, result in report["suites"].items()])


def write_report(report: dict, scored: dict[str, list[dict]], output: Path) -> tuple[Path, Path]:
    """report.json and report.html in `output`."""
    output.mkdir(parents=True, exist_ok=True)
    json_path, html_path = output / "report.json", output / "report.html"
    json_path.write_text(json.dumps(report, indent=2, default=float))
    html_path.write_text(render_html(report, scored))
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
