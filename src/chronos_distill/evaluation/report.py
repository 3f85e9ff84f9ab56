"""Evaluation reports: a markdown table, a JSON file and PNG plots of a few series."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from chronos_distill.data.competition import Benchmark
from chronos_distill.evaluation.metrics import QUANTILE_LEVELS
from chronos_distill.files import write_json_atomic


def markdown_table(results: dict[str, Any]) -> str:
    """One row per model: WQL and MASE per data set, the geometric-mean relative scores, then the share of series
    whose quantiles cross (where the results count it)."""
    datasets = list(results["datasets"])
    models = list(results["relative"])
    crossing = results.get("crossing", {})  # results written before crossing was counted have none
    header = ["model", *[f"{d} WQL" for d in datasets], *[f"{d} MASE" for d in datasets], "rel. WQL", "rel. MASE"]
    header += ["quantiles cross"] if crossing else []
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model in models:
        cells = [model]
        cells += [f"{results['datasets'][d]['scores'][model]['WQL']:.4f}" for d in datasets]
        cells += [f"{results['datasets'][d]['scores'][model]['MASE']:.3f}" for d in datasets]
        cells += [f"{results['relative'][model]['WQL']:.3f}", f"{results['relative'][model]['MASE']:.3f}"]
        cells += [f"{crossing[model]['rows_crossing']:.1%}"] if crossing else []
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("WQL over quantile levels 0.1..0.9 and MASE of the median, per data set; rel. = geometric mean over "
                 "the data sets of the ratio to seasonal naive (below 1 is better)"
                 + ("; quantiles cross = share of series with a higher quantile level below a lower one at some step."
                    if crossing else "."))
    return "\n".join(lines) + "\n"


#: Model colours that stay apart where 10-90% bands overlap (Okabe-Ito, colour-blind safe); seasonal naive is the
#: grey reference line
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9")


def plot_series(
    benchmark: Benchmark, forecasts: dict[str, np.ndarray], path: Path, n_series: int = 4, history: int = 60,
    title: str | None = None,
) -> Path:
    """Context tail, truth, and each model's median with its 10-90% band, for the first ``n_series`` series;
    seasonal naive (where scored) as a grey dotted reference. ``title``: what produced the forecasts (models,
    teacher, steps), above the data set's name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = list(QUANTILE_LEVELS)
    low, mid, high = levels.index(0.1), levels.index(0.5), levels.index(0.9)
    n = min(n_series, len(benchmark))
    fig, axes = plt.subplots(n, 1, figsize=(9, 2.4 * n + 1.2), squeeze=False, sharex=True)
    models = [name for name in forecasts if name != "seasonal_naive"]
    for i, ax in enumerate(axes[:, 0]):
        context = benchmark.contexts[i][-history:]
        past = np.arange(-len(context), 0)
        future = np.arange(benchmark.horizon)
        ax.plot(past, context, color="black", lw=1.1, label="context")
        ax.plot(future, benchmark.truth[i], color="black", lw=1.1, ls="--", label="truth")
        if "seasonal_naive" in forecasts:
            ax.plot(future, forecasts["seasonal_naive"][i, :, mid], color="grey", lw=1.2, ls=":",
                    label="seasonal naive")
        for color, name in zip(PALETTE, models):
            q = forecasts[name]
            ax.fill_between(future, q[i, :, low], q[i, :, high], color=color, alpha=0.12, lw=0)
            for bound in (low, high):  # band edges: overlapping bands stay readable
                ax.plot(future, q[i, :, bound], color=color, lw=0.7, ls="--", alpha=0.8)
            ax.plot(future, q[i, :, mid], color=color, lw=1.6, label=f"{name}: median, 10-90% band")
        ax.set_title(f"{benchmark.name}: {benchmark.item_ids[i]}", fontsize=9)
        ax.set_ylabel("target (data's units)", fontsize=8)
        ax.axvline(-0.5, color="grey", lw=0.5)
        ax.grid(alpha=0.25)
    axes[-1, 0].set_xlabel("time step relative to the forecast start (0 = first forecast step)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    import textwrap

    heading = f"{benchmark.name}, horizon {benchmark.horizon}"
    fig.suptitle("\n".join([*textwrap.wrap(title, 110), heading]) if title else heading, fontsize=10)
    fig.tight_layout(rect=(0, 0.06 + 0.02 * ((len(labels) - 1) // 3), 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(
    results: dict[str, Any],
    forecasts: dict[str, dict[str, np.ndarray]],
    benchmarks: dict[str, Benchmark],
    output: Path,
    n_plotted: int = 4,
    title: str | None = None,
) -> dict[str, Path]:
    """Write ``scores.md``, ``scores.json`` and ``plot_<dataset>.png`` into ``output``; returns their paths.
    ``title``: what produced the forecasts, on every plot."""
    output.mkdir(parents=True, exist_ok=True)
    table = output / "scores.md"
    table.write_text(markdown_table(results))
    scores = output / "scores.json"
    write_json_atomic(scores, results)
    paths = {"table": table, "json": scores}
    for name, benchmark in benchmarks.items():
        paths[f"plot_{name}"] = plot_series(benchmark, forecasts[name], output / f"plot_{name}.png", n_plotted,
                                             title=title)
    return paths
