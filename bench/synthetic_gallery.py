"""Look at the pretraining generators: a grid of seeded samples of each, one PNG per generator.

A diagnostic, not a test: it writes ``synthetic_<generator>.png`` (six samples each) into ``--out`` so that
a person can check that each generator makes what its docstring says (periods, multiplicative seasons,
intermittent counts, ...).

    python bench/synthetic_gallery.py [--out bench/results/synthetic] [--length 400] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from chronos_distill.data.synthetic import (  # noqa: E402
    ar_process,
    intermittent_series,
    kernel_synth,
    multivariate_group,
    seasonal_series,
    trend_seasonality,
    ts_mixup,
)


def generators(length: int):
    return {
        "seasonal": lambda rng: seasonal_series(rng, length),
        "seasonal_short_periods": lambda rng: seasonal_series(rng, length, periods=(int(rng.integers(2, 16)),)),
        "seasonal_multiplicative": lambda rng: seasonal_series(rng, length, multiplicative=True),
        "seasonal_two_periods": lambda rng: seasonal_series(rng, length, periods=(7, 24)),
        "intermittent": lambda rng: intermittent_series(rng, length),
        "kernel_synth": lambda rng: kernel_synth(rng, length),
        "trend_seasonality": lambda rng: trend_seasonality(rng, length),
        "ar_process": lambda rng: ar_process(rng, length),
        "ts_mixup": lambda rng: ts_mixup(rng, [seasonal_series(rng, length), ar_process(rng, length),
                                               trend_seasonality(rng, length)], length),
        "multivariate_group": lambda rng: multivariate_group(rng, length).values,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/synthetic"))
    parser.add_argument("--length", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, make in generators(args.length).items():
        rng = np.random.default_rng(args.seed)
        fig, axes = plt.subplots(3, 2, figsize=(12, 7), sharex=True)
        for ax in axes.flat:
            values = np.atleast_2d(make(rng))
            for row in values:
                ax.plot(row, lw=0.8)
            ax.grid(alpha=0.25)
        for ax in axes[-1]:
            ax.set_xlabel("time step")
        for ax in axes[:, 0]:
            ax.set_ylabel("value (unitless)")
        rows = "; several lines: one group's series" if name == "multivariate_group" else ""
        fig.suptitle(f"generator {name}: 6 samples of {args.length} steps, seed {args.seed}{rows}")
        fig.tight_layout()
        fig.savefig(args.out / f"synthetic_{name}.png", dpi=80)
        plt.close(fig)
        print(args.out / f"synthetic_{name}.png")


if __name__ == "__main__":
    main()
