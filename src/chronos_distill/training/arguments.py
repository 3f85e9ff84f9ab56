"""The ``transformers.TrainingArguments`` of every training run (distill and pretrain), built in one place.

Shared choices: cosine schedule after warmup, AdamW (fused on CUDA), fp32 on CPU and bf16 autocast on recent
GPUs, checkpoints every ``save_steps`` with optimizer / scheduler / RNG state (two kept) for ``--resume``.
``trainer_args`` (a YAML mapping, or JSON on the command line) passes any other ``TrainingArguments`` field
through, e.g. ``gradient_accumulation_steps``, ``max_grad_norm`` or ``fsdp``; it is applied last.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from chronos_distill.config import TrainingOptions


def training_arguments(checkpoint_dir: Path, options: TrainingOptions, **run_specific: Any):
    """``TrainingArguments`` of a run: the shared choices (module doc) with ``options``' fields (the
    :class:`~chronos_distill.config.TrainingOptions` of distill or pretrain), then ``run_specific`` ones, then the
    user's ``trainer_args``."""
    batch_size, trainer_args = options.batch_size, options.trainer_args
    import torch
    from transformers import TrainingArguments

    cuda = torch.cuda.is_available()
    options: dict[str, Any] = dict(
        output_dir=str(checkpoint_dir),
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size,
        learning_rate=options.learning_rate,
        lr_scheduler_type="cosine",
        # whole steps: transformers 5 also reads a float below 1 as a fraction, 4.x refused it; say what is meant
        warmup_steps=math.ceil(options.warmup_ratio * options.max_steps),
        weight_decay=options.weight_decay,
        optim="adamw_torch_fused" if cuda else "adamw_torch",
        max_steps=options.max_steps,
        logging_strategy="steps",
        logging_steps=options.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=options.save_steps,
        save_total_limit=2,
        save_only_model=False,  # optimizer, scheduler and RNG states are needed to resume
        prediction_loss_only=True,
        remove_unused_columns=False,
        seed=options.seed,
        dataloader_num_workers=options.num_workers,
        dataloader_pin_memory=cuda,
        use_cpu=not cuda,
        bf16=cuda and torch.cuda.get_device_capability()[0] >= 8,
        disable_tqdm=False,
        report_to="none",
    )
    options.update(run_specific)
    if trainer_args:  # checked when the config was built (check_trainer_args)
        options.update(trainer_args)
    return TrainingArguments(**options)
