"""Seasonality-suite retention of finished students at several horizons (a check for issue 23).

The retention benchmark scores the suite at horizon 64, beyond the 18 steps its students are distilled for (the
pipeline then reads output patches the student never trained on); this scores the same students at the trained
horizon too. Geometric mean over the noisy suite cases of the student's median MAE over the teacher's, fresh
series of ``--suite-seed``.

    python bench/suite_horizons.py runs/bench-retention/cross-domain/KD/seed0/model ... [--horizons 18,64]
        [--out bench/results]

Writes ``suite_horizons.md`` and ``suite_horizons.json`` (commit, command, teacher digest) into ``--out``.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("students", nargs="+")
    parser.add_argument("--teacher", default="reference")
    parser.add_argument("--horizons", default="18,64")
    parser.add_argument("--suite-seed", type=int, default=3)
    parser.add_argument("--suite-series", type=int, default=32)
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args(argv)

    from common import provenance, provenance_line, write_results
    from harness import Suite

    from chronos_distill.chronos2.loading import load_chronos2

    teacher = load_chronos2(args.teacher, role="teacher")
    horizons = [int(h) for h in args.horizons.split(",")]
    suites = {h: Suite(teacher, args.suite_seed, args.suite_series, horizon=h) for h in horizons}
    prov = provenance(args.teacher, argv if argv is not None else sys.argv[1:], "suite_horizons.py")
    ratios = {}
    for folder in args.students:
        student = load_chronos2(folder, role="student")
        ratios[folder] = {str(h): suites[h].ratio(student)["geomean"] for h in horizons}
    lines = ["# Seasonality-suite retention at the trained horizon (18) and at the suite's (64)", "",
             f"`{prov['command']}`", "", provenance_line(prov), "",
             f"Suite seed {args.suite_seed}, {args.suite_series} series per noisy case; geometric mean of the "
             "student's median MAE over the teacher's.", "",
             "| student | " + " | ".join(f"suite MAE vs teacher, horizon {h}" for h in horizons) + " |",
             "|---" * (len(horizons) + 1) + "|"]
    lines += [f"| {folder} | " + " | ".join(f"{r[str(h)]:.3f}" for h in horizons) + " |" for folder, r in ratios.items()]
    write_results(args.out, "suite_horizons", "\n".join(lines) + "\n",
                  {"provenance": prov, "suite_seed": args.suite_seed, "suite_series": args.suite_series,
                   "horizons": horizons, "ratios": ratios})
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
