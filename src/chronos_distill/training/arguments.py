"""The ``transformers.TrainingArguments`` of every training run (distill and pretrain), built in one place.

Shared choices: cosine schedule after warmup, AdamW (fused on CUDA), fp32 on CPU and bf16 autocast on recent
GPUs, pinned memory on a GPU, checkpoints every ``save_steps`` with optimizer / scheduler / RNG state (two kept) for ``--resume``.
``trainer_args`` (a YAML mapping, or JSON on the command line) passes any other ``TrainingArguments`` field
through, e.g. ``gradient_accumulation_steps``, ``max_grad_norm`` or ``fsdp``; it is applied last.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from chronos_distill.config import TrainingOptions
from chronos_distill.config.options import TRAINING_ARGUMENT_FIELDS
from chronos_distill.errors import ConfigError, one_line

#: The choices every run makes where transformers' defaults differ, whatever the device (a
#: :class:`~chronos_distill.distillation.distillation_config.DistillationConfig` defaults to them too).
SHARED_CHOICES: dict[str, Any] = dict(
    lr_scheduler_type="cosine",
    logging_strategy="steps",
    logging_first_step=True,
    save_strategy="steps",
    save_total_limit=2,
    save_only_model=False,  # optimizer, scheduler and RNG states are needed to resume
    prediction_loss_only=True,
    remove_unused_columns=False,
    disable_tqdm=False,
)


#: The ``TrainingArguments`` fields whose value a run chooses when the user leaves them unset: by the device
#: (:func:`training_argument_values`: optimizer, pinned memory, CPU, bf16) or by the run
#: (``distill_training_arguments``: validation, best checkpoint, TensorBoard, exact resume, DDP). A
#: :class:`~chronos_distill.distillation.distillation_config.DistillationConfig` defaults each to None, "the run's
#: choice", so that a value the user sets (even transformers' own default, ``bf16=False``) is the value used.
RUN_CHOSEN = ("optim", "dataloader_pin_memory", "accelerator_config", "use_cpu", "bf16", "report_to",
              "eval_strategy", "load_best_model_at_end", "metric_for_best_model", "greater_is_better", "label_names",
              "ignore_data_skip", "ddp_find_unused_parameters")


def option_value(option: str, field: str, options: TrainingOptions) -> Any:
    """The value ``TrainingArguments`` field ``field`` takes from training option ``option``
    (:data:`~chronos_distill.config.options.TRAINING_ARGUMENT_FIELDS`)."""
    if field == "warmup_steps":
        # whole steps: transformers 5 also reads a float below 1 as a fraction, 4.x refused it; say what is meant
        return math.ceil(options.warmup_ratio * options.max_steps)
    return getattr(options, option)


def training_arguments(checkpoint_dir: Path, options: TrainingOptions, **run_specific: Any):
    """``TrainingArguments`` of a run on this machine: :func:`training_argument_values` on a GPU when one is
    visible (bf16 on compute capability 8 and up), else on the CPU."""
    import torch
    from transformers import TrainingArguments

    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.get_device_capability()[0] >= 8
    values = training_argument_values(checkpoint_dir, options, cuda=cuda, bf16=bf16, **run_specific)
    unknown = sorted(set(values) - {f.name for f in dataclasses.fields(TrainingArguments) if f.init})
    if unknown:  # only with another transformers than the one the option check lists (training_arguments_fields)
        raise ConfigError(f"option `trainer_args`: {unknown} are not transformers.TrainingArguments fields")
    try:
        return TrainingArguments(**values)
    except (ValueError, ImportError) as exc:  # transformers' own checks (e.g. fp16 without a GPU): one line
        raise ConfigError("option `trainer_args`: transformers.TrainingArguments refuses these settings: "
                          f"{one_line(exc)}") from exc


def training_argument_values(checkpoint_dir: Path, options: TrainingOptions, *, cuda: bool, bf16: bool,
                             **run_specific: Any) -> dict[str, Any]:
    """The ``TrainingArguments`` fields of a run: the shared choices (module doc) with ``options``' fields (the
    :class:`~chronos_distill.config.TrainingOptions` of distill or pretrain), the device's (``cuda``: fused AdamW,
    pinned memory; ``bf16`` autocast), then ``run_specific`` ones, then the user's
    ``trainer_args``."""
    from transformers import TrainingArguments

    fields = {f.name for f in dataclasses.fields(TrainingArguments)}  # the installed class's (warmup_ratio: 4.x)
    values: dict[str, Any] = dict(
        output_dir=str(checkpoint_dir),
        **{field: option_value(option, field, options) for option, names in TRAINING_ARGUMENT_FIELDS.items()
           for field in names if field in fields},
        optim="adamw_torch_fused" if cuda else "adamw_torch",
        dataloader_pin_memory=cuda,
        use_cpu=not cuda,
        bf16=bf16,
        report_to="none",
        **SHARED_CHOICES,
    )
    values.update(run_specific)
    if options.trainer_args:  # checked when the config was built (check_trainer_args)
        values.update(options.trainer_args)
    return values
