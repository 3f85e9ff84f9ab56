"""kill -9 in the middle of a run, then --resume: the same student as an uninterrupted run."""

from __future__ import annotations

import json
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
    """A checkpoint whose save was interrupted (no trainer_state.json: the Trainer writes it last) is skipped for
    the older complete one."""
    from safetensors.torch import save_file

    for step, complete in ((10, True), (20, False)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        save_file({"w": torch.zeros(2)}, folder / "model.safetensors")
        for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
            torch.save({"step": step}, folder / name)
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")
    assert last_complete_checkpoint(tmp_path / "missing") is None


SIGNALLING_WORKER = Path(__file__).with_name("signalling_worker.py")


def _signalled(step: int, name: str, argv: list[str], *again: str):
    return subprocess.run([sys.executable, str(SIGNALLING_WORKER), str(step), name, *again, *argv],
                          env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(SIGNALLING_WORKER.parent)},
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("name, code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_saves_the_step_it_arrived_in_and_resume_gives_the_uninterrupted_student(
        teacher_dir, table_csv, tmp_path, name, code):
    """SIGTERM (or Ctrl-C) during step 33 of a run that saves every 20: a checkpoint at step 33, one line, the
    signal's exit code; --resume then trains the very student of an uninterrupted run."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    straight = subprocess.run(_command(teacher_dir, table_csv, tmp_path / "straight", "--max-steps", "60"), env=env,
                              capture_output=True, text=True, timeout=600)
    assert straight.returncode == 0, straight.stderr[-3000:]
    argv = _command(teacher_dir, table_csv, tmp_path / "stopped", "--max-steps", "60")[3:]
    stopped = _signalled(33, name, argv)
    assert stopped.returncode == code, stopped.stderr[-3000:]
    last = [line for line in stopped.stderr.splitlines() if line.strip()][-1]
    assert last == f"chronos-distill: stopped by {name} at step 33: checkpoint-33 written; continue with resume=True (--resume)"
    assert last_complete_checkpoint(tmp_path / "stopped" / "checkpoints").endswith("checkpoint-33")
    assert not (tmp_path / "stopped" / "model" / "distillation.json").exists()  # not exported: not finished
    resumed = subprocess.run(_command(teacher_dir, table_csv, tmp_path / "stopped", "--max-steps", "60", "--resume"),
                             env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected = load_file(tmp_path / "straight" / "model" / "model.safetensors")
    got = load_file(tmp_path / "stopped" / "model" / "model.safetensors")
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=1e-5, msg=key)


def test_a_second_signal_during_the_save_exits_at_once_and_leaves_no_checkpoint_to_resume(teacher_dir, table_csv,
                                                                                        tmp_path):
    argv = _command(teacher_dir, table_csv, tmp_path / "twice", "--max-steps", "60")[3:]
    done = _signalled(33, "SIGTERM", argv, "--again")
    assert done.returncode == 143, done.stderr[-3000:]
    assert "second SIGTERM: exiting now" in done.stderr
    assert (tmp_path / "twice" / "checkpoints" / "checkpoint-33").is_dir()  # half-written ...
    assert last_complete_checkpoint(tmp_path / "twice" / "checkpoints").endswith("checkpoint-20")  # ... and skipped


def test_pretraining_stops_on_sigterm_with_a_checkpoint_at_that_step(tmp_path):
    argv = ["pretrain", "--output", str(tmp_path / "pre"), "--d-model", "32", "--num-layers", "1", "--num-heads", "2",
            "--d-ff", "64", "--context-length", "64", "--batch-size", "8", "--max-steps", "40", "--save-steps", "100",
            "--logging-steps", "5"]
    done = _signalled(7, "SIGTERM", argv)
    assert done.returncode == 143, done.stderr[-3000:]
    assert "stopped by SIGTERM at step 7: checkpoint-7 written; continue with resume=True (--resume)" in done.stderr
    assert last_complete_checkpoint(tmp_path / "pre" / "checkpoints").endswith("checkpoint-7")


def _torchrun(*argv, signal_rank=None, max_restarts=0, shared_store=False):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(SIGNALLING_WORKER.parent)}
    if max_restarts and not shared_store:  # as docs/operations.md says: a restart may hang with the shared store
        env["TORCH_DISABLE_SHARE_RDZV_TCP_STORE"] = "1"
    if signal_rank is not None:
        env["SIGNAL_RANK"] = str(signal_rank)
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "--max-restarts", str(max_restarts), *argv], env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory, teacher_dir, table):
    """An uninterrupted 2-process torchrun (10 steps, batch 8 per rank): returns the command line's ``run(out,
    *extra)`` builder and the folder of the straight run, whose weights the interrupted runs must end with."""
    root = tmp_path_factory.mktemp("two-process")
    data = root / "train.csv"
    table.to_csv(data, index=False)

    def run(out, *extra):
        return _command(teacher_dir, str(data), out, "--max-steps", "10", "--batch-size", "8", *extra)[3:]

    straight = _torchrun("-m", "chronos_distill", *run(root / "straight"))
    assert straight.returncode == 0, straight.stderr[-3000:]
    return run, root / "straight"


def _assert_same_weights(expected_run: Path, got_run: Path) -> None:
    expected = load_file(expected_run / "model" / "model.safetensors")
    got = load_file(got_run / "model" / "model.safetensors")
    assert expected.keys() == got.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=1e-5, msg=key)


def test_under_torchrun_a_signal_to_one_rank_stops_every_rank_at_that_step_and_resume_is_exact(
        two_process_run, tmp_path):
    """Rank 1 alone gets SIGTERM during step 5: both ranks stop after step 5, one checkpoint holds both ranks' RNG
    states, and --resume under torchrun ends with the weights of an uninterrupted 2-process run."""
    run, straight = two_process_run
    stopped = _torchrun(str(SIGNALLING_WORKER), "5", "SIGTERM", *run(tmp_path / "stopped"), signal_rank=1)
    assert stopped.returncode != 0
    assert "chronos-distill: stopped by SIGTERM at step 5: checkpoint-5 written" in stopped.stderr
    assert "chronos-distill: stopped by a signal on another rank at step 5: checkpoint-5 written" in stopped.stderr
    checkpoint = Path(last_complete_checkpoint(tmp_path / "stopped" / "checkpoints"))
    assert checkpoint.name == "checkpoint-5"
    assert {p.name for p in checkpoint.glob("rng_state_*.pth")} == {"rng_state_0.pth", "rng_state_1.pth"}
    resumed = _torchrun("-m", "chronos_distill", *run(tmp_path / "stopped", "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _assert_same_weights(straight, tmp_path / "stopped")


def test_torchrun_restarts_a_killed_worker_with_the_same_command_and_the_run_ends_as_an_uninterrupted_one(
        two_process_run, tmp_path):
    """Issue 49: under ``torchrun --max-restarts 1`` rank 1 is killed (SIGKILL) as step 8 begins, 3 steps after
    checkpoint-5. torchrun restarts both workers with the same command (``--resume auto``), which continues from
    checkpoint-5, trains steps 6 and 7 again, finishes at step 10 with the uninterrupted run's weights, and records
    the restart in the run record and the card."""
    run, straight = two_process_run
    out = tmp_path / "elastic"
    elastic = _torchrun(str(SIGNALLING_WORKER), "8", "SIGKILL", *run(out, "--save-steps", "5", "--resume", "auto"),
                        signal_rank=1, max_restarts=1)
    assert elastic.returncode == 0, elastic.stderr[-3000:]
    _assert_same_weights(straight, out)
    record = json.loads((out / "model" / "distillation.json").read_text())
    assert record["training"]["resumed_from"].endswith("checkpoint-5")
    [restart] = record["training"]["restarts"]
    assert (restart["from_step"], restart["reached_step"], restart["steps_redone"]) == (5, 7, 2)
    assert restart["torchelastic_restart_count"] == 1
    assert "- restarted once: from step 5 (2 steps redone)" in (out / "model" / "README.md").read_text()


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("damage", ["truncated model.safetensors", "truncated optimizer.pt", "missing scheduler.pt"])
def test_resume_skips_a_damaged_newest_checkpoint_for_the_older_good_one(teacher_dir, table, tmp_path, caplog, damage):
    from chronos_distill import distill

    options = dict(teacher=teacher_dir, train_data=table, prediction_length=PREDICTION_LENGTH, output=str(tmp_path / "run"),
                   save_steps=2, batch_size=8, student_d_model=32, student_num_heads=2, student_d_ff=64)
    distill(max_steps=4, **options)
    newest = tmp_path / "run" / "checkpoints" / "checkpoint-4"
    kind, name = damage.split(" ")
    if kind == "missing":
        (newest / name).unlink()
    else:
        _truncate(newest / name)
    with caplog.at_level("WARNING"):
        resumed = distill(max_steps=6, resume=True, **options)
    assert resumed.record["training"]["resumed_from"].endswith("checkpoint-2")
    assert resumed.record["training"]["steps"] == 6
    warning = next(r.getMessage() for r in caplog.records if "skipping checkpoint" in r.getMessage())
    assert "checkpoint-4" in warning and f"{name} is {'missing' if kind == 'missing' else ''}" in warning


def test_resume_with_no_good_checkpoint_says_so_in_one_line(teacher_dir, table_csv, tmp_path):
    from chronos_distill.cli import main

    base = ["distill", "--teacher", teacher_dir, "--train-data", table_csv, "--prediction-length", str(PREDICTION_LENGTH),
            "--output", str(tmp_path / "run"), "--save-steps", "2", "--batch-size", "8", "--student-d-model", "32",
            "--student-num-heads", "2", "--student-d-ff", "64"]
    assert main([*base, "--max-steps", "4"]) == 0
    for checkpoint in (tmp_path / "run" / "checkpoints").glob("checkpoint-*"):
        _truncate(checkpoint / "model.safetensors")
    done = subprocess.run([sys.executable, "-m", "chronos_distill", *base, "--max-steps", "6", "--resume"],
                          capture_output=True, text=True, timeout=300)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "no checkpoint in" in lines[0] and "checkpoint-4: model.safetensors is truncated" in lines[0]
    assert "checkpoint-2: model.safetensors is truncated" in lines[0] and "--overwrite" in lines[0]


def test_a_damaged_model_folder_is_one_line_in_evaluate_predict_and_export_onnx(teacher_dir, table_csv, tmp_path):
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(teacher_dir, damaged)
    _truncate(damaged / "model.safetensors", 0.7)
    commands = {
        "evaluate": ["evaluate", "--model", str(damaged), "--data", table_csv, "--prediction-length", "12",
                     "--output", str(tmp_path / "eval")],
        "predict": ["predict", "--model", str(damaged), "--data", table_csv, "--prediction-length", "12",
                    "--output", str(tmp_path / "forecasts.csv")],
        "export-onnx": ["export-onnx", str(damaged), "--output", str(tmp_path / "m.onnx")],
    }
    for name, argv in commands.items():
        done = subprocess.run([sys.executable, "-m", "chronos_distill", *argv], capture_output=True, text=True,
                              timeout=300)
        lines = [line for line in done.stderr.splitlines() if line.strip() and "Loading weights" not in line]
        assert done.returncode == 2 and len(lines) == 1, (name, done.stderr[-2000:])
        assert "model.safetensors is truncated" in lines[0] and str(damaged) in lines[0], (name, lines[0])


@pytest.fixture
def small_disk(tmp_path):
    """A 1.2 MB tmpfs (room for one tiny checkpoint and the export, not for a second checkpoint), and a way to
    free space: remount it larger. Where no tmpfs can be mounted (not root), torch.save is patched to fail as
    torch fails on a full disk, once the folder holds one checkpoint."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(folder)],
                             capture_output=True).returncode == 0
    state = {"full": True}

    def free_space():
        state["full"] = False
        if mounted:
            subprocess.run(["mount", "-o", "remount,size=8m", str(folder)], check=True)

    yield folder, mounted, state, free_space
    if mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_disk_is_one_line_keeps_the_export_and_resume_continues_once_space_is_free(
        teacher_dir, table, small_disk, monkeypatch):
    from chronos_distill import distill
    from chronos_distill.errors import DistillError

    folder, mounted, state, free_space = small_disk
    if not mounted:
        original = torch.save

        def save_on_a_full_disk(obj, f, *args, **kwargs):
            if state["full"] and "checkpoint-4" in str(f):
                raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4352 vs 4240")
            return original(obj, f, *args, **kwargs)

        monkeypatch.setattr(torch, "save", save_on_a_full_disk)
    options = dict(teacher=teacher_dir, train_data=table, prediction_length=PREDICTION_LENGTH,
                   output=str(folder / "run"), save_steps=2, batch_size=8, student_d_model=32, student_num_heads=2,
                   student_d_ff=64)
    distill(max_steps=2, **options)
    exported = (folder / "run" / "model" / "model.safetensors").read_bytes()
    with pytest.raises(DistillError) as caught:
        distill(max_steps=4, resume=True, **options)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"no space left writing {folder / 'run' / 'checkpoints'}: ")
    assert " free, the write needs about " in message and "checkpoint-2" in message
    assert message.endswith("Free space, then run the same command with --resume")
    assert not (folder / "run" / "checkpoints" / "checkpoint-4").exists()  # the half checkpoint is gone
    assert (folder / "run" / "model" / "model.safetensors").read_bytes() == exported  # the export is untouched
    free_space()
    resumed = distill(max_steps=4, resume=True, **options)
    assert resumed.record["training"]["resumed_from"].endswith("checkpoint-2")
    assert resumed.record["training"]["steps"] == 4


def test_a_run_warns_before_its_first_checkpoint_when_two_would_not_fit(tmp_path, caplog):
    import shutil

    from chronos_distill.training.disk import warn_if_short_of_space

    free = shutil.disk_usage(tmp_path).free
    with caplog.at_level("WARNING"):
        warn_if_short_of_space(tmp_path / "checkpoints", checkpoint_bytes=free)  # two need twice what is free
        warn_if_short_of_space(tmp_path / "checkpoints", checkpoint_bytes=1024)  # plenty of room: silent
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "the next two checkpoints need about" in warnings[0]
    assert str(tmp_path / "checkpoints") in warnings[0]
