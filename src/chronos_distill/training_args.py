"""The ``transformers.TrainingArguments`` of every training run (distill and pretrain), built in one place.

Shared choices: cosine schedule after warmup, AdamW (fused on CUDA), fp32 on CPU and bf16 autocast on recent
GPUs, checkpoints every ``save_steps`` with optimizer / scheduler / RNG state (two kept) for ``--resume``.
``trainer_args`` (a YAML mapping, or JSON on the command line) passes any other ``TrainingArguments`` field
through, e.g. ``gradient_accumulation_steps``, ``max_grad_norm`` or ``fsdp``; it is applied last.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError

#: Fields the run owns: where checkpoints go is part of the output-folder layout.
_NOT_PASSED_THROUGH = ("output_dir",)
#: ``TrainingArguments`` fields that a run's own options set (distill and pretrain share them). Passing one
#: through ``trainer_args`` would train with another value than the start line, the card and the record show.
OWN_OPTIONS = {
    "per_device_train_batch_size": "batch_size", "per_device_eval_batch_size": "batch_size",
    "learning_rate": "learning_rate", "warmup_ratio": "warmup_ratio", "warmup_steps": "warmup_ratio",
    "weight_decay": "weight_decay", "max_steps": "max_steps", "logging_steps": "logging_steps",
    "save_steps": "save_steps", "eval_steps": "save_steps", "seed": "seed",
    "dataloader_num_workers": "num_workers",
}


@functools.cache
def training_arguments_fields() -> frozenset[str]:
    """The field names of ``transformers.TrainingArguments``, read from its source file: importing it would
    import torch, and an option check should cost a fraction of a second."""
    spec = importlib.util.find_spec("transformers.training_args")  # transformers' package itself is lazy
    tree = ast.parse(Path(spec.origin).read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "TrainingArguments")
    return frozenset(n.target.id for n in cls.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name))


def check_trainer_args(trainer_args: Mapping[str, Any]) -> None:
    """Refuse keys that are not ``TrainingArguments`` fields, that the run owns, or that have an option."""
    unknown = sorted(set(trainer_args) - training_arguments_fields())
    if unknown:
        raise ConfigError(f"option `trainer_args`: {unknown} are not transformers.TrainingArguments fields")
    owned = sorted(set(trainer_args) & set(_NOT_PASSED_THROUGH))
    if owned:
        raise ConfigError(f"option `trainer_args`: {owned} is set by chronos-distill (the output folder's layout)")
    flagged = sorted(set(trainer_args) & set(OWN_OPTIONS))
    if flagged:
        flags = ", ".join(f"{name} -> --{OWN_OPTIONS[name].replace('_', '-')}" for name in flagged)
        raise ConfigError(f"option `trainer_args`: {flagged} have their own options ({flags}); set them there, so "
                          "that the start line, the model card and the run record show the values used")


def training_arguments(
    checkpoint_dir: Path,
    *,
    batch_size: int,
    learning_rate: float,
    warmup_ratio: float,
    weight_decay: float,
    max_steps: int,
    logging_steps: int,
    save_steps: int,
    seed: int,
    num_workers: int,
    trainer_args: Mapping[str, Any] | None = None,
    **run_specific: Any,
):
    """``TrainingArguments`` of a run: the shared choices (module doc), then ``run_specific`` ones, then the
    user's ``trainer_args``."""
    import torch
    from transformers import TrainingArguments

    cuda = torch.cuda.is_available()
    options: dict[str, Any] = dict(
        output_dir=str(checkpoint_dir),
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size,
        learning_rate=learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=warmup_ratio,  # a float below 1 is a fraction of max_steps
        weight_decay=weight_decay,
        optim="adamw_torch_fused" if cuda else "adamw_torch",
        max_steps=max_steps,
        logging_strategy="steps",
        logging_steps=logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=2,
        save_only_model=False,  # optimizer, scheduler and RNG states are needed to resume
        prediction_loss_only=True,
        remove_unused_columns=False,
        seed=seed,
        dataloader_num_workers=num_workers,
        dataloader_pin_memory=cuda,
        use_cpu=not cuda,
        bf16=cuda and torch.cuda.get_device_capability()[0] >= 8,
        disable_tqdm=False,
        report_to="none",
    )
    options.update(run_specific)
    if trainer_args:
        check_trainer_args(trainer_args)
        options.update(trainer_args)
    return TrainingArguments(**options)
