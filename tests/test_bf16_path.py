"""The GPU dtype path, run on CPU: bf16 autocast turns on by itself on CUDA (sm80+); here it is asked for with
``trainer_args={"bf16": True}``, which the Trainer runs as CPU autocast (issue 21, section 4)."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import PREDICTION_LENGTH, TINY_STUDENT
from safetensors import safe_open

import chronos_distill.distillation.trainer as trainer_module
from chronos_distill import distill


def test_a_bf16_autocast_run_keeps_fp32_weights_computes_fp32_losses_and_exports_fp32(teacher_dir, table, tmp_path,
                                                                                       monkeypatch):
    seen = {"activations": set(), "losses": set(), "teacher_params": set(), "student_params": set()}
    original = trainer_module.DistillationTrainer.compute_loss

    def traced(self, model, inputs, *args, **kwargs):
        seen["teacher_params"] |= {p.dtype for p in self.teacher.parameters()}
        seen["student_params"] |= {p.dtype for p in model.parameters()}
        return original(self, model, inputs, *args, **kwargs)

    def accumulate(self, mode, losses):
        seen["losses"] |= {v.dtype for v in losses.values()}
        return original_accumulate(self, mode, losses)

    original_accumulate = trainer_module.DistillationTrainer._accumulate
    monkeypatch.setattr(trainer_module.DistillationTrainer, "compute_loss", traced)
    monkeypatch.setattr(trainer_module.DistillationTrainer, "_accumulate", accumulate)
    linear_outputs = set()
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda module, args, out: linear_outputs.add(out.dtype) if isinstance(module, torch.nn.Linear) else None)
    try:
        result = distill(teacher=teacher_dir, train_data=table, prediction_length=PREDICTION_LENGTH,
                         output=str(tmp_path / "run"), max_steps=2, batch_size=8, logging_steps=1, feature_weight=0.1,
                         trainer_args={"bf16": True}, **TINY_STUDENT)
    finally:
        hook.remove()
    assert result.trainer.args.bf16
    assert torch.bfloat16 in linear_outputs  # autocast did run the matmuls in bf16 ...
    assert seen["teacher_params"] == {torch.float32} and seen["student_params"] == {torch.float32}  # ... on fp32 weights
    assert seen["losses"] == {torch.float32}  # and every loss term is computed in fp32
    model = result.model_dir
    assert json.loads((model / "config.json").read_text())["dtype"] == "float32"
    with safe_open(model / "model.safetensors", "pt") as exported:
        assert {exported.get_tensor(k).dtype for k in exported.keys()} == {torch.float32}


def test_on_a_gpu_a_run_takes_bf16_fused_adamw_and_pinned_memory_unless_told_otherwise():
    """The device's choices, which this machine cannot take (no GPU): what a run asks transformers for on CUDA.
    Non-blocking copies are refused, not asked for: the Trainer moves chronos' batches with a blocking copy."""
    from transformers import TrainingArguments

    from chronos_distill import ConfigError
    from chronos_distill.config import DistillConfig
    from chronos_distill.training.arguments import training_argument_values

    cfg = DistillConfig(teacher="t", train_data="d.csv", prediction_length=8, output="o")
    gpu = training_argument_values("ckpt", cfg, cuda=True, bf16=True)
    assert (gpu["optim"], gpu["dataloader_pin_memory"], gpu["use_cpu"], gpu["bf16"]) == ("adamw_torch_fused", True,
                                                                                          False, True)
    assert "accelerator_config" not in gpu
    cpu = training_argument_values("ckpt", cfg, cuda=False, bf16=False)
    assert (cpu["optim"], cpu["dataloader_pin_memory"], cpu["use_cpu"], cpu["bf16"]) == ("adamw_torch", False, True,
                                                                                          False)
    TrainingArguments(**cpu)  # every value is a field transformers takes
    told = DistillConfig(teacher="t", train_data="d.csv", prediction_length=8, output="o",
                         trainer_args={"accelerator_config": {"split_batches": True}, "bf16": False})
    told_values = training_argument_values("ckpt", told, cuda=True, bf16=True)
    # what the user says wins over the device's choices: no bf16 on a GPU that has it
    assert told_values["accelerator_config"] == {"split_batches": True}
    assert told_values["bf16"] is False
    assert (told_values["optim"], told_values["dataloader_pin_memory"], told_values["use_cpu"]) == (
        "adamw_torch_fused", True, False)  # the choices not told otherwise are still the GPU's
    for non_blocking in ({"non_blocking": True}, '{"non_blocking": true}'):
        with pytest.raises(ConfigError, match="non_blocking would do nothing"):
            DistillConfig(teacher="t", train_data="d.csv", prediction_length=8, output="o",
                          trainer_args={"accelerator_config": non_blocking})
