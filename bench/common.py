"""What the benchmark scripts share: arguments, seeded training runs, scoring, error bars, timing, tables.

- :func:`add_training_arguments`: the options every training benchmark takes (teacher, steps, seeds, ...).
- :func:`train_in_subprocess`: one ``distill`` run in its own process (peak memory is then the run's own),
  returning its record, seconds per step and peak resident memory.
- :func:`score`: models on benchmark data sets (WQL / MASE next to seasonal naive, geometric means).
- :func:`mean_std` / :func:`pm`: error bars over seeds (sample std, ddof 1).
- :func:`interleaved_timing`: variants timed in turn, repeat after repeat, reported as median and IQR.
- :func:`write_results`: a markdown file and a JSON file, each naming the command that made them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

HERE = Path(__file__).resolve().parent
#: amazon/chronos-2's shape and its default student's (384-d, 6 layers), as ``chronos2_config`` takes them
CHRONOS2_SHAPES = {"teacher 768-d/12 layers": dict(d_model=768, num_layers=12, num_heads=12, d_kv=64, d_ff=3072),
                   "student 384-d/6 layers": dict(d_model=384, num_layers=6, num_heads=6, d_kv=64, d_ff=1536)}


def arguments(doc: str, out: str | None = "bench/results") -> argparse.ArgumentParser:
    """A benchmark's command line: its module docstring's first paragraph as the description, and ``--out`` (the
    folder its results go to, a ``Path``) unless ``out`` is None."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    if out is not None:
        parser.add_argument("--out", type=Path, default=Path(out), help=f"results folder [default: {out}]")
    return parser


def add_training_arguments(parser: argparse.ArgumentParser, *, steps: int, runs: str) -> None:
    parser.add_argument("--teacher", default="reference", help="teacher of every student [default: reference]")
    parser.add_argument("--steps", type=int, default=steps, help=f"distillation steps per student [default: {steps}]")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--prediction-length", type=int, default=18, help="horizon of the training windows")
    parser.add_argument("--min-past", type=int, default=6)
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds; every variant runs each [default: 0,1,2]")
    parser.add_argument("--runs", default=runs, help="folder for the students")


def seeds_of(args: argparse.Namespace) -> list[int]:
    return [int(s) for s in str(args.seeds).split(",") if s.strip()]


def command_line(script: str, argv: list[str] | None) -> str:
    """The command as a reader runs it from a clone: every absolute path relative to the clone's root (a scratch
    folder beside the clone is ``../runs``), so that no path of the machine that ran it is published."""
    root = HERE.parent
    words = [os.path.relpath(word, root) if Path(word).is_absolute() else word
             for word in (argv if argv is not None else sys.argv[1:])]
    return f"python bench/{script} " + shlex.join(words)


def train_in_subprocess(options: dict[str, Any]) -> dict[str, Any]:
    """``distill(**options)`` in a fresh process; ``train_data`` may be a DataFrame (written as Parquet beside the
    output folder, at a path that stays the same when the benchmark is run again).

    Resumable per run: a run whose model and record exist is not trained again when its recorded options equal
    the requested ones (its record is read back, with ``"reused": True``; otherwise it says so and trains it
    again), and a run interrupted after a checkpoint continues from it with ``--resume``.
    Returns ``{"record", "model_dir", "seconds_per_step", "peak_rss_mb", "reused"}``.
    """
    import pandas as pd

    options = dict(options)
    output = Path(options["output"])
    record_file = output / "model" / "distillation.json"
    retrain = False
    if record_file.is_file():
        record = json.loads(record_file.read_text())
        changed = changed_options(record["options"], options)
        if not changed:
            training = record["training"]
            return {"record": record, "model_dir": str(output / "model"), "reused": True, "peak_rss_mb": None,
                    "seconds_per_step": seconds_per_step(training)}
        print(f"{output}: trained with other options ({', '.join(changed)}); training it again", flush=True)
        options.update(overwrite=True)
        retrain = True
    output.parent.mkdir(parents=True, exist_ok=True)
    for key in ("train_data", "validation_data"):
        if isinstance(options.get(key), pd.DataFrame):
            path = output.parent / f"{output.name}.{key}.parquet"
            options[key].to_parquet(path)
            options[key] = str(path)
    if not retrain and any((output / "checkpoints").glob("checkpoint-*")):
        options.update(resume=True, overwrite=False)  # interrupted: continue from its last checkpoint
    spec = output.parent / f"{output.name}.options.json"
    spec.write_text(json.dumps(options))
    done = subprocess.run([sys.executable, str(HERE / "common.py"), "--train", str(spec)], capture_output=True,
                          text=True)
    if done.returncode:
        sys.stderr.write(done.stderr[-5000:])
        raise SystemExit(f"training {options.get('output')} failed")
    line = next(line for line in done.stdout.splitlines() if line.startswith("BENCH-RESULT "))
    return {**json.loads(line.split(" ", 1)[1]), "reused": False}


def run_cli(argv: list[str], cwd: str | Path | None = None) -> tuple[subprocess.CompletedProcess, float, float]:
    """``chronos-distill ARGV`` as a user types it, in a fresh process (in ``cwd``): what it printed, and its wall
    and CPU seconds (user + system of the child, every thread). A failure ends the benchmark naming the command."""
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    done = subprocess.run([str(Path(sys.executable).with_name("chronos-distill")), *map(str, argv)],
                          capture_output=True, text=True, cwd=cwd)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        sys.stderr.write(done.stderr[-3000:])
        raise SystemExit(f"chronos-distill {shlex.join(map(str, argv))} failed")
    return done, wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def seconds_per_step(training: dict[str, Any]) -> float:
    """A run's training time per step, over the steps this process ran: a resumed run's ``train_runtime_s`` counts
    only the steps after the checkpoint it resumed from."""
    resumed = training.get("resumed_from")
    first = int(str(resumed).rsplit("-", 1)[1]) if resumed else 0
    return training["train_runtime_s"] / max(1, training["steps"] - first)


def changed_options(recorded: dict[str, Any], requested: dict[str, Any]) -> list[str]:
    """The requested options whose value differs from the one a finished run recorded (its ``distillation.json``
    options, where paths are file names): a finished run is reused only when this is empty. Data frames, the run's
    own bookkeeping (output, overwrite, resume) and paths are compared by name only."""
    skip = {"output", "overwrite", "resume", "train_data", "validation_data", "teacher_cache"}
    changed = []
    for name, value in requested.items():
        if name in skip or name not in recorded:
            continue
        if isinstance(value, str) and ("/" in value or Path(value).exists()):
            value = Path(value).name
        if recorded[name] != value:
            changed.append(f"{name} {recorded[name]!r} -> {value!r}")
    return changed


def git(*cmd: str) -> str:
    """The output of ``git *cmd`` run in this repository (empty when git fails)."""
    return subprocess.run(["git", *cmd], capture_output=True, text=True, cwd=HERE).stdout.strip()


def model_record(source: str) -> dict[str, Any]:
    """A model by name (bundled alias, folder or hub id) with the sha256 of its weights file where it is on disk."""
    import hashlib

    from chronos_distill.chronos2.checkpoints import describe_teacher, local_folder

    folder = local_folder(source)
    weights = folder / "model.safetensors" if folder is not None else None
    digest = hashlib.sha256(weights.read_bytes()).hexdigest() if weights is not None and weights.is_file() else None
    return {**describe_teacher(source).to_dict(), "alias": source, "weights_sha256": digest}


def provenance(teacher: str | None, argv: list[str] | None, script: str,
               models: dict[str, str] | None = None) -> dict[str, Any]:
    """What produced a results file: the commit (and whether the tree had changes), the command, the teacher by
    name and the sha256 of its weights file (``None``: nothing is distilled), any other models it scored
    (``models``: table name -> source), the threads and the machine."""
    import platform

    import torch

    record = {
        "commit": git("rev-parse", "HEAD"),
        # results files the benchmark (re)writes itself do not make the tree "changed"
        "tree_changed": bool(git("status", "--porcelain", "--untracked-files=no", "--", ":(top)",
                                 ":(top,exclude)bench/results")),
        "command": command_line(script, argv),
        "teacher": model_record(teacher) if teacher is not None else None,
        "threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
                   f"{platform.python_version()}, torch {torch.__version__}",
    }
    if models:
        record["models"] = {name: model_record(source) for name, source in models.items()}
    return record


def provenance_line(prov: dict[str, Any]) -> str:
    """One markdown line naming what :func:`provenance` recorded: commit, teacher with its digest, the other models,
    threads, machine."""
    def named(model: dict[str, Any]) -> str:
        digest = str(model["weights_sha256"])[:12] if model.get("weights_sha256") else "not on disk"
        return f"{model.get('name')} (`{model['alias']}`, weights sha256 {digest})"

    changed = ", with uncommitted changes" if prov.get("tree_changed") else ""
    models = prov.get("models") or {}
    scored = ("; models scored: " + ", ".join(f"{name} = {named(m)}" for name, m in models.items())) if models else ""
    teacher = f"; teacher {named(prov['teacher'])}" if prov.get("teacher") else "; no teacher (nothing is distilled)"
    return (f"Commit {prov['commit'][:10]}{changed}{teacher}{scored}; {prov['threads']} "
            f"thread(s) (OMP_NUM_THREADS={prov['omp_num_threads']}); {prov['machine']}.")


def _train(spec: Path) -> None:
    from chronos_distill import distill

    result = distill(**json.loads(spec.read_text()))
    training = result.record["training"]
    print("BENCH-RESULT " + json.dumps({
        "record": result.record,
        "model_dir": str(result.model_dir),
        "seconds_per_step": seconds_per_step(training),
        "peak_rss_mb": peak_rss_mb(),
    }, default=str))


def peak_rss_mb() -> float:
    """This program's peak resident memory: ``VmHWM`` of its own address space. (``getrusage``'s ``ru_maxrss``
    survives ``exec`` on Linux, so a training subprocess would report its parent's peak when that was higher.)"""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_options(args: argparse.Namespace, seed: int, output: str | Path, **options: Any) -> dict[str, Any]:
    """The ``distill`` options every benchmark run shares (teacher, horizon, steps, batch, ...), plus ``options``;
    ``train_data`` is among ``options``."""
    shared = dict(
        teacher=getattr(args, "teacher", None), prediction_length=args.prediction_length, min_past=args.min_past,
        max_steps=args.steps, batch_size=args.batch_size, learning_rate=args.learning_rate,
        seed=seed, save_steps=args.steps, logging_steps=max(1, args.steps // 20),
        overwrite=True, output=str(output),
    )
    return {**shared, **options}  # a run's own options win (a general run has no prediction_length)


def score_student(student: Any, benchmarks: dict[str, Any], teacher_results: dict[str, Any]) -> dict[str, Any]:
    """``student``'s scores (a folder or a loaded model) on ``benchmarks`` next to the teacher's (scored once,
    ``teacher_results``): its WQL relative to the teacher and to seasonal naive (geometric means), its per-data-set
    scores and how often its quantiles cross."""
    results = score({"student": student}, benchmarks)
    for dataset, scored in results["datasets"].items():
        scored["scores"]["teacher"] = teacher_results["datasets"][dataset]["scores"]["teacher"]
    return {
        "vs_teacher": relative_wql(results, "student", "teacher"),
        "vs_seasonal_naive": relative_wql(results, "student", "seasonal_naive"),
        "scores": {d: r["scores"]["student"] for d, r in results["datasets"].items()},
        "teacher_wql": {d: r["scores"]["teacher"]["WQL"] for d, r in results["datasets"].items()},
        "seasonal_naive_wql": {d: r["scores"]["seasonal_naive"]["WQL"] for d, r in results["datasets"].items()},
        "crossing": results["crossing"]["student"],
    }


def score(models: dict[str, Any], benchmarks: dict[str, Any]) -> dict[str, Any]:
    """:func:`chronos_distill.evaluation.scoring.evaluate_models` results of ``models`` (name -> model or folder)."""
    from chronos_distill.chronos2.loading import load_chronos2
    from chronos_distill.evaluation.scoring import evaluate_models

    loaded = {name: load_chronos2(m, role="model") if isinstance(m, (str, Path)) else m for name, m in models.items()}
    results, _ = evaluate_models(loaded, benchmarks)
    return results


def relative_wql(results: dict[str, Any], model: str, baseline: str) -> float:
    """Geometric mean over data sets of ``model``'s WQL over ``baseline``'s."""
    return geomean(r["scores"][model]["WQL"] / r["scores"][baseline]["WQL"] for r in results["datasets"].values())


def geomean(values) -> float:
    """The geometric mean of ``values`` (``scipy.stats.gmean``), as a float."""
    from scipy.stats import gmean

    return float(gmean(list(values)))


def skill(wql: dict[str, float], naive_wql: dict[str, float]) -> float:
    """The field's skill score of a model over a collection of data sets (fev-bench's, GIFT-Eval's): 1 minus the
    geometric mean, over the sets, of its WQL relative to seasonal naive's (0: seasonal naive, 1: perfect)."""
    return 1.0 - geomean(wql[name] / naive_wql[name] for name in naive_wql)


def skill_kept(student_wql: dict[str, float], teacher_wql: dict[str, float], naive_wql: dict[str, float]) -> float:
    """The share of its teacher's skill a student keeps over the same data sets: ``skill(student) / skill(teacher)``
    (how compact forecasters are compared with their large model: Chronos-2-Small keeps about 96% of Chronos-2's
    fev-bench skill)."""
    return skill(student_wql, naive_wql) / skill(teacher_wql, naive_wql)


def unseen_skill_kept(unseen: dict[str, Any]) -> float:
    """:func:`skill_kept` of a scored run's ``unseen`` entry (its per-set ``scores``, ``teacher_wql`` and
    ``seasonal_naive_wql``, as :func:`score_student` writes them)."""
    student = {name: unseen["scores"][name]["WQL"] for name in unseen["seasonal_naive_wql"]}
    return skill_kept(student, unseen["teacher_wql"], unseen["seasonal_naive_wql"])


def restricted(scored: dict[str, Any], prefix: str) -> dict[str, Any]:
    """A scored entry (:func:`score_student`) read on its sets named ``prefix...`` only (``m1_``: M1's test
    portions of an M1 + M3 entry), its ``vs_teacher`` the geometric mean over those: a collection apart."""
    names = [name for name in scored["teacher_wql"] if name.startswith(prefix)]
    out = {"scores": {n: scored["scores"][n] for n in names}, "teacher_wql": {n: scored["teacher_wql"][n] for n in names},
           "seasonal_naive_wql": {n: scored["seasonal_naive_wql"][n] for n in names}}
    out["vs_teacher"] = geomean(out["scores"][n]["WQL"] / out["teacher_wql"][n] for n in names)
    return out


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def pm(values: list[float], digits: int = 3, unit: str = "") -> str:
    """mean ± std over 3 or more seeds; with fewer, each seed's value and how many there are ("1 seed", never
    "± 0"); "-" for none. ``unit`` follows each figure (``"x"``: ``2.49 ± 0.03x``, ``2.16x (1 seed)``)."""
    if not values:
        return "-"
    if len(values) >= 3:
        mean, std = mean_std(values)
        return f"{mean:.{digits}f} ± {std:.{digits}f}{unit}"
    return " / ".join(f"{v:.{digits}f}{unit}" for v in values) + f" ({len(values)} seed{'s' * (len(values) > 1)})"


def interleaved_timing(variants: dict[str, Callable[[], Any]], repeats: int = 10, warmup: int = 1) -> dict[str, dict]:
    """Time each variant ``repeats`` times, in turn (A B C A B C ...), after ``warmup`` untimed rounds, so that
    drifts of the machine hit every variant alike. Returns ``{name: {"median_s", "iqr_s", "times_s"}}``."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(warmup + repeats):
        for name, run in variants.items():
            start = time.perf_counter()
            run()
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    out = {}
    for name, values in times.items():
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        out[name] = {"median_s": float(median), "iqr_s": float(q3 - q1), "times_s": values}
    return out


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend: benchmarks draw files, never windows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path) -> None:
    """Write a matplotlib figure as every benchmark plot is written (120 dpi, its folder made) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    """``data`` as the results files hold it (indented, one trailing newline; what JSON cannot hold as a string)."""
    Path(path).write_text(json.dumps(data, indent=2, default=str) + "\n")


def write_page(out: str | Path, stem: str, page: Callable[[Path], dict[str, dict[str, str]]]) -> None:
    """Add to the results file ``<out>/<stem>.json`` what the pages quote from it: ``page(out)`` (the benchmark's
    own function, reading its results under ``out``, this file included) under ``"page"``, with the script that
    wrote it: ``{"by": "bench/<script>.py", "figures": {name: text}, "blocks": {name: markdown}}``.
    ``scripts/render_docs.py`` only copies them; a test keeps each equal to its script's ``page()`` today. A
    folder without the results ``page`` reads (a test's, a first run's) gets none, and one line says so."""
    path = Path(out) / f"{stem}.json"
    data = json.loads(path.read_text())
    script = Path(sys.modules[page.__module__].__file__).name  # the module, also when run as __main__
    try:
        data["page"] = {"by": f"bench/{script}", **page(Path(out))}
    except (FileNotFoundError, KeyError, TypeError) as missing:  # a folder with part of the results (a test, a run)
        print(f"{path}: no figures for the pages, they read results this folder does not hold ({missing})")
        return
    write_json(path, data)


def write_results(out: str | Path, stem: str, markdown: str, results: dict[str, Any],
                  page: Callable[[Path], dict[str, dict[str, str]]] | None = None) -> None:
    """``<out>/<stem>.md`` and ``<out>/<stem>.json``, both naming what produced them: ``results["provenance"]``
    (from :func:`provenance`) is required, and its line goes into the markdown after the line naming the command
    when the markdown does not hold it yet. ``page``: the benchmark's figures and tables for the pages
    (:func:`write_page`)."""
    prov = results.get("provenance")
    if not isinstance(prov, dict) or not prov.get("commit"):
        raise ValueError(f"{stem}: a results file needs the provenance of its run (bench/common.py::provenance)")
    line = provenance_line(prov)
    if line not in markdown:
        lines = markdown.split("\n")
        at = next((i + 1 for i, text in enumerate(lines) if "python bench/" in text), 1)
        lines[at:at] = ["", line]
        markdown = "\n".join(lines)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.md").write_text(markdown)
    write_json(out / f"{stem}.json", results)
    if page is not None:
        write_page(out, stem, page)
    print(markdown)


# -- the pages' figures: formats, and the reads several benchmarks share ---------------------------------------
def fmt(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}f}"


def times(value: float, digits: int = 2) -> str:
    """``value`` as a ratio (``1.04x``)."""
    return f"{value:.{digits}f}x"


def load_json(out: Path, name: str) -> dict:
    """A results file (JSON) by its name under ``out``."""
    return json.loads((Path(out) / name).read_text())


if __name__ == "__main__" and sys.argv[1:2] == ["--train"]:
    _train(Path(sys.argv[2]))
