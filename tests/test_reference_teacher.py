"""The bundled reference teacher: found by name, a plain Chronos-2 checkpoint, small enough to ship."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from chronos.chronos2 import Chronos2Model, Chronos2Pipeline

from chronos_distill import load_teacher, resolve_teacher


def test_reference_resolves_to_the_bundled_folder_and_loads_frozen_in_fp32():
    folder = Path(resolve_teacher("reference"))
    assert (folder / "config.json").is_file() and (folder / "README.md").is_file()
    assert (folder / "model.safetensors").stat().st_size <= 30 * 1024 * 1024
    assert json.loads((folder / "config.json").read_text())["d_model"] == 512
    teacher = load_teacher("reference")
    assert teacher.dtype == torch.float32 and not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())
    # other names pass through untouched
    assert resolve_teacher("amazon/chronos-2") == "amazon/chronos-2"


@pytest.mark.slow
def test_the_wheel_ships_only_the_current_reference_teacher(tmp_path):
    """v0 and v1 stay in the source tree for the benchmarks; a wheel carries v2 alone (one 28 MB teacher)."""
    import os
    import shutil
    import subprocess
    import sys
    import zipfile

    root = Path(__file__).resolve().parents[1]
    source = tmp_path / "source"  # a hard-linked copy, so the build's own folders stay out of the clone
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, source / name)
    shutil.copytree(root / "src", source / "src", copy_function=os.link,
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "wheel"), str(source)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    teachers = {Path(n).parts[2] for n in names if n.startswith("chronos_distill/reference_teachers/")}
    assert teachers == {"v2"}
    assert "chronos_distill/reference_teachers/v2/model.safetensors" in names
    assert {n for n in names if n.endswith(".py")} == {
        str(p.relative_to(root / "src")) for p in (root / "src" / "chronos_distill").rglob("*.py")}
    assert wheel.stat().st_size < 40 * 1024 * 1024


def test_an_older_teacher_missing_from_a_wheel_install_is_one_line_naming_the_way_to_it(monkeypatch, tmp_path):
    from dataclasses import replace

    from chronos_distill.chronos2 import checkpoints
    from chronos_distill.errors import CheckpointError

    monkeypatch.setitem(checkpoints.BUNDLED_TEACHERS, "reference-v1",
                        replace(checkpoints.BUNDLED_TEACHERS["reference-v1"], folder=tmp_path / "absent"))
    with pytest.raises(CheckpointError, match=r"'reference-v1' ships only in chronos-distill's source tree .*"
                                              r"\(pip install -e \.\) to use it, or use --teacher reference$"):
        resolve_teacher("reference-v1")


def test_reference_loads_without_chronos_distill_and_forecasts():
    pipeline = Chronos2Pipeline.from_pretrained(resolve_teacher("reference"))
    assert type(pipeline.model) is Chronos2Model
    pipeline = Chronos2Pipeline(pipeline.model.float())
    t = torch.arange(424.0)
    series = torch.sin(t * 2 * torch.pi / 24) * 10 + 50
    quantiles, _ = pipeline.predict_quantiles([series[:400]], prediction_length=24, quantile_levels=[0.1, 0.5, 0.9])
    median = quantiles[0][0, :, 1]
    # the teacher continues a daily-in-hourly seasonal pattern far better than the series mean does
    # (v0 still misses periods shorter than a patch, see its model card)
    error = (median - series[400:]).abs().mean()
    assert error < 0.7 * (50 - series[400:]).abs().mean()


@pytest.mark.slow
def test_every_bundled_teacher_resolves_and_its_recorded_m3_scores_are_what_evaluate_gives(tmp_path):
    from chronos_distill.chronos2.checkpoints import BUNDLED_TEACHERS
    from chronos_distill.evaluation.scoring import evaluate

    assert resolve_teacher("reference-v0") == str(BUNDLED_TEACHERS["reference-v0"].folder)
    assert resolve_teacher("reference") == resolve_teacher("reference-v2") != resolve_teacher("reference-v1")
    assert {Path(f).name for f in {str(b.folder) for b in BUNDLED_TEACHERS.values()}} == {"v0", "v1", "v2"}
    folders = {str(b.folder) for b in BUNDLED_TEACHERS.values()}
    for alias, bundled in BUNDLED_TEACHERS.items():
        assert Path(resolve_teacher(alias)) == bundled.folder
    for folder in sorted(folders):
        recorded = json.loads((Path(folder) / "m3_scores.json").read_text())
        name = next(iter(recorded["models"]))
        fresh = evaluate(model=[f"{name}={folder}"], output=str(tmp_path / Path(folder).name))
        for dataset, result in recorded["datasets"].items():
            for metric in ("WQL", "MASE"):
                assert fresh["datasets"][dataset]["scores"][name][metric] == pytest.approx(
                    result["scores"][name][metric], abs=1e-4), (folder, dataset, metric)


def test_the_reference_teacher_follows_a_clean_period_12_sine_and_v0_does_not():
    """v0 forecasts about the mean of a period-12 sine (a period shorter than a 16-step patch); v1 learned to
    continue it, and the reference (v2) still does. The same check run on v0 fails."""
    from chronos_distill.evaluation.seasonality_suite import SUITE, make_case, score_case

    case = next(c for c in SUITE if c.name == "clean sine, period 12")
    data = make_case(case, n_series=8)
    reference = score_case(load_teacher("reference"), data)["vs_mean"]
    v0 = score_case(load_teacher("reference-v0"), data)["vs_mean"]
    assert reference < 0.5, reference  # MAE of the reference's median at most half the mean forecast's
    assert v0 > 0.5, v0  # ... which v0 does not achieve


def test_v2_continues_a_period_7_cycle_that_v1_forecasts_as_its_mean():
    """Period 7 with noise (the suite's case: 0.3x the amplitude, no trend), v1's worst calendar period: v1's
    median is about the mean forecast (0.96x its MAE); v2's is well below. The baselines are the two forecasts a
    model that ignores the cycle makes: the mean forecast (v1 does not beat it by 10%) and v1 itself (v2's mix,
    focus periods and few-cycle contexts, was for this; v2 must beat v1 by more than the 16 series' spread of
    v1's per-series errors allows by chance). Issue 20's target, at most seasonal naive's MAE, is not met: v2 is
    about 1.5x seasonal naive there."""
    from chronos_distill.evaluation.seasonality_suite import SUITE, make_case, score_case

    case = next(c for c in SUITE if c.name == "period 7")
    data = make_case(case, n_series=16)
    import numpy as np

    from chronos_distill.evaluation.seasonality_suite import median_forecast

    v2_model, v1_model = load_teacher("reference"), load_teacher("reference-v1")
    v2, v1 = score_case(v2_model, data)["vs_mean"], score_case(v1_model, data)["vs_mean"]
    assert v1 > 0.9, v1  # v1 forecasts about the mean: it ignores the cycle
    assert v2 < 1.0, v2  # v2 beats the mean forecast
    errors = {name: np.abs(median_forecast(m, data.contexts, data.truth.shape[1]) - data.truth).mean(axis=1)
              for name, m in (("v2", v2_model), ("v1", v1_model))}
    gain = errors["v1"] - errors["v2"]  # per series: how much closer v2 is
    assert gain.mean() > 2 * gain.std(ddof=1) / np.sqrt(len(gain)), gain  # better than v1 beyond 2 standard errors
