"""What a new user meets in their first hour: real-world tables, mistyped paths, readable output.

Each test is the reproduction of one finding of issue 14. CLI cases run in subprocesses, all started at once
by a module fixture (imports cost seconds each); a refused case must exit with status 2 and one error line,
no traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import PREDICTION_LENGTH, TINY_STUDENT, fake_hub_cache
from test_bad_inputs import CliRun

from chronos_distill import CheckpointError, ConfigError, DataError, distill
from chronos_distill.chronos2.loading import load_teacher
from chronos_distill.config import EvaluateConfig
from chronos_distill.data.series import load_series
from chronos_distill.data.tables import TableLayout, check_table
from chronos_distill.evaluation.scoring import holdout_benchmark
from chronos_distill.training.progress import readable_log


def _table_with_index_csv(table, path):
    table.to_csv(path)  # the pandas default: the row index is written as an unnamed first column
    return path


@pytest.fixture(scope="module")
def cli(tmp_path_factory, teacher_dir, table):
    root = tmp_path_factory.mktemp("first-hour")
    good = root / "train.csv"
    table.to_csv(good, index=False)
    a_file = root / "a_file"
    a_file.write_text("not a folder")
    day_first = root / "day_first.csv"
    shifted = table.copy()
    shifted["timestamp"] = pd.to_datetime(shifted["timestamp"]).dt.strftime("%d/%m/%Y %I%p")
    shifted.to_csv(day_first, index=False)

    def args(name, **flags):
        options = {"teacher": teacher_dir, "train-data": str(good), "prediction-length": str(PREDICTION_LENGTH),
                   "output": str(root / "out" / name), "max-steps": "2", "batch-size": "8", "logging-steps": "1",
                   "student-d-model": "32", "student-num-heads": "2", "student-d-ff": "64"}
        options.update({k.replace("_", "-"): v for k, v in flags.items()})
        return [item for key, value in options.items() for item in (f"--{key}", value)]

    cases = {
        "output_proc": args("x", output="/proc/chronos-distill-x"),
        "output_sys": args("x", output="/sys/chronos-distill-x"),
        "output_through_file": args("x", output=str(a_file / "sub")),
        "id_is_timestamp": args("id_is_timestamp", id_column="timestamp"),
        "context_1": args("context_1", context_length="1"),
        "typo_teacher": args("typo_teacher", teacher=str(root / "runs-nope" / "teacher")),
        "day_first": args("day_first", train_data=str(day_first)),
        "day_first_with_format": args("day_first_with_format", train_data=str(day_first),
                                      timestamp_format="%d/%m/%Y %I%p"),
        "known_is_id": args("known_is_id", known_covariates="item_id"),
        "horizon_100000": args("horizon_100000", prediction_length="100000"),
        "good": args("good"),
    }
    runs = {name: CliRun(argv) for name, argv in cases.items()}
    yield runs, root
    for run in runs.values():
        run.stop()


def _refused(cli, name: str) -> str:
    runs, root = cli
    code, out, err = runs[name].result()
    assert code == 2, f"exit {code}\nstdout:\n{out[-2000:]}\nstderr:\n{err[-3000:]}"
    assert "Traceback" not in err, err[-3000:]
    errors = [line for line in err.splitlines() if line.startswith("chronos-distill: error:")]
    assert len(errors) == 1, err[-3000:]
    return errors[0]


def test_unwritable_outputs_are_refused_at_once(cli):
    assert "/proc/chronos-distill-x cannot be" in _refused(cli, "output_proc")
    assert "/sys/chronos-distill-x cannot be" in _refused(cli, "output_sys")
    message = _refused(cli, "output_through_file")
    assert "a_file is a file, not a folder" in message


def test_id_column_equal_to_timestamp_column(cli):
    message = _refused(cli, "id_is_timestamp")
    assert "`id_column` (--id-column) and `timestamp_column` (--timestamp-column) are both 'timestamp'" in message


def test_context_shorter_than_a_patch(cli):
    assert "context_length 1 is shorter than one input patch of the teacher (16 steps)" in _refused(cli, "context_1")


def test_a_mistyped_local_teacher_fails_at_once(cli):
    message = _refused(cli, "typo_teacher")
    assert "runs-nope/teacher does not exist (not tried as a hub id: it looks like a path)" in message


def test_day_first_dates_point_to_timestamp_format_and_it_works(cli):
    message = _refused(cli, "day_first")
    assert "irregular timestamps" in message and "--timestamp-format" in message and "guess" in message
    code, _, err = cli[0]["day_first_with_format"].result()
    assert code == 0, err[-3000:]


def test_known_covariate_that_is_the_id_column(cli):
    assert "--known-covariates names 'item_id', which is the id column" in _refused(cli, "known_is_id")


def test_horizon_beyond_the_teacher_is_reported_before_the_data(cli):
    message = _refused(cli, "horizon_100000")
    assert "prediction_length 100000 is beyond what the teacher was trained to predict (64 steps" in message


def test_a_run_reads_cleanly(cli):
    runs, root = cli
    code, out, err = runs["good"].result()
    assert code == 0, err[-3000:]
    assert "{'loss'" not in out + err  # no raw Trainer dicts
    assert "step 1/2  total" in out + err and "distill" in err
    for stage in ("reading the training data", "loading the teacher", "building the student", "training for 2 steps"):
        assert stage in err, stage
    assert "targets ['target']; past-only covariates none; known covariates none" in err
    assert err.count("loading the teacher") == 1  # every line once


def test_readable_log_lines():
    line = readable_log({"loss": 11.6, "distill_loss": 7.3, "hard_loss": 13.06, "total_loss": 11.62,
                         "learning_rate": 9.9e-4, "grad_norm": 3.2, "epoch": 0.1}, 50, 300)
    assert line == "step 50/300  total 11.62  distill 7.3  hard 13.06  lr 9.90e-04"
    assert readable_log({"eval_total_loss": 1.0, "eval_loss": 1.0}, 80, 120) == "step 80/120  validation  total 1"
    assert readable_log({"train_runtime": 12.0}, 120, 120) is None


def test_time_zone_aware_timestamps_are_converted_to_utc(teacher_dir, table, tmp_path):
    aware = table.copy()
    aware["timestamp"] = pd.to_datetime(aware["timestamp"]).dt.tz_localize("UTC")
    naive = load_series(table, PREDICTION_LENGTH, target=["target"])
    converted = load_series(aware, PREDICTION_LENGTH, target=["target"])
    assert len(converted.inputs) == len(naive.inputs)
    offsets = table.copy()  # text with an offset, as exported by many databases
    offsets["timestamp"] = (pd.to_datetime(offsets["timestamp"]).dt.tz_localize("Europe/Paris")
                            .dt.strftime("%Y-%m-%dT%H:%M:%S%z"))
    assert len(load_series(offsets, PREDICTION_LENGTH, target=["target"]).inputs) == len(naive.inputs)
    # the times became UTC: Paris wall-clock times are one hour ahead of UTC in winter, two in summer
    layout = TableLayout()
    local = pd.to_datetime(table["timestamp"])
    utc = check_table(offsets, "offsets", layout).df["timestamp"]
    expected = local.dt.tz_localize("Europe/Paris").dt.tz_convert("UTC").dt.tz_localize(None)
    assert utc.dt.tz is None and (utc.to_numpy() == expected.to_numpy()).all()
    assert ((local - utc).dt.total_seconds().isin([3600, 7200])).all()
    assert (check_table(aware, "aware", layout).df["timestamp"].to_numpy() == local.to_numpy()).all()
    result = distill(teacher=teacher_dir, train_data=aware, prediction_length=PREDICTION_LENGTH,
                     output=str(tmp_path / "out"), max_steps=1, save_steps=1, batch_size=8, **TINY_STUDENT)
    assert result.record["training"]["steps"] == 1


def test_a_saved_index_is_named_and_can_be_ignored(table, tmp_path, caplog):
    path = _table_with_index_csv(table, tmp_path / "with_index.csv")
    with caplog.at_level("WARNING"):
        series = load_series(str(path), PREDICTION_LENGTH, target=["target"])
    assert series.columns["past_covariates"] == ["Unnamed: 0"]
    assert "'Unnamed: 0' looks like a saved row index" in caplog.text and "--ignore-columns" in caplog.text
    ignored = load_series(str(path), PREDICTION_LENGTH, target=["target"], ignore_columns=["Unnamed: 0"])
    assert ignored.columns["past_covariates"] == [] and int(ignored.inputs[0]["n_covariates"]) == 0
    with_cov = table.assign(price=np.arange(len(table)) % 7, promo=1.0)
    chosen = load_series(with_cov, PREDICTION_LENGTH, target=["target"], past_covariates=["price"])
    assert chosen.columns["past_covariates"] == ["price"] and int(chosen.inputs[0]["n_covariates"]) == 1
    with pytest.raises(DataError, match=r"--ignore-columns names column\(s\) \['nope'\]"):
        load_series(table, PREDICTION_LENGTH, target=["target"], ignore_columns=["nope"])


def test_the_card_and_record_name_the_covariates(teacher_dir, table, tmp_path):
    with_cov = table.assign(price=np.sin(np.arange(len(table))), promo=(np.arange(len(table)) % 5 == 0) * 1.0)
    result = distill(teacher=teacher_dir, train_data=with_cov, prediction_length=PREDICTION_LENGTH,
                     known_covariates=["promo"], output=str(tmp_path / "out"), max_steps=1, save_steps=1,
                     batch_size=8, **TINY_STUDENT)
    columns = result.record["data"]["train"]["columns"]
    assert columns == {"target": ["target"], "past_covariates": ["price"], "known_covariates": ["promo"]}
    card = (result.model_dir / "README.md").read_text()
    assert "past-only covariates `price`; known covariates `promo`" in card


def test_a_hub_id_offline_fails_fast_and_says_what_it_tried(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match="not in the local Hugging Face cache \\(HF_HUB_OFFLINE is set"):
        load_teacher("amazon/chronos-3")
    assert time.perf_counter() - start < 15


def test_evaluate_takes_one_target_and_says_so():
    with pytest.raises(ConfigError, match="evaluate scores one target column, got 'a,b'"):
        EvaluateConfig(model=["reference"], data="x.csv", prediction_length=4, target="a,b")


def test_evaluate_keeps_missing_values_at_their_time_positions(table):
    gappy = table.copy()
    first = gappy["item_id"] == gappy["item_id"].iloc[0]
    rows = np.flatnonzero(first.to_numpy())
    gappy.loc[rows[[0, 1, 50, 51, 52]], "target"] = np.nan  # leading and inner gaps
    benchmark = holdout_benchmark(gappy, PREDICTION_LENGTH)
    context = benchmark.contexts[0]
    assert len(context) == first.sum() - PREDICTION_LENGTH - 2  # only the leading gap is cut
    assert np.isnan(context[48:51]).all() and np.isfinite(np.delete(context, [48, 49, 50])).all()


def test_help_needs_no_torch_and_marks_required_options():
    code = "import sys, chronos_distill.cli as c; c.build_parser(); print('torch' in sys.modules, 'transformers' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["False", "False"], done.stderr
    helped = subprocess.run([sys.executable, "-m", "chronos_distill", "distill", "--help"], capture_output=True,
                            text=True, timeout=60)
    assert helped.returncode == 0
    text = " ".join(helped.stdout.split())
    for flag in ("--teacher", "--output"):
        assert f"{flag} {flag[2:].upper().replace('-', '_')} (required)" in text, flag
    # --train-data and --prediction-length: required for every run but a general one
    assert text.count("Required unless --general") == 2
    assert "reference-v0" in text and "design note" not in text
    # sections, the options needed to start first: usage names only the required ones
    assert helped.stdout.startswith("usage: chronos-distill distill --teacher TEACHER --output OUTPUT [options]\n")
    body = text[text.index(" required: "):]
    order = [body.index(anchor) for anchor in ("required:", "--teacher TEACHER", "--prediction-length", "distill options:",
                                                "--alpha", "training (transformers.TrainingArguments):", "--max-steps",
                                                "table layout:", "--timestamp-column")]
    assert order == sorted(order)


def test_the_record_of_a_good_run_is_json(cli):
    runs, root = cli
    assert runs["good"].result()[0] == 0
    record = json.loads((root / "out" / "good" / "model" / "distillation.json").read_text())
    assert record["data"]["train"]["columns"]["past_covariates"] == []


def test_a_hub_id_loads_from_the_local_hugging_face_cache_offline(teacher_dir, tmp_path, monkeypatch):
    fake_hub_cache(tmp_path, monkeypatch, "someone/tiny-chronos-2", teacher_dir)
    model = load_teacher("someone/tiny-chronos-2")
    assert model.config.d_model == load_teacher(teacher_dir).config.d_model


def test_the_command_line_reference_in_docs_is_the_one_the_option_definitions_render():
    """docs/cli.md is generated (python scripts/render_docs.py): an option added, renamed or re-documented in the
    code without regenerating it fails here."""
    from chronos_distill.cli import options_reference

    docs = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
    assert docs.read_text() == options_reference(), "docs/cli.md is stale: run python scripts/render_docs.py"
    assert "| `--student-init STUDENT_INIT` | random: a freshly initialised student" in docs.read_text()


def test_each_option_type_is_written_once_as_its_annotation():
    """The validator and the command line read an option's kind from its annotation (no second declaration):
    every option of every command has one, and an annotation with no kind is refused by name."""
    import dataclasses

    import pytest

    from chronos_distill.config import DistillConfig, EvaluateConfig, PredictConfig, PretrainConfig
    from chronos_distill.config.commands import OnnxExportConfig
    from chronos_distill.config.options import _opt, option_kind

    kinds = {f.name: option_kind(f) for c in (DistillConfig, PretrainConfig, EvaluateConfig, PredictConfig,
                                              OnnxExportConfig) for f in dataclasses.fields(c)}
    assert (kinds["train_data"], kinds["student_d_model"], kinds["target"], kinds["trainer_args"],
            kinds["overwrite"]) == ("path", "int", "list[str]", "dict", "flag")

    @dataclasses.dataclass
    class Odd:
        when: tuple = _opt((), "a tuple is no option kind")

    with pytest.raises(TypeError, match="option when: annotation 'tuple'"):
        option_kind(dataclasses.fields(Odd)[0])


def test_the_table_layout_options_are_one_group_composed_into_each_command():
    """id, timestamp and target columns are defined once (config.options' groups) and every command that reads a
    long table has them from there: the same help, default and bounds in distill, evaluate and predict."""
    import dataclasses

    from chronos_distill.config import DistillConfig, EvaluateConfig, PredictConfig
    from chronos_distill.config.options import ModelledColumns, SeriesColumns

    for group, commands in ((SeriesColumns, (DistillConfig, EvaluateConfig, PredictConfig)),
                            (ModelledColumns, (DistillConfig, PredictConfig))):
        for command in commands:
            assert issubclass(command, group), (command, group)
            fields = {f.name: f for f in dataclasses.fields(command)}
            for f in dataclasses.fields(group):
                assert dict(fields[f.name].metadata) == dict(f.metadata), (command.__name__, f.name)
