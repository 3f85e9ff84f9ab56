"""bench/gpu.py, ready for the day a GPU is lent: its dry run exercises every part on the CPU, and its FLOPs count
(what MFU divides by) is the matmul work torch's own FLOP counter sees."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from chronos.chronos2 import Chronos2Model
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import gpu  # noqa: E402
from conftest import tiny_teacher_config  # noqa: E402

from chronos_distill.chronos2.architecture import chronos2_config  # noqa: E402
from chronos_distill.chronos2.student import build_student_config  # noqa: E402
from chronos_distill.config import DistillConfig  # noqa: E402


def test_the_forward_flops_counted_from_the_shapes_are_the_matmuls_torch_counts():
    for overrides, batch, context, patches in ((dict(), 8, 128, 2), (dict(d_model=32, num_heads=2, d_ff=96), 3, 100, 4)):
        model = Chronos2Model(tiny_teacher_config(**overrides)).eval()
        # the math attention kernel, whose matmuls torch's counter sees (the fused CPU kernel is not counted)
        with sdpa_kernel(SDPBackend.MATH), torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(context=torch.randn(batch, context), group_ids=torch.arange(batch), num_output_patches=patches)
        counted = gpu.forward_flops(model.config, batch, context, patches)
        assert abs(counted - counter.get_total_flops()) <= 1e-3 * counted, (counted, counter.get_total_flops())
    # a step: the student's forward and backward (3 forwards) and the teacher's forward, which the cache spares
    teacher, student = Chronos2Model(tiny_teacher_config()), Chronos2Model(tiny_teacher_config(d_model=32, d_ff=64))
    one = gpu.forward_flops(student.config, 8, 128, 2)
    assert gpu.step_flops(teacher.config, student.config, 8, 128, 2, cached=True) == 3 * one
    assert gpu.step_flops(teacher.config, student.config, 8, 128, 2, cached=False) == \
        3 * one + gpu.forward_flops(teacher.config, 8, 128, 2)


def test_the_dry_run_runs_every_part_on_the_cpu_and_names_what_produced_it(tmp_path):
    assert gpu.main(["--dry-run", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "gpu-dry-run.json").read_text())
    assert not (tmp_path / "gpu.json").exists()  # a dry run never stands in for a real run's file
    assert results["dry_run"] and results["provenance"]["commit"]
    assert [r["variant"] for r in results["a_step"]] == ["fp32", "bf16", "bf16 + teacher cache",
                                                         "bf16 + feature + attention", "bf16 + torch.compile"]
    # (a) the FLOPs of a step, counted here from the dry run's shapes (a 64/2 teacher, a 32/1 student, batch 8,
    # context 128, 2 output patches): the student's forward and backward (3 forwards), plus the teacher's forward
    # in every variant but the cached one; MFU is those FLOPs at the measured steps/s over the measured peak
    teacher = chronos2_config(context_length=128, max_output_patches=2, **gpu.DRY.teacher)
    student = build_student_config(teacher, DistillConfig(teacher="t", train_data="x", prediction_length=32,
                                                           output="o", **gpu.DRY.student))
    with_teacher = 3 * gpu.forward_flops(student, 8, 128, 2) + gpu.forward_flops(teacher, 8, 128, 2)
    assert [(r["batch"], r["flops_per_step"]) for r in results["a_step"]] == [
        (8, with_teacher), (8, with_teacher), (8, 3 * gpu.forward_flops(student, 8, 128, 2)), (8, with_teacher),
        (8, with_teacher)]
    peak = results["device"]["peak_tflops"] * 1e12
    assert results["device"]["name"] == "cpu" and results["device"]["peak_source"].startswith("measured") and peak > 0
    for r in results["a_step"]:
        assert r["steps_per_s"] > 0 and r["steps_per_s"] * r["seconds_per_step"] == pytest.approx(1)
        assert r["mfu"] == pytest.approx(r["flops_per_step"] * r["steps_per_s"] / peak, rel=1e-9)
    # (b) two steps' losses, 16 M3 monthly series, and the CPU demo's figures as recorded in its file
    demo, cpu = results["b_demo"], json.loads((ROOT / "bench" / "results" / "demo" / "demo.json").read_text())
    assert demo["steps"] == 2 and len(demo["distill_loss_curve"]) == 2 and demo["series"] == 16
    assert (demo["first_distill_loss"], demo["last_distill_loss"]) == tuple(demo["distill_loss_curve"])
    assert (demo["cpu_fp32_first_distill_loss"], demo["cpu_fp32_last_distill_loss"], demo["cpu_fp32_m3_monthly_wql"]) \
        == (cpu["first_distill_loss"], cpu["last_distill_loss"], cpu["m3_monthly"]["student"]["WQL"])
    assert demo["m3_monthly_wql"] > 0 and demo["wql_vs_cpu"] == pytest.approx(
        demo["m3_monthly_wql"] / cpu["m3_monthly"]["student"]["WQL"], rel=1e-12)
    # (c) every model and batch timed, and 16 series of each of the three M3 subsets forecast
    assert set(results["c_inference"]["forecasts_per_s"]) == {"teacher batch 1", "teacher batch 8",
                                                             "student batch 1", "student batch 8"}
    assert results["c_inference"]["m3_series"] == 48
    # (d) samples/s are the processes' batches of 8 over 3 steps (1 warm-up + 2) per second of training, and the
    # scaling is 2 processes' over 1's
    ddp = results["d_ddp"]
    one, two = ddp["1 process(es)"], ddp["2 process(es)"]
    assert one["samples_per_s"] == pytest.approx(1 * 8 * 3 / one["train_runtime_s"], rel=1e-12)
    assert two["samples_per_s"] == pytest.approx(2 * 8 * 3 / two["train_runtime_s"], rel=1e-12)
    assert ddp["scaling"] == pytest.approx(two["samples_per_s"] / one["samples_per_s"], rel=1e-12)
    report = (tmp_path / "gpu-dry-run.md").read_text()
    assert "Dry run on the CPU" in report and f"2 processes give {ddp['scaling']:.2f}x the samples/s of one" in report
