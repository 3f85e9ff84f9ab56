"""The two-stage benchmark (bench/two_stage.py): general students, task students that start from one, each run
kept in a results file that names what produced it and read back instead of retrained, and the report."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import common  # noqa: E402
import two_stage  # noqa: E402


def test_cells_say_how_many_seeds_they_have():
    assert two_stage.pm([1.0]) == "1.000 (1 seed)"  # never "± 0"
    assert two_stage.pm([1.0, 1.2]) == "1.000 / 1.200 (2 seeds)"
    assert two_stage.pm([1.0, 1.1, 1.2]) == "1.100 ± 0.100"


@pytest.mark.slow
def test_two_stages_train_once_record_their_provenance_and_report(teacher_dir, tmp_path, monkeypatch):
    common = ["--teacher", teacher_dir, "--steps", "2", "--save-steps", "1", "--cache-batches", "2",
              "--suite-series", "2", "--batch-size", "8", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]
    assert two_stage.main(["--stage", "general", "--rungs", "32x1", "--seeds", "0", *common]) == 0
    # a lever run: pruned start, truth-only, each named in the run
    assert two_stage.main(["--stage", "general", "--rungs", "48x1", "--seeds", "0", "--general-init", "pruned",
                           "--general-alpha", "0", *common]) == 0
    # issue 48's real contexts: M3's training series less the validation series as the corpus, named in the run
    assert two_stage.main(["--stage", "general", "--rungs", "32x1", "--seeds", "0", "--general-real-share", "0.5",
                           *common]) == 0
    real = json.loads(two_stage.results_file(tmp_path / "out", "general", "32x1-c2-m3real0.5", 0).read_text())
    assert real["options"]["general_real_share"] == 0.5 and real["options"]["general"]
    corpus = pd.read_parquet(tmp_path / "runs" / "corpus" / "m3-training-less-validation.parquet")
    from chronos_distill.data.competition import holdout_series_ids

    held_out = holdout_series_ids(("M1", "M3"), two_stage.VALIDATION_SHARE)
    assert corpus["item_id"].str.startswith("M3/").all() and not set(corpus["item_id"]) & held_out
    assert corpus["item_id"].nunique() == 3003 - sum(i.startswith("M3/") for i in held_out)
    small = json.loads(two_stage.results_file(tmp_path / "out", "general", "32x1-c2", 0).read_text())
    wider = json.loads(two_stage.results_file(tmp_path / "out", "general", "48x1-c2-truth-only-pruned", 0).read_text())
    assert small["student_config"]["d_model"] == 32 and wider["student_config"]["d_model"] == 48
    assert wider["options"]["student_init"] == "pruned" and wider["options"]["alpha"] == 0
    assert (small["teacher_cache"]["reused"], wider["teacher_cache"]["reused"]) == (False, True)  # labelled once
    assert small["options"]["general"] and "prediction_length" not in small["options"]  # every horizon
    assert set(small["suite"]) == {"18", "64"} and small["unseen"]["vs_teacher"] > 0
    prov = small["provenance"]
    assert len(prov["commit"]) == 40 and prov["teacher"]["weights_sha256"] and "--stage general" in prov["command"]

    task = ["--stage", "task", "--variants", "KD,two-stage", "--start", "32x1-c2:0", "--seeds", "0", *common]
    assert two_stage.main(task) == 0
    started = json.loads(two_stage.results_file(tmp_path / "out", "task", "two-stage", 0).read_text())
    scratch = json.loads(two_stage.results_file(tmp_path / "out", "task", "KD", 0).read_text())
    assert started["started_from"]["name"] == "model" and started["student_config"]["d_model"] == 32
    assert started["start"] == "general 32x1-c2:0"
    assert scratch["started_from"] is None and scratch["student_config"]["d_model"] == 384
    assert [step for step, _ in started["curve"]["validation"]] == [1, 2]

    def no_training(options):
        raise AssertionError(f"retrained {options['output']}")

    import harness

    monkeypatch.setattr(harness, "train_in_subprocess", no_training)  # where a general or task run is trained
    monkeypatch.setattr(two_stage, "train_in_subprocess", no_training)  # where a curve is
    assert two_stage.main(task) == 0  # read back from the results files
    assert two_stage.main(["--report", *common]) == 0
    text = (tmp_path / "out" / "two_stage.md").read_text()
    assert "| 32x1-c2 |" in text and "| two-stage | general 32x1-c2:0 | 0 |" in text and "(1 seed)" in text and "±" not in text
    assert (tmp_path / "out" / "two_stage_curves.png").read_bytes()[:4] == b"\x89PNG"


def test_a_resumed_runs_step_time_counts_only_the_steps_it_ran():
    # 500 steps run after checkpoint-1500 of a 2000-step run: not 2000 steps in 265 s
    training = {"train_runtime_s": 265.0, "steps": 2000, "resumed_from": "runs/x/checkpoints/checkpoint-1500"}
    assert common.seconds_per_step(training) == pytest.approx(0.53)
    assert common.seconds_per_step({**training, "resumed_from": None}) == pytest.approx(0.1325)


def test_the_skill_kept_is_the_share_of_the_teachers_skill_over_seasonal_naive_by_hand():
    """Two toy sets: seasonal naive 0.2 and 0.5, teacher 0.1 and 0.25 (half of naive's error on both: skill 0.5),
    student 0.15 and 0.3125 (3/4 and 5/8 of naive's: geometric mean sqrt(15/32), skill 1 - sqrt(15/32))."""
    naive = {"a": 0.2, "b": 0.5}
    teacher = {"a": 0.1, "b": 0.25}
    student = {"a": 0.15, "b": 0.3125}
    by_hand = (1 - (15 / 32) ** 0.5) / 0.5
    assert common.skill(teacher, naive) == pytest.approx(0.5)
    assert common.skill_kept(student, teacher, naive) == pytest.approx(by_hand)
    unseen = {"scores": {name: {"WQL": value} for name, value in student.items()}, "teacher_wql": teacher,
              "seasonal_naive_wql": naive}
    assert common.unseen_skill_kept(unseen) == pytest.approx(by_hand)
    # a wrong seasonal naive (one set's naive swapped for the teacher's) gives another figure
    assert common.unseen_skill_kept({**unseen, "seasonal_naive_wql": {"a": 0.1, "b": 0.5}}) != pytest.approx(by_hand)


def test_a_pruned_curve_is_reported_per_step_over_the_seeds_recorded_there():
    """The pruned start's curve (issue 48): one row per scored step; a cell is the mean ± std of the seeds that
    reached that step, else each seed's value and how many; skill kept read off each point's per-set scores."""

    def scored(student: float, crossing: float = 0.02) -> dict:
        # one set, seasonal naive 2.0, teacher 1.0: skill kept = (1 - student / 2) / (1 - 1 / 2)
        return {"vs_teacher": student, "scores": {"s": {"WQL": student}}, "teacher_wql": {"s": 1.0},
                "seasonal_naive_wql": {"s": 2.0}, "crossing": {"rows_crossing": crossing}}

    def entry(values: dict[int, float]) -> dict:
        points = {str(step): {"unseen": scored(v), "tourism": scored(v + 0.1), "suite": {"18": {"geomean": v},
                                                                                        "64": {"geomean": v}},
                              "validation_general": {"score": v}} for step, v in values.items()}
        return {"alpha": 0.5, "points": points,
                "options": {"max_steps": 4000, "batch_size": 64, "learning_rate": 0.001, "cache_batches": 2000,
                            "save_steps": 2000}}

    curves = {"384x2@KD+truth-pruned": {"0": entry({2000: 1.0, 4000: 1.2}), "1": entry({2000: 1.1, 4000: 1.4}),
                                        "2": entry({2000: 1.2})},
              "384x2@KD": {"0": entry({2000: 9.0})}}  # a random start's curve: not in this section
    text = "\n".join(two_stage.pruned_curves_markdown(curves))
    assert text.count("## The pruned start's own curve") == 1 and "seeds 0, 1, 2" in text
    rows = [line for line in text.splitlines() if line.startswith("| 2000 |") or line.startswith("| 4000 |")]
    # step 2000: three seeds, mean 1.1 ± 0.1; skill kept (1 - v / 2) / 0.5 = 1.0, 0.9, 0.8 -> 0.900 ± 0.100
    assert rows[0].startswith("| 2000 | 1.100 ± 0.100 | 0.900 ± 0.100 | 1.200 ± 0.100 |")
    # step 4000: two seeds reached it
    assert rows[1].startswith("| 4000 | 1.200 / 1.400 (2 seeds) | 0.800 / 0.600 (2 seeds) |")
    assert rows[0].endswith("| 0.020 ± 0.000 |")


def test_the_recipe_is_matched_against_the_truth_only_control_from_the_pruned_start_counting_the_labelling():
    """Issue 48, item 6: steps-to-match of KD + truth against truth-only's best, per metric, and the compute to the
    last step both reached, the teacher's labelling counted for the recipe only."""

    def entry(alpha: float, values: dict[int, float]) -> dict:
        scored = {step: {"vs_teacher": v, "scores": {"s": {"WQL": v}}, "teacher_wql": {"s": 1.0},
                         "seasonal_naive_wql": {"s": 2.0}, "crossing": {"rows_crossing": 0.0}} for step, v in values.items()}
        points = {str(step): {"unseen": scored[step], "tourism": scored[step], "suite": {"18": {"geomean": 1.0},
                                                                                         "64": {"geomean": 1.0}},
                              "validation_general": {"score": v}} for step, v in values.items()}
        return {"alpha": alpha, "points": points, "seconds_per_step": 1.0, "teacher_cache": {"build_seconds": 3600.0},
                "options": {"max_steps": 4000, "batch_size": 64, "learning_rate": 0.001, "cache_batches": 2000,
                            "save_steps": 2000}}

    curves = {"384x2@KD+truth-pruned": {"0": entry(0.5, {2000: 1.04, 4000: 1.02})},
              "384x2@truth-only-pruned": {"0": entry(0.0, {2000: 1.20, 4000: 1.05}), "1": entry(0.0, {2000: 1.3})}}
    text = "\n".join(two_stage.pruned_curves_markdown(curves))
    assert text.count("KD + truth against the truth-only control from the pruned start, seed") == 1  # seed 0 only
    # truth-only's best M1 + M3 is 1.05 at step 4000 (4000 s); KD + truth is below it at step 2000 already, its
    # 2000 s and the 3600 s labelling counted
    assert ("- M1 + M3 WQL vs teacher: truth-only's best 1.050 at step 4000 (1.11 CPU-h); KD + truth reaches it at "
            "step 2000 (0.50x the steps; 1.56 CPU-h).") in text
    # to step 4000: 4000 s + the 3600 s labelling for the recipe, 4000 s for the control
    assert "compute to step 4000: 2.11 CPU-h for KD + truth" in text and "against 1.11 for truth-only" in text
    # a recipe that never gets there says so
    curves["384x2@KD+truth-pruned"]["0"] = entry(0.5, {2000: 1.30, 4000: 1.06})
    assert "KD + truth never reaches it within 4000 steps" in "\n".join(two_stage.pruned_curves_markdown(curves))
