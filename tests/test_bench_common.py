"""bench/common.py's way of running the command line as a user types it (demo.py, first_hour.py, fev_example.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import common  # noqa: E402


def test_the_command_line_runs_in_a_fresh_process_timed_and_a_failure_names_the_command(tmp_path):
    done, wall, cpu = common.run_cli(["--help"], cwd=tmp_path)
    assert "distill" in done.stdout and wall > 0 and cpu > 0  # the child's own CPU time, imports included
    with pytest.raises(SystemExit, match=r"^chronos-distill predict --data 'no such.csv' failed$"):
        common.run_cli(["predict", "--data", "no such.csv"], cwd=tmp_path)
