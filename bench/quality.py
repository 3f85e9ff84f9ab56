"""Quality benchmark: what a distilled student keeps of its teacher on real data, and what it costs.

Compares, on M3 yearly / quarterly / monthly (official horizons, WQL and MASE next to seasonal naive):

- the teacher (by default the bundled reference teacher),
- the default 384-d student distilled from it (``alpha`` 0.5, ``quantile`` output loss),
- the same student trained on the truth only (``alpha`` 0: same data, steps and seed),
- seasonal naive,

with parameters and the CPU latency of one forecast batch (64 M3 monthly series): end to end through
``Chronos2Pipeline.predict_quantiles`` and for the bare model forward (median of 5 after a warm-up; torch's
default threads, 2 on the project's machine). The transfer set is the
training portions of M1 and M3; the test portions are only ever scored.

    python bench/quality.py [--teacher reference] [--steps 2000] [--out bench/results]

Writes ``quality.md``, ``quality.json`` and ``plot_m3_*.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from chronos.chronos2 import Chronos2Pipeline

from chronos_distill import distill, load_teacher
from chronos_distill.benchmarks import load_m3_benchmarks, training_table
from chronos_distill.evaluation import evaluate_models
from chronos_distill.report import markdown_table, write_report


def latency_s(model, contexts, horizon: int, repeats: int = 5) -> float:
    """Median wall time of one ``predict_quantiles`` call on ``contexts`` (after one warm-up call)."""
    pipeline = Chronos2Pipeline(model.float().eval())
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        pipeline.predict_quantiles(contexts, prediction_length=horizon, batch_size=len(contexts))
        if i:
            times.append(time.perf_counter() - start)
    return float(np.median(times))


def forward_latency_s(model, contexts, horizon: int, repeats: int = 5) -> float:
    """Median wall time of the bare model forward on the same batch (left-padded with NaN, as the pipeline
    does): the compute both models share no pipeline overhead in."""
    length = max(len(c) for c in contexts)
    batch = torch.full((len(contexts), length), float("nan"))
    for i, c in enumerate(contexts):
        batch[i, length - len(c):] = c
    patches = -(-horizon // model.chronos_config.output_patch_size)
    model = model.float().eval()
    times = []
    with torch.inference_mode():
        for i in range(repeats + 1):
            start = time.perf_counter()
            model(context=batch, num_output_patches=patches)
            if i:
                times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", default="reference")
    parser.add_argument("--steps", type=int, default=2000, help="distillation steps of each student")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--prediction-length", type=int, default=18, help="horizon of the transfer windows")
    parser.add_argument("--min-past", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", default="runs/bench-quality", help="folder for the students")
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args(argv)

    transfer = training_table(("M1", "M3"))
    common = dict(
        teacher=args.teacher, train_data=transfer, prediction_length=args.prediction_length, min_past=args.min_past,
        max_steps=args.steps, batch_size=args.batch_size, learning_rate=args.learning_rate, seed=args.seed,
        save_steps=max(1, args.steps // 4), logging_steps=max(1, args.steps // 20), overwrite=True,
    )
    runs = Path(args.runs)
    distilled = distill(output=str(runs / "distilled"), alpha=0.5, **common)
    truth_only = distill(output=str(runs / "truth-only"), alpha=0.0, **common)

    models = {
        "teacher": load_teacher(args.teacher),
        "distilled student": load_teacher(distilled.output, role="student"),
        "truth-only student": load_teacher(truth_only.output, role="student"),
    }
    benchmarks = {f"m3_{name}": b for name, b in load_m3_benchmarks().items()}
    results, forecasts = evaluate_models(models, benchmarks)

    monthly = benchmarks["m3_monthly"]
    batch = [torch.tensor(c, dtype=torch.float32) for c in monthly.contexts[:64]]
    results["cost"] = {
        name: {
            "parameters": sum(p.numel() for p in model.parameters()),
            "latency_batch64_s": latency_s(model, batch, monthly.horizon),
            "forward_latency_batch64_s": forward_latency_s(model, batch, monthly.horizon),
        }
        for name, model in models.items()
    }
    teacher_latency = results["cost"]["teacher"]["latency_batch64_s"]
    teacher_forward = results["cost"]["teacher"]["forward_latency_batch64_s"]
    for cost in results["cost"].values():
        cost["speedup_vs_teacher"] = teacher_latency / cost["latency_batch64_s"]
        cost["forward_speedup_vs_teacher"] = teacher_forward / cost["forward_latency_batch64_s"]
    wql = {m: results["relative"][m]["WQL"] for m in models}
    results["summary"] = {
        "distilled_wql_vs_teacher": wql["distilled student"] / wql["teacher"],
        "truth_only_wql_vs_teacher": wql["truth-only student"] / wql["teacher"],
        "teacher_wql_gain_vs_seasonal_naive": {
            d: 1 - r["scores"]["teacher"]["WQL"] / r["scores"]["seasonal_naive"]["WQL"]
            for d, r in results["datasets"].items()
        },
    }
    results["command"] = "python bench/quality.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    results["training"] = {"distilled": distilled.record["training"], "truth_only": truth_only.record["training"]}

    out = Path(args.out)
    write_report(results, forecasts, benchmarks, out / "quality")
    cost_lines = [
        "| model | parameters | forecast latency, batch 64 (s) | speed-up | model forward, batch 64 (s) | speed-up |",
        "|---|---|---|---|---|---|",
    ]
    cost_lines += [
        f"| {m} | {c['parameters']:,} | {c['latency_batch64_s']:.3f} | {c['speedup_vs_teacher']:.2f}x "
        f"| {c['forward_latency_batch64_s']:.4f} | {c['forward_speedup_vs_teacher']:.2f}x |"
        for m, c in results["cost"].items()
    ]
    text = "\n".join([
        "# Quality: teacher vs distilled student vs truth-only student (M3)", "",
        f"Command: `{results['command']}`", "", markdown_table(results), *cost_lines, "",
        f"Distilled student WQL / teacher WQL (geometric mean over subsets): "
        f"{results['summary']['distilled_wql_vs_teacher']:.3f}; truth-only: "
        f"{results['summary']['truth_only_wql_vs_teacher']:.3f}.", "",
    ])
    (out / "quality.md").write_text(text)
    (out / "quality.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
