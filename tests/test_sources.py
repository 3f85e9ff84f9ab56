"""Every input form (a file, shards in a folder or a glob, the sequence layout, a saved Hugging Face dataset) is read
into the same series as the equivalent single long file, and a bad shard is named in one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from chronos_distill import DataError
from chronos_distill.data.series import load_series
from chronos_distill.data.sources import find_source, read_columns, read_table

HORIZON = 4


def long_table(freq: str, n_series: int = 7, seed: int = 0) -> pd.DataFrame:
    """Series of different lengths and starts, a target with gaps and a past covariate."""
    rng = np.random.default_rng(seed)
    parts = []
    for i in range(n_series):
        n = 20 + 3 * i
        target = rng.normal(size=n)
        target[rng.random(n) < 0.1] = np.nan
        parts.append(pd.DataFrame({"item_id": f"s{i:02d}",
                                   "timestamp": pd.date_range(pd.Timestamp("2001-01-31") + pd.Timedelta(days=40 * i),
                                                              periods=n, freq=freq),
                                   "target": target, "price": rng.normal(size=n)}))
    return pd.concat(parts, ignore_index=True)


def as_sequences(df: pd.DataFrame, starts: bool = False, freq: str | None = None) -> pa.Table:
    """The sequence layout: one row per series; timestamps as a sequence, or a start and a freq column."""
    groups = list(df.groupby("item_id", sort=False))
    columns = {"item_id": [k for k, _ in groups]}
    if starts:
        columns["start"] = [g["timestamp"].iloc[0] for _, g in groups]
        columns["freq"] = [freq] * len(groups)
    else:
        columns["timestamp"] = [list(g["timestamp"]) for _, g in groups]
    columns["target"] = [g["target"].tolist() for _, g in groups]
    columns["price"] = [g["price"].tolist() for _, g in groups]
    return pa.table(columns)


def write_form(form: str, df: pd.DataFrame, folder, freq: str) -> str:
    """``df`` written as ``form``; returns what a user would pass as --train-data."""
    ids = df["item_id"].unique()
    shards = [df[df["item_id"].isin(part)] for part in np.array_split(ids, 3)]
    if form == "folder of Parquet shards":
        (folder / "corpus").mkdir()
        for k, shard in enumerate(shards):
            shard.to_parquet(folder / "corpus" / f"part-{k:03d}.parquet", index=False)
        (folder / "corpus" / "_SUCCESS").write_text("")  # a writer's marker file is not a shard
        return str(folder / "corpus")
    if form == "glob of CSV shards":
        for k, shard in enumerate(shards):
            shard.to_csv(folder / f"part-{k}.csv", index=False)
        return str(folder / "part-*.csv")
    if form == "sequence layout, timestamp sequences":
        pq.write_table(as_sequences(df), folder / "seq.parquet")
        return str(folder / "seq.parquet")
    if form == "sequence layout, starts and freq":
        pq.write_table(as_sequences(df, starts=True, freq=freq), folder / "starts.parquet")
        return str(folder / "starts.parquet")
    if form == "sequence layout in shards":
        (folder / "seq").mkdir()
        for k, shard in enumerate(shards):
            pq.write_table(as_sequences(shard), folder / "seq" / f"part-{k}.parquet")
        return str(folder / "seq")
    if form == "saved Hugging Face dataset":
        import datasets

        datasets.Dataset.from_pandas(as_sequences(df).to_pandas(), preserve_index=False).save_to_disk(str(folder / "hf"))
        return str(folder / "hf")
    raise AssertionError(form)


FORMS = ["folder of Parquet shards", "glob of CSV shards", "sequence layout, timestamp sequences",
         "sequence layout, starts and freq", "sequence layout in shards", "saved Hugging Face dataset"]


@pytest.mark.parametrize("freq", ["ME", "h"])  # a calendar frequency (uneven steps) and a fixed one
@pytest.mark.parametrize("form", FORMS)
def test_every_input_form_gives_the_series_of_the_long_file(tmp_path, form, freq):
    df = long_table(freq)
    df.to_parquet(tmp_path / "long.parquet", index=False)
    expected = load_series(str(tmp_path / "long.parquet"), HORIZON, target=["target"])
    given = write_form(form, df, tmp_path, freq)
    got = load_series(given, HORIZON, target=["target"])
    assert got.ids == expected.ids
    assert got.columns == expected.columns == {"target": ["target"], "past_covariates": ["price"],
                                               "known_covariates": []}
    assert got.frequency == expected.frequency
    for mine, theirs in zip(got.inputs, expected.inputs, strict=True):
        assert mine["context"].shape == theirs["context"].shape  # target and covariate rows, every step
        assert np.array_equal(mine["context"].numpy(), theirs["context"].numpy(), equal_nan=True)
    # the long table itself, timestamps included (the series above hold values only)
    table = read_table(given)
    table["timestamp"] = pd.to_datetime(table["timestamp"])  # CSV shards hold them as text
    pd.testing.assert_frame_equal(table, df, check_dtype=False)
    # what preflight checks the options against, from the schema alone, is the long table's columns
    assert read_columns(given) == list(table.columns) == ["item_id", "timestamp", "target", "price"]


def test_shards_are_read_in_name_order_and_the_source_says_how_many(tmp_path):
    df = long_table("ME")
    given = write_form("folder of Parquet shards", df, tmp_path, "ME")
    assert find_source(given).description == f"{given} (3 shards)"
    table = read_table(given)
    pd.testing.assert_frame_equal(table, df.reset_index(drop=True), check_dtype=False)
    parts = np.array_split(df["item_id"].unique(), 3)
    assert [entry[1] for entry in table.attrs["shards"]] == [int(df["item_id"].isin(p).sum()) for p in parts]


def _shards(tmp_path, n=4) -> tuple[pd.DataFrame, list]:
    df = long_table("ME", n_series=8)
    ids = df["item_id"].unique()
    parts = [df[df["item_id"].isin(p)].copy() for p in np.array_split(ids, n)]
    (tmp_path / "corpus").mkdir()
    return df, parts


def test_a_non_numeric_target_names_its_shard_series_and_row(tmp_path):
    _, parts = _shards(tmp_path)
    bad = parts[2]
    bad["target"] = bad["target"].astype(object)
    bad.iloc[5, bad.columns.get_loc("target")] = "n/a?"
    bad.iloc[2, bad.columns.get_loc("target")] = None  # an empty cell beside it: still the checks' message
    for k, part in enumerate(parts):
        part.to_csv(tmp_path / "corpus" / f"part-{k}.csv", index=False)
    with pytest.raises(DataError) as caught:
        load_series(str(tmp_path / "corpus"), HORIZON, target=["target"])
    message = str(caught.value)
    assert "\n" not in message
    assert f"shard {tmp_path / 'corpus' / 'part-2.csv'}, line 7" in message  # its header is line 1
    assert repr(bad["item_id"].iloc[5]) in message and "'n/a?'" in message


def test_an_unreadable_shard_is_named(tmp_path):
    _, parts = _shards(tmp_path)
    for k, part in enumerate(parts):
        part.to_parquet(tmp_path / "corpus" / f"part-{k}.parquet", index=False)
    (tmp_path / "corpus" / "part-1.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match=r"train_data shard .*part-1\.parquet could not be read as Parquet"):
        load_series(str(tmp_path / "corpus"), HORIZON, target=["target"])


def test_a_shard_of_another_schema_is_named_with_both_column_lists(tmp_path):
    _, parts = _shards(tmp_path)
    parts[3] = parts[3].rename(columns={"price": "cost"})
    for k, part in enumerate(parts):
        part.to_parquet(tmp_path / "corpus" / f"part-{k}.parquet", index=False)
    with pytest.raises(DataError, match=r"shard .*part-3\.parquet has columns \['item_id', 'timestamp', 'target', "
                                        r"'cost'\], but shard .*part-0\.parquet has .*'price'"):
        read_table(str(tmp_path / "corpus"))


@pytest.mark.parametrize("case, expected", [
    ("no match", r"the pattern .*nothing-\*\.parquet matches no file"),
    ("empty folder", r"folder .*empty holds no \.parquet, \.csv or \.arrow file"),
    ("dataset dict", r"saved Hugging Face dataset dict with splits \['test', 'train'\]; pass one split's folder"),
    ("sequences of unequal length", r"row 1 \(series 'b'\) has 2 values in column 'price' but 3 in 'target'"),
    ("start without freq", r"one start per series \('start'\) needs a 'freq' column"),
])
def test_forms_that_cannot_be_read_say_why_in_one_line(tmp_path, case, expected):
    if case == "no match":
        given = str(tmp_path / "nothing-*.parquet")
    elif case == "empty folder":
        (tmp_path / "empty").mkdir()
        given = str(tmp_path / "empty")
    elif case == "dataset dict":
        for split in ("train", "test"):
            (tmp_path / "dd" / split).mkdir(parents=True)
        (tmp_path / "dd" / "dataset_dict.json").write_text('{"splits": ["train", "test"]}')
        given = str(tmp_path / "dd")
    elif case == "sequences of unequal length":
        pq.write_table(pa.table({"item_id": ["a", "b"], "timestamp": [list(pd.date_range("2000", periods=3))] * 2,
                                 "target": [[1.0, 2.0, 3.0]] * 2, "price": [[1.0, 2.0, 3.0], [1.0, 2.0]]}),
                       tmp_path / "seq.parquet")
        given = str(tmp_path / "seq.parquet")
    else:
        pq.write_table(pa.table({"item_id": ["a"], "start": [pd.Timestamp("2000-01-01")], "target": [[1.0, 2.0]]}),
                       tmp_path / "seq.parquet")
        given = str(tmp_path / "seq.parquet")
    with pytest.raises(DataError, match=expected) as caught:
        read_table(given)
    assert "\n" not in str(caught.value)
