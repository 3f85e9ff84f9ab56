"""Deployment benchmark: forecast latency of the student in PyTorch, PyTorch int8, ONNX fp32 and ONNX int8.

Variants, each a ``Chronos2Pipeline`` (the ONNX ones :class:`chronos_distill.deploy.onnx_forecaster.OnnxForecaster`), timed
through ``predict_quantiles`` end to end (input preparation included), interleaved, median and IQR:

- ``teacher, PyTorch``: the teacher, fp32;
- ``student, PyTorch fp32``;
- ``student, PyTorch int8``: ``torch.ao.quantization.quantize_dynamic`` of its ``nn.Linear`` layers (for
  comparison; torch marks that API deprecated in favour of torchao);
- ``student, ONNX fp32`` / ``student, ONNX int8``: ``chronos-distill export-onnx`` files in onnxruntime.

Settings: batch 1 and 64 series, contexts 512 and 2048 steps (a model cuts a context to its own
``context_length``: the reference models take 512), horizon 18. Two model pairs:

- ``reference``: the bundled reference teacher and a default student distilled from it (``--student``, or one
  distilled here for ``--steps``), also scored on M3 (WQL of every variant, and the end-to-end time to forecast
  every M3 series long enough to score, interleaved);
- ``random 768/12 vs 384/6``: random Chronos-2 models of amazon/chronos-2's shape (d_model 768, 12 layers,
  12 heads, d_ff 3072, context 2048) and the default student's shape (384, 6 layers, 6 heads, d_ff 1536).

One call of each student variant (batch 64, context 512) is profiled: the time by operator, from
``torch.profiler`` and onnxruntime's profiler. All runs use the same threads (torch's default, which
onnxruntime is set to as well).

    python bench/deploy.py [--student DIR] [--repeats 10] [--out bench/results]

Writes ``deploy.md`` and ``deploy.json`` into ``--out``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from common import (
    CHRONOS2_SHAPES,
    add_training_arguments,
    arguments,
    command_line,
    interleaved_timing,
    load_json,
    provenance,
    provenance_line,
    relative_wql,
    run_options,
    score,
    times,
    train_in_subprocess,
    write_results,
)

SETTINGS = [(1, 512), (64, 512), (1, 2048), (64, 2048)]
HORIZON = 18
VARIANTS = ("teacher, PyTorch", "student, PyTorch fp32", "student, PyTorch int8", "student, ONNX fp32",
            "student, ONNX int8")


def torch_int8(model):
    """The model with its nn.Linear layers in dynamic int8 (torch.ao; deprecated there, still shipped)."""
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def forecasters(teacher, student, folder: Path, threads: int) -> dict:
    """The five variants as pipelines (the student exported to ONNX fp32 and int8 in ``folder``)."""
    import copy

    from chronos.chronos2 import Chronos2Pipeline

    from chronos_distill.deploy.onnx_export import export_onnx
    from chronos_distill.deploy.onnx_forecaster import OnnxForecaster

    files = {q: export_onnx(student, folder / f"student-{q}.onnx", quantize=q) for q in ("none", "int8")}
    return {
        "teacher, PyTorch": Chronos2Pipeline(teacher),
        "student, PyTorch fp32": Chronos2Pipeline(student),
        "student, PyTorch int8": Chronos2Pipeline(torch_int8(copy.deepcopy(student))),
        "student, ONNX fp32": OnnxForecaster.from_file(files["none"], threads=threads),
        "student, ONNX int8": OnnxForecaster.from_file(files["int8"], threads=threads),
    }, {q: f.stat().st_size for q, f in files.items()}


def latency_grid(pipelines: dict, repeats: int, settings=SETTINGS, seed: int = 0) -> dict:
    """``{"B x T": {variant: timing}}`` for each (batch, context) setting."""
    rng = np.random.default_rng(seed)
    grid = {}
    for batch, context in settings:
        series = [torch.tensor(np.cumsum(rng.normal(size=context)) + 10, dtype=torch.float32) for _ in range(batch)]
        calls = {name: (lambda p=p, s=series, b=batch: p.predict_quantiles(s, prediction_length=HORIZON, batch_size=b))
                 for name, p in pipelines.items()}
        grid[f"{batch} x {context}"] = interleaved_timing(calls, repeats=repeats)
        print(f"{batch} x {context}: " + ", ".join(f"{n} {t['median_s']:.4f}s" for n, t in grid[f"{batch} x {context}"].items()),
              flush=True)
    return grid


def profile_call(pipelines: dict, threads: int, seed: int = 0) -> dict:
    """Share of one call's time by operator (top 8), batch 64 x context 512, for each student variant."""
    from torch.profiler import ProfilerActivity, profile

    rng = np.random.default_rng(seed)
    series = [torch.tensor(np.cumsum(rng.normal(size=512)) + 10, dtype=torch.float32) for _ in range(64)]
    out = {}
    for name, pipeline in pipelines.items():
        if not name.startswith("student"):
            continue
        pipeline.predict_quantiles(series, prediction_length=HORIZON, batch_size=64)  # warm
        if "ONNX" in name:
            out[name] = _onnx_profile(pipeline, series, threads)
            continue
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            pipeline.predict_quantiles(series, prediction_length=HORIZON, batch_size=64)
        events = [e for e in prof.key_averages() if e.key.startswith("aten::") or e.key.startswith("quantized::")]
        total = sum(e.self_cpu_time_total for e in events) or 1.0
        top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:8]
        out[name] = {e.key: e.self_cpu_time_total / total for e in top}
    return out


def _onnx_profile(forecaster, series, threads: int) -> dict:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.enable_profiling = True
    options.intra_op_num_threads = threads
    with tempfile.TemporaryDirectory() as scratch:
        options.profile_file_prefix = str(Path(scratch) / "ort")
        model = forecaster.model
        session = ort.InferenceSession(str(model.path), options, providers=["CPUExecutionProvider"])
        previous, model.session = model.session, session
        try:
            forecaster.predict_quantiles(series, prediction_length=HORIZON, batch_size=64)
        finally:
            model.session = previous
        trace = json.loads(Path(session.end_profiling()).read_text())
    by_op: dict[str, float] = defaultdict(float)
    for event in trace:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            by_op[event["args"].get("op_name", "?")] += event["dur"]
    total = sum(by_op.values()) or 1.0
    return {op: t / total for op, t in sorted(by_op.items(), key=lambda kv: -kv[1])[:8]}


def m3_quality_and_time(pipelines: dict, benchmarks: dict, repeats: int) -> dict:
    """M3 WQL of every variant, and the interleaved end-to-end time to forecast all M3 series."""
    from chronos_distill.evaluation.scoring import forecast_quantiles

    scores = score(pipelines, benchmarks)
    timing = interleaved_timing(
        {name: (lambda p=p: [forecast_quantiles(p, b) for b in benchmarks.values()]) for name, p in pipelines.items()},
        repeats=repeats, warmup=1)
    return {"scores": scores, "end_to_end": timing,
            "vs_seasonal_naive": {n: relative_wql(scores, n, "seasonal_naive") for n in pipelines},
            "vs_fp32": {n: relative_wql(scores, n, "student, PyTorch fp32") for n in pipelines}}


def random_pair(seed: int = 0):
    from chronos.chronos2 import Chronos2Model

    from chronos_distill.chronos2.architecture import chronos2_config

    torch.manual_seed(seed)
    return tuple(Chronos2Model(chronos2_config(**s, context_length=2048, max_output_patches=64)).eval()
                 for s in CHRONOS2_SHAPES.values())


def main(argv=None) -> int:
    parser = arguments(__doc__)
    add_training_arguments(parser, steps=2000, runs="runs/bench-deploy")
    parser.add_argument("--student", help="a default student of --teacher (folder); without it one is distilled")
    parser.add_argument("--repeats", type=int, default=10, help="timed repeats per setting")
    parser.add_argument("--m3-repeats", type=int, default=10, help="timed repeats of forecasting all of M3")
    parser.add_argument("--skip-random", action="store_true", help="leave out the random 768/12 vs 384/6 pair")
    parser.add_argument("--settings", default=",".join(f"{b}x{t}" for b, t in SETTINGS),
                        help="BATCHxCONTEXT settings, comma-separated [default: %(default)s]")
    parser.add_argument("--m3-subsets", default="yearly,quarterly,monthly", help="M3 subsets scored and timed")
    args = parser.parse_args(argv)
    from chronos_distill.chronos2.loading import load_chronos2, load_teacher
    from chronos_distill.data.competition import load_benchmarks, training_table

    threads = torch.get_num_threads()
    settings = [tuple(int(x) for x in s.split("x")) for s in args.settings.split(",")]
    student_dir = args.student
    if student_dir is None:
        run = train_in_subprocess(run_options(args, 0, Path(args.runs) / "student",
                                              train_data=training_table(("M1", "M3"))))
        student_dir = run["model_dir"]
    result = {"command": command_line("deploy.py", argv), "provenance": provenance(args.teacher, argv, "deploy.py"),
              "threads": threads, "horizon": HORIZON,
              "student": str(student_dir), "teacher": args.teacher, "repeats": args.repeats,
              "m3_repeats": args.m3_repeats, "pairs": {}}
    with tempfile.TemporaryDirectory() as scratch:
        pairs = {"reference": (load_teacher(args.teacher), load_chronos2(student_dir, role="student"))}
        if not args.skip_random:
            pairs["random 768/12 vs 384/6"] = random_pair()
        for pair, (teacher, student) in pairs.items():
            folder = Path(scratch) / pair.split()[0]
            folder.mkdir()
            start = time.perf_counter()
            pipelines, sizes = forecasters(teacher, student, folder, threads)
            entry = {"export_s": time.perf_counter() - start, "onnx_bytes": sizes,
                     "parameters": {"teacher": sum(p.numel() for p in teacher.parameters()),
                                    "student": sum(p.numel() for p in student.parameters())},
                     "latency": latency_grid(pipelines, args.repeats, settings),
                     "profile": profile_call(pipelines, threads) if pair == "reference" else None}
            if pair == "reference":
                entry["m3"] = m3_quality_and_time(pipelines, load_benchmarks("M3", tuple(args.m3_subsets.split(","))),
                                                  args.m3_repeats)
            result["pairs"][pair] = entry
            del pipelines
    write_results(args.out, "deploy", markdown(result), result, page=page)
    return 0


def markdown(result: dict) -> str:
    lines = ["# Deployment: the student in PyTorch, PyTorch int8, ONNX fp32 and ONNX int8 (CPU)", "",
             f"Command: `{result['command']}`", "", provenance_line(result["provenance"]), "",
             f"Forecast latency through `predict_quantiles` (input preparation included), horizon {result['horizon']}, "
             f"{result['threads']} threads for torch and onnxruntime alike; median over {result.get('repeats', '?')} interleaved "
             "repeats after one warm-up round (IQR). "
             f"Speed-up = teacher in PyTorch / variant.", ""]
    for pair, entry in result["pairs"].items():
        params = entry["parameters"]
        lines += [f"## {pair}: teacher {params['teacher']:,} parameters, student {params['student']:,}", "",
                  f"ONNX files: fp32 {entry['onnx_bytes']['none'] / 2**20:.1f} MiB, int8 "
                  f"{entry['onnx_bytes']['int8'] / 2**20:.1f} MiB (export of both: {entry['export_s']:.0f} s).", "",
                  "| batch x context | " + " | ".join(VARIANTS) + " |", "|---|" + "---|" * len(VARIANTS)]
        for setting, timed in entry["latency"].items():
            base = timed["teacher, PyTorch"]["median_s"]
            lines.append(f"| {setting} | " + " | ".join(
                f"{timed[v]['median_s'] * 1e3:.1f} ms ({timed[v]['iqr_s'] * 1e3:.1f}), {base / timed[v]['median_s']:.2f}x"
                for v in VARIANTS) + " |")
        int8_vs_fp32 = {s: t["student, PyTorch fp32"]["median_s"] / t["student, ONNX int8"]["median_s"]
                        for s, t in entry["latency"].items()}
        lines += ["", "ONNX int8 vs PyTorch fp32 (same student): "
                  + ", ".join(f"{s}: {r:.2f}x" for s, r in int8_vs_fp32.items()), ""]
        if entry.get("m3"):
            m3 = entry["m3"]
            datasets = list(m3["scores"]["datasets"])
            base = m3["end_to_end"]["teacher, PyTorch"]["median_s"]
            n_series = sum(d["n_series"] for d in m3["scores"]["datasets"].values())  # those scored, not M3's 3003
            lines += [f"M3 ({n_series:,} series scored, official horizons): WQL, and the time to forecast all of it "
                      "(interleaved).", "",
                      "| variant | " + " | ".join(f"{d} WQL" for d in datasets)
                      + " | WQL vs seasonal naive | WQL vs student fp32 | all of M3 (median, IQR) | speed-up |",
                      "|---|" + "---|" * (len(datasets) + 4)]
            for v in VARIANTS:
                t = m3["end_to_end"][v]
                lines.append(f"| {v} | " + " | ".join(f"{m3['scores']['datasets'][d]['scores'][v]['WQL']:.4f}"
                                                       for d in datasets)
                             + f" | {m3['vs_seasonal_naive'][v]:.4f} | {m3['vs_fp32'][v]:.4f} | "
                             f"{t['median_s']:.2f} s ({t['iqr_s']:.2f}) | {base / t['median_s']:.2f}x |")
            lines.append("")
        if entry.get("profile"):
            lines += ["Where the time of one call goes (batch 64 x context 512; share of operator time, top 8):", ""]
            for variant, shares in entry["profile"].items():
                lines.append(f"- {variant}: " + ", ".join(f"{op} {share:.0%}" for op, share in shares.items()))
            lines.append("")
    return "\n".join(lines) + "\n"


def deploy_figures(folder: Path) -> dict[str, str]:
    pair = load_json(folder, "deploy.json")["pairs"]["reference"]
    end_to_end = {name: timed["median_s"] for name, timed in pair["m3"]["end_to_end"].items()}
    teacher = end_to_end.pop("teacher, PyTorch")
    speedups = [teacher / seconds for seconds in end_to_end.values()]
    batch1 = pair["latency"]["1 x 512"]
    return {
        "end_to_end_low": times(min(speedups), 1), "end_to_end_high": times(max(speedups), 1),
        "onnx_batch1": f"{1000 * batch1['student, ONNX int8']['median_s']:.1f} ms",
        "pytorch_batch1": f"{1000 * batch1['student, PyTorch fp32']['median_s']:.1f} ms",
        "pytorch_int8_end_to_end": times(teacher / end_to_end["student, PyTorch int8"]),
    }


def deploy_table(folder: Path) -> str:
    """``bench/deploy.py``'s targets beside what it measured: ONNX int8 against the same student in PyTorch fp32 at
    batch 64, int8's M3 WQL against fp32's, all of M3 end to end against the teacher, and the 384/6 ONNX int8
    student against the 768/12 teacher (median latencies)."""
    pairs = json.loads((folder / "deploy.json").read_text())["pairs"]
    ours, shapes = pairs["reference"], pairs["random 768/12 vs 384/6"]
    int8, fp32, teacher = "student, ONNX int8", "student, PyTorch fp32", "teacher, PyTorch"

    def speedups(pair: dict, slower: str, batches: tuple[str, ...], context: int) -> str:
        latency = [pair["latency"][f"{b} x {context}"] for b in batches]
        return " / ".join(f"{at[slower]['median_s'] / at[int8]['median_s']:.2f}x" for at in latency)

    m3 = ours["m3"]
    end_to_end = {name: m3["end_to_end"][name]["median_s"] for name in (int8, teacher)}
    measured = [
        f"{speedups(ours, fp32, ('64',), 512)} (context 512), {speedups(ours, fp32, ('64',), 2048)} (2048); "
        f"384/6 shapes {speedups(shapes, fp32, ('64',), 512)} / {speedups(shapes, fp32, ('64',), 2048)}",
        f"{m3['vs_fp32'][int8]:.4f}",
        f"{end_to_end[teacher] / end_to_end[int8]:.2f}x ({end_to_end[int8]:.2f} s vs {end_to_end[teacher]:.2f} s)",
        f"{speedups(shapes, teacher, ('64', '1'), 512)} (context 512), {speedups(shapes, teacher, ('64', '1'), 2048)} "
        "(2048)",
    ]
    return "\n".join([
        "| | ONNX int8 vs the same student in PyTorch fp32, batch 64 | M3 WQL, ONNX int8 / fp32 | all of M3 end to end "
        "vs teacher in PyTorch | 384/6 ONNX int8 vs 768/12 teacher, batch 64 / batch 1 |",
        "|---|---|---|---|---|",
        "| measured | " + " | ".join(measured) + " |",
        "| target | 1.5x | within 1% | 4x | 12x |",
    ])


def page(folder: Path) -> dict[str, dict[str, str]]:
    """What the pages quote from ``folder``'s results (:func:`common.write_page`)."""
    return {"figures": deploy_figures(folder), "blocks": {"deploy": deploy_table(folder)}}


if __name__ == "__main__":
    sys.exit(main())
