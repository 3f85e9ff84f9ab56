"""Zero-shot retention: what a student keeps of its teacher on data it was not distilled on (issue 23).

For each regime, each variant and each seed, a student is distilled (with the teacher cache, so that each
seed's teacher targets are computed once) and scored next to its teacher:

- **in-domain**: the test portions of the data the student was distilled on (M3, or M1 + M3);
- **held-out**: data outside its distillation set: the seasonality suite with fresh series (``--suite-seed``, not
  the benchmark's seed 0 nor the teacher's validation seed 2), and M1's test portions when distilled on M3 alone
  (the cross-domain and low-data regimes) or M3's and M1's for the general student.

Retention is the student's score over the teacher's (geometric mean of WQL ratios over the data sets; for the
suite, of median-MAE ratios over its noisy cases): 1.0 keeps everything.

Regimes: ``full`` (M1 + M3 training portions), ``low-data`` (a seeded 10% of the M3 training series),
``cross-domain`` (M3 training portions only), ``general`` (no user data: ``--general``).
Variants: ``truth-only`` (alpha 0), ``KD`` (alpha 0.5), ``KD + general`` (``--transfer-general`` at
``--general-share``, chosen on the validation split of ``bench/transfer.py``); ``general`` runs KD alone.

Every run is resumable: a finished one is read back, an interrupted one continues from its checkpoint
(``bench/common.py``), so the benchmark can be stopped and started again from the same command.

    python bench/retention.py --regime low-data [--variants truth-only,KD,KD+general] [--seeds 0,1,2]
        [--steps 2000] [--teacher reference] [--runs runs/bench-retention] [--out bench/results]

Writes ``retention_<regime>.md`` and ``retention_<regime>.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
from common import (
    add_training_arguments,
    command_line,
    pm,
    run_options,
    score,
    score_student,
    seeds_of,
    train_in_subprocess,
    write_results,
)

REGIMES = ("full", "low-data", "cross-domain", "general")
VARIANTS = {"truth-only": {"alpha": 0.0}, "KD": {"alpha": 0.5}, "KD+general": {"alpha": 0.5}}
LOW_DATA_FRACTION = 0.1


def training_table(regime: str, seed: int = 0):
    """The distillation data of ``regime`` (None for the general regime)."""
    from chronos_distill.data.competition import training_table as table_of

    if regime == "general":
        return None
    if regime == "full":
        return table_of(("M1", "M3"))
    table = table_of(("M3",))
    if regime == "cross-domain":
        return table
    ids = sorted(table["item_id"].unique())
    rng = np.random.default_rng(seed)
    chosen = set(rng.choice(ids, size=round(LOW_DATA_FRACTION * len(ids)), replace=False))
    return table[table["item_id"].isin(chosen)].reset_index(drop=True)


def scored_sets(regime: str) -> dict[str, dict]:
    """``{"in-domain": benchmarks, "held-out": benchmarks}`` (test portions; the suite is scored apart)."""
    from chronos_distill.data.competition import load_benchmarks

    m1, m3 = load_benchmarks("M1"), load_benchmarks("M3")
    if regime == "full":
        return {"in-domain": {**m1, **m3}, "held-out": {}}
    if regime == "general":
        return {"in-domain": {}, "held-out": {**m1, **m3}}
    return {"in-domain": m3, "held-out": m1}


def suite_ratio(student_dir: str, teacher, suite_seed: int, n_series: int) -> dict:
    """The student's median MAE over the teacher's on the noisy seasonality-suite cases (geometric mean)."""
    from chronos_distill.chronos2.loading import load_chronos2
    from chronos_distill.evaluation.seasonality_suite import SUITE, make_case, score_case

    student = load_chronos2(student_dir, role="student")
    ratios = {}
    for case in (c for c in SUITE if c.noise_scale > 0):
        data = make_case(case, n_series=n_series, seed=suite_seed)
        ratios[case.name] = score_case(student, data)["MAE"] / score_case(teacher, data)["MAE"]
    return {"cases": ratios, "geomean": float(math.exp(np.mean(np.log(list(ratios.values())))))}


def run(args: argparse.Namespace) -> dict:
    from chronos_distill.chronos2.loading import load_chronos2

    teacher = load_chronos2(args.teacher, role="teacher")
    sets = scored_sets(args.regime)
    teacher_scores = {kind: score({"teacher": teacher}, benchmarks) if benchmarks else None
                      for kind, benchmarks in sets.items()}
    table = training_table(args.regime)
    variants = ["KD"] if args.regime == "general" else args.variants
    results: dict = {"command": command_line("retention.py", args.argv), "teacher": args.teacher,
                     "regime": args.regime, "steps": args.steps, "runs": {}}
    for variant in variants:
        for seed in seeds_of(args):
            folder = Path(args.runs) / args.regime / variant / f"seed{seed}"
            options = dict(VARIANTS[variant], teacher_cache=str(Path(args.runs) / "teacher-cache"),
                           cache_batches=args.cache_batches, save_steps=args.save_steps)
            if args.regime == "general":
                options["general"] = True
            else:
                options["train_data"] = table
                if variant == "KD+general":
                    options["transfer_general"] = args.general_share
            trained = train_in_subprocess(run_options(args, seed, folder, **options))
            model_dir = trained["model_dir"]
            entry = {kind: score_student(model_dir, benchmarks, teacher_scores[kind]) if benchmarks else None
                     for kind, benchmarks in sets.items()}
            entry["suite"] = suite_ratio(model_dir, teacher, args.suite_seed, args.suite_series)
            entry["seconds_per_step"] = trained["seconds_per_step"]
            results["runs"].setdefault(variant, {})[str(seed)] = entry
            print(f"{args.regime} {variant} seed {seed}: " + json.dumps(
                {k: (v["vs_teacher"] if isinstance(v, dict) and "vs_teacher" in v else v)
                 for k, v in entry.items() if k != "suite"}) + f" suite {entry['suite']['geomean']:.3f}", flush=True)
    return results


def markdown(results: dict) -> str:
    lines = [f"# Zero-shot retention: {results['regime']}", "", f"`{results['command']}`", "",
             f"Teacher: {results['teacher']}; {results['steps']} steps per student; mean ± std over seeds of the "
             "student's score over the teacher's (1.0 keeps everything; below 1 is better than the teacher).", "",
             "| variant | in-domain WQL | held-out WQL | seasonality suite MAE |", "|---|---|---|---|"]
    for variant, seeds in results["runs"].items():
        cells = []
        for kind in ("in-domain", "held-out"):
            values = [s[kind]["vs_teacher"] for s in seeds.values() if s.get(kind)]
            cells.append(pm(values) if values else "-")
        cells.append(pm([s["suite"]["geomean"] for s in seeds.values()]))
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_training_arguments(parser, steps=2000, runs="runs/bench-retention")
    parser.add_argument("--regime", choices=REGIMES, required=True)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, of " + ", ".join(VARIANTS))
    parser.add_argument("--general-share", type=float, default=0.25, help="transfer_general of KD+general")
    parser.add_argument("--cache-batches", type=int, default=500)
    parser.add_argument("--save-steps", type=int, default=250, help="checkpoint every N steps (resume)")
    parser.add_argument("--suite-seed", type=int, default=3)
    parser.add_argument("--suite-series", type=int, default=32)
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    results = run(args)
    write_results(args.out, f"retention_{args.regime}", markdown(results), results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
