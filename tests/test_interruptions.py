"""kill -9 in the middle of a run, then --resume: the same student as an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import PREDICTION_LENGTH
from safetensors.torch import load_file

from chronos_distill.training.run_folder import last_complete_checkpoint

PAUSING_WORKER = Path(__file__).with_name("pausing_worker.py")

pytestmark = pytest.mark.slow


def _command(teacher_dir, data, out, *extra):
    return [sys.executable, "-m", "chronos_distill", "distill", "--teacher", teacher_dir, "--train-data", data,
            "--prediction-length", str(PREDICTION_LENGTH), "--output", str(out), "--max-steps", "120",
            "--save-steps", "20", "--logging-steps", "10", "--batch-size", "16", "--student-d-model", "32",
            "--student-num-heads", "2", "--student-d-ff", "64", "--seed", "7", *extra]


def test_kill_9_then_resume_gives_the_uninterrupted_student(teacher_dir, table_csv, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same float reduction order in every run
    reference = subprocess.run(_command(teacher_dir, table_csv, tmp_path / "straight"), env=env,
                               capture_output=True, text=True, timeout=600)
    assert reference.returncode == 0, reference.stderr[-3000:]

    out, marker = tmp_path / "killed", tmp_path / "paused-at"
    # the victim writes `marker` once checkpoint-40 is on disk and then waits: killed mid-run, with no race
    victim = subprocess.Popen([sys.executable, str(PAUSING_WORKER), "40", str(marker), *_command(teacher_dir, table_csv, out)[3:]],
                              env={**env, "PYTHONPATH": str(PAUSING_WORKER.parent)}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not marker.exists():
        assert victim.poll() is None, "the run ended before it reached checkpoint-40"
        assert time.time() < deadline, "checkpoint-40 was not written within 300 s"
        time.sleep(0.2)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert not (out / "model" / "distillation.json").exists()
    resumed_from = last_complete_checkpoint(out / "checkpoints")
    assert resumed_from is not None and not resumed_from.endswith("checkpoint-120")

    resumed = subprocess.run(_command(teacher_dir, table_csv, out, "--resume"), env=env, capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected = load_file(tmp_path / "straight" / "model" / "model.safetensors")
    got = load_file(out / "model" / "model.safetensors")
    assert expected.keys() == got.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=0, atol=1e-5, msg=name)


def test_an_incomplete_checkpoint_is_not_resumed_from(tmp_path):
    for step, complete in ((10, True), (20, False)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"x")
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")
    assert last_complete_checkpoint(tmp_path / "missing") is None
