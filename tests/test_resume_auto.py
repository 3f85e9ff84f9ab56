"""One command that starts or continues (issue 49, item 1): ``resume="auto"`` / ``--resume auto``, what a cluster
restarts (torchrun --max-restarts, a SLURM requeue, a Kubernetes Job) with the same command line."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import PREDICTION_LENGTH, TINY_STUDENT

from chronos_distill import distill
from chronos_distill.cli import build_parser
from chronos_distill.config import DistillConfig, PretrainConfig
from chronos_distill.errors import ConfigError, DistillError
from chronos_distill.training.run_folder import RUN_CONFIG, prepare_output_folder


def _options(teacher_dir, table, output, **extra):
    return dict(teacher=teacher_dir, train_data=table, prediction_length=PREDICTION_LENGTH, output=str(output),
                save_steps=2, batch_size=16, logging_steps=1, seed=3, resume="auto", **TINY_STUDENT, **extra)


def test_the_same_command_starts_continues_and_refuses_a_finished_run(teacher_dir, table, tmp_path):
    out = tmp_path / "run"
    first = distill(**_options(teacher_dir, table, out, max_steps=2))  # a new folder: it starts
    assert first.record["training"]["resumed_from"] is None
    assert first.record["training"]["steps"] == 2

    again = distill(**_options(teacher_dir, table, out, max_steps=4))  # its checkpoint: it continues
    assert again.record["training"]["resumed_from"].endswith("checkpoint-2")
    assert [e["step"] for e in again.trainer.state.log_history if "distill_loss" in e][-2:] == [3, 4]
    assert json.loads((out / RUN_CONFIG).read_text())["resume"] == "auto"

    with pytest.raises(DistillError, match=r'^resume="auto" \(--resume auto\): the run in .* already finished at '
                                           r"step 4 \(max_steps 4\)"):
        distill(**_options(teacher_dir, table, out, max_steps=4))


def test_a_start_stopped_before_its_first_checkpoint_starts_again_in_place(teacher_dir, table, tmp_path):
    """A worker killed before the first checkpoint left the run's record and no checkpoint: the restarted command
    starts again (nothing trained is lost), keeping what else is in the folder."""
    out = tmp_path / "run"
    options = _options(teacher_dir, table, out, max_steps=2)
    prepare_output_folder(out, DistillConfig(**options).to_dict(), resume=False)
    (out / "checkpoints").mkdir()
    (out / "events.log").write_text("the first start's log\n")
    result = distill(**options)
    assert result.record["training"]["resumed_from"] is None and result.record["training"]["steps"] == 2
    [restart] = result.record["training"]["restarts"]  # a restart all the same: from step 0, nothing redone
    assert (restart["from_step"], restart["reached_step"], restart["steps_redone"]) == (0, 0, 0)
    assert (out / "events.log").read_text() == "the first start's log\n"
    # without auto the same folder is refused, as before
    with pytest.raises(DistillError, match="is not empty"):
        distill(**{**_options(teacher_dir, table, tmp_path / "other", max_steps=2), "resume": False,
                   "output": str(_record_only(tmp_path / "other", options))})


def _record_only(folder, options):
    prepare_output_folder(folder, DistillConfig(**{**options, "output": str(folder)}).to_dict(), resume=False)
    return folder


def test_auto_refuses_another_runs_folder_and_one_that_holds_no_run(teacher_dir, table, tmp_path):
    out = tmp_path / "run"
    _record_only(out, _options(teacher_dir, table, out, max_steps=2))
    with pytest.raises(DistillError, match=r'^resume="auto" \(--resume auto\) with different options than the run '
                                           r"being resumed \(prediction_length: 12 -> 6\)"):
        distill(**{**_options(teacher_dir, table, out, max_steps=2), "prediction_length": 6})

    stranger = tmp_path / "photos"
    stranger.mkdir()
    (stranger / "holiday.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(DistillError, match="is not empty and holds no chronos-distill run to continue"):
        distill(**_options(teacher_dir, table, stranger, max_steps=2))
    assert (stranger / "holiday.jpg").read_bytes() == b"\xff\xd8"


def test_auto_is_one_value_of_the_option_in_python_yaml_and_the_command_line(tmp_path):
    parser = build_parser()
    assert parser.parse_args(["distill", "--resume", "auto", "--max-steps", "3"]).resume == "auto"
    assert parser.parse_args(["distill", "--resume", "--max-steps", "3"]).resume is True
    with pytest.raises(SystemExit):
        parser.parse_args(["distill", "--resume", "sometimes"])
    yaml = tmp_path / "run.yaml"
    yaml.write_text("teacher: t\ngeneral: true\nresume: auto\noutput: out\n")
    assert DistillConfig.from_yaml(yaml).resume == "auto"
    assert PretrainConfig(output=str(tmp_path / "p"), resume="auto").resume == "auto"
    with pytest.raises(ConfigError, match=r"option `resume` \(--resume\) must be true, false or 'auto', got 'sometimes'"):
        DistillConfig(teacher="t", general=True, output="out", resume="sometimes")
    with pytest.raises(ConfigError, match=r'^resume="auto" \(--resume auto\) and overwrite \(--overwrite\) exclude'):
        DistillConfig(teacher="t", general=True, output="out", resume="auto", overwrite=True)


def test_each_restart_is_recorded_with_the_steps_it_trains_again(teacher_dir, table, tmp_path):
    """A run killed after step 4 finished but before checkpoint-4 was whole continues from checkpoint-2: the
    restart is recorded (when, from step 2, step 4 reached, 2 steps redone) in ``restarts.json``, the record and the
    card; a run that never restarted records none."""
    out = tmp_path / "run"
    first = distill(**_options(teacher_dir, table, out, max_steps=4))
    assert first.record["training"]["restarts"] == []
    assert "restarted" not in (out / "model" / "README.md").read_text()
    assert json.loads((out / "checkpoints" / "last_step.json").read_text()) == {"step": 4}
    shutil.rmtree(out / "model")  # as if killed while checkpoint-4 was written: the run had finished step 4
    shutil.rmtree(out / "checkpoints" / "checkpoint-4")
    again = distill(**_options(teacher_dir, table, out, max_steps=4))
    [restart] = again.record["training"]["restarts"]
    assert (restart["from_step"], restart["reached_step"], restart["steps_redone"]) == (2, 4, 2)
    assert restart["at"] <= again.record["created"]
    assert json.loads((out / "restarts.json").read_text()) == [restart]
    assert "- restarted once: from step 2 (2 steps redone)" in (out / "model" / "README.md").read_text()
    # the README's run-folder layout names what such a folder holds, and the folder holds nothing it leaves out
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    block = readme[readme.index("```\nOUTPUT/\n"):].split("```")[1]
    named = {re.sub(r"^[│├└─\s]+", "", line).split()[0].rstrip("/") for line in block.splitlines()[2:]}
    held = {p.name for p in [*out.iterdir(), *(out / "model").iterdir(), *(out / "checkpoints").glob("*.json")]}
    assert named == held


def test_a_torchrun_that_may_restart_through_its_shared_store_is_warned(monkeypatch):
    """pytorch/pytorch#135712: restarts through torchrun's shared rendezvous store can hang (seen here in 6 of 13
    restarts); the run says how to launch instead, and says nothing when the launch is safe."""
    from chronos_distill.training.restarts import shared_store_warning

    monkeypatch.setenv("TORCHELASTIC_USE_AGENT_STORE", "True")
    monkeypatch.setenv("TORCHELASTIC_MAX_RESTARTS", "3")
    assert "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1" in shared_store_warning()
    monkeypatch.setenv("TORCHELASTIC_MAX_RESTARTS", "0")
    assert shared_store_warning() is None
    monkeypatch.setenv("TORCHELASTIC_MAX_RESTARTS", "3")
    monkeypatch.setenv("TORCHELASTIC_USE_AGENT_STORE", "False")  # TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 set it so
    assert shared_store_warning() is None
