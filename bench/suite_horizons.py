"""Seasonality-suite retention of finished students at several horizons (a check for issue 23).

The retention benchmark scores the suite at horizon 64, beyond the 18 steps its students are distilled for (the
pipeline then reads output patches the student never trained on); this scores the same students at the trained
horizon too. Geometric mean over the noisy suite cases of the student's median MAE over the teacher's, fresh
series of ``--suite-seed``.

    python bench/suite_horizons.py runs/bench-retention/cross-domain/KD/seed0/model ... [--horizons 18,64]
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("students", nargs="+")
    parser.add_argument("--teacher", default="reference")
    parser.add_argument("--horizons", default="18,64")
    parser.add_argument("--suite-seed", type=int, default=3)
    parser.add_argument("--suite-series", type=int, default=32)
    args = parser.parse_args(argv)

    from chronos_distill.chronos2.loading import load_chronos2
    from chronos_distill.evaluation.seasonality_suite import SUITE, make_case, score_case

    teacher = load_chronos2(args.teacher, role="teacher")
    horizons = [int(h) for h in args.horizons.split(",")]
    print("| student | " + " | ".join(f"suite MAE vs teacher, horizon {h}" for h in horizons) + " |")
    print("|---" * (len(horizons) + 1) + "|")
    for folder in args.students:
        student = load_chronos2(folder, role="student")
        cells = []
        for horizon in horizons:
            ratios = []
            for case in (c for c in SUITE if c.noise_scale > 0):
                data = make_case(case, n_series=args.suite_series, seed=args.suite_seed, horizon=horizon)
                ratios.append(score_case(student, data)["MAE"] / score_case(teacher, data)["MAE"])
            cells.append(f"{math.exp(np.mean(np.log(ratios))):.3f}")
        print(f"| {folder} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
