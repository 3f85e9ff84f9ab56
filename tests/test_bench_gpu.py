"""bench/gpu.py, ready for the day a GPU is lent: its dry run exercises every part on the CPU, and its FLOPs count
(what MFU divides by) is the matmul work torch's own FLOP counter sees."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from chronos.chronos2 import Chronos2Model
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import gpu  # noqa: E402
from conftest import tiny_teacher_config  # noqa: E402


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
    assert all(r["steps_per_s"] > 0 and 0 < r["mfu"] for r in results["a_step"])
    cached = results["a_step"][2]
    assert cached["flops_per_step"] < results["a_step"][1]["flops_per_step"]  # no teacher forward counted
    assert results["b_demo"]["steps"] == 2 and len(results["b_demo"]["distill_loss_curve"]) == 2
    assert results["b_demo"]["m3_monthly_wql"] > 0
    assert set(results["c_inference"]["forecasts_per_s"]) == {"teacher batch 1", "teacher batch 8",
                                                             "student batch 1", "student batch 8"}
    assert results["d_ddp"]["scaling"] > 0
    assert "Dry run on the CPU" in (tmp_path / "gpu-dry-run.md").read_text()
