"""Long tables (``Chronos2Pipeline.predict_df`` layout, as :mod:`chronos_distill.data.sources` reads every input
form into): the checks that name the file (the shard), column, series and row of a fault, each in a constant
number of vectorised passes over the table.

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

    Only names are needed, so :func:`chronos_distill.data.sources.read_columns` (a header) is enough: a misspelt column is refused
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
            hints.append("`id_column` (--id-column)")
        if timestamp_column in missing:
            hints.append("`timestamp_column` (--timestamp-column)")
        if set(target) & set(missing):
            hints.append("`target` (--target)")
        if set(known_covariates) & set(missing):
            hints.append("`known_covariates` (--known-covariates)")
        if set(past_covariates or []) & set(missing):
            hints.append("`past_covariates` (--past-covariates)")
        raise DataError(
            f"{source}: missing column(s) {missing}; columns present: {list(present)}"
            + (f" (set {', '.join(hints)} to name yours)" if hints else "")
        )
    unknown_ignored = [c for c in ignore_columns if c not in present]
    if unknown_ignored:
        raise DataError(f"{source}: --ignore-columns names column(s) {unknown_ignored} that are not in the table; "
                        f"columns present: {list(present)}")
    return id_column


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
    shards = df.attrs.get("shards")  # (shard, rows) of a table read from shards: messages name the shard
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
        raise DataError(f"{source}: column {id_column!r} has empty series ids "
                        f"({at_row(shards, int(df[id_column].isna().to_numpy().argmax()))})")
    for column in target:
        df[column] = _numeric_column(df, column, id_column, source, what="target", shards=shards)
    numeric_columns = [c for c in df.columns if c not in (id_column, timestamp_column)
                       and pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
    for column in numeric_columns:
        values = df[column].to_numpy(dtype=float, na_value=np.nan)
        bad = np.isinf(values)
        if bad.any():
            row = int(bad.argmax())
            raise DataError(
                f"{source}: column {column!r} has an infinite value {values[row]} in series "
                f"{df[id_column].iloc[row]!r} ({at_row(shards, row)}); replace it with a number or leave it empty (NaN)"
            )

    df[timestamp_column], guessed = parse_timestamps(df[timestamp_column], timestamp_format, source, timestamp_column)
    timeline = Timeline.of(df, id_column, timestamp_column)  # one sort for the duplicate and regularity checks
    _check_duplicates(timeline, source)
    _check_regular(df, id_column, timestamp_column, source, guessed, timeline)
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


def at_row(shards: list[tuple[str, int, bool]] | None, row: int) -> str:
    """Where row ``row`` (0-based position) of a table is, as a person finds it: ``data.csv, line 19`` in a CSV file
    (its header is line 1), ``data.parquet, row 18`` counting from 1 in another file, ``shard data/part-3.csv,
    line 7`` for a table read from shards (``DataFrame.attrs["shards"]``: each file's name, number of long rows and
    whether it is CSV, in order), and ``row 17`` (its position) in a DataFrame given in memory."""
    if not shards:
        return f"row {row}"
    ends = np.cumsum([entry[1] for entry in shards])
    index = int(np.searchsorted(ends, row, side="right"))
    name, _, csv = shards[index]
    local = row - (int(ends[index - 1]) if index else 0)
    return f"{'shard ' if len(shards) > 1 else ''}{name}, " + (f"line {local + 2}" if csv else f"row {local + 1}")


def parse_timestamps(values: pd.Series, timestamp_format: str | None, source: str, column: str) -> tuple[pd.Series, bool]:
    """Timestamps as naive datetimes, and whether pandas had to guess their format.

    Time-zone-aware timestamps (``2024-01-01 00:00+01:00``, or a tz-aware dtype) are converted to UTC and
    made naive: chronos works on naive timestamps, and one clock for every series keeps steps regular.
    """
    if pd.api.types.is_datetime64_dtype(values.dtype):  # already naive datetimes: nothing to parse
        return values, False
    tz_aware = isinstance(values.dtype, pd.DatetimeTZDtype)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            parsed = pd.to_datetime(values, format=timestamp_format, utc=not tz_aware and _has_offsets(values))
        except (ValueError, TypeError) as exc:
            how = f"with --timestamp-format {timestamp_format!r}" if timestamp_format else "(pass --timestamp-format)"
            reason = str(exc).splitlines()[0].rstrip(". ")  # pandas adds a multi-line list of suggestions
            raise DataError(f"{source}: column {column!r} does not hold timestamps {how}: {reason}") from exc
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


@dataclass
class Timeline:
    """A table's timestamps ordered by series, then time, in one sort: what the duplicate and regularity checks read.

    stamps: (n_rows,) int64 nanoseconds, sorted within each series; series: (n_rows,) the series index of each;
    starts / lengths: (n_series,) each series' first position in ``stamps`` and its number of rows;
    ids: (n_series,) the series ids, in order of first appearance in the table.
    """

    stamps: np.ndarray
    series: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    ids: np.ndarray

    @classmethod
    def of(cls, df: pd.DataFrame, id_column: str, timestamp_column: str) -> Timeline:
        codes, ids = pd.factorize(df[id_column])  # one hash of the ids; every later pass is on integers
        stamps = df[timestamp_column].to_numpy(dtype="datetime64[ns]").view("int64")
        code_steps = np.diff(codes)
        in_order = bool(np.all(code_steps >= 0)) and bool(np.all((np.diff(stamps) >= 0) | (code_steps > 0)))
        if not in_order:  # a table already grouped and sorted (the usual case) costs no sort
            order = np.lexsort((stamps, codes))
            codes, stamps = codes[order], stamps[order]
        lengths = np.bincount(codes, minlength=len(ids))
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        return cls(stamps=stamps, series=codes, starts=starts, lengths=lengths, ids=np.asarray(ids))

    def steps(self) -> np.ndarray:
        """(n_rows,) int64: each row's step from the previous row of its series (0 at a series' first row)."""
        steps = np.diff(self.stamps, prepend=self.stamps[:1])
        steps[self.starts] = 0
        return steps

    def per_series(self, ufunc: np.ufunc, values: np.ndarray, first_row_value) -> np.ndarray:
        """``ufunc`` reduced over each series' rows past its first (whose value is ``first_row_value``)."""
        values = values.copy()
        values[self.starts] = first_row_value
        return ufunc.reduceat(values, self.starts)


def _check_duplicates(timeline: Timeline, source: str) -> None:
    repeated = np.flatnonzero(timeline.steps() == 0)
    repeated = repeated[~np.isin(repeated, timeline.starts)]
    if len(repeated):
        row = int(repeated[0])
        raise DataError(f"{source}: series {timeline.ids[timeline.series[row]]!r} has more than one row for timestamp "
                        f"{pd.Timestamp(int(timeline.stamps[row]))}")


def _check_regular(df: pd.DataFrame, id_column: str, timestamp_column: str, source: str, guessed: bool = False,
                   timeline: Timeline | None = None) -> None:
    """Refuse a series whose timestamps follow no regular frequency (chronos would silently treat them as
    evenly spaced). Equal steps pass at once; so do midnights a constant 1, 3 or 12 calendar months apart, on the
    1st or a month's last day (monthly, quarterly, yearly data: steps of 28-31 days); the rest must have a
    frequency that ``pd.infer_freq`` recognises. A constant number of vectorised passes, then ``infer_freq`` on
    those few series alone."""
    timeline = timeline or Timeline.of(df, id_column, timestamp_column)
    steps = timeline.steps()
    big, small = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    uneven = ((timeline.per_series(np.maximum, steps, small) > timeline.per_series(np.minimum, steps, big))
              & (timeline.lengths >= 3))
    if not uneven.any():
        return
    remaining = np.flatnonzero(uneven & ~_calendar_months(timeline))
    for index in remaining:
        start = timeline.starts[index]
        stamps = pd.DatetimeIndex(timeline.stamps[start:start + timeline.lengths[index]].view("datetime64[ns]"))
        with warnings.catch_warnings():  # pandas 3 warns about infer_freq's future return type; only None matters
            warnings.simplefilter("ignore")
            freq = pd.infer_freq(stamps)
        if freq is None:
            raise DataError(
                f"{source}: series {timeline.ids[index]!r} has irregular timestamps (steps of "
                f"{', '.join(str(x) for x in stamps.to_series().diff().dropna().drop_duplicates()[:3])}): every series "
                "needs one regular frequency; resample it, or mark missing steps with empty target values"
                + ("; note: pandas had to guess the timestamps' format, so they may be misread (e.g. day-first "
                   "dates like 13/01/2024 read month-first): pass --timestamp-format, e.g. '%d/%m/%Y %I%p'"
                   if guessed else "")
            )


def _calendar_months(timeline: Timeline) -> np.ndarray:
    """(n_series,) bool: midnights stepping by a constant 1, 3 or 12 calendar months, all on the 1st or all on a
    month's last day: what ``pd.infer_freq`` calls MS / ME, QS / QE, YS / YE. False means "ask pd.infer_freq"."""
    stamps = timeline.stamps.view("datetime64[ns]")
    months = stamps.astype("datetime64[M]")
    days = stamps.astype("datetime64[D]")
    month_steps = np.diff(months.astype(np.int64), prepend=0)
    big, small = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    lo, hi = timeline.per_series(np.minimum, month_steps, big), timeline.per_series(np.maximum, month_steps, small)
    constant = (lo == hi) & np.isin(lo, [1, 3, 12])

    def everywhere(flags: np.ndarray) -> np.ndarray:
        return np.logical_and.reduceat(flags, timeline.starts)

    midnight = everywhere(days == stamps)
    first = everywhere(days == months.astype("datetime64[D]"))
    last = everywhere((days + 1).astype("datetime64[M]") != months)
    return constant & midnight & (first | last)


def _regular_in_months(df: pd.DataFrame, id_column: str, timestamp_column: str) -> pd.Series:
    """:func:`_calendar_months` of a table, per series id."""
    timeline = Timeline.of(df, id_column, timestamp_column)
    return pd.Series(_calendar_months(timeline), index=timeline.ids)


def _numeric_column(df: pd.DataFrame, column: str, id_column: str, source: str, what: str,
                    shards: list[tuple[str, int]] | None = None) -> pd.Series:
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
            f"{df[id_column].iloc[row]!r} ({at_row(shards, row)})"
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
