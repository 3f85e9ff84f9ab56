"""Small synthetic data sets (seeded, in memory) for the demo and the tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def seasonal_long_table(
    n_series: int = 64,
    length: int = 400,
    seed: int = 0,
    freq: str = "h",
    covariate: bool = False,
) -> pd.DataFrame:
    """Long table of seasonal series with trend and noise at very different scales.

    Columns: ``item_id``, ``timestamp``, ``target`` (and ``price``, a known covariate that moves the target,
    when ``covariate``). Scales range over five orders of magnitude, which is what normalised-space losses
    are for.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    frames = []
    for i in range(n_series):
        period = rng.choice([7, 12, 24, 48])
        phase = rng.uniform(0, 2 * np.pi)
        amplitude = rng.uniform(0.5, 2.0)
        trend = rng.normal(0, 0.004) * t
        ar = np.zeros(length)
        noise = rng.normal(0, rng.uniform(0.05, 0.4), length)
        for k in range(1, length):
            ar[k] = 0.6 * ar[k - 1] + noise[k]
        y = amplitude * np.sin(2 * np.pi * t / period + phase) + trend + ar
        frame = {"item_id": f"s{i:03d}", "timestamp": pd.date_range("2024-01-01", periods=length, freq=freq)}
        if covariate:
            price = rng.normal(0, 1, length)
            y = y - 0.8 * price
            frame["price"] = price
        scale = 10 ** rng.uniform(0, 5)
        frame["target"] = (y + 5) * scale
        frames.append(pd.DataFrame(frame))
    return pd.concat(frames, ignore_index=True)
