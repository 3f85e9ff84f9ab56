"""The first general family of ``bench/two_stage.py`` (issues 30 and 40), split off to be frozen: the
``--general-context`` draws chosen on validation (``--stage contexts``), the family's latency against the teacher
(``--stage latency``) and the random-start sample-efficiency curves (KD against truth-only, one seed). Its runs
are ``two_stage.py``'s (its general and curves stages train them); this script adds the two stages above and
writes ``two_stage_first.md`` / ``.json``, ``two_stage_family.png`` and ``two_stage_sample_efficiency.png``.

    python bench/two_stage_first.py --stage contexts --start 384x2:0
    python bench/two_stage_first.py --stage latency --rungs 256x2@mixed,384x2@uniform   (general runs, one per shape)
    python bench/two_stage_first.py --report
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from common import (
    fmt,
    interleaved_timing,
    load_json,
    pm,
    provenance,
    pyplot,
    save_figure,
    seeds_of,
    times,
    write_json,
    write_results,
)
from harness import scored_sets
from two_stage import (
    GENERAL_CONTEXTS,
    TwoStage,
    _general_runs,
    _teacher_vs_naive,
    collect,
    curve_compute_seconds,
    curve_points,
    match_lines,
    parse_arguments,
    shape_of,
    steps_to_match,
)


def run_latency(stage: TwoStage, args: argparse.Namespace) -> dict:
    """The family and the teacher forecasting 1 and 64 M1 monthly series, interleaved (median and IQR)."""
    import torch
    from chronos.chronos2 import Chronos2Pipeline

    from chronos_distill.chronos2.loading import load_chronos2

    monthly = scored_sets("cross-domain")["held-out"]["m1_monthly"]
    pipelines = {"teacher": Chronos2Pipeline(stage.teacher)}
    timed = {}  # shape -> the general run whose weights were timed (a forecast's cost depends on the shape alone)
    for run in args.rungs:
        model = stage.folder("general", run, seeds_of(args)[0]) / "model"
        if not (model / "distillation.json").is_file():
            raise SystemExit(f"the general student {run} is not trained in {model}: run "
                             f"python bench/two_stage.py --stage general --rungs {run} first")
        shape = shape_of(run)
        timed[shape] = run
        pipelines[shape] = Chronos2Pipeline(load_chronos2(model, role="student"))
    timings = {}
    with torch.no_grad():
        for batch_size in (1, 64):
            batch = [torch.tensor(c, dtype=torch.float32) for c in monthly.contexts[:batch_size]]
            timings[str(batch_size)] = interleaved_timing(
                {name: (lambda p=p, b=batch: p.predict_quantiles(b, prediction_length=monthly.horizon))
                 for name, p in pipelines.items()}, repeats=args.repeats, warmup=2)
    result = {"provenance": stage.provenance, "repeats": args.repeats, "warmup": 2, "series": "M1 monthly contexts",
              "horizon": monthly.horizon, "timings": timings, "timed_runs": timed,
              "parameters": {name: sum(p.numel() for p in pl.model.parameters()) for name, pl in pipelines.items()}}
    file = Path(args.out) / "two_stage" / "latency.json"
    file.parent.mkdir(parents=True, exist_ok=True)
    write_json(file, result)
    return result


def run_contexts(stage: TwoStage, args: argparse.Namespace) -> None:
    """The --general-context draws, each a run of the --start rung, chosen on validation."""
    rung, seed = args.start.split(":")
    scores = {context: stage.general(rung, int(seed), context)["validation_general"]["score"]
              for context in args.general_contexts}
    print("validation scores (lower is better): " + ", ".join(f"{c} {v:.4f}" for c, v in scores.items())
          + f"; chosen: {min(scores, key=scores.get)}")


#: what the curves are compared on: (label, how to read it off one scored checkpoint); lower is better for each
CURVE_METRICS = {
    "M1 + M3 WQL vs teacher": lambda p: p["unseen"]["vs_teacher"],
    "suite at 64 vs teacher": lambda p: p["suite"]["64"]["geomean"],
    "suite at 18 vs teacher": lambda p: p["suite"]["18"]["geomean"],
    "validation score": lambda p: p["validation_general"]["score"],
}

def curves_markdown(curves: dict) -> list[str]:
    """The sample-efficiency section: one row per scored step of each curve, and steps-to-match per metric."""
    pairs = [(rung, seeds) for rung, seeds in _curve_pairs(curves).items()]
    if not pairs:
        return []
    lines: list[str] = []
    for rung, seeds in pairs:
        for seed, (kd, truth) in sorted(seeds.items()):
            opts, prov = kd["options"], kd["provenance"]
            labelling = (kd.get("teacher_cache") or {}).get("build_seconds")
            lines += ["", f"## Sample efficiency: distilled vs trained on the truth ({rung}, `--stage curves`, 1 seed)", "",
                      f"The {rung} general student ({kd['parameters']:,} parameters), trained for {opts['max_steps']} "
                      f"steps at batch {opts['batch_size']} (learning rate {opts['learning_rate']}, cosine over the "
                      f"whole run) on one teacher cache of {opts['cache_batches']} batches; KD (alpha 1) learns the "
                      "teacher's quantiles, truth-only (alpha 0) the same batches' own continuation: the same "
                      "stream, contexts and horizons, only the target differs. Teacher "
                      f"{prov['teacher']['name']} (weights sha256 {str(prov['teacher']['weights_sha256'])[:12]}). "
                      f"Seed {seed}, 1 seed: no error bar, so no curve point here is 'better' by itself. Compute = "
                      "student steps x the run's s / step"
                      + (f", plus the teacher's labelling of the cache ({labelling / 3600:.2f} CPU-h) for KD"
                         if labelling else " (the cache's labelling time is not recorded)") + ".", "",
                      "| step | " + " | ".join(f"{m}: KD / truth-only" for m in CURVE_METRICS)
                      + " | compute CPU-h: KD / truth-only |", "|---" * (len(CURVE_METRICS) + 2) + "|"]
            truth_points = dict(curve_points(truth))
            for step, point in curve_points(kd):
                other = truth_points.get(step)
                cells = [f"{read(point):.3f} / {read(other):.3f}" if other else f"{read(point):.3f} / -"
                         for read in CURVE_METRICS.values()]
                lines.append(f"| {step} | " + " | ".join(cells) + f" | {curve_compute_seconds(kd, step) / 3600:.2f} / "
                             + (f"{curve_compute_seconds(truth, step) / 3600:.2f}" if other else "-") + " |")
            lines += ["", "Steps-to-match (the first scored step at which KD reaches truth-only's best; the target is "
                      "a third of truth-only's steps or fewer):", ""]
            lines += match_lines(kd, truth, CURVE_METRICS, "KD", columns=CURVE_METRICS)
    return lines


def _curve_pairs(curves: dict) -> dict[str, dict[str, tuple[dict, dict]]]:
    """rung -> seed -> (KD entry, truth-only entry), for the seeds that have both curves."""
    pairs: dict[str, dict[str, tuple[dict, dict]]] = {}
    for name, seeds in curves.items():
        rung, variant = name.split("@")
        if variant != "KD":  # the pairs of the first curves (random start); the pruned ones are read apart
            continue
        truth = curves.get(f"{rung}@truth-only", {})
        pairs[rung] = {seed: (entry, truth[seed]) for seed, entry in seeds.items() if seed in truth}
    return {rung: seeds for rung, seeds in pairs.items() if seeds}


def plot_sample_efficiency(found: dict, path: Path) -> bool:
    """KD and truth-only against student steps (and compute), one panel per metric; False with nothing to draw."""
    pairs = _curve_pairs(found["curves"])
    if not pairs:
        return False
    plt = pyplot()
    fig, axes = plt.subplots(1, len(CURVE_METRICS), figsize=(4.6 * len(CURVE_METRICS), 4.2), squeeze=False)
    for rung, seeds in pairs.items():
        for kd, truth in seeds.values():
            for ax, (metric, read) in zip(axes[0], CURVE_METRICS.items()):
                for entry, colour, label in ((kd, "tab:blue", "KD (teacher's quantiles)"),
                                             (truth, "tab:orange", "truth-only (same batches' truth)")):
                    steps, values = zip(*[(step, read(point)) for step, point in curve_points(entry)])
                    ax.plot(steps, values, marker="o", ms=3, color=colour, label=label)
                match = steps_to_match(kd, truth, metric, CURVE_METRICS)
                ax.axhline(match["truth_best"], color="tab:orange", lw=0.8, ls=":")
                if match["kd_step"] is not None:
                    ax.axvline(match["kd_step"], color="tab:blue", lw=0.8, ls=":")
                ax.axhline(1.0, color="black", lw=0.8, ls="--", label="teacher")
                ax.set_title(metric, fontsize=10)
                ax.set_xlabel("student steps (batch 64)")
                ax.grid(alpha=0.3)
        first = next(iter(seeds.values()))[0]
        title = (f"{rung} general student, KD vs truth-only on the same stream, seed "
                 f"{', '.join(seeds)} (1 seed; lower is better; dotted: truth-only's best and where KD reaches it)")
    axes[0][0].set_ylabel("relative to the teacher (1.0 = teacher)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{title}\nteacher {first['provenance']['teacher']['name']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_family(found: dict, path: Path) -> bool:
    """Retention of each general student against its parameters and its latency (batch 64), the teacher and
    seasonal naive drawn in; False when there is nothing to draw."""
    general = found["general"]
    if not general:
        return False
    plt = pyplot()
    latency = found.get("latency")
    panels = [("parameters", "parameters")] + ([("latency", "forecast latency, batch of 64 M1 series (ms, median)")]
                                                if latency else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.6), squeeze=False)
    naive = None
    markers = {"unseen": ("o", "tab:blue", "M1 + M3 test WQL"), "18": ("s", "tab:green", "suite MAE at 18 steps"),
               "64": ("^", "tab:orange", "suite MAE at 64 steps")}
    for ax, (key, label) in zip(axes[0], panels):
        top = 1.0
        same_shape: dict[str, int] = {}
        for rung, seeds in general.items():
            entries = list(seeds.values())
            if key == "parameters":
                x = entries[0]["parameters"]
            elif shape_of(rung) in latency["timings"]["64"]:
                x = latency["timings"]["64"][shape_of(rung)]["median_s"] * 1000
            else:  # a shape the latency stage did not time
                continue
            # runs of one shape share an x: each is moved a little to the right of the last, its name above it
            dodge = same_shape[shape_of(rung)] = same_shape.get(shape_of(rung), -1) + 1
            x *= 1.07 ** dodge
            for metric, (marker, colour, name) in markers.items():
                values = [e["unseen"]["vs_teacher"] if metric == "unseen" else e["suite"][metric]["geomean"]
                          for e in entries]
                ax.errorbar(x, np.mean(values), yerr=np.std(values, ddof=1) if len(values) > 2 else None,
                            marker=marker, color=colour, linestyle="none", markersize=7, capsize=3,
                            label=name if rung == next(iter(general)) else None)
                top = max(top, float(np.mean(values)))
            highest = max(np.mean([e["suite"][h]["geomean"] for e in entries]) for h in ("18", "64"))
            ax.vlines(x, 1.0, highest, color="lightgrey", linewidth=0.8, zorder=0)
            ax.annotate(rung, (x, highest), textcoords="offset points", xytext=(0, 8), fontsize=7, rotation=90,
                        ha="center", va="bottom")
            naive = 1 / _teacher_vs_naive(entries[0]["unseen"])
        ax.set_ylim(0.95, top + 0.35 * (top - 0.95))
        tx = (latency["parameters"]["teacher"] if latency else None) if key == "parameters" else \
            latency["timings"]["64"]["teacher"]["median_s"] * 1000
        ax.axhline(1.0, color="black", linestyle=":", label="teacher (1.0)")
        if tx is not None:
            ax.scatter([tx], [1.0], marker="*", s=220, color="black", zorder=4)
            ax.annotate("teacher", (tx, 1.0), textcoords="offset points", xytext=(6, 6), fontsize=9)
        if naive is not None:
            ax.axhline(naive, color="tab:red", linestyle="--", label=f"seasonal naive on M1 + M3 ({naive:.2f}x)")
        ax.set_xscale("log")
        ax.set_xlabel(label + ("\nruns of one shape drawn side by side, each 7% right of the last" if same_shape
                               and max(same_shape.values()) else ""))
        ax.set_ylabel("student / teacher (lower is better)")
        ax.grid(alpha=0.3)
    any_entry = next(iter(next(iter(general.values())).values()))
    seeds = sorted({s for v in general.values() for s in v})
    fig.suptitle(f"General students of teacher {any_entry['provenance']['teacher']['name']}\n"
                 f"{any_entry['options']['max_steps']} steps each, "
                 + (f"seed {seeds[0]} (1 seed: no error bars)" if len(seeds) == 1
                    else f"seeds {','.join(seeds)} (bars: std over 3+ seeds; a run with fewer has none)"),
                 fontsize=10)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 0.92))
    save_figure(fig, path)
    return True


#: stage one's family: row label -> (general run name, the latency shape timed on this row or None)
FAMILY_ROWS = {
    "256x2, `mixed` contexts": ("256x2@mixed", "256x2"),
    "384x2, `mixed`": ("384x2@mixed", "384x2"),
    "384x2, `log-uniform`": ("384x2@log-uniform", None),
    "384x2, `mixed`, horizons capped at 18": ("384x2@mixed-h18", None),
    "384x2, `uniform` (the default contexts)": ("384x2@uniform", None),
}

def two_stage_family_table(folder: Path) -> str:
    """Stage one's general students (random starts, 2000 steps, 500-batch caches): parameters, M1 + M3 test WQL
    and the suite at 18 and 64 steps vs the teacher, and the median forecast time of 64 M1 monthly series
    (``--stage latency``, one timed run per shape, shown on that shape's first row)."""
    latency = json.loads((folder / "two_stage" / "latency.json").read_text())
    timings, parameters = latency["timings"]["64"], latency["parameters"]
    lines = ["| general student | parameters | M1 + M3 WQL | suite at 18 | suite at 64 | forecast, batch 64 |",
             "|---|---|---|---|---|---|"]
    for label, (name, shape) in FAMILY_ROWS.items():
        runs = _general_runs(folder, name)
        columns = [[r["unseen"]["vs_teacher"] for r in runs], [r["suite"]["18"]["geomean"] for r in runs],
                   [r["suite"]["64"]["geomean"] for r in runs]]
        time = f"{1000 * timings[shape]['median_s']:.1f} ms" if shape else ""
        lines.append(f"| {label} | {runs[0]['parameters'] / 1e6:.1f}M | " + " | ".join(pm(v) for v in columns)
                     + f" | {time} |")
    lines.append(f"| teacher v2 | {parameters['teacher'] / 1e6:.1f}M | 1 | 1 | 1 | "
                 f"{1000 * timings['teacher']['median_s']:.1f} ms |")
    return "\n".join(lines)


def report_markdown(found: dict, args: argparse.Namespace) -> str:
    lines = ["# Two-stage distillation: the first general family (issues 30 and 40)", "",
             "`python bench/two_stage_first.py --report` from the per-run results in `two_stage/`; the runs' own "
             "scores are in `two_stage.md`."]
    general = found["general"]
    shape = shape_of(args.start.split(":")[0])  # the contexts stage trains the --start rung
    contexts = {name.split("@")[1]: seeds for name, seeds in general.items()
                if shape_of(name) == shape and "@" in name and name.split("@")[1] in GENERAL_CONTEXTS}
    scored = {c: next(iter(seeds.values()))["validation_general"]["score"] for c, seeds in contexts.items()
              if "validation_general" in next(iter(seeds.values()))}
    if scored:
        lines += ["", f"`--general-context`, chosen on validation (`--stage contexts`, {shape}, the rule fixed "
                  "before the runs: sqrt(held-out M1 + M3 *training*-series WQL vs teacher x validation-seed "
                  "suite at 64 vs teacher); lower is better): "
                  + ", ".join(f"{c} {v:.3f}" for c, v in sorted(scored.items(), key=lambda kv: kv[1]))
                  + f"; chosen: {min(scored, key=scored.get)}."]
    latency = found.get("latency")
    if latency:
        lines += ["", f"Latency (`--stage latency`): {latency['series']}, {latency['horizon']} steps, "
                  f"{latency['repeats']} interleaved rounds after {latency['warmup']} warm-up rounds, median (IQR).", "",
                  "| model | weights timed | parameters | batch 1 | batch 64 |", "|---|---|---|---|---|"]
        for name, parameters in latency["parameters"].items():
            t1, t64 = latency["timings"]["1"][name], latency["timings"]["64"][name]
            weights = latency.get("timed_runs", {}).get(name, "the teacher's" if name == "teacher" else name)
            lines.append(f"| {name} | {weights} | {parameters:,} | {t1['median_s'] * 1000:.1f} ms ({t1['iqr_s'] * 1000:.1f}) | "
                         f"{t64['median_s'] * 1000:.1f} ms ({t64['iqr_s'] * 1000:.1f}) |")
    lines += curves_markdown(found["curves"])
    return "\n".join(lines) + "\n"


def first_figures(folder: Path) -> dict[str, str]:
    """The figures the pages quote from the first family."""
    r = load_json(folder, "two_stage_first.json")

    def general(name: str, seed: str = "0") -> dict:
        return load_json(folder, f"two_stage/general/{name}/seed{seed}.json")

    out = {"teacher_parameters": f"{r['latency']['parameters']['teacher'] / 1e6:.1f}M"}
    # stage one's context draws and the random starts of the levers (1 seed each)
    for key, name in (("uniform", "384x2@uniform"), ("mixed", "384x2@mixed"), ("log_uniform", "384x2@log-uniform"),
                      ("random", "384x2@uniform-c2000")):
        run = general(name)
        out.update({f"{key}_unseen": times(run["unseen"]["vs_teacher"], 3),
                    f"{key}_validation": fmt(run["validation_general"]["score"])})
        if key in ("uniform", "mixed"):
            out[f"{key}_suite_18"] = times(run["suite"]["18"]["geomean"])
        if key == "random":
            out["random_suite"] = times(run["suite"]["64"]["geomean"], 3)
    # sample efficiency: the two curves of one seed, scored every 500 steps; where KD reaches truth-only's best
    points = {variant: {int(step): p for step, p in r["curves"][f"384x2@{variant}"]["0"]["points"].items()}
              for variant in ("KD", "truth-only")}
    real = {v: {step: p["unseen"]["vs_teacher"] for step, p in pts.items()} for v, pts in points.items()}
    best_step = min(real["truth-only"], key=real["truth-only"].get)
    match = min(step for step, value in real["KD"].items() if value <= real["truth-only"][best_step])
    last = max(real["KD"])
    out.update({
        "kd_match_ratio": times(match / best_step), "kd_final": times(real["KD"][last], 3),
        "truth_only_final": times(real["truth-only"][last], 3),
        "kd_final_64": times(points["KD"][last]["suite"]["64"]["geomean"], 3),
        "kd_2000": times(points["KD"][2000]["unseen"]["vs_teacher"], 3),
        "kd_suite_2000": times(points["KD"][2000]["suite"]["64"]["geomean"], 3),
        "cache_cpu_hours": fmt(r["curves"]["384x2@KD"]["0"]["teacher_cache"]["build_seconds"] / 3600, 2),
    })
    return out


def page(folder: Path) -> dict[str, dict[str, str]]:
    """What the pages quote from this record (:func:`common.write_page`)."""
    return {"figures": first_figures(folder), "blocks": {"two-stage-family": two_stage_family_table(folder)}}


def main(argv: list[str] | None = None) -> int:
    def extra(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--general-contexts", default=",".join(GENERAL_CONTEXTS),
                            help="candidate --general-context draws of the contexts stage")
        parser.add_argument("--repeats", type=int, default=10, help="latency rounds")

    args = parse_arguments(argv, __doc__, ("contexts", "latency"), extra)
    if args.report:
        found = collect(args)
        latency = Path(args.out) / "two_stage" / "latency.json"
        found["latency"] = json.loads(latency.read_text()) if latency.is_file() else None
        plot_family(found, Path(args.out) / "two_stage_family.png")
        plot_sample_efficiency(found, Path(args.out) / "two_stage_sample_efficiency.png")
        record = {"latency": found["latency"], "curves": {name: seeds for name, seeds in found["curves"].items()
                                                          if not name.endswith("-pruned")},
                  "provenance": provenance(args.teacher, args.argv, "two_stage_first.py")}
        write_results(args.out, "two_stage_first", report_markdown(found, args), record, page=page)
        return 0
    stage = TwoStage(args)
    if args.stage == "contexts":
        args.general_contexts = [v.strip() for v in args.general_contexts.split(",") if v.strip()]
        run_contexts(stage, args)
    else:
        run_latency(stage, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
