"""The size ladder: KD students of several widths and depths, what each keeps and what it costs (issue 23).

Every rung is a KD student (alpha 0.5, the retention benchmark's cross-domain regime: distilled on the M3
training series with the same validation split, steps, teacher cache and seed), scored on data outside its
distillation set (M1's test portions and the seasonality suite at the reported seed) relative to its teacher,
and timed forecasting a batch of 64 M1 monthly series (all models interleaved, median and IQR). One seed: the
plot says so. The 384-d / 2-layer rung is the default student, the retention benchmark's own KD seed-0 run.

    python bench/ladder.py [--rungs 256x2,256x4,384x2,384x4,512x2] [--seed 0] [--steps 2000]
        [--teacher reference] [--runs runs/bench-retention] [--out bench/results]

Writes ``ladder.md``, ``ladder.json`` and ``ladder.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common import (
    add_training_arguments,
    command_line,
    geomean,
    interleaved_timing,
    provenance,
    save_figure,
    write_results,
)
from retention import Retention, run_file

DEFAULT_RUNGS = "256x2,256x4,384x2,384x4,512x2"


def rung_variant(d_model: int, layers: int) -> str:
    return "KD" if (d_model, layers) == (384, 2) else f"KD-{d_model}x{layers}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_training_arguments(parser, steps=2000, runs="runs/bench-retention")
    parser.add_argument("--rungs", default=DEFAULT_RUNGS, help="d_model x layers, comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-batches", type=int, default=500)
    parser.add_argument("--save-steps", type=int, default=250)
    parser.add_argument("--suite-seed", type=int, default=3)
    parser.add_argument("--validation-suite-seed", type=int, default=2)
    parser.add_argument("--suite-series", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=10, help="timing rounds")
    args = parser.parse_args(argv)
    args.regime = "cross-domain"
    rungs = [tuple(int(v) for v in r.split("x")) for r in args.rungs.split(",") if r.strip()]

    import torch
    from chronos.chronos2 import Chronos2Pipeline

    from chronos_distill.chronos2.loading import load_chronos2
    from chronos_distill.chronos2.student import count_parameters

    retention = Retention(args)
    entries = {}
    for d_model, layers in rungs:
        variant = rung_variant(d_model, layers)
        entries[f"{d_model}x{layers}"] = retention.result(variant, args.seed, student_d_model=d_model,
                                                          student_num_layers=layers)
    teacher_scores = retention.teacher_scores()["held-out"]
    naive_vs_teacher = float(geomean([d["scores"]["seasonal_naive"]["WQL"] / d["scores"]["teacher"]["WQL"]
                                       for d in teacher_scores["datasets"].values()]))
    monthly = retention.sets["held-out"]["m1_monthly"]
    batch = [torch.tensor(c, dtype=torch.float32) for c in monthly.contexts[:64]]
    pipelines = {"teacher": Chronos2Pipeline(retention.teacher)}
    for rung in entries:
        d_model, layers = (int(v) for v in rung.split("x"))
        folder = Path(args.runs) / args.regime / rung_variant(d_model, layers) / f"seed{args.seed}" / "model"
        pipelines[rung] = Chronos2Pipeline(load_chronos2(folder, role="student"))
    with torch.no_grad():
        timing = interleaved_timing({name: (lambda p=p: p.predict_quantiles(batch, prediction_length=monthly.horizon))
                                     for name, p in pipelines.items()}, repeats=args.repeats)
    rows = {"teacher": {"parameters": count_parameters(retention.teacher), "held_out": 1.0, "suite": 1.0,
                        "in_domain": 1.0, **_latency(timing["teacher"])}}
    for rung, entry in entries.items():
        rows[rung] = {"parameters": count_parameters(pipelines[rung].model), "held_out": entry["held-out"]["vs_teacher"],
                      "in_domain": entry["in-domain"]["vs_teacher"], "suite": entry["suite"]["geomean"],
                      **_latency(timing[rung])}
    results = {"command": command_line("ladder.py", argv), "provenance": provenance(args.teacher, argv, "ladder.py"),
               "teacher": args.teacher, "seed": args.seed,
               "steps": args.steps, "seasonal_naive_vs_teacher_held_out": naive_vs_teacher, "rungs": rows,
               "run_files": {r: str(run_file(args.out, args.regime, rung_variant(*map(int, r.split("x"))), args.seed))
                             for r in entries}}
    lines = ["# Size ladder: KD students distilled on M3, scored on M1 and the seasonality suite", "",
             f"`{results['command']}`", "",
             f"Teacher {args.teacher}; {args.steps} steps; one seed ({args.seed}); latency: 64 M1 monthly series, "
             f"{args.repeats} interleaved rounds, median (IQR). Seasonal naive on M1 is {naive_vs_teacher:.3f}x the "
             "teacher's WQL.", "",
             "| model | parameters | held-out WQL vs teacher (M1) | suite MAE vs teacher | in-domain WQL vs teacher (M3) "
             "| latency, batch 64 |", "|---|---|---|---|---|---|"]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['parameters']:,} | {row['held_out']:.3f} | {row['suite']:.3f} | "
                     f"{row['in_domain']:.3f} | {row['latency_s']:.4f} s ({row['latency_iqr_s']:.4f}) |")
    plot(rows, naive_vs_teacher, Path(args.out) / "ladder.png", args)
    write_results(args.out, "ladder", "\n".join(lines) + "\n", results)
    return 0


def _latency(timing: dict) -> dict:
    return {"latency_s": timing["median_s"], "latency_iqr_s": timing["iqr_s"]}


def plot(rows: dict, naive: float, path: Path, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, key, label in ((axes[0], "latency_s", "forecast latency, batch of 64 (s, median)"),
                           (axes[1], "parameters", "parameters")):
        for name, row in rows.items():
            teacher = name == "teacher"
            ax.scatter(row[key], row["held_out"], marker="*" if teacher else "o", s=160 if teacher else 60,
                       color="black" if teacher else "tab:blue", zorder=3)
            ax.annotate(name, (row[key], row["held_out"]), textcoords="offset points", xytext=(6, 4), fontsize=9)
        ax.axhline(naive, color="tab:red", linestyle="--", label=f"seasonal naive ({naive:.2f}x)")
        ax.axhline(1.0, color="grey", linestyle=":", label="teacher (1.0)")
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("held-out WQL vs teacher (M1; lower is better)")
    axes[0].legend(loc="best", fontsize=8)
    fig.suptitle(f"KD students of several sizes (d_model x layers), distilled on M3 for {args.steps} steps; "
                 f"one seed ({args.seed}), not an error bar", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
