"""The ensemble benchmark's report (bench/ensemble.py): its targets are computed from the table, met or not."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import ensemble  # noqa: E402


def results(auto_student: list[float], auto_mase: list[float] | None = None) -> dict:
    teachers = {"reference-v0": 0.80, "reference-v1": 0.78, "reference-v2": 0.76, "AutoETS": 0.90,
                "v0+v1+v2 (equal)": 0.755, "v0+v1+v2 (auto)": 0.75, "v2+AutoETS (equal)": 0.77}

    def seeds(values, mase=None):
        return {str(k): {"WQL": v, "MASE": (mase or values)[k], "parameters": 4_000_000} for k, v in enumerate(values)}

    return {"command": "ensemble.py", "steps": 2, "batch_size": 8, "cache_batches": 2, "seeds": [0, 1, 2],
            "datasets": ["m1_yearly"], "teachers": {k: {"WQL": v, "MASE": v} for k, v in teachers.items()},
            "teacher_parameters": {"reference-v0": 14_000_000, "reference-v1": 14_000_000,
                                   "reference-v2": 14_000_000, "AutoETS": None},
            "auto_weights": {"reference-v0": 0.2, "reference-v1": 0.3, "reference-v2": 0.5},
            "students": {"from v2": seeds([0.770, 0.772, 0.771]), "from v0+v1+v2 (auto)": seeds(auto_student, auto_mase)},
            "not_run": ["from v2+AutoETS seed 0"], "latency": {}}


def test_the_targets_are_read_off_the_table():
    lines = ensemble.targets(results([0.752, 0.753, 0.751]))
    assert ("v0+v1+v2 (equal) better than its best member (reference-v2, 0.7600): met (0.7550); on MASE met (0.7550) "
            "against 0.7600") in lines
    assert any(line.startswith("v2+AutoETS (equal) better than its best member (reference-v2, 0.7600): missed (0.7700)")
               for line in lines)
    beats = next(line for line in lines if line.startswith("student from v0+v1+v2 (auto) beats student from v2"))
    assert beats.startswith("student from v0+v1+v2 (auto) beats student from v2 by more than 2 std: met")
    assert "student from v0+v1+v2 (auto) within 2% of v0+v1+v2 (auto): met (1.003x); on MASE met (1.003x)" in lines
    assert any(line.startswith("student from v0+v1+v2 (auto) beats every single teacher") and ": yes" in line
               for line in lines)


def test_a_gap_inside_the_seed_noise_is_a_miss():
    lines = ensemble.targets(results([0.74, 0.80, 0.77]))  # mean 0.77, std 0.03: level with from v2
    assert any(line.startswith("student from v0+v1+v2 (auto) beats student from v2 by more than 2 std: missed")
               for line in lines)
    assert any(": no (" in line for line in lines if "beats every single teacher" in line)
    text = ensemble.markdown(results([0.74, 0.80, 0.77]))
    assert "## Targets" in text and "Not run" in text and "from v2+AutoETS seed 0" in text


def test_a_win_on_wql_that_reverses_on_mase_says_so():
    # better than the v2 student on WQL by far more than the noise, worse on MASE
    lines = ensemble.targets(results([0.752, 0.753, 0.751], auto_mase=[0.80, 0.801, 0.799]))
    beats = next(line for line in lines if line.startswith("student from v0+v1+v2 (auto) beats student from v2"))
    assert ": met (gap +0.0190" in beats and "on MASE missed (gap -0.0290" in beats
    assert "student from v0+v1+v2 (auto) within 2% of v0+v1+v2 (auto): met (1.003x); on MASE missed (1.067x)" in lines


def test_a_student_is_retrained_when_its_statistical_teacher_used_another_season():
    # what the first version of the benchmark recorded (one season of 12 for every window), and what it does now
    assert ensemble.recorded_season({"ensemble": {"season_length": 12}}) == 12
    assert ensemble.recorded_season({"ensemble": {"season_length": {"per_series": {"1": 5, "12": 9}}}}) == "per series"
    assert ensemble.recorded_season({"ensemble": None}) is None
    old, new = {"ensemble": {"season_length": 12}}, {"ensemble": {"season_length": {"per_series": {"12": 9}}}}
    with_ets, chronos_only = ["reference-v2", ensemble.STATISTICAL], ["reference-v2"]
    assert not ensemble.reusable(old, with_ets, None) and ensemble.reusable(new, with_ets, None)
    assert ensemble.reusable(old, with_ets, 12) and not ensemble.reusable(new, with_ets, 12)
    assert ensemble.reusable({"ensemble": None}, chronos_only, None)  # no statistical teacher: season moot
