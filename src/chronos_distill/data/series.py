"""Training and validation series: from a long table or from in-memory inputs to ``Chronos2Dataset``.

A table (a file, a folder or glob of shards, a saved Hugging Face dataset, in the long or the sequence layout,
each read into one long table by :mod:`chronos_distill.data.sources`; or a pandas DataFrame) follows
``Chronos2Pipeline.predict_df``: one row per series and time step, an id column, a timestamp column, one or more target columns; every other column is a
covariate, known into the future when listed in ``known_covariates``. It is checked here, with messages
that name the file, column and series, and then converted by chronos-forecasting's own
``preprocess.from_data_frame``. In-memory inputs are anything ``Chronos2Pipeline.fit`` accepts. Windows are
drawn by ``Chronos2Dataset`` exactly as ``fit`` draws them.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from chronos.chronos2.dataset import Chronos2Dataset, DatasetMode, PreparedInput
from chronos.chronos2.preprocess import from_data_frame

from chronos_distill.data.sources import Source, find_source, read_table
from chronos_distill.data.tables import TableLayout, check_table
from chronos_distill.errors import DataError

logger = logging.getLogger(__name__)



@dataclass
class SeriesSet:
    """Prepared series plus the ids used to name them in messages.

    inputs: one ``PreparedInput`` per series (group of targets and covariates), in ``ids`` order.
    source: the file the series came from, or a description of the in-memory object.
    """

    inputs: list[PreparedInput]
    ids: list[str]
    source: str
    #: for a table: the columns used, {"target": [...], "past_covariates": [...], "known_covariates": [...]}
    columns: dict[str, list[str]] | None = None
    #: for a table: the pandas frequency of its first series (read while the table is in hand, so that nothing
    #: reads the file again for it), None when it has none or the series came from memory
    frequency: str | None = None
    #: for a corpus streamed shard by shard (:mod:`chronos_distill.data.shards`): the summary of every shard, while
    #: ``inputs`` holds the first shard's series only
    described: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        if self.described is not None:
            return dict(self.described)
        if not self.inputs:  # no user series: a general run
            return {"source": self.source, "columns": None, "n_series": 0, "n_observations": 0}
        lengths = [int(x["context"].shape[-1]) for x in self.inputs]
        first = self.inputs[0]
        return {
            "source": self.source,
            "columns": self.columns,
            "n_series": len(self.inputs),
            "n_targets": int(first["n_targets"]),
            "n_covariates": int(first["n_covariates"]),
            "n_known_covariates": int(first["n_future_covariates"]),
            "n_observations": int(sum(lengths)),
            "min_length": min(lengths),
            "max_length": max(lengths),
        }


#: The key of a prepared series' own pandas frequency (``load_series(series_frequencies=True)``)
FREQUENCY_KEY = "frequency"
#: Timestamps read to infer a series' frequency (enough for every pandas alias, business days included)
FREQUENCY_STEPS = 16

#: What a ``--general`` run trains on instead of user series.
GENERAL_SOURCE = "the teacher's pretraining task mix (general stream)"


def general_series() -> SeriesSet:
    """The (empty) series set of a ``--general`` run: every row comes from the general transfer source."""
    return SeriesSet(inputs=[], ids=[], source=GENERAL_SOURCE)


def load_series(
    data: Any,
    prediction_length: int,
    *,
    target: list[str],
    known_covariates: list[str] | None = None,
    past_covariates: list[str] | None = None,
    ignore_columns: list[str] | None = None,
    id_column: str | None = None,
    timestamp_column: str = "timestamp",
    timestamp_format: str | None = None,
    role: str = "train_data",
    series_frequencies: bool = False,
) -> SeriesSet:
    """Turn a file path, a DataFrame or ``fit``-style in-memory inputs into a :class:`SeriesSet`.

    For a table, ``past_covariates=None`` uses every column that is not the id, the timestamp, a target, a
    known covariate or in ``ignore_columns``; the columns used are logged and kept in ``SeriesSet.columns``.
    ``series_frequencies``: also give each prepared series its own pandas frequency, under
    :data:`FREQUENCY_KEY` (what a statistical teacher takes its season from when series differ in frequency).
    """
    layout = TableLayout(target=list(target), known_covariates=list(known_covariates or []),
                         past_covariates=past_covariates, ignore_columns=list(ignore_columns or []),
                         id_column=id_column, timestamp_column=timestamp_column, timestamp_format=timestamp_format)
    if isinstance(data, (str, Path, Source)):
        source = data.description if isinstance(data, Source) else find_source(data, role).description
        return _from_table(read_table(data, role, timestamp_column), source, prediction_length, layout,
                           series_frequencies)
    if isinstance(data, pd.DataFrame):
        return _from_table(data, f"{role} DataFrame", prediction_length, layout, series_frequencies)
    return _from_in_memory(data, prediction_length, role)


def _from_in_memory(data: Any, prediction_length: int, role: str) -> SeriesSet:
    # Chronos2Dataset recognises every input kind that Chronos2Pipeline.fit accepts and converts it with
    # chronos' preprocess helpers; TEST mode converts without filtering, which we do ourselves to report it.
    try:
        if len(data) == 0:
            raise DataError(f"{role} holds no series")
        converted = Chronos2Dataset(
            data, context_length=1, prediction_length=prediction_length, batch_size=1, output_patch_size=1,
            mode=DatasetMode.TEST,
        ).inputs
    except DataError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AssertionError) as exc:  # what chronos' checks raise
        raise DataError(f"{role} is not in a format Chronos2Pipeline.fit accepts: {type(exc).__name__}: {exc}") from exc
    inputs = list(converted)
    for i, item in enumerate(inputs):
        if torch.isinf(item["context"]).any():
            raise DataError(f"{role}: series {i} contains infinite values")
    return SeriesSet(inputs=inputs, ids=[str(i) for i in range(len(inputs))], source=f"in-memory {type(data).__name__}")


def _from_table(df: pd.DataFrame, source: str, prediction_length: int, layout: TableLayout,
                series_frequencies: bool = False) -> SeriesSet:
    checked = check_table(df, source, layout)
    df, id_column, columns = checked.df, checked.id_column, checked.columns
    target, known_covariates = columns["target"], columns["known_covariates"]
    timestamp_column = layout.timestamp_column
    try:
        inputs = from_data_frame(
            df,
            target_columns=target,
            prediction_length=prediction_length,
            known_covariates_names=known_covariates or None,
            id_column=id_column,
            timestamp_column=timestamp_column,
        )
    except (ValueError, TypeError, KeyError) as exc:
        hint = ""
        if "frequency" in str(exc):
            hint = " (irregular timestamps: every series needs one regular frequency; resample or fill the gaps)"
        raise DataError(f"{source}: {exc}{hint}") from exc
    ids = [str(i) for i in pd.unique(df[id_column])]
    if series_frequencies:  # kept in each prepared series, so that dropping or sharding series keeps them aligned
        frequencies = _frequencies(df, id_column, timestamp_column)
        inputs = [{**prepared, FREQUENCY_KEY: freq} for prepared, freq in zip(inputs, frequencies)]
    return SeriesSet(inputs=inputs, ids=ids, source=source, columns=columns,
                     frequency=_first_frequency(df, id_column, timestamp_column))


def _frequencies(df: pd.DataFrame, id_column: str, timestamp_column: str) -> list[str | None]:
    """Each series' pandas frequency, in the order of first appearance (``from_data_frame``'s), from its first
    :data:`FREQUENCY_STEPS` timestamps (the table is checked regular already); None below 3 timestamps."""
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _, stamps in df.groupby(id_column, sort=False)[timestamp_column]:
            first = pd.DatetimeIndex(np.sort(stamps.to_numpy())[:FREQUENCY_STEPS])
            out.append(pd.infer_freq(first) if len(first) >= 3 else None)
    return out


def _first_frequency(df: pd.DataFrame, id_column: str, timestamp_column: str) -> str | None:
    first = df[id_column].iloc[0]
    stamps = pd.DatetimeIndex(np.sort(df.loc[df[id_column].to_numpy() == first, timestamp_column].to_numpy()))
    if len(stamps) < 3:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pd.infer_freq(stamps)


def drop_short_series(series: SeriesSet, min_length: int, role: str, why: str) -> SeriesSet:
    """Remove series shorter than ``min_length`` with a warning naming them; refuse if none is left.

    ``why`` says what the minimum is made of (e.g. "min_past 8 + prediction_length 12").
    """
    lengths = [int(x["context"].shape[-1]) for x in series.inputs]
    short = [i for i, n in enumerate(lengths) if n < min_length]
    if not short:
        return series
    described = ", ".join(f"{series.ids[i]!r} ({lengths[i]} steps)" for i in short[:5])
    if len(short) == len(lengths):
        raise DataError(
            f"{series.source}: no series is long enough: {role} needs at least {min_length} steps per series "
            f"({why}), and {described}{' and others' if len(short) > 5 else ''} "
            f"{'is' if len(short) == 1 else 'are'} shorter"
        )
    logger.warning(
        "%s: skipping %d of %d series shorter than %d steps (%s): %s%s",
        series.source, len(short), len(lengths), min_length, why, described, " ..." if len(short) > 5 else "",
    )
    dropped = set(short)  # built once: a membership test per series, not a set per series
    keep = [i for i in range(len(lengths)) if i not in dropped]
    # dataclasses.replace keeps every other field (the columns used, which predict and the card rely on)
    return dataclasses.replace(series, inputs=[series.inputs[i] for i in keep], ids=[series.ids[i] for i in keep])
