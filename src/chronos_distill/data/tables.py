"""Long tables (Parquet, CSV or a pandas DataFrame in ``Chronos2Pipeline.predict_df`` layout): reading, and the
checks that name the file, column, series and row of a fault.

This module imports pandas and numpy only (no torch), so a command can check its files and columns before it
pays for the training stack.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chronos_distill.errors import DataError
from chronos_distill.files import write_atomic

logger = logging.getLogger(__name__)

TABLE_READERS = {".parquet": pd.read_parquet, ".pq": pd.read_parquet, ".csv": pd.read_csv}


def read_table(path: str | Path, role: str = "train_data") -> pd.DataFrame:
    """Read a Parquet or CSV file, refusing missing, unsupported or unreadable files by name."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{role} file {path} does not exist")
    if not path.is_file():
        raise DataError(f"{role} {path} is not a file")
    reader = TABLE_READERS.get(_suffix(path))
    if reader is None:
        raise DataError(f"{role} file {path} has an unsupported extension {path.suffix!r}; use .parquet or .csv")
    kind = "Parquet" if reader is pd.read_parquet else "CSV"
    try:
        return reader(path)
    except Exception as exc:  # pyarrow / pandas parser errors of all kinds
        raise DataError(f"{role} file {path} could not be read as {kind}: {type(exc).__name__}: {exc}") from None


def _suffix(path: Path) -> str:
    """The format suffix, past a compression one (``sales.csv.gz`` is ``.csv``)."""
    suffixes = [s.lower() for s in path.suffixes]
    compressed = len(suffixes) > 1 and suffixes[-1] in (".gz", ".bz2", ".zip", ".xz", ".zst")
    return suffixes[-2] if compressed else path.suffix.lower()


def resolve_id_column(table: pd.DataFrame | list[str], id_column: str | None) -> str:
    """The configured id column, or ``item_id`` (predict_df's default), or ``id`` when only that exists."""
    if id_column is not None:
        return id_column
    present = list(getattr(table, "columns", table))
    return "id" if "item_id" not in present and "id" in present else "item_id"


@dataclass(frozen=True)
class TableLayout:
    """Which columns of a long table are what, as the options name them. ``past_covariates=None``: every column
    that is not the id, the timestamp, a target, a known covariate or in ``ignore_columns``."""

    target: list[str] = field(default_factory=lambda: ["target"])
    known_covariates: list[str] = field(default_factory=list)
    past_covariates: list[str] | None = None
    ignore_columns: list[str] = field(default_factory=list)
    id_column: str | None = None
    timestamp_column: str = "timestamp"
    timestamp_format: str | None = None

    @classmethod
    def from_options(cls, options: Any, **overrides: Any) -> TableLayout:
        """The layout named by a command's options (those it has; the others keep their defaults)."""
        names = [f.name for f in dataclasses.fields(cls)]
        values = {name: getattr(options, name) for name in names if hasattr(options, name)}
        return cls(**{**values, **overrides})


def check_columns(present: list[str], source: str, layout: TableLayout) -> str:
    """Check the columns named by ``layout`` against the columns ``present`` in a table; returns the id column.

    Only names are needed, so :func:`read_columns` (a file's header) is enough: a misspelt column is refused
    before anything reads the data.
    """
    target, known_covariates, past_covariates = layout.target, layout.known_covariates, layout.past_covariates
    timestamp_column, ignore_columns = layout.timestamp_column, layout.ignore_columns
    id_column = resolve_id_column(present, layout.id_column)
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
    missing = [c for c in required if c not in present]
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
            f"{source}: missing column(s) {missing}; columns present: {list(present)}"
            + (f" (set {', '.join(hints)} to name yours)" if hints else "")
        )
    unknown_ignored = [c for c in ignore_columns if c not in present]
    if unknown_ignored:
        raise DataError(f"{source}: --ignore-columns names column(s) {unknown_ignored} that are not in the table; "
                        f"columns present: {list(present)}")
    return id_column


def read_columns(path: str | Path, role: str = "train_data") -> list[str]:
    """The column names of a Parquet or CSV file, from its schema or header alone."""
    path = Path(path).expanduser()
    if not path.is_file() or _suffix(path) not in TABLE_READERS:
        read_table(path, role)  # raises the message for a missing file, a folder or an unsupported format
    try:
        if TABLE_READERS[_suffix(path)] is pd.read_parquet:
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        return list(pd.read_csv(path, nrows=0).columns)
    except Exception:  # an unreadable file: read_table says why, with the reader's own message
        read_table(path, role)
        raise


@dataclass
class CheckedTable:
    """A long table that passed :func:`check_table`: only the columns used, numeric targets, naive parsed
    timestamps, one row per series and time step, regular steps, no series without an observed target."""

    df: pd.DataFrame
    id_column: str
    #: {"target": [...], "past_covariates": [...], "known_covariates": [...]}
    columns: dict[str, list[str]]


def check_table(df: pd.DataFrame, source: str, layout: TableLayout, *, announce: bool = True) -> CheckedTable:
    """Check a long table in ``predict_df`` layout and name the culprit (file, column, series, row) of any fault.

    Series whose targets are all missing are left out with a warning naming them;
    a table of nothing else is refused. ``distill``, ``evaluate`` and ``predict`` read their tables through it,
    so one fault gets one message whichever command meets it. ``announce`` logs the columns used (a training
    run states them when it starts).
    """
    id_column = check_columns(list(df.columns), source, layout)
    target, known_covariates, past_covariates = layout.target, layout.known_covariates, layout.past_covariates
    timestamp_column, timestamp_format, ignore_columns = (layout.timestamp_column, layout.timestamp_format,
                                                          layout.ignore_columns)
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
    (logger.info if announce else logger.debug)(
        "%s: targets %s; past-only covariates %s; known covariates %s", source, columns["target"],
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

    return CheckedTable(df=df, id_column=id_column, columns=columns)


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
            reason = str(exc).splitlines()[0].rstrip(". ")  # pandas adds a multi-line list of suggestions
            raise DataError(f"{source}: column {column!r} does not hold timestamps {how}: {reason}") from None
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
    uneven_ids = uneven.index[uneven.to_numpy()]
    if not len(uneven_ids):
        return
    # calendar data (months, quarters, years: steps of 28-31 days and more) in a constant number of vectorised
    # passes, never one mask of the table per series: the rest go to pd.infer_freq one group at a time
    candidates = ordered[ordered[id_column].isin(uneven_ids)]
    remaining = uneven_ids[~_regular_in_months(candidates, id_column, timestamp_column).reindex(uneven_ids).to_numpy()]
    if not len(remaining):
        return
    for item_id, group in ordered[ordered[id_column].isin(remaining)].groupby(id_column, sort=False):
        stamps = pd.DatetimeIndex(group[timestamp_column])
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


def _regular_in_months(ordered: pd.DataFrame, id_column: str, timestamp_column: str) -> pd.Series:
    """Per series of ``ordered`` (sorted by id and time): True when its timestamps are midnights that step by 1, 3
    or 12 calendar months, all on the 1st or all on a month's last day: what ``pd.infer_freq`` calls MS / ME,
    QS / QE, YS / YE (monthly, quarterly, yearly data). False means "ask pd.infer_freq", not irregular."""
    stamps = ordered[timestamp_column]
    ids = ordered[id_column]
    months = pd.Series(stamps.dt.year.to_numpy() * 12 + stamps.dt.month.to_numpy(), index=ordered.index)
    month_steps = months.groupby(ids, sort=False).diff()
    step = month_steps.groupby(ids, sort=False)
    calendar_step = (step.nunique() == 1) & step.min().isin([1, 3, 12])
    midnight = (stamps == stamps.dt.normalize()).groupby(ids, sort=False).all()
    first = (stamps.dt.day == 1).groupby(ids, sort=False).all()
    last = stamps.dt.is_month_end.groupby(ids, sort=False).all()
    return (calendar_step & midnight & (first | last)).astype(bool)


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


def write_table_atomic(table: pd.DataFrame, path: Path) -> None:
    """CSV or Parquet by extension, atomically (:func:`chronos_distill.files.write_atomic`)."""
    if path.suffix.lower() == ".parquet":
        write_atomic(path, lambda tmp: table.to_parquet(tmp, index=False))
    else:
        write_atomic(path, lambda tmp: table.to_csv(tmp, index=False))


def _some(items: list, n: int = 5) -> str:
    return ", ".join(repr(i) for i in items[:n]) + (" ..." if len(items) > n else "")
