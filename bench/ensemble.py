"""Several teachers, one student (issue 25): is a student distilled from an ensemble better than one distilled from
any single teacher, and than the teachers themselves?

Scored on the M3 and M1 test portions (yearly / quarterly / monthly, official horizons; geometric-mean WQL and
MASE relative to seasonal naive), distilled on the M1 + M3 training portions:

- each teacher scored directly: the bundled ``reference-v0``, ``reference-v1``, ``reference-v2`` and
  ``statsforecast:AutoETS``;
- the ensembles scored directly (``evaluate --ensemble``): v0 + v1 + v2 with equal weights and with the ``auto``
  weights the distilled run chose on its validation windows (the last H steps of the training series), and
  v2 + AutoETS with equal weights;
- a student distilled from each Chronos-2 teacher alone, from the v0 + v1 + v2 ensemble (``--teacher-weights
  auto``) and from v2 + AutoETS (equal weights); every student at the same steps, batch, transfer-set size (the
  teacher cache, so each seed's targets are computed once) and seeds;
- latency of one forecast batch (64 M3 monthly series), every model interleaved, median and IQR.

AutoETS fits each window with the season of its own series (yearly 1, quarterly 4, monthly 12), as the directly
scored ensembles use each data set's season; ``--season-length N`` fixes one season for every window instead (the
first version of this benchmark used 12 for all). A finished student is reused only when its recorded season
setting is the requested one.

    python bench/ensemble.py [--steps 1000] [--seeds 0,1,2] [--cache-batches 150] [--runs runs/bench-ensemble]
        [--out bench/results]

Writes ``ensemble.md`` and ``ensemble.json``, and each student's scores into ``ensemble/<student>/seed<k>.json``
(read back instead of retrained when present).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from common import (
    add_training_arguments,
    arguments,
    command_line,
    fmt,
    geomean,
    interleaved_timing,
    load_json,
    mean_std,
    pct,
    pm,
    provenance,
    provenance_line,
    relative_wql,
    run_options,
    score,
    seeds_of,
    train_in_subprocess,
    write_json,
    write_results,
)
from harness import over_seeds

CHRONOS_TEACHERS = ("reference-v0", "reference-v1", "reference-v2")
STATISTICAL = "statsforecast:AutoETS"
#: each student: (teachers, teacher_weights)
STUDENTS = {
    "from v0": (["reference-v0"], None),
    "from v1": (["reference-v1"], None),
    "from v2": (["reference-v2"], None),
    "from v0+v1+v2 (auto)": (list(CHRONOS_TEACHERS), "auto"),
    "from v2+AutoETS": (["reference-v2", STATISTICAL], None),
}


def benchmarks() -> dict:
    from chronos_distill.data.competition import load_benchmarks

    return {**load_benchmarks("M3"), **load_benchmarks("M1")}


def summary(results: dict, name: str) -> dict:
    return {"WQL": relative_wql(results, name, "seasonal_naive"),
            "MASE": geomean(r["scores"][name]["MASE"] / r["scores"]["seasonal_naive"]["MASE"]
                            for r in results["datasets"].values()),
            "datasets": {d: r["scores"][name] for d, r in results["datasets"].items()}}


def recorded_season(entry: dict) -> int | str | None:
    """The season a student's statistical teacher used, from its run record: a length, or "per series"."""
    season = (entry.get("ensemble") or {}).get("season_length")
    return "per series" if isinstance(season, dict) else season


def reusable(entry: dict, teachers: list[str], season_length: int | None) -> bool:
    """Whether a finished student's results answer the request: always without a statistical teacher, else only
    when it used the requested season (``None``: each series' own)."""
    return STATISTICAL not in teachers or recorded_season(entry) == (season_length or "per series")


def student_file(out: Path, student: str, seed: int) -> Path:
    slug = student.replace(" ", "_").replace("(", "").replace(")", "").replace("+", "-")
    return out / "ensemble" / slug / f"seed{seed}.json"


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__)
    add_training_arguments(parser, steps=1000, runs="runs/bench-ensemble")
    parser.add_argument("--cache-batches", type=int, default=150)
    parser.add_argument("--season-length", type=int, default=None,
                        help="one season for the statistical teacher on every window [default: each series' own]")
    parser.add_argument("--students", default=",".join(STUDENTS), help="comma-separated, of " + "; ".join(STUDENTS))
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--datasets", default=None, help="score only these (comma-separated, e.g. m1_yearly: a smoke run)")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: read every student back from its results file, list the missing ones as "
                             "not run, and write the tables (what a budget cut leaves)")
    parser.add_argument("--students-only", action="store_true",
                        help="train and score the listed students only, and write no tables: one lane of a run split "
                             "across processes; a last run without it reads every student back")
    args = parser.parse_args(argv)
    out = Path(args.out)
    wanted = [s.strip() for s in args.students.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in STUDENTS]
    if unknown:
        parser.error(f"unknown student(s) {unknown}; choose from {list(STUDENTS)}")

    import torch

    from chronos_distill.chronos2.loading import load_chronos2
    from chronos_distill.data.competition import training_table
    from chronos_distill.deploy.onnx_forecaster import load_forecaster
    from chronos_distill.evaluation.ensemble_forecaster import EnsembleForecaster
    from chronos_distill.evaluation.scoring import forecaster_parameters

    data = benchmarks()
    if args.datasets:
        data = {name: data[name] for name in args.datasets.split(",")}
    table = training_table(("M1", "M3"))
    not_run: list[str] = []

    def run_student(student: str, seed: int) -> dict | None:
        """The student's results file when it answers the request, else trained and scored (None: not run)."""
        teachers, weights = STUDENTS[student]
        file = student_file(out, student, seed)
        if file.is_file():
            kept = json.loads(file.read_text())
            if reusable(kept, teachers, args.season_length) or args.report_only:
                return kept
            print(f"{student} seed {seed}: its statistical teacher used season {recorded_season(kept)}, not "
                  f"{args.season_length or 'per series'}: trained again", flush=True)
        if args.report_only:
            not_run.append(f"{student} seed {seed}")
            return None
        folder = Path(args.runs) / file.parent.name / f"seed{seed}"
        options = run_options(args, seed, folder, train_data=table, teacher=",".join(teachers), alpha=0.5,
                              teacher_cache=str(Path(args.runs) / "teacher-cache"), cache_batches=args.cache_batches,
                              season_length=args.season_length if STATISTICAL in teachers else None)
        if weights:
            options["teacher_weights"] = weights
        trained = train_in_subprocess(options)
        scored = score({"student": trained["model_dir"]}, data)
        entry = {"model_dir": str(Path(trained["model_dir"]).relative_to(Path(args.runs).parent))
                 if Path(trained["model_dir"]).is_relative_to(Path(args.runs).parent) else trained["model_dir"],
                 "parameters": trained["record"]["student"]["parameters"],
                 "ensemble": trained["record"].get("ensemble"), "seconds_per_step": trained["seconds_per_step"],
                 "provenance": provenance(teachers[0], sys.argv[1:], "ensemble.py"),
                 "options": {k: v for k, v in trained["record"]["options"].items() if v not in (None, [], {})},
                 **summary(scored, "student")}
        file.parent.mkdir(parents=True, exist_ok=True)
        write_json(file, entry)
        print(f"{student} seed {seed}: WQL vs seasonal naive {entry['WQL']:.4f}", flush=True)
        return entry

    students = {name: runs for name, runs in over_seeds(wanted, seeds_of(args), run_student).items() if runs}
    if args.students_only:
        return 0

    # the teachers and the ensembles, scored directly (deterministic: once)
    auto = next((e["ensemble"] for e in students.get("from v0+v1+v2 (auto)", {}).values() if e.get("ensemble")), None)
    auto_weights = None
    if auto:
        by_name = {t["name"]: t["weight"] for t in auto["teachers"]}
        auto_weights = [by_name.get(t, 0.0) for t in CHRONOS_TEACHERS]
    direct = {name: load_forecaster(name) for name in CHRONOS_TEACHERS}
    direct["AutoETS"] = EnsembleForecaster.from_names(["reference-v2", STATISTICAL], [0.0, 1.0])
    direct["v0+v1+v2 (equal)"] = EnsembleForecaster.from_names(list(CHRONOS_TEACHERS))
    if auto_weights:
        direct["v0+v1+v2 (auto)"] = EnsembleForecaster.from_names(list(CHRONOS_TEACHERS), auto_weights)
    direct["v2+AutoETS (equal)"] = EnsembleForecaster.from_names(["reference-v2", STATISTICAL])
    # deterministic, and AutoETS fits every test series twice: scored once, kept next to the students' files
    direct_file = out / "ensemble" / "direct.json"
    kept = json.loads(direct_file.read_text()) if direct_file.is_file() else {}
    if kept.get("models") == list(direct) and kept.get("datasets") == list(data) \
            and kept.get("auto_weights") == auto_weights:
        teachers = kept["teachers"]
    else:
        scored = score(direct, data)
        teachers = {name: summary(scored, name) for name in direct}
        direct_file.parent.mkdir(parents=True, exist_ok=True)
        write_json(direct_file, {"models": list(direct), "datasets": list(data), "auto_weights": auto_weights,
                                 "teachers": teachers})

    monthly = data.get("m3_monthly") or next(iter(data.values()))
    batch = [torch.tensor(c, dtype=torch.float32) for c in monthly.contexts[:64]]
    timed = {name: model for name, model in direct.items() if name != "AutoETS"}
    from chronos.chronos2 import Chronos2Pipeline

    for student, seeds in students.items():  # students whose weights are on this machine (same shape, same cost)
        model_dir = next((d for d in (Path(e["model_dir"]) if Path(e["model_dir"]).is_absolute()
                                      else Path(args.runs).parent / e["model_dir"] for e in seeds.values())
                          if (d / "model.safetensors").is_file()), None)
        if model_dir is not None:
            timed[student] = Chronos2Pipeline(load_chronos2(model_dir, role="student"))
    with torch.no_grad():
        timing = interleaved_timing({name: (lambda m=m: m.predict_quantiles(batch, prediction_length=monthly.horizon,
                                                                             quantile_levels=[0.1, 0.5, 0.9]))
                                     for name, m in timed.items()}, repeats=args.repeats)

    results = {"command": command_line("ensemble.py", argv), "provenance": provenance("reference-v2", argv, "ensemble.py"),
               "steps": args.steps, "seeds": seeds_of(args),
               "cache_batches": args.cache_batches, "season_length": args.season_length, "batch_size": args.batch_size,
               "repeats": args.repeats,
               "datasets": list(data), "teachers": teachers,
               "teacher_parameters": {name: forecaster_parameters(model) for name, model in direct.items()},
               "auto_weights": dict(zip(CHRONOS_TEACHERS, auto_weights)) if auto_weights else None,
               "students": students, "not_run": not_run, "latency": {n: {k: v for k, v in t.items() if k != "times_s"}
                                                 for n, t in timing.items()}}
    write_results(out, "ensemble", markdown(results), results, page=page)
    return 0


def markdown(results: dict) -> str:
    season = results.get("season_length")
    lines = ["# Several teachers, one student: ensembles on M3 and M1", "", f"`{results['command']}`", "",
             *([provenance_line(results["provenance"]), ""] if results.get("provenance") else []),
             f"Distilled on the M1 + M3 training portions, {results['steps']} steps, batch {results['batch_size']}, "
             f"a {results['cache_batches']}-batch teacher cache per seed; seeds {results['seeds']}; scored on "
             f"{', '.join(results['datasets'])} (test portions). WQL and MASE: geometric mean over the data sets of "
             "the ratio to seasonal naive (lower is better). The statistical teacher's season, distilled: "
             + (f"{season} for every window" if season else "each window's own series' (yearly 1, quarterly 4, "
                "monthly 12)") + "; scored directly: each data set's. Latency: interleaved, median over "
             f"{results.get('repeats', 10)} rounds after a warm-up; a student without weights on the machine that "
             "wrote the report shows -.", "",
             "| model | parameters | WQL vs seasonal naive | MASE vs seasonal naive | latency, 64 series (median, IQR) |",
             "|---|---|---|---|---|"]
    latency = results["latency"]

    def timing(name):
        t = latency.get(name)
        return f"{t['median_s']:.3f} s ({t['iqr_s']:.3f})" if t else "-"

    for name, s in results["teachers"].items():
        count = results["teacher_parameters"].get(name)
        lines.append(f"| {name} (scored directly) | {f'{count:,}' if count else '-'} | {s['WQL']:.4f} | {s['MASE']:.4f} | {timing(name)} |")
    for name, seeds in results["students"].items():
        values = list(seeds.values())
        lines.append(f"| student {name} | {values[0]['parameters']:,} | {pm([v['WQL'] for v in values], 4)} | "
                     f"{pm([v['MASE'] for v in values], 4)} | {timing(name)} |")
    if results.get("auto_weights"):
        lines += ["", "auto weights of the first seed's run, used for the directly scored auto ensemble (greedy "
                  "ensemble selection on the last H steps of the training series): "
                  + ", ".join(f"{k} {v:.2f}" for k, v in results["auto_weights"].items())]
    lines += ["", "## Targets", ""] + [f"- {line}" for line in targets(results)]
    if results.get("not_run"):
        lines += ["", "Not run (`--report-only`: no results file, cut for the CPU budget): "
                  + "; ".join(results["not_run"]) + "."]
    return "\n".join(lines) + "\n"


def targets(results: dict) -> list[str]:
    """The issue's targets, each computed from the table on WQL (the issue's metric), with the same comparison on
    MASE beside it: met or not, with the figures."""
    score = {metric: {name: s[metric] for name, s in results["teachers"].items()} for metric in ("WQL", "MASE")}
    wql = score["WQL"]
    students = {metric: {name: [v[metric] for v in seeds.values()] for name, seeds in results["students"].items()}
                for metric in ("WQL", "MASE")}
    lines = []

    def better(ensemble: str, member: str) -> str:
        verdicts = [f"{'met' if score[m][ensemble] < score[m][member] else 'missed'} ({score[m][ensemble]:.4f})"
                    for m in ("WQL", "MASE")]
        return f"{verdicts[0]}; on MASE {verdicts[1]} against {score['MASE'][member]:.4f}"

    best = min(CHRONOS_TEACHERS, key=lambda t: wql[t])
    for ensemble in ("v0+v1+v2 (equal)", "v0+v1+v2 (auto)"):
        if ensemble in wql:
            lines.append(f"{ensemble} better than its best member ({best}, {wql[best]:.4f}): {better(ensemble, best)}")
    pair_best = min(("reference-v2", "AutoETS"), key=lambda t: wql[t])
    lines.append(f"v2+AutoETS (equal) better than its best member ({pair_best}, {wql[pair_best]:.4f}): "
                 f"{better('v2+AutoETS (equal)', pair_best)}")
    for name, ensemble in (("from v0+v1+v2 (auto)", "v0+v1+v2 (auto)"), ("from v2+AutoETS", "v2+AutoETS (equal)")):
        if name not in students["WQL"]:
            continue
        mine = students["WQL"][name]
        mean, std = mean_std(mine)
        for single in ("from v0", "from v1", "from v2"):
            if single in students["WQL"]:
                verdicts = []
                for metric in ("WQL", "MASE"):
                    (m, sd), (other, other_std) = (mean_std(students[metric][n]) for n in (name, single))
                    gap, bar = other - m, 2 * max(sd, other_std)
                    verdicts.append(f"{'met' if gap > bar else 'missed'} (gap {gap:+.4f}, 2 std {bar:.4f}")
                lines.append(f"student {name} beats student {single} by more than 2 std: {verdicts[0]}, "
                             f"{len(mine)} and {len(students['WQL'][single])} seeds); on MASE {verdicts[1]})")
        if ensemble in wql:
            mase = mean_std(students["MASE"][name])[0] / score["MASE"][ensemble]
            lines.append(f"student {name} within 2% of {ensemble}: "
                         f"{'met' if mean <= 1.02 * wql[ensemble] else 'missed'} ({mean / wql[ensemble]:.3f}x); "
                         f"on MASE {'met' if mase <= 1.02 else 'missed'} ({mase:.3f}x)")
        chronos = [t for t in CHRONOS_TEACHERS if t in wql]
        best_single = min(wql[t] for t in (*chronos, "AutoETS"))
        best_mase = min(score["MASE"][t] for t in (*chronos, "AutoETS"))
        mase_mean = mean_std(students["MASE"][name])[0]
        parameters = next(iter(results["students"][name].values()))["parameters"]
        smaller = all(parameters < results["teacher_parameters"][t] for t in chronos)
        lines.append(f"student {name} beats every single teacher ({', '.join(chronos)}, AutoETS) while smaller than "
                     f"each: {'yes' if mean < best_single and smaller else 'no'} "
                     f"({mean:.4f} ± {std:.4f} vs best teacher {best_single:.4f}); on MASE "
                     f"{'yes' if mase_mean < best_mase and smaller else 'no'} ({mase_mean:.4f} vs {best_mase:.4f})")
    return lines

# -- what the pages quote (common.write_page; scripts/render_docs.py copies it) --------------------------------


def ensemble_figures(folder: Path) -> dict[str, str]:
    """The figures the pages quote; every other one, with its 2 std, is in ``ensemble.md``'s targets."""
    r = load_json(folder, "ensemble.json")
    teachers, latency = r["teachers"], r["latency"]
    pair, ets = teachers["v2+AutoETS (equal)"], teachers["AutoETS"]
    return {"pair_gain_wql": pct(1 - pair["WQL"] / ets["WQL"]), "pair_gain_mase": pct(1 - pair["MASE"] / ets["MASE"]),
            "auto_v2_weight": fmt(r["auto_weights"]["reference-v2"], 2),
            "latency_student": fmt(latency["from v2+AutoETS"]["median_s"]) + " s",
            "latency_teacher": fmt(latency["reference-v2"]["median_s"], 2) + " s"}


def student_figures(folder: Path) -> dict[str, str]:
    """The default student (384-d, 2 blocks) that most benchmarks distil: its size, as the ensemble runs record it."""
    sizes = {seed["parameters"] for seeds in load_json(folder, "ensemble.json")["students"].values() for seed in seeds.values()}
    return {"parameters": f"{sizes.pop() / 1e6:.1f}M"}


#: bench/ensemble.py's table: (directly scored label, teacher key, student label, student key); a "{weights}" in a
#: label is the auto weights of the first seed's run
ENSEMBLE_ROWS = [
    ("v0", "reference-v0", "v0", "from v0"),
    ("v1", "reference-v1", "v1", "from v1"),
    ("v2", "reference-v2", "v2", "from v2"),
    ("AutoETS", "AutoETS", None, None),
    ("v0 + v1 + v2, equal", "v0+v1+v2 (equal)", None, None),
    ("v0 + v1 + v2, auto ({weights})", "v0+v1+v2 (auto)", "v0 + v1 + v2, auto", "from v0+v1+v2 (auto)"),
    ("v2 + AutoETS, equal", "v2+AutoETS (equal)", "v2 + AutoETS", "from v2+AutoETS"),
]


def ensemble_table(folder: Path) -> str:
    """``bench/ensemble.py``: each teacher and ensemble scored directly beside the student distilled from it, WQL and
    MASE relative to seasonal naive (geometric mean over the six M1 / M3 test portions; students over their seeds)."""
    result = json.loads((folder / "ensemble.json").read_text())
    teachers, students = result["teachers"], result["students"]
    size = {seeds["0"]["parameters"] for seeds in students.values()}.pop()
    weights = " / ".join(f"{w:.2f}" for w in result["auto_weights"].values())
    lines = [f"| scored directly | WQL | MASE | | student ({size / 1e6:.1f}M) distilled from | WQL | MASE |",
             "|---|---|---|---|---|---|---|"]
    for label, teacher, student_label, student in ENSEMBLE_ROWS:
        row = [label.format(weights=weights), f"{teachers[teacher]['WQL']:.4f}", f"{teachers[teacher]['MASE']:.4f}", ""]
        if student is None:
            row += ["", "", ""]
        else:
            seeds = students[student].values()
            row += [student_label, pm([s["WQL"] for s in seeds], 4), pm([s["MASE"] for s in seeds], 4)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def page(folder: Path) -> dict[str, dict[str, str]]:
    """What the pages quote from this benchmark's results in ``folder``, by name: figures in the prose, and blocks
    (tables, a command); written into its results file's ``"page"`` (:func:`common.write_page`)."""
    return {"figures": {**ensemble_figures(folder), **{f"student_{k}": v for k, v in student_figures(folder).items()}},
            "blocks": {"ensemble": ensemble_table(folder)}}


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
