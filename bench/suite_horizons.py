"""Seasonality-suite retention of finished students at several horizons (a check for issue 23).

The retention benchmark scores the suite at horizon 64, beyond the 18 steps its students are distilled for (the
pipeline then reads output patches the student never trained on); this scores the same students at the trained
horizon too. Geometric mean over the noisy suite cases of the student's median MAE over the teacher's, fresh
series of ``--suite-seed``.

    python bench/suite_horizons.py runs/bench-retention/cross-domain/KD/seed0/model ... [--horizons 18,64]
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
    args = parser.parse_args(argv)

    from retention import Suite

    from chronos_distill.chronos2.loading import load_chronos2

    teacher = load_chronos2(args.teacher, role="teacher")
    horizons = [int(h) for h in args.horizons.split(",")]
    suites = {h: Suite(teacher, args.suite_seed, args.suite_series, horizon=h) for h in horizons}
    print("| student | " + " | ".join(f"suite MAE vs teacher, horizon {h}" for h in horizons) + " |")
    print("|---" * (len(horizons) + 1) + "|")
    for folder in args.students:
        student = load_chronos2(folder, role="student")
        print(f"| {folder} | " + " | ".join(f"{suites[h].ratio(student)['geomean']:.3f}" for h in horizons) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
