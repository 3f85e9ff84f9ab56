"""Data at corpus scale (issue 32): how checking and preparing a training corpus, and a short distill on it, grow
with the number of series.

For synthetic corpora (monthly and daily series of ``--length`` steps, random starts, written as ``--shards``
Parquet shards), each size measured in a fresh process so that its peak resident memory is its own:

- **check**: ``load_series`` on the shard folder (read, every check of ``data/tables.py``, chronos'
  ``from_data_frame``): seconds and peak RSS; and the growth ratio for 4x the series (1,000 -> 4,000 monthly series
  of 120 steps, the case the issue measured at 9x on the main of then);
- **distill**: ``distill`` with a tiny random teacher (64-d, 2 layers) for ``--steps`` steps on the corpus: the time
  from the call to the first training step, seconds per step, peak RSS; once with the corpus read whole and once
  streamed (``--batches-per-shard``, shards of ``--shard-series`` series, so a 10x corpus has 10x the shards);
- **label**: building a teacher cache of ``--label-batches`` batches of 64 with ``--label-teacher`` on 1 and on 2
  processes (``torchrun``, gloo), each rank labelling its share of the shards: seconds on rank 0.

Generating a corpus is not timed. Each measurement runs under an address-space cap (``MEMORY_CAP_GB``): a size
that does not fit fails with its error reported, not left out.

    python bench/scale.py [--sizes 1000,10000,100000] [--distill-sizes 10000,100000,1000000] [--label-batches 128] --out bench/results
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import (
    arguments,
    load_json,
    model_record,
    peak_rss_mb,
    provenance,
    pyplot,
    save_figure,
    times,
    write_results,
)

FREQS = {"monthly": "MS", "daily": "D"}


def write_corpus(folder: Path, n_series: int, length: int, freq: str, shards: int, seed: int = 0) -> Path:
    """``n_series`` series of ``length`` steps (seasonal, noisy, random starts) as ``shards`` Parquet files."""
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "done").is_file():
        return folder
    rng = np.random.default_rng(seed)
    period = 12 if freq == "MS" else 7
    for shard, ids in enumerate(np.array_split(np.arange(n_series), shards)):
        k = len(ids)
        steps = np.arange(length)
        level = rng.uniform(10, 1000, size=(k, 1))
        values = level * (1 + 0.2 * np.sin(2 * np.pi * (steps + rng.integers(0, period, (k, 1))) / period))
        values += rng.normal(scale=0.05, size=(k, length)) * level
        base = pd.Timestamp("1990-01-01")
        if freq == "MS":
            offsets = rng.integers(0, 240, k)
            starts = [base + pd.DateOffset(months=int(o)) for o in offsets]
        else:
            starts = list(base + pd.to_timedelta(rng.integers(0, 5000, k), unit="D"))
        stamps = np.concatenate([pd.date_range(s, periods=length, freq=freq).to_numpy() for s in starts])
        pd.DataFrame({"item_id": np.repeat([f"item_{i:07d}" for i in ids], length), "timestamp": stamps,
                      "target": values.ravel().astype("float32")}).to_parquet(folder / f"part-{shard:04d}.parquet",
                                                                             index=False)
    (folder / "done").write_text("")
    return folder


# -- one measurement, in its own process --------------------------------------------------------------------

def measure_check(corpus: str, horizon: int) -> dict:
    from chronos_distill.data.series import load_series

    start = time.perf_counter()
    series = load_series(corpus, horizon, target=["target"])
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "n_series": len(series.inputs),
            "n_observations": series.summary()["n_observations"]}


def measure_distill(corpus: str, teacher: str, output: str, steps: int, horizon: int,
                    batches_per_shard: int | None = None) -> dict:
    from chronos_distill import distill
    from chronos_distill.distillation.trainer import DistillationTrainer

    marks: list[float] = []
    training_step = DistillationTrainer.training_step

    def timed_step(self, *args, **kwargs):  # the time of every step's start, from the call of distill
        marks.append(time.perf_counter())
        return training_step(self, *args, **kwargs)

    DistillationTrainer.training_step = timed_step
    start = time.perf_counter()
    distill(teacher=teacher, train_data=corpus, output=output, prediction_length=horizon, max_steps=steps,
            batch_size=32, student_d_model=32, student_num_heads=2, student_d_ff=64, save_steps=steps,
            logging_steps=steps, overwrite=True, batches_per_shard=batches_per_shard)
    steady = np.diff(marks[1:])  # the first step pays for warm-up
    return {"to_first_step_s": marks[0] - start, "seconds_per_step": float(np.median(steady)),
            "steps": steps, "peak_rss_mb": peak_rss_mb()}


def measure_label(corpus: str, teacher: str, cache: str, batches: int) -> dict:
    """One teacher cache built by however many processes this one was started among (rank 0 reports)."""
    from accelerate import PartialState

    from chronos_distill import load_teacher
    from chronos_distill.data.series import load_series
    from chronos_distill.data.teacher_cache import cached_transfer_set

    model = load_teacher(teacher)
    series = load_series(corpus, 18, target=["target"])
    state = PartialState(cpu=True)
    state.wait_for_everyone()
    start = time.perf_counter()
    _, folder, reused = cached_transfer_set(cache, model, series, batches, 0, context_length=model.chronos_config.context_length,
                                            prediction_length=18, batch_size=64, output_patch_size=16, min_past=6)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "reused": reused, "processes": state.num_processes, "batches": batches,
            "key": folder.name}


def tiny_teacher(folder: Path) -> str:
    import torch
    from chronos.chronos2 import Chronos2Model, Chronos2Pipeline

    from chronos_distill.chronos2.architecture import chronos2_config

    if not (folder / "config.json").is_file():
        torch.manual_seed(0)
        model = Chronos2Model(chronos2_config(d_model=64, num_layers=2, num_heads=4, d_kv=16, d_ff=128,
                                              context_length=128, max_output_patches=4))
        Chronos2Pipeline(model).save_pretrained(folder)
    return str(folder)


#: address-space cap of a measurement process: a corpus that does not fit fails there with a MemoryError (reported)
#: instead of pushing the machine into swap
MEMORY_CAP_GB = 18


def in_process(kind: str, processes: int = 1, **kwargs) -> dict:
    """Run one measurement in a fresh interpreter (``processes`` > 1: under torchrun, rank 0's result); a failure
    (e.g. out of memory) is returned, not raised."""
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)] if processes > 1 else []
    command = [sys.executable, *launcher, __file__, "--measure", kind, json.dumps(kwargs)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1][:200]
        return {"failed": f"exit {done.returncode}: {last}"}
    return json.loads([line for line in done.stdout.strip().splitlines() if line.startswith("{")][0])


# -- report -------------------------------------------------------------------------------------------------

def report(results: dict) -> str:
    prov = results["provenance"]
    lines = ["# Data at corpus scale", "", f"`{prov['command']}` at commit {prov['commit'][:10]} "
             f"({prov['machine']}, {prov['threads']} thread(s)). Each cell is one fresh process (1 run), under a "
             f"{results.get('memory_cap_gb', MEMORY_CAP_GB)} GiB address-space cap: a corpus that does not fit fails "
             "there, its error shown.", "",
             f"Teachers: the distill stage's {prov['teacher']['name']} (weights sha256 "
             f"{str(prov['teacher']['weights_sha256'])[:12]})"
             + (f"; the labelling stage's {results['label']['record']['name']} (`{results['label']['teacher']}`, "
                f"weights sha256 {str(results['label']['record']['weights_sha256'])[:12]})"
                if results.get("label", {}).get("record") else "") + ".", "",
             f"## Checking and preparing a corpus (`load_series` on a folder of {results['shards']} Parquet shards)", "",
             "| series | steps each | frequency | rows | seconds | peak RSS (MB) |", "|---|---|---|---|---|---|"]
    for row in results["check"]:
        cells = (f"{row['seconds']:.1f} | {row['peak_rss_mb']:,.0f}" if "failed" not in row
                 else f"{row['failed']} | -")
        lines.append(f"| {row['series']:,} | {row['length']} | {row['frequency']} | {row['series'] * row['length']:,} | "
                     f"{cells} |")
    growth = results.get("growth")
    if growth:
        lines += ["", f"Growth for {growth['large'] / growth['small']:.0f}x the series ({growth['small']:,} -> "
                  f"{growth['large']:,} monthly series of 120 steps): {growth['small_s']:.2f} s -> "
                  f"{growth['large_s']:.2f} s, ratio {growth['ratio']:.1f} (linear is "
                  f"{growth['large'] / growth['small']:.0f}; the issue measured 9 for 1,000 -> 4,000 on the main of "
                  "then)."]
    if results.get("distill"):
        lines += ["", f"## A short distill on the corpus (tiny random teacher 64x2, student 32-d, batch 32, "
                  f"{results['distill_steps']} steps)", "",
                  "Read whole: every shard into one table (the default). Streamed: `--batches-per-shard "
                  f"{results.get('batches_per_shard')}`, one shard in memory at a time (every shard checked first).", "",
                  "| series | frequency | shards | how | distill call -> first step (s) | s / step (median after the first) "
                  "| peak RSS (MB) |", "|---|---|---|---|---|---|---|"]
        for row in results["distill"]:
            how = "streamed" if row.get("streamed") else "read whole"
            head = f"| {row['series']:,} | {row['frequency']} | {row.get('shards', '-')} | {how} |"
            if "failed" in row:
                lines.append(f"{head} {row['failed']} | - | - |")
            else:
                lines.append(f"{head} {row['to_first_step_s']:.1f} | {row['seconds_per_step']:.3f} | "
                             f"{row['peak_rss_mb']:,.0f} |")
    label = results.get("label")
    if label:
        runs = {r["processes"]: r for r in label["runs"]}
        lines += ["", f"## Labelling a teacher cache ({label['batches']} batches of 64, teacher `{label['teacher']}`, "
                  "every rank its share of the shards)", "", "| processes | seconds | vs 1 process |", "|---|---|---|"]
        for processes, row in runs.items():
            if "failed" in row:
                lines.append(f"| {processes} | {row['failed']} | - |")
            else:
                ratio = row["seconds"] / runs[1]["seconds"] if "seconds" in runs.get(1, {}) else float("nan")
                lines.append(f"| {processes} | {row['seconds']:.1f} | {ratio:.2f}x |")
        keys = {r.get("key") for r in runs.values()}
        lines += ["", "Both builds have the same cache key: " + ("yes" if len(keys) == 1 else f"no ({keys})") + "."]
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> None:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4))
    for name, colour in (("monthly", "tab:blue"), ("daily", "tab:orange")):
        rows = [r for r in results["check"] if r["frequency"] == name and "failed" not in r]
        if not rows:
            continue
        x = [r["series"] for r in rows]
        left.plot(x, [r["seconds"] for r in rows], marker="o", color=colour, label=f"{name}, {rows[0]['length']} steps")
        right.plot(x, [r["peak_rss_mb"] / 1024 for r in rows], marker="o", color=colour, label=f"check, {name}")
    for streamed, colour in ((False, "tab:grey"), (True, "tab:green")):
        rows = [r for r in results["distill"] if r.get("streamed") == streamed and "failed" not in r]
        if rows:
            right.plot([r["series"] for r in rows], [r["peak_rss_mb"] / 1024 for r in rows], marker="s",
                       linestyle="--", color=colour,
                       label="distill, " + ("streamed (--batches-per-shard)" if streamed else "read whole"))
    xs = sorted({r["series"] for r in results["check"]})
    if xs:  # the linear reference through the smallest monthly point
        first = next((r for r in results["check"] if r["frequency"] == "monthly" and "failed" not in r), None)
        if first:
            left.plot(xs, [first["seconds"] * x / first["series"] for x in xs], linestyle=":", color="grey",
                      label="linear in the series")
    left.axhline(60, color="tab:red", linestyle="--", label="target for 10^5 monthly x 200 (60 s)")
    for ax, label in ((left, "check + prepare (s)"), (right, "peak resident memory (GiB)")):
        ax.set_xscale("log")
        if ax is left:
            ax.set_yscale("log")
        ax.set_xlabel("series in the corpus")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    prov = results["provenance"]
    fig.suptitle(f"Corpus scale: load_series on {results['shards']} Parquet shards, and a 20-step distill with a tiny\n"
                 f"teacher (commit {prov['commit'][:10]}, one run per point; a read-whole run that failed for memory "
                 "is not drawn)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000", help="corpus sizes (series) for the check")
    parser.add_argument("--freqs", default="monthly,daily")
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--distill-sizes", default="10000,100000,1000000",
                        help="monthly corpus sizes for the distill (each read whole and streamed)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--shard-series", type=int, default=5000,
                        help="series per shard of the streamed corpora (--batches-per-shard runs)")
    parser.add_argument("--batches-per-shard", type=int, default=5)
    parser.add_argument("--horizon", type=int, default=12)
    parser.add_argument("--growth", default="1000,4000", help="two monthly corpus sizes (120 steps) for the growth ratio")
    parser.add_argument("--label-batches", type=int, default=128, help="cached batches of 64 for the labelling stage (0: skip)")
    parser.add_argument("--label-teacher", default="reference")
    parser.add_argument("--scratch", default=None, help="where the corpora are written [default: a temp folder]")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="scale-"))
    teacher = tiny_teacher(scratch / "teacher")
    results: dict = {"provenance": provenance(teacher, argv, "scale.py"),
                     "shards": args.shards, "check": [], "distill": [], "distill_steps": args.steps,
                     "batches_per_shard": args.batches_per_shard, "shard_series": args.shard_series,
                     "memory_cap_gb": MEMORY_CAP_GB}
    # the teacher is built here (seeded), not a named checkpoint: its weights digest says which
    results["provenance"]["teacher"].update(name="tiny random Chronos-2 teacher (d_model 64, 2 layers, seed 0)",
                                            alias=None)
    few, many = (int(n) for n in args.growth.split(","))
    small = write_corpus(scratch / f"growth-{few}", few, 120, "MS", args.shards)
    large = write_corpus(scratch / f"growth-{many}", many, 120, "MS", args.shards)
    s, g = (in_process("check", corpus=str(c), horizon=args.horizon) for c in (small, large))
    if "failed" not in s and "failed" not in g:
        results["growth"] = {"small": few, "large": many, "small_s": s["seconds"], "large_s": g["seconds"],
                             "ratio": g["seconds"] / s["seconds"]}
    for name in [f.strip() for f in args.freqs.split(",") if f.strip()]:
        for n in sizes:
            corpus = write_corpus(scratch / f"{name}-{n}", n, args.length, FREQS[name], args.shards)
            row = in_process("check", corpus=str(corpus), horizon=args.horizon)
            results["check"].append({"series": n, "length": args.length, "frequency": name, **row})
            print(results["check"][-1], flush=True)
    for n in [int(s) for s in args.distill_sizes.split(",") if s]:
        shards = max(2, n // args.shard_series)  # the same shard size at every corpus size
        corpus = write_corpus(scratch / f"corpus-monthly-{n}", n, args.length, "MS", shards)
        for streamed in (False, True):
            row = in_process("distill", corpus=str(corpus), teacher=teacher, steps=args.steps, horizon=args.horizon,
                             output=str(scratch / f"run-{n}-{'streamed' if streamed else 'whole'}"),
                             batches_per_shard=args.batches_per_shard if streamed else None)
            results["distill"].append({"series": n, "frequency": "monthly", "streamed": streamed, "shards": shards, **row})
            print(results["distill"][-1], flush=True)
    if args.label_batches:
        corpus = write_corpus(scratch / "label-1000", 1000, args.length, "MS", args.shards)
        results["label"] = {"teacher": args.label_teacher, "record": model_record(args.label_teacher),
                            "batches": args.label_batches, "runs": []}
        for processes in (1, 2):
            row = in_process("label", processes=processes, corpus=str(corpus), teacher=args.label_teacher,
                             cache=str(scratch / f"cache-{processes}"), batches=args.label_batches)
            results["label"]["runs"].append({"processes": processes, **row})
            print(results["label"]["runs"][-1], flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(results, out / "scale.png")
    write_results(out, "scale", report(results), results, page=page)
    return 0


#: the targets the issues set, quoted beside what was measured (no measurement: named once here)
TARGETS = {'streamed_memory': '1.3x', 'two_processes': '0.6x'}


def page(folder: Path) -> dict[str, dict[str, str]]:
    """The figures the pages quote from ``folder``'s results, and the targets (:func:`common.write_page`)."""
    r = load_json(folder, "scale.json")
    check = {(e["series"], e["frequency"]): e for e in r["check"]}
    distill = {(e["series"], e["streamed"]): e for e in r["distill"]}
    label = {run["processes"]: run["seconds"] for run in r["label"]["runs"]}
    streamed = {n: distill[(n, True)]["peak_rss_mb"] for n in (100_000, 1_000_000)}
    return {"figures": {
        "check_monthly": f"{check[(100_000, 'monthly')]['seconds']:.1f} s",
        "check_daily": f"{check[(100_000, 'daily')]['seconds']:.1f} s", "growth": times(r["growth"]["ratio"], 1),
        "streamed_1e5": f"{streamed[100_000]:.0f} MB", "streamed_1e6": f"{streamed[1_000_000]:.0f} MB",
        "streamed_ratio": times(streamed[1_000_000] / streamed[100_000]),
        "whole_1e5": f"{distill[(100_000, False)]['peak_rss_mb']:,.0f} MB",
        "first_step_1e6": f"{distill[(1_000_000, True)]['to_first_step_s']:.1f} s",
        "label_1": f"{label[1]:.1f} s", "label_2": f"{label[2]:.1f} s", "label_ratio": times(label[2] / label[1]),
        **{f"target_{k}": v for k, v in TARGETS.items()},
    }}


if __name__ == "__main__":
    if sys.argv[1:2] == ["--measure"]:
        kind, kwargs = sys.argv[2], json.loads(sys.argv[3])
        cap = MEMORY_CAP_GB * 1024**3
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        measure = {"check": measure_check, "distill": measure_distill, "label": measure_label}[kind]
        result = measure(**kwargs)
        if os.environ.get("RANK", "0") == "0":
            print(json.dumps(result))
        raise SystemExit(0)
    raise SystemExit(main())
