"""Training and validation series: from a long table or from in-memory inputs to ``Chronos2Dataset``.

A long table (Parquet, CSV or a pandas DataFrame) follows ``Chronos2Pipeline.predict_df``: one row per series
and time step, an id column, a timestamp column, one or more target columns; every other column is a
covariate, known into the future when listed in ``known_covariates``. It is checked here, with messages
that name the file, column and series, and then converted by chronos-forecasting's own
``preprocess.from_data_frame``. In-memory inputs are anything ``Chronos2Pipeline.fit`` accepts. Windows are
drawn by ``Chronos2Dataset`` exactly as ``fit`` draws them.
"""

from __future__ import annotations

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

from .errors import DataError

logger = logging.getLogger(__name__)

TABLE_READERS = {".parquet": pd.read_parquet, ".pq": pd.read_parquet, ".csv": pd.read_csv}


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

    def summary(self) -> dict[str, Any]:
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


def read_table(path: str | Path, role: str = "train_data") -> pd.DataFrame:
    """Read a Parquet or CSV file, refusing missing, unsupported or unreadable files by name."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{role} file {path} does not exist")
    if not path.is_file():
        raise DataError(f"{role} {path} is not a file")
    suffixes = [s.lower() for s in path.suffixes]
    suffix = suffixes[-2] if len(suffixes) > 1 and suffixes[-1] in (".gz", ".bz2", ".zip", ".xz", ".zst") else path.suffix.lower()
    reader = TABLE_READERS.get(suffix)
    if reader is None:
        raise DataError(f"{role} file {path} has an unsupported extension {path.suffix!r}; use .parquet or .csv")
    kind = "Parquet" if reader is pd.read_parquet else "CSV"
    try:
        return reader(path)
    except Exception as exc:  # pyarrow / pandas parser errors of all kinds
        raise DataError(f"{role} file {path} could not be read as {kind}: {type(exc).__name__}: {exc}") from None


def resolve_id_column(df: pd.DataFrame, id_column: str | None) -> str:
    """The configured id column, or ``item_id`` (predict_df's default), or ``id`` when only that exists."""
    if id_column is not None:
        return id_column
    if "item_id" not in df.columns and "id" in df.columns:
        return "id"
    return "item_id"


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
) -> SeriesSet:
    """Turn a file path, a DataFrame or ``fit``-style in-memory inputs into a :class:`SeriesSet`.

    For a table, ``past_covariates=None`` uses every column that is not the id, the timestamp, a target, a
    known covariate or in ``ignore_columns``; the columns used are logged and kept in ``SeriesSet.columns``.
    """
    layout = dict(target=target, known_covariates=known_covariates or [], past_covariates=past_covariates,
                  ignore_columns=ignore_columns or [], id_column=id_column, timestamp_column=timestamp_column,
                  timestamp_format=timestamp_format)
    if isinstance(data, (str, Path)):
        return _from_table(read_table(data, role), str(data), prediction_length, role=role, **layout)
    if isinstance(data, pd.DataFrame):
        return _from_table(data, f"{role} DataFrame", prediction_length, role=role, **layout)
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
    except Exception as exc:
        raise DataError(f"{role} is not in a format Chronos2Pipeline.fit accepts: {type(exc).__name__}: {exc}") from None
    inputs = list(converted)
    for i, item in enumerate(inputs):
        if torch.isinf(item["context"]).any():
            raise DataError(f"{role}: series {i} contains infinite values")
    return SeriesSet(inputs=inputs, ids=[str(i) for i in range(len(inputs))], source=f"in-memory {type(data).__name__}")


def _from_table(
    df: pd.DataFrame,
    source: str,
    prediction_length: int,
    *,
    target: list[str],
    known_covariates: list[str],
    past_covariates: list[str] | None,
    ignore_columns: list[str],
    id_column: str | None,
    timestamp_column: str,
    timestamp_format: str | None,
    role: str,
) -> SeriesSet:
    id_column = resolve_id_column(df, id_column)
    if id_column == timestamp_column:
        raise DataError(f"{source}: the id column and the timestamp column are both {id_column!r}; "
                        "--id-column names the column of series ids, --timestamp-column the column of times")
    for option, columns in (("--target", target), ("--known-covariates", known_covariates),
                            ("--past-covariates", past_covariates or [])):
        for special, what in ((id_column, "the id column"), (timestamp_column, "the timestamp column")):
            if special in columns:
                raise DataError(f"{source}: {option} names {special!r}, which is {what}; it cannot also be a "
                                f"{'target' if option == '--target' else 'covariate'}")
    required = [id_column, timestamp_column, *target, *known_covariates, *(past_covariates or [])]
    missing = [c for c in required if c not in df.columns]
    if missing:
        hints = []
        if id_column in missing:
            hints.append("--id-column")
        if timestamp_column in missing:
            hints.append("--timestamp-column")
        if set(target) & set(missing):
            hints.append("--target")
        if set(known_covariates) & set(missing):
            hints.append("--known-covariates")
        if set(past_covariates or []) & set(missing):
            hints.append("--past-covariates")
        raise DataError(
            f"{source}: missing column(s) {missing}; columns present: {list(df.columns)}"
            + (f" (set {', '.join(hints)} to name yours)" if hints else "")
        )
    unknown_ignored = [c for c in ignore_columns if c not in df.columns]
    if unknown_ignored:
        raise DataError(f"{source}: --ignore-columns names column(s) {unknown_ignored} that are not in the table; "
                        f"columns present: {list(df.columns)}")
    used = {id_column, timestamp_column, *target, *known_covariates}
    if past_covariates is None:
        past_covariates = [c for c in df.columns if c not in used and c not in ignore_columns]
        for column in past_covariates:
            if _looks_like_an_index(df[column], column):
                logger.warning(
                    "%s: column %r looks like a saved row index, and is used as a past covariate; pass "
                    "--ignore-columns %s to leave it out (or --past-covariates to list the covariates)",
                    source, column, column)
    elif set(past_covariates) & set(ignore_columns):
        raise DataError(f"{source}: column(s) {sorted(set(past_covariates) & set(ignore_columns))} are both in "
                        "--past-covariates and --ignore-columns")
    columns = {"target": list(target), "past_covariates": list(past_covariates),
               "known_covariates": list(known_covariates)}
    logger.info("%s: targets %s; past-only covariates %s; known covariates %s", source, columns["target"],
                columns["past_covariates"] or "none", columns["known_covariates"] or "none")
    if len(df) == 0:
        raise DataError(f"{source} has no rows")
    df = df[[id_column, timestamp_column, *target, *known_covariates, *past_covariates]]
    df = df.copy()
    if df[id_column].isna().any():
        raise DataError(f"{source}: column {id_column!r} has empty series ids (row {int(df[id_column].isna().to_numpy().argmax())})")
    for column in target:
        df[column] = _numeric_column(df, column, id_column, source, what="target")
    numeric_columns = [c for c in df.columns if c not in (id_column, timestamp_column)
                       and pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
    for column in numeric_columns:
        values = df[column].to_numpy(dtype=float, na_value=np.nan)
        bad = np.isinf(values)
        if bad.any():
            row = int(bad.argmax())
            raise DataError(
                f"{source}: column {column!r} has an infinite value {values[row]} in series "
                f"{df[id_column].iloc[row]!r} (row {row}); replace it with a number or leave it empty (NaN)"
            )

    df[timestamp_column], guessed = parse_timestamps(df[timestamp_column], timestamp_format, source, timestamp_column)
    duplicated = df.duplicated([id_column, timestamp_column])
    if duplicated.any():
        row = df[duplicated].iloc[0]
        raise DataError(
            f"{source}: series {row[id_column]!r} has more than one row for timestamp {row[timestamp_column]}"
        )

    _check_regular(df, id_column, timestamp_column, source, guessed)
    for column in known_covariates:
        gaps = df[column].isna()
        if gaps.any():
            row = df[gaps].iloc[0]
            raise DataError(
                f"{source}: known covariate {column!r} is missing {int(gaps.sum())} value(s), first in series "
                f"{row[id_column]!r} at {row[timestamp_column]}; a known covariate must be known at every step "
                "(fill the gaps, or pass it as a past-only covariate by leaving it out of --known-covariates)"
            )

    observed = df[target].notna().any(axis=1).groupby(df[id_column], sort=False).any()
    empty = observed.index[~observed.to_numpy()].tolist()
    if empty:
        if len(empty) == len(observed):
            raise DataError(f"{source}: every series has only missing target values")
        logger.warning("%s: skipping %d series whose targets are all missing: %s", source, len(empty), _some(empty))
        df = df[~df[id_column].isin(empty)]

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
        raise DataError(f"{source}: {exc}{hint}") from None
    ids = [str(i) for i in pd.unique(df[id_column])]
    return SeriesSet(inputs=inputs, ids=ids, source=source, columns=columns)


def parse_timestamps(values: pd.Series, timestamp_format: str | None, source: str, column: str) -> tuple[pd.Series, bool]:
    """Timestamps as naive datetimes, and whether pandas had to guess their format.

    Time-zone-aware timestamps (``2024-01-01 00:00+01:00``, or a tz-aware dtype) are converted to UTC and
    made naive: chronos works on naive timestamps, and one clock for every series keeps steps regular.
    """
    tz_aware = isinstance(values.dtype, pd.DatetimeTZDtype)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            parsed = pd.to_datetime(values, format=timestamp_format, utc=not tz_aware and _has_offsets(values))
        except (ValueError, TypeError) as exc:
            how = f"with --timestamp-format {timestamp_format!r}" if timestamp_format else "(pass --timestamp-format)"
            raise DataError(f"{source}: column {column!r} does not hold timestamps {how}: {exc}") from None
    guessed = timestamp_format is None and any("infer format" in str(w.message) for w in caught)
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        logger.info("%s: time-zone-aware timestamps in %r converted to UTC", source, column)
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed, guessed


def _has_offsets(values: pd.Series) -> bool:
    """Text timestamps with UTC offsets or a Z (possibly mixed offsets, which pandas parses only with utc=True)."""
    if values.dtype != object and not pd.api.types.is_string_dtype(values):
        return False
    sample = values.dropna().astype(str).head(100)
    return bool(sample.str.contains(r"(?:[+-]\d{2}:?\d{2}|Z)$", regex=True).any())


def _looks_like_an_index(values: pd.Series, name: str) -> bool:
    """A column written by ``to_csv`` with its index (``Unnamed: 0``), or a 0..n-1 / 1..n row counter."""
    if str(name).startswith("Unnamed:") or str(name) in ("index", "level_0"):
        return True
    if not pd.api.types.is_integer_dtype(values) or len(values) < 3:
        return False
    array = values.to_numpy()
    return bool(np.array_equal(array, np.arange(len(array))) or np.array_equal(array, np.arange(1, len(array) + 1)))


def _check_regular(df: pd.DataFrame, id_column: str, timestamp_column: str, source: str, guessed: bool = False) -> None:
    """Refuse a series whose timestamps follow no regular frequency (chronos would silently treat them as
    evenly spaced). Equal steps pass at once; the rest (months, quarters, years have uneven lengths) must have
    a frequency that ``pd.infer_freq`` recognises."""
    ordered = df[[id_column, timestamp_column]].sort_values([id_column, timestamp_column], kind="stable")
    steps = ordered.groupby(id_column, sort=False)[timestamp_column].diff()
    uneven = steps.groupby(ordered[id_column], sort=False).nunique() > 1
    for item_id in uneven.index[uneven.to_numpy()]:
        stamps = pd.DatetimeIndex(ordered.loc[ordered[id_column] == item_id, timestamp_column])
        with warnings.catch_warnings():  # pandas 3 warns about infer_freq's future return type; only None matters
            warnings.simplefilter("ignore")
            freq = pd.infer_freq(stamps)
        if freq is None:
            raise DataError(
                f"{source}: series {item_id!r} has irregular timestamps (steps of "
                f"{', '.join(str(x) for x in stamps.to_series().diff().dropna().drop_duplicates()[:3])}): every series "
                "needs one regular frequency; resample it, or mark missing steps with empty target values"
                + ("; note: pandas had to guess the timestamps' format, so they may be misread (e.g. day-first "
                   "dates like 13/01/2024 read month-first): pass --timestamp-format, e.g. '%d/%m/%Y %I%p'"
                   if guessed else "")
            )


def _numeric_column(df: pd.DataFrame, column: str, id_column: str, source: str, what: str) -> pd.Series:
    values = df[column]
    if pd.api.types.is_bool_dtype(values) or not (
        pd.api.types.is_numeric_dtype(values) or values.dtype == object or pd.api.types.is_string_dtype(values)
    ):
        raise DataError(f"{source}: {what} column {column!r} must be numeric, it holds {values.dtype} values")
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64")
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() & values.notna()
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise DataError(
            f"{source}: {what} column {column!r} has a non-numeric value {values.iloc[row]!r} in series "
            f"{df[id_column].iloc[row]!r} (row {row})"
        )
    return numbers.astype("float64")


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
    keep = [i for i in range(len(lengths)) if i not in set(short)]
    return SeriesSet(inputs=[series.inputs[i] for i in keep], ids=[series.ids[i] for i in keep], source=series.source)


def make_dataset(
    series: SeriesSet,
    *,
    context_length: int,
    prediction_length: int,
    batch_size: int,
    output_patch_size: int,
    min_past: int,
    mode: DatasetMode,
) -> Chronos2Dataset:
    """A ``Chronos2Dataset`` over ``series``: random windows for TRAIN, each series' last window for VALIDATION."""
    return Chronos2Dataset(
        inputs=series.inputs,
        context_length=context_length,
        prediction_length=prediction_length,
        batch_size=batch_size,
        output_patch_size=output_patch_size,
        min_past=min_past,
        mode=mode,
    )


def training_batches(series: SeriesSet, shares=None, **dataset_options: Any):
    """The endless training batches: ``Chronos2Dataset`` windows of the user's series, with the teacher-only rows
    of the transfer sources appended when ``shares`` (:class:`chronos_distill.transfer.TransferShares`) has any."""
    if shares is not None and shares.total > 0:
        from .transfer import TransferBatches

        return TransferBatches(series, shares, **dataset_options)
    return Chronos2Dataset(inputs=series.inputs, mode=DatasetMode.TRAIN, **dataset_options)


def draw_windows(series: SeriesSet, n_batches: int, seed: int, shares=None, **dataset_options: Any) -> list[dict[str, Any]]:
    """``n_batches`` batches of :func:`training_batches` drawn from numpy seeded with ``seed``, leaving the
    global numpy RNG as it was."""
    dataset = training_batches(series, shares, **dataset_options)
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        iterator = iter(dataset)
        return [next(iterator) for _ in range(n_batches)]
    finally:
        np.random.set_state(state)


def _some(items: list, n: int = 5) -> str:
    return ", ".join(repr(i) for i in items[:n]) + (" ..." if len(items) > n else "")
