"""Where a table comes from, and its layout: one file, the shards of a folder or a glob, or a saved Hugging Face
dataset; in the long layout (one row per series and step, ``Chronos2Pipeline.predict_df``'s) or the sequence
layout (one row per series, its target and covariates as sequences, as fev tasks and Chronos' published training
corpora store it). Every form is read into one long table, so the checks of :mod:`chronos_distill.data.tables`
and chronos' ``from_data_frame`` see the same thing whatever the user gave.

The sequence layout is detected from the schema (a column of lists) and unrolled with pyarrow's list kernels: its
timestamps are a sequence column, or a start per series (``--timestamp-column`` or ``start``) with a ``freq``
column naming its pandas frequency. A table read from several shards keeps, in ``DataFrame.attrs["shards"]``,
each shard's name and number of long rows, so that a message about a row can name the shard it came from.

pandas, numpy and pyarrow only (``datasets`` for a saved dataset), no torch: a command checks its inputs before it
pays for the training stack.
"""

from __future__ import annotations

import glob
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from chronos_distill.errors import DataError

#: format suffix -> (reader name, what the message calls it); compressed CSV (``.csv.gz``) reads as CSV
FORMATS = {".parquet": "Parquet", ".pq": "Parquet", ".csv": "CSV", ".arrow": "Arrow"}
#: files that make a folder a saved Hugging Face dataset (``datasets.Dataset.save_to_disk``) or a dataset dict
HF_DATASET_FILES = ("dataset_info.json", "state.json")
HF_DATASET_DICT_FILE = "dataset_dict.json"
#: the per-series frequency column of the sequence layout when its timestamps are starts (GluonTS' name)
FREQ_COLUMN = "freq"
START_COLUMN = "start"


@dataclass(frozen=True)
class Source:
    """What a data option names. ``kind``: ``file``, ``shards`` (a folder or a glob of files) or ``hf-dataset``
    (a ``save_to_disk`` folder); ``files``: the file or the shards, sorted (the folder itself for a dataset)."""

    given: str
    kind: str
    files: tuple[Path, ...]

    @property
    def description(self) -> str:
        if self.kind == "shards":
            return f"{self.given} ({len(self.files)} shards)"
        return self.given

    def share(self, rank: int, world: int) -> "Source":
        """The shards process ``rank`` of ``world`` reads under ``torchrun``: every ``world``-th from the
        ``rank``-th (name order), so that the processes read disjoint parts of the corpus."""
        return Source(f"{self.given} [process {rank} of {world}]", self.kind, self.files[rank::world])


def find_source(path: str | Path, role: str = "train_data") -> Source:
    """The file, shards or dataset that ``path`` names; refuses a name that matches nothing, by name."""
    given = str(path)
    expanded = Path(path).expanduser()
    if any(ch in given for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(str(expanded), recursive=True) if Path(p).is_file())
        if not files:
            raise DataError(f"{role}: the pattern {given} matches no file")
        return Source(given, "shards", tuple(_checked_suffixes(files, role, given)))
    if not expanded.exists():
        raise DataError(f"{role} file {expanded} does not exist")
    if expanded.is_dir():
        if (expanded / HF_DATASET_DICT_FILE).is_file():
            splits = sorted(p.name for p in expanded.iterdir() if p.is_dir())
            raise DataError(f"{role}: {expanded} is a saved Hugging Face dataset dict with splits {splits}; pass one "
                            f"split's folder, e.g. {expanded / (splits[0] if splits else 'train')}")
        if all((expanded / name).is_file() for name in HF_DATASET_FILES):
            return Source(given, "hf-dataset", (expanded,))
        files = sorted(p for p in expanded.rglob("*") if p.is_file() and _suffix(p) in FORMATS
                       and not any(part.startswith((".", "_")) for part in p.relative_to(expanded).parts))
        if not files:
            raise DataError(f"{role}: folder {expanded} holds no .parquet, .csv or .arrow file (and is not a saved "
                            "Hugging Face dataset)")
        return Source(given, "shards", tuple(files))
    if _suffix(expanded) not in FORMATS:
        raise DataError(f"{role} file {expanded} has an unsupported extension {expanded.suffix!r}; use .parquet or .csv "
                        "(or a folder or glob of them)")
    return Source(given, "file", (expanded,))


def read_table(path: str | Path | Source, role: str = "train_data", timestamp_column: str = "timestamp") -> pd.DataFrame:
    """Every form of :func:`find_source` as one long table (the sequence layout unrolled); a shard that cannot be
    read, or whose columns differ from the first shard's, is refused by name. ``path`` may be a :class:`Source`
    already found (a process's :meth:`Source.share` of the shards)."""
    source = path if isinstance(path, Source) else find_source(path, role)
    if source.kind == "hf-dataset":
        table = _unrolled(_read_hf_dataset(source.files[0], role), source.given, timestamp_column)
        return table
    frames, shards, first_columns = [], [], None
    for file in source.files:
        # CSV holds no sequences: read by pandas alone, without a round trip through Arrow
        table = _read_csv(file, role, source) if FORMATS[_suffix(file)] == "CSV" else _read_arrow(file, role, source)
        columns = list(table.columns) if isinstance(table, pd.DataFrame) else table.column_names
        if first_columns is None:
            first_columns = columns
        elif sorted(columns) != sorted(first_columns):
            raise DataError(f"{role} shard {file} has columns {columns}, but shard {source.files[0]} has "
                            f"{first_columns}: every shard needs the same columns")
        frame = table if isinstance(table, pd.DataFrame) else _unrolled(table, str(file), timestamp_column)
        frames.append(frame[list(frames[0].columns)] if frames else frame)
        shards.append((str(file), len(frame), FORMATS[_suffix(file)] == "CSV"))
    if len(frames) == 1:
        frames[0].attrs["shards"] = shards  # messages name the file and the line of a bad value
        return frames[0]
    try:
        df = pd.concat(frames, ignore_index=True)
    except (TypeError, ValueError) as exc:  # e.g. timestamps with and without a time zone
        raise DataError(f"{role}: the shards of {source.given} cannot be joined into one table: {exc}") from exc
    df.attrs["shards"] = shards
    return df


def read_columns(path: str | Path, role: str = "train_data", timestamp_column: str = "timestamp") -> list[str]:
    """The columns of the long table :func:`read_table` would return, from the first shard's schema or header
    alone (a sequence layout's start column becomes the timestamp column, its ``freq`` column goes)."""
    source = find_source(path, role)
    first = source.files[0]
    try:
        if source.kind == "hf-dataset":
            schema = _read_hf_dataset(first, role).schema
        elif FORMATS[_suffix(first)] == "CSV":
            return list(pd.read_csv(first, nrows=0).columns)
        elif FORMATS[_suffix(first)] == "Arrow":
            schema = _read_arrow(first, role, source).schema
        else:
            import pyarrow.parquet as pq

            schema = pq.read_schema(first)
    except DataError:
        raise
    except Exception:  # an unreadable file: read_table says why, with the reader's own message
        read_table(path, role, timestamp_column)
        raise
    names = list(schema.names)
    if any(_is_list(schema.field(n).type) for n in names):  # the sequence layout
        timestamps = _timestamp_source(names, timestamp_column)
        names = [timestamp_column if n == timestamps else n for n in names if n != FREQ_COLUMN]
    return names


# -- reading ------------------------------------------------------------------------------------------------

def _read_arrow(file: Path, role: str, source: Source):
    """A Parquet or Arrow file as a pyarrow Table, its reader's error as one line naming the file (and that it is
    a shard)."""
    import pyarrow as pa

    kind = FORMATS[_suffix(file)]
    what = f"{role} shard" if source.kind == "shards" else f"{role} file"
    try:
        if kind == "Parquet":
            import pyarrow.parquet as pq

            return pq.read_table(file)
        import pyarrow.ipc as ipc

        with pa.memory_map(str(file)) as mapped:
            try:
                return ipc.open_file(mapped).read_all()
            except pa.ArrowInvalid:  # the stream format (what datasets writes)
                mapped.seek(0)
                return ipc.open_stream(mapped).read_all()
    except (pa.ArrowException, OSError) as exc:  # pyarrow's errors all derive from ArrowException
        raise DataError(f"{what} {file} could not be read as {kind}: {type(exc).__name__}: {exc}") from exc


def _read_csv(file: Path, role: str, source: Source) -> pd.DataFrame:
    what = f"{role} shard" if source.kind == "shards" else f"{role} file"
    try:
        return pd.read_csv(file)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DataError(f"{what} {file} could not be read as CSV: {type(exc).__name__}: {exc}") from exc


def _read_hf_dataset(folder: Path, role: str):
    """A ``save_to_disk`` folder's Arrow table (memory-mapped by ``datasets``)."""
    try:
        import datasets
    except ImportError as exc:
        raise DataError(f"{role}: {folder} is a saved Hugging Face dataset; reading it needs `datasets` "
                        "(pip install 'chronos-distill[fev]')") from exc
    try:
        dataset = datasets.load_from_disk(str(folder))
    except (OSError, ValueError, KeyError) as exc:  # FileNotFoundError, a damaged state.json or arrow file
        raise DataError(f"{role}: the Hugging Face dataset {folder} could not be loaded: {type(exc).__name__}: {exc}") from exc
    return dataset.data.table


def _suffix(path: Path) -> str:
    """The format suffix, past a compression one (``sales.csv.gz`` is ``.csv``)."""
    suffixes = [s.lower() for s in path.suffixes]
    compressed = len(suffixes) > 1 and suffixes[-1] in (".gz", ".bz2", ".zip", ".xz", ".zst")
    return suffixes[-2] if compressed else path.suffix.lower()


def _checked_suffixes(files: list[Path], role: str, given: str) -> list[Path]:
    unsupported = [f for f in files if _suffix(f) not in FORMATS]
    if unsupported:
        raise DataError(f"{role}: the pattern {given} matches {unsupported[0]}, which is not .parquet, .csv or .arrow")
    return files


# -- the sequence layout ------------------------------------------------------------------------------------

def _is_list(arrow_type) -> bool:
    import pyarrow as pa

    return pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type) or pa.types.is_fixed_size_list(arrow_type)


def _timestamp_source(names: list[str], timestamp_column: str) -> str | None:
    """The column a sequence layout's timestamps come from: the timestamp column, else ``start``."""
    if timestamp_column in names:
        return timestamp_column
    return START_COLUMN if START_COLUMN in names else None


def _unrolled(table, where: str, timestamp_column: str) -> pd.DataFrame:
    """A pyarrow Table as a long DataFrame: as it is in the long layout; in the sequence layout (some column holds
    lists) one row per series and step, scalar columns repeated along the series."""
    import pyarrow as pa
    import pyarrow.compute as pc

    list_columns = [f.name for f in table.schema if _is_list(f.type)]
    if not list_columns:
        return table.to_pandas()
    names = table.column_names
    timestamps = _timestamp_source(names, timestamp_column)
    if timestamps is None:
        raise DataError(f"{where}: a table in the sequence layout (column(s) {list_columns} hold sequences) needs a "
                        f"timestamp column {timestamp_column!r} (a sequence, or a start per series) or a "
                        f"{START_COLUMN!r} column; set --timestamp-column to name yours")
    sequences = [c for c in list_columns if c != timestamps]
    if not sequences:
        raise DataError(f"{where}: only the timestamp column {timestamps!r} holds sequences; in the sequence layout "
                        "the target (and the covariates) are sequences too, one value per timestamp")
    lengths = pc.list_value_length(table[sequences[0]]).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    for column in list_columns:
        other = pc.list_value_length(table[column]).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        wrong = np.flatnonzero(other != lengths)
        if len(wrong):
            row = int(wrong[0])
            raise DataError(f"{where}: row {row} (series {table.column(0)[row].as_py()!r}) has {other[row]} values in "
                            f"column {column!r} but {lengths[row]} in {sequences[0]!r}; every sequence of a series "
                            "needs one value per time step")
    rows = np.repeat(np.arange(table.num_rows), lengths)
    long: dict[str, object] = {}
    # the freq column describes the timestamps, it is no covariate: it goes
    for name in names:
        if name in list_columns:
            long[name] = pc.list_flatten(table[name]).to_numpy(zero_copy_only=False)
        elif name not in (timestamps, FREQ_COLUMN):
            long[name] = table[name].take(pa.array(rows)).to_numpy(zero_copy_only=False)
    if timestamps in list_columns:
        long[timestamp_column] = long.pop(timestamps)
    else:
        long[timestamp_column] = _steps_from_starts(table, timestamps, lengths, where)
    order = [timestamp_column if n == timestamps else n for n in names if n != FREQ_COLUMN]
    return pd.DataFrame({name: long[name] for name in order})


def _steps_from_starts(table, start_column: str, lengths: np.ndarray, where: str) -> np.ndarray:
    """Every step's timestamp from each series' start and its ``freq`` (a fixed step vectorised; calendar
    frequencies, whose steps differ in length, by ``pd.date_range`` per series: linear either way)."""
    if FREQ_COLUMN not in table.column_names:
        raise DataError(f"{where}: the sequence layout with one start per series ({start_column!r}) needs a "
                        f"{FREQ_COLUMN!r} column with each series' pandas frequency (e.g. 'MS', 'h'), or a timestamp "
                        "sequence per series")
    starts = pd.to_datetime(table[start_column].to_pandas())
    freqs = table[FREQ_COLUMN].to_pandas().astype(str)
    out = np.empty(int(lengths.sum()), dtype="datetime64[ns]")
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    for freq in pd.unique(freqs):
        try:
            offset = pd.tseries.frequencies.to_offset(freq)
        except ValueError as exc:
            row = int(np.flatnonzero(freqs.to_numpy() == freq)[0])
            raise DataError(f"{where}: row {row} has {FREQ_COLUMN} {freq!r}, which is not a pandas frequency "
                            "(e.g. 'MS', 'D', 'h')") from exc
        members = np.flatnonzero(freqs.to_numpy() == freq)
        if isinstance(offset, pd.offsets.Tick):  # a fixed step: start + k * step for all at once
            step = np.timedelta64(offset.nanos, "ns")
            for_rows = np.repeat(members, lengths[members])
            within = np.arange(len(for_rows)) - np.repeat(np.cumsum(lengths[members]) - lengths[members], lengths[members])
            positions = np.repeat(offsets[members], lengths[members]) + within
            out[positions] = starts.to_numpy()[for_rows].astype("datetime64[ns]") + within * step
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for row in members:
                    out[offsets[row]:offsets[row + 1]] = pd.date_range(starts.iloc[row], periods=int(lengths[row]),
                                                                         freq=offset).to_numpy()
    return out
