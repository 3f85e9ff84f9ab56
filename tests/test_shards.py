"""A sharded corpus: read whole (today's path and draws, pinned) or streamed one shard at a time
(``--batches-per-shard``), checked before the first step, seeded and exactly resumable."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import PREDICTION_LENGTH, TINY_STUDENT, straight_and_resumed
from safetensors.torch import load_file

import chronos_distill.distillation.build as build_module
from chronos_distill import ConfigError, DataError, distill
from chronos_distill.data.shards import shard_schedule

FAST = dict(batch_size=8, learning_rate=3e-3, logging_steps=1, prediction_length=PREDICTION_LENGTH, **TINY_STUDENT)


def write_shards(table, folder, n: int = 3, fmt: str = "parquet") -> list:
    folder.mkdir()
    paths = []
    for k, ids in enumerate(np.array_split(table["item_id"].unique(), n)):
        path = folder / f"part-{k}.{fmt}"
        part = table[table["item_id"].isin(ids)]
        part.to_parquet(path, index=False) if fmt == "parquet" else part.to_csv(path, index=False)
        paths.append(path)
    return paths


def test_shards_read_whole_train_exactly_as_the_single_file(teacher_dir, table, tmp_path):
    write_shards(table, tmp_path / "corpus")
    table.to_parquet(tmp_path / "all.parquet", index=False)
    options = dict(teacher=teacher_dir, max_steps=3, save_steps=3, **FAST)
    whole = distill(train_data=str(tmp_path / "all.parquet"), output=str(tmp_path / "a"), **options)
    sharded = distill(train_data=str(tmp_path / "corpus"), output=str(tmp_path / "b"), **options)
    expected, got = (load_file(r.model_dir / "model.safetensors") for r in (whole, sharded))
    assert all(torch.equal(expected[k], got[k]) for k in expected)  # the same series, the same draws
    assert sharded.record["data"]["train"]["n_series"] == table["item_id"].nunique()


def test_the_shard_schedule_is_seeded_and_covers_every_shard_each_pass():
    for seed in (0, 1):
        steps = [shard_schedule(4, 3, seed, s) for s in range(24)]
        blocks = steps[::3]
        assert all(steps[i] == steps[i - i % 3] for i in range(24))  # 3 consecutive steps per shard
        assert sorted(blocks[:4]) == sorted(blocks[4:]) == [0, 1, 2, 3]  # each pass visits every shard once
    assert [shard_schedule(4, 3, 0, s) for s in range(24)] != [shard_schedule(4, 3, 1, s) for s in range(24)]


def test_streaming_reads_one_shard_at_a_time_in_its_schedule_and_resumes_exactly(teacher_dir, table, tmp_path,
                                                                               monkeypatch):
    shards = write_shards(table, tmp_path / "corpus")
    reads = []
    original = build_module.load_table
    monkeypatch.setattr(build_module, "load_table", lambda cfg, data, role, min_past: reads.append(str(data))
                        or original(cfg, data, role, min_past))
    options = dict(teacher=teacher_dir, train_data=str(tmp_path / "corpus"), batches_per_shard=2, save_steps=3,
                   seed=5, **FAST)
    # stopped at step 3, in the middle of a shard's two batches: the resumed run reads that shard again
    straight, resumed = straight_and_resumed(options, tmp_path, steps=6, stop=3)
    schedule = [str(shards[shard_schedule(3, 2, 5, s)]) for s in range(0, 6, 2)]
    # the straight run: every shard checked once in order, then one read per block of two steps (one pass)
    assert reads[:6] == [str(p) for p in shards] + schedule
    # the resumed run: checked again, then on from step 3, in the second block's shard
    assert reads[-5:] == [str(p) for p in shards] + schedule[1:]
    assert straight.record["data"]["train"]["n_series"] == table["item_id"].nunique()
    assert straight.record["data"]["train"]["n_shards"] == 3


@pytest.mark.parametrize("case, error, expected", [
    ("one file", DataError, r"--batches-per-shard streams a corpus shard by shard, and train_data .*all\.parquet is one file"),
    ("with a teacher cache", ConfigError, r"--batches-per-shard holds one shard in memory, and --teacher-cache needs"),
    ("a series in two shards", DataError, r"series 's0\d\d' is in shard .*part-0\.parquet and in shard .*part-1\.parquet"),
    ("a bad third shard", DataError, r"part-2\.csv: target column 'target' has a non-numeric value 'abc' in series .* \(.*part-2\.csv, line 6\)"),
])
def test_streaming_refuses_what_it_cannot_stream_before_training(teacher_dir, table, tmp_path, case, error, expected):
    options = dict(teacher=teacher_dir, batches_per_shard=2, max_steps=2, output=str(tmp_path / "out"), **FAST)
    if case == "one file":
        table.to_parquet(tmp_path / "all.parquet", index=False)
        options["train_data"] = str(tmp_path / "all.parquet")
    elif case == "with a teacher cache":
        write_shards(table, tmp_path / "corpus")
        options.update(train_data=str(tmp_path / "corpus"), teacher_cache=str(tmp_path / "cache"))
    elif case == "a series in two shards":
        shards = write_shards(table, tmp_path / "corpus")
        first = table[table["item_id"] == table["item_id"].iloc[0]]
        import pandas as pd

        pd.concat([pd.read_parquet(shards[1]), first]).to_parquet(shards[1], index=False)
        options["train_data"] = str(tmp_path / "corpus")
    else:
        shards = write_shards(table, tmp_path / "corpus", fmt="csv")
        import pandas as pd

        bad = pd.read_csv(shards[2]).astype({"target": object})
        bad.loc[4, "target"] = "abc"
        bad.to_csv(shards[2], index=False)
        options["train_data"] = str(tmp_path / "corpus")
    with pytest.raises(error, match=expected) as caught:
        distill(**options)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "out").exists()  # refused before the output folder is touched


def test_a_corpus_that_does_not_fit_in_memory_is_one_line_naming_the_option(teacher_dir, table, tmp_path, monkeypatch):
    write_shards(table, tmp_path / "corpus")

    def no_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 1.49 GiB for an array with shape (200000000,) and data type int64")

    monkeypatch.setattr(build_module, "load_series", no_memory)
    with pytest.raises(DataError, match=r"train_data .*corpus does not fit in memory; stream it one shard at a time "
                                        r"with --batches-per-shard") as caught:
        distill(teacher=teacher_dir, train_data=str(tmp_path / "corpus"), max_steps=1, output=str(tmp_path / "out"),
                **FAST)
    assert "\n" not in str(caught.value) and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_under_torchrun_each_process_reads_only_its_own_shards_and_the_record_counts_them_all(teacher_dir, table,
                                                                                             tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    write_shards(table, tmp_path / "corpus", n=4)
    worker = Path(__file__).with_name("ddp_shards_worker.py")
    trace = tmp_path / "trace"
    trace.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(worker.parent)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(worker),
           teacher_dir, str(tmp_path / "corpus"), str(tmp_path / "out"), str(trace)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    mine = {0: {"part-0.parquet", "part-2.parquet"}, 1: {"part-1.parquet", "part-3.parquet"}}
    for rank, shards in mine.items():
        streamed = (trace / f"streamed-rank{rank}.txt").read_text().split()
        assert set(streamed) == shards  # checked, then streamed: this process's shards, one at a time
        assert (trace / f"whole-rank{rank}.txt").read_text().split() == [",".join(sorted(shards))]  # read as one table
    records = {}
    for line in done.stdout.splitlines():
        if line.startswith("RECORD "):
            records.update(json.loads(line.split(" ", 1)[1]))
    lengths = table.groupby("item_id").size()
    for run in ("streamed", "whole"):
        summary = records[run]
        assert summary["n_series"] == table["item_id"].nunique() and summary["n_processes"] == 2
        assert summary["n_observations"] == len(table) and summary["max_length"] == lengths.max()
    assert records["streamed"]["n_shards"] == 4


def test_a_series_in_two_processes_shards_is_refused_naming_both():
    from chronos_distill.data.shards import join_process_summaries

    summary = {"n_series": 2, "n_observations": 20, "min_length": 8, "max_length": 12, "n_shards": 1}
    parts = [{"summary": summary, "item_shards": {"a": "part-0.parquet", "b": "part-0.parquet"}},
             {"summary": {**summary, "min_length": 5, "max_length": 15}, "item_shards": {"c": "part-1.parquet",
                                                                                          "d": "part-1.parquet"}}]
    joined = join_process_summaries(parts, "corpus/")
    assert (joined["n_series"], joined["n_observations"], joined["n_shards"]) == (4, 40, 2)
    assert (joined["min_length"], joined["max_length"], joined["n_processes"]) == (5, 15, 2)
    parts[1]["item_shards"]["b"] = "part-1.parquet"
    with pytest.raises(DataError, match=r"series 'b' is in shard part-0.parquet \(process 0\) and in shard "
                                        r"part-1.parquet \(process 1\)"):
        join_process_summaries(parts, "corpus/")
    whole = [{"summary": summary, "item_shards": {"a": None}}, {"summary": summary, "item_shards": {"a": None}}]
    with pytest.raises(DataError, match="the shards of process 0 and of process 1"):
        join_process_summaries(whole, "corpus/")


def test_streaming_more_processes_than_shards_is_one_line(teacher_dir, table, tmp_path, monkeypatch):
    write_shards(table, tmp_path / "corpus", n=2)
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(DataError, match="fewer shards than the 3 processes.*at least 3 shards"):
        distill(teacher=teacher_dir, train_data=str(tmp_path / "corpus"), output=str(tmp_path / "o"),
                batches_per_shard=1, max_steps=2, **FAST)
