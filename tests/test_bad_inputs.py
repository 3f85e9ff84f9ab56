"""Bad inputs are refused before training, with a message that names the culprit and no traceback.

The CLI cases run ``python -m chronos_distill distill ...`` in subprocesses. Each one pays a few seconds of
imports (torch, transformers, chronos), so they are all started at once by one module-scoped fixture and
each test then waits for its own process. Everything else is checked in-process through ``distill()``,
``DistillConfig`` and ``load_series``. No case reaches a training step.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import chronos_distill
from chronos_distill import CheckpointError, ConfigError, DataError, DistillConfig, DistillError
from chronos_distill.data.series import drop_short_series, load_series

PREDICTION_LENGTH = 12
#: Small enough that, should a check fail to fire, the accidental run is still short.
TINY = dict(student_d_model=32, student_num_heads=2, student_d_ff=64, max_steps=1, batch_size=8)
CLI_TIMEOUT_S = 180


# ----------------------------------------------------------------------------------------------------------
# CLI, in subprocesses
# ----------------------------------------------------------------------------------------------------------
class CliRun:
    """A started ``chronos-distill distill`` process; ``result()`` waits for it once."""

    def __init__(self, args: list[str]):
        self.args = args
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "chronos_distill", "distill", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        self._done: tuple[int, str, str] | None = None

    def result(self) -> tuple[int, str, str]:
        if self._done is None:
            try:
                out, err = self._proc.communicate(timeout=CLI_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                out, err = self._proc.communicate()
                pytest.fail(f"chronos-distill distill {self.args} did not finish in {CLI_TIMEOUT_S} s:\n{err[-3000:]}")
            self._done = (self._proc.returncode, out, err)
        return self._done

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.communicate()


@pytest.fixture(scope="module")
def cli(tmp_path_factory, teacher_dir, table):
    """Prepare the inputs of every CLI case and start all the processes at once."""
    root = tmp_path_factory.mktemp("cli")
    good_csv = root / "train.csv"
    table.to_csv(good_csv, index=False)

    def common(name: str, **flags) -> list[str]:
        options = {"teacher": teacher_dir, "train-data": str(good_csv),
                   "prediction-length": str(PREDICTION_LENGTH), "output": str(root / "out" / name),
                   "max-steps": "1", "batch-size": "8", "student-d-model": "32", "student-num-heads": "2"}
        options.update({k.replace("_", "-"): v for k, v in flags.items()})
        return [item for key, value in options.items() for item in (f"--{key}", value)]

    inputs: dict[str, object] = {}

    missing = root / "does_not_exist" / "train.csv"
    inputs["missing_train"] = missing

    no_target = root / "no_target.csv"
    table.rename(columns={"target": "value"}).to_csv(no_target, index=False)

    non_numeric = root / "non_numeric.csv"
    bad = table.copy()
    bad["target"] = bad["target"].astype(object)
    row = int(np.flatnonzero(bad["item_id"].to_numpy() == "s003")[7])
    bad.loc[row, "target"] = "abc"
    bad.to_csv(non_numeric, index=False)
    inputs["non_numeric"] = non_numeric

    shards = root / "shards"  # a corpus of four shards, the third with a non-numeric target
    shards.mkdir()
    for k, ids in enumerate(np.array_split(table["item_id"].unique(), 4)):
        part = table[table["item_id"].isin(ids)].copy()
        if k == 2:
            part["target"] = part["target"].astype(object)
            part.iloc[3, part.columns.get_loc("target")] = "abc"
        part.to_csv(shards / f"part-{k}.csv", index=False)
    inputs["bad_shard"] = shards / "part-2.csv"

    too_short = root / "too_short.csv"
    pd.DataFrame({
        "item_id": "lonely_series",
        "timestamp": pd.date_range("2024-01-01", periods=10, freq="h"),
        "target": np.arange(10.0),
    }).to_csv(too_short, index=False)

    bert = root / "bert_teacher"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
    inputs["bert"] = bert

    empty = root / "empty_teacher"
    empty.mkdir()
    inputs["empty"] = empty

    argv = {
        "missing_train": common("missing_train", train_data=str(missing)),
        "missing_column": common("missing_column", train_data=str(no_target)),
        "non_numeric": common("non_numeric", train_data=str(non_numeric)),
        "too_short": common("too_short", train_data=str(too_short)),
        "bad_shard": common("bad_shard", train_data=str(shards)),
        "bert_teacher": common("bert_teacher", teacher=str(bert)),
        "empty_teacher": common("empty_teacher", teacher=str(empty)),
        "alpha": common("alpha", alpha="1.5"),
        "weights_sum": common("weights_sum", alpha="0.6", feature_weight="0.3", attention_weight="0.2"),
        "layer_map": common("layer_map", feature_weight="0.2", layer_map="0:5"),
    }
    runs = {name: CliRun(args) for name, args in argv.items()}
    yield runs, inputs, root
    for run in runs.values():
        run.stop()


def _refused(cli, name: str) -> str:
    """Wait for case ``name``; check exit status 2, the error prefix and no traceback; return stderr."""
    runs, _, root = cli
    code, out, err = runs[name].result()
    assert code == 2, f"exit status {code}, expected 2\nstdout:\n{out[-2000:]}\nstderr:\n{err[-4000:]}"
    assert "Traceback" not in err, err[-4000:]
    assert "chronos-distill: error:" in err, err[-4000:]
    error_lines = [line for line in err.splitlines() if line.startswith("chronos-distill: error:")]
    assert len(error_lines) == 1, err[-4000:]
    assert "student exported" not in out
    # every check runs before the output folder is touched: a refused run writes nothing
    assert not (root / "out" / name).exists(), f"refused run {name} created its output folder"
    return error_lines[0]


def test_cli_missing_train_file(cli):
    message = _refused(cli, "missing_train")
    _, inputs, _ = cli
    assert str(inputs["missing_train"]) in message
    assert "does not exist" in message


def test_cli_missing_target_column(cli):
    message = _refused(cli, "missing_column")
    assert "missing column" in message
    assert "'target'" in message
    assert "--target" in message  # says which flag to set


def test_cli_non_numeric_target(cli):
    message = _refused(cli, "non_numeric")
    lines = Path(cli[1]["non_numeric"]).read_text().splitlines()
    line = next(n for n, text in enumerate(lines, start=1) if ",abc" in text)  # as an editor counts
    assert f"non_numeric.csv, line {line})" in message
    assert "'target'" in message
    assert "'abc'" in message
    assert "'s003'" in message
    assert "non-numeric" in message


def test_cli_bad_shard_is_named_before_training(cli):
    line = _refused(cli, "bad_shard")
    assert f"shard {cli[1]['bad_shard']}, line 5" in line and "non-numeric value 'abc'" in line


def test_cli_series_too_short_for_horizon(cli):
    message = _refused(cli, "too_short")
    assert "'lonely_series'" in message
    assert "10 steps" in message
    assert "prediction_length 12" in message


@pytest.mark.parametrize("case", ["bert_teacher", "empty_teacher"])
def test_cli_teacher_folder_not_chronos2(cli, case):
    message = _refused(cli, case)
    _, inputs, _ = cli
    folder = inputs["bert" if case == "bert_teacher" else "empty"]
    assert str(folder) in message
    assert "is not a Chronos-2 checkpoint" in message
    if case == "bert_teacher":
        assert "BertModel" in message
    else:
        assert "no config.json" in message


def test_cli_alpha_out_of_range(cli):
    message = _refused(cli, "alpha")
    assert "`alpha`" in message and "--alpha" in message
    assert "[0, 1]" in message
    assert "1.5" in message


def test_cli_hybrid_weights_summing_past_one(cli):
    message = _refused(cli, "weights_sum")
    assert "the loss weights sum to 1.1 (alpha 0.6 + feature_weight 0.3 + attention_weight 0.2), more than 1" in message


def test_cli_layer_map_beyond_the_teacher(cli):
    message = _refused(cli, "layer_map")
    assert "layer_map pair 0:5" in message and "teacher has blocks 0..1" in message


# ----------------------------------------------------------------------------------------------------------
# In-process: data
# ----------------------------------------------------------------------------------------------------------
def _load(data, **kwargs):
    return load_series(data, PREDICTION_LENGTH, target=["target"], **kwargs)


def test_garbled_parquet(tmp_path):
    path = tmp_path / "x.parquet"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(DataError, match=r"x\.parquet could not be read as Parquet"):
        _load(str(path))


def test_unsupported_extension(tmp_path, table):
    path = tmp_path / "train.txt"
    table.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"train\.txt has an unsupported extension '\.txt'; use \.parquet or \.csv"):
        _load(str(path))


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinite_target_names_series(table, value):
    df = table.copy()
    row = int(np.flatnonzero(df["item_id"].to_numpy() == "s005")[20])
    df.loc[row, "target"] = value
    with pytest.raises(DataError, match=rf"column 'target' has an infinite value {value} in series 's005' \(row {row}\)"):
        _load(df)


def test_infinite_target_in_csv_names_series(tmp_path, table):
    df = table.copy()
    df["target"] = df["target"].astype(object)
    row = int(np.flatnonzero(df["item_id"].to_numpy() == "s010")[3])
    df.loc[row, "target"] = "inf"  # pandas' CSV reader parses this as a float infinity
    path = tmp_path / "train.csv"
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"train\.csv: column 'target' has an infinite value inf in series 's010'"):
        _load(str(path))


def test_duplicate_timestamps_name_series(table):
    df = table.copy()
    rows = np.flatnonzero(df["item_id"].to_numpy() == "s002")
    df.loc[rows[11], "timestamp"] = df.loc[rows[10], "timestamp"]
    with pytest.raises(DataError, match=r"series 's002' has more than one row for timestamp 2024-01-01 10:00:00"):
        _load(df)


def test_only_some_series_too_short_are_skipped_with_warning(table, caplog):
    keep = ["s000", "s001", "s002"]
    df = table[table["item_id"].isin(keep)]
    short = pd.DataFrame({
        "item_id": np.repeat(["tiny_a", "tiny_b"], [5, 20]),
        "timestamp": np.concatenate([pd.date_range("2024-01-01", periods=n, freq="h") for n in (5, 20)]),
        "target": np.arange(25.0),
    })
    df = pd.concat([short.iloc[:5], df, short.iloc[5:]], ignore_index=True)
    series = _load(df)
    assert series.ids == ["tiny_a", *keep, "tiny_b"]

    minimum = 2 * PREDICTION_LENGTH
    with caplog.at_level(logging.WARNING, logger="chronos_distill"):
        kept = drop_short_series(series, minimum, "train_data", "min_past 12 + prediction_length 12")
    assert kept.ids == keep
    assert [int(x["context"].shape[-1]) for x in kept.inputs] == [160, 160, 160]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "chronos_distill.data.series"]
    assert len(warnings) == 1, caplog.text
    text = warnings[0].getMessage()
    assert "skipping 2 of 5 series shorter than 24 steps" in text
    assert "'tiny_a' (5 steps)" in text and "'tiny_b' (20 steps)" in text
    assert not any(k in text for k in keep)


def test_distill_skips_some_short_series_instead_of_refusing(tmp_path, teacher_dir, table, caplog):
    """In a real run the short series are dropped with a warning and the run goes on to the next check."""
    df = pd.concat([
        table[table["item_id"].isin(["s000", "s001"])],
        pd.DataFrame({"item_id": "stub", "timestamp": pd.date_range("2024-01-01", periods=8, freq="h"),
                      "target": np.ones(8)}),
    ], ignore_index=True)
    # an impossible student stops the run right after the data is loaded, before any training
    options = {**TINY, "student_d_model": 30, "student_num_heads": None}
    with caplog.at_level(logging.WARNING, logger="chronos_distill"), \
            pytest.raises(ConfigError, match="student_d_model 30"):
        chronos_distill.distill(teacher=teacher_dir, train_data=df, prediction_length=PREDICTION_LENGTH,
                                output=str(tmp_path / "out"), **options)
    assert not (tmp_path / "out").exists()  # refused before the output folder is created
    assert "skipping 1 of 3 series" in caplog.text
    assert "'stub' (8 steps)" in caplog.text


# ----------------------------------------------------------------------------------------------------------
# In-process: options and config files
# ----------------------------------------------------------------------------------------------------------
def test_unknown_yaml_key(tmp_path, teacher_dir, table_csv):
    path = tmp_path / "distill.yaml"
    path.write_text(
        f"teacher: {teacher_dir}\ntrain_data: {table_csv}\nprediction_length: 12\noutput: {tmp_path / 'out'}\n"
        "studnet_d_model: 64\n"
    )
    with pytest.raises(ConfigError, match=r"distill\.yaml has unknown option\(s\) \['studnet_d_model'\]") as info:
        DistillConfig.from_yaml(path)
    assert "student_d_model" in str(info.value)  # the known options are listed
    assert not (tmp_path / "out").exists()


def test_alpha_out_of_range_in_process(tmp_path, teacher_dir, table):
    with pytest.raises(ConfigError, match=r"`alpha` \(--alpha\) must be within \[0, 1\], got 1\.5"):
        DistillConfig(teacher=teacher_dir, train_data=table, prediction_length=12, output=str(tmp_path), alpha=1.5)


# ----------------------------------------------------------------------------------------------------------
# In-process: output folder
# ----------------------------------------------------------------------------------------------------------
def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _user_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "precious"
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("do not delete me\n")
    (folder / "sub" / "data.bin").write_bytes(b"\x00\x01\x02")
    return folder


def test_non_empty_output_is_refused_and_untouched(tmp_path, teacher_dir, table):
    folder = _user_folder(tmp_path)
    before = _snapshot(folder)
    with pytest.raises(DistillError, match=r"precious is not empty; set resume=True \(--resume\) .* overwrite=True \(--overwrite\)"):
        chronos_distill.distill(teacher=teacher_dir, train_data=table, prediction_length=PREDICTION_LENGTH,
                                output=str(folder), **TINY)
    assert _snapshot(folder) == before


def test_overwrite_refuses_folder_that_is_not_a_run(tmp_path, teacher_dir, table):
    folder = _user_folder(tmp_path)
    before = _snapshot(folder)
    with pytest.raises(DistillError, match=r"overwrite \(--overwrite\): output folder .*precious does not hold a chronos-distill "
                                           r"run; refusing to delete it"):
        chronos_distill.distill(teacher=teacher_dir, train_data=table, prediction_length=PREDICTION_LENGTH,
                                output=str(folder), overwrite=True, **TINY)
    assert _snapshot(folder) == before


@pytest.mark.parametrize("state", ["missing", "empty", "run_without_checkpoint"])
def test_resume_without_checkpoint(tmp_path, teacher_dir, table, state):
    folder = tmp_path / "run"
    if state != "missing":
        folder.mkdir()
    if state == "run_without_checkpoint":
        (folder / "run_config.json").write_text("{}")
        (folder / "checkpoints").mkdir()
    with pytest.raises(DistillError, match=r"resume=True \(--resume\): output folder .*run holds no training checkpoint"):
        chronos_distill.distill(teacher=teacher_dir, train_data=table, prediction_length=PREDICTION_LENGTH,
                                output=str(folder), resume=True, **TINY)
    assert folder.exists() == (state != "missing")


# ----------------------------------------------------------------------------------------------------------
# In-process: teacher limits and student config
# ----------------------------------------------------------------------------------------------------------
def test_prediction_length_beyond_teacher(tmp_path, teacher_dir, table):
    with pytest.raises(ConfigError, match=r"prediction_length 100 is beyond .*\(64 steps = max_output_patches 4 x "
                                          r"patch 16\)"):
        # min_past 1 keeps the 160-step series long enough, so the horizon is the only problem
        chronos_distill.distill(teacher=teacher_dir, train_data=table, prediction_length=100, min_past=1,
                                output=str(tmp_path / "out"), **TINY)
    assert not (tmp_path / "out").exists()  # refused before the output folder is created


def test_teacher_folder_not_chronos2_in_process(tmp_path, table):
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
    with pytest.raises(CheckpointError, match=r"bert is not a Chronos-2 checkpoint: .*BertModel"):
        chronos_distill.distill(teacher=str(folder), train_data=table, prediction_length=PREDICTION_LENGTH,
                                output=str(tmp_path / "out"), **TINY)
    assert not (tmp_path / "out").exists()  # refused before the output folder is created


def test_student_d_model_not_multiple_of_teacher_head_size(tmp_path, teacher_dir, table):
    options = {**TINY, "student_d_model": 30, "student_num_heads": None}
    with pytest.raises(ConfigError, match=r"student_d_model 30 is not a multiple of the teacher's head size 16: give "
                                          r"--student-num-heads \(or --student-d-kv\)"):
        chronos_distill.distill(teacher=teacher_dir, train_data=table, prediction_length=PREDICTION_LENGTH,
                                output=str(tmp_path / "out"), **options)
    assert not (tmp_path / "out").exists()  # refused before the output folder is created


@pytest.mark.parametrize("sizes", [dict(student_d_kv=15, student_num_heads=None), dict(student_num_heads=2)],
                         ids=["d_kv_15", "heads_2"])
def test_student_odd_head_size(tmp_path, teacher_dir, table, sizes):
    options = {**TINY, "student_d_model": 30, **sizes}
    with pytest.raises(ConfigError, match=r"student head size d_kv=15 must be even"):
        chronos_distill.distill(teacher=teacher_dir, train_data=table, prediction_length=PREDICTION_LENGTH,
                                output=str(tmp_path / "out"), **options)
    assert not (tmp_path / "out").exists()  # refused before the output folder is created


@pytest.mark.parametrize("levels", [[0.001, 0.5], [0.5, 0.995]])
def test_student_quantiles_outside_teacher_range(tmp_path, teacher_dir, table, levels):
    with pytest.raises(ConfigError, match=rf"student_quantiles \[{levels[0]}, {levels[1]}\] reach outside the "
                                          r"teacher's quantile range \[0\.01, 0\.99\]"):
        chronos_distill.distill(teacher=teacher_dir, train_data=table, prediction_length=PREDICTION_LENGTH,
                                output=str(tmp_path / "out"), student_quantiles=levels, **TINY)
    assert not (tmp_path / "out").exists()  # refused before the output folder is created


def test_context_length_beyond_teacher(tmp_path, teacher_dir, table):
    with pytest.raises(ConfigError, match=r"context_length 512 exceeds the teacher's context length 128"):
        chronos_distill.distill(teacher=teacher_dir, train_data=table, prediction_length=PREDICTION_LENGTH,
                                context_length=512, output=str(tmp_path / "out"), **TINY)
    assert not (tmp_path / "out").exists()


def test_irregular_timestamps_name_the_series(table):
    bad = table.copy()
    rows = np.flatnonzero(bad["item_id"].to_numpy() == "s005")
    bad = bad.drop(index=bad.index[rows[[10, 11, 40]]])  # holes at uneven places: no frequency fits
    with pytest.raises(DataError, match=r"s005.*irregular timestamps"):
        load_series(bad, PREDICTION_LENGTH, target=["target"])


def test_known_covariate_with_missing_values_names_column_and_series(table):
    data = table.copy()
    data["promo"] = 1.0
    data.loc[np.flatnonzero(data["item_id"].to_numpy() == "s002")[-3:], "promo"] = np.nan
    with pytest.raises(DataError, match=r"known covariate 'promo' is missing 3 value\(s\), first in series 's002'"):
        load_series(data, PREDICTION_LENGTH, target=["target"], known_covariates=["promo"])
    # as a past-only covariate, gaps are fine
    assert len(load_series(data, PREDICTION_LENGTH, target=["target"]).inputs) == 24


def test_teacher_with_corrupted_weights(tmp_path, teacher_dir, table):
    import shutil

    broken = tmp_path / "broken_teacher"
    shutil.copytree(teacher_dir, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # truncated download
    with pytest.raises(DistillError, match=str(broken)):
        chronos_distill.distill(teacher=str(broken), train_data=table, prediction_length=PREDICTION_LENGTH,
                output=str(tmp_path / "out"), **TINY)
    assert not (tmp_path / "out").exists()


def test_teacher_with_only_pickled_weights_is_refused_unloaded(tmp_path, teacher_dir):
    import shutil

    from chronos_distill import load_teacher

    folder = tmp_path / "pickled"
    shutil.copytree(teacher_dir, folder)
    (folder / "model.safetensors").unlink()
    # a pickle that would run code if it were ever unpickled
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04cos\nsystem\n(S'touch " + str(tmp_path / "pwned").encode() + b"'\ntR.")
    with pytest.raises(CheckpointError, match=r"pickled weights .* only loads safetensors"):
        load_teacher(str(folder))
    assert not (tmp_path / "pwned").exists()


def test_the_vectorised_calendar_check_accepts_only_what_infer_freq_accepts():
    """Monthly, quarterly and yearly series pass the regularity check in a few vectorised passes (issue 32:
    the check was quadratic in the table); every series that fast path accepts, pd.infer_freq accepts too, and a
    month-end series with a gap is still refused, by name."""
    import warnings

    from chronos_distill.data.tables import _check_regular, _regular_in_months

    cases = {}
    for freq in ["ME", "MS", "QE", "QS", "YE", "YS", "QE-JAN", "2ME", "BME", "SME", "W", "D"]:
        for start in ["2000-01-31", "2001-03-01", "1999-12-31 06:00"]:
            cases[f"{freq} from {start}"] = pd.date_range(start, periods=20, freq=freq)
    table = pd.concat([pd.DataFrame({"id": name, "ts": stamps}) for name, stamps in cases.items()])
    fast = _regular_in_months(table.sort_values(["id", "ts"]), "id", "ts")
    assert fast.sum() >= 8  # ME, MS, QE, QS, YE, YS, QE-JAN from their anchors
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in fast.index[fast.to_numpy()]:
            assert pd.infer_freq(cases[name]) is not None, name
        regular = [name for name, stamps in cases.items() if pd.infer_freq(stamps) is not None]
    kept = table[table["id"].isin(regular)]
    _check_regular(kept, "id", "ts", "data")  # every series infer_freq accepts passes, fast path or not
    gap = pd.DataFrame({"id": "gap", "ts": pd.DatetimeIndex(["2000-01-31", "2000-02-29", "2000-04-30", "2000-05-31"])})
    with pytest.raises(DataError, match="series 'gap' has irregular timestamps"):
        _check_regular(pd.concat([kept, gap]), "id", "ts", "data")


def test_debug_prints_the_whole_chain_of_a_user_error_and_keeps_its_one_line(tmp_path, capsys, monkeypatch):
    from chronos_distill.cli import main

    bad = tmp_path / "run.yaml"
    bad.write_text("teacher: [unclosed\n")
    argv = ["distill", "--config", str(bad)]
    assert main(argv) == 2
    plain = capsys.readouterr().err
    assert "Traceback" not in plain and plain.startswith("chronos-distill: error: config file")
    for debug_argv, env in ((["--debug", *argv], None), (argv, "1")):
        if env:
            monkeypatch.setenv("CHRONOS_DISTILL_DEBUG", env)
        assert main(debug_argv) == 2
        err = capsys.readouterr().err
        # the YAML parser's own error, which the one-line message chains (raise ... from exc), then ours, then the line
        assert err.index("yaml.") < err.index("ConfigError") < err.index("chronos-distill: error: config file")
        assert err.count("Traceback (most recent call last)") == 2
        assert err.endswith(plain)  # the same message, last


def test_a_bad_file_is_a_user_error_that_keeps_its_cause_and_a_bug_in_a_reader_keeps_its_own_traceback(
        tmp_path, monkeypatch):
    """Errors tell user from bug: a file the reader cannot parse is one DataError whose cause is the reader's own
    error; anything else a reader raises (a bug, here planted in pandas' CSV reader) reaches the caller as itself,
    not as a one-line "user error"."""
    from chronos_distill.data import sources

    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"could not be read as Parquet") as caught:
        _load(str(bad))
    assert caught.value.__cause__ is not None and "Arrow" in type(caught.value.__cause__).__name__

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug in the reader")

    monkeypatch.setattr(sources.pd, "read_csv", broken)
    table = tmp_path / "fine.csv"
    table.write_text("item_id,timestamp,target\na,2020-01-01,1\n")
    with pytest.raises(ZeroDivisionError, match="a bug in the reader"):
        _load(str(table))
