"""The README's main command: the embedded demo runs end to end on the bundled teacher and M1/M3."""

from __future__ import annotations

import json
import math

import pytest
from chronos.chronos2 import Chronos2Pipeline

from chronos_distill import resolve_teacher
from chronos_distill.cli import main
from chronos_distill.evaluation.metrics import PUBLISHED_M3_SEASONAL_NAIVE

pytestmark = pytest.mark.slow


def test_demo_distills_the_reference_teacher_and_reports(tmp_path, capsys):
    assert main(["demo", "--output", str(tmp_path), "--steps", "20"]) == 0
    printed = capsys.readouterr().out
    words = next(line for line in printed.splitlines() if "distance" in line).split()
    before, after = float(words[words.index("before") + 1]), float(words[words.index("after") + 1])
    assert math.isfinite(before) and math.isfinite(after)
    # the student learned: 20 steps bring its forecasts at least 10% closer to the teacher's on unseen series
    # (measured: 11.21 -> 8.87, a factor 0.79; an untrained student stays at its starting distance)
    assert after <= 0.9 * before, (before, after)
    assert f"WQL  seasonal naive {PUBLISHED_M3_SEASONAL_NAIVE['monthly']['WQL']:.4f}" in printed
    assert "Lower is better" in printed
    # the printed figures are kept beside the student, with where the time went
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert f"{summary['before']['agreement']:.4f}" == f"{before:.4f}" and f"{summary['after']['agreement']:.4f}" == f"{after:.4f}"
    assert summary["steps"] == 20 and summary["n_series"] == 1428
    seconds = summary["seconds"]
    assert 0 < seconds["training_steps"] <= seconds["distill"] < seconds["total"]
    assert seconds["loading"] + seconds["distance_before"] + seconds["distill"] + seconds["scoring"] == pytest.approx(seconds["total"])
    teacher = Chronos2Pipeline.from_pretrained(resolve_teacher("reference")).model
    student = Chronos2Pipeline.from_pretrained(tmp_path / "student" / "model").model
    assert (teacher.config.d_model, student.config.d_model) == (512, 384)
    assert student.config.num_layers == teacher.config.num_layers // 2
