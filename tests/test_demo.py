"""The README's main command: the embedded demo runs end to end without files or network."""

from __future__ import annotations

import math

from chronos.chronos2 import Chronos2Pipeline

from chronos_distill.cli import main


def test_demo_runs_from_nothing_and_reports_before_and_after(tmp_path, capsys):
    assert main(["demo", "--output", str(tmp_path), "--teacher-steps", "2", "--student-steps", "3"]) == 0
    printed = capsys.readouterr().out
    assert "student-teacher distance  before" in printed
    teacher = Chronos2Pipeline.from_pretrained(tmp_path / "teacher").model
    student = Chronos2Pipeline.from_pretrained(tmp_path / "student").model
    assert (teacher.config.d_model, student.config.d_model) == (512, 384)
    assert student.config.num_layers == teacher.config.num_layers // 2
    words = next(line for line in printed.splitlines() if "distance" in line).split()
    before, after = float(words[words.index("before") + 1]), float(words[words.index("after") + 1])
    assert math.isfinite(before) and math.isfinite(after)
