"""Export: a Chronos-2 checkpoint as upstream publishes one, with its record and model card.

The folder loads with ``BaseChronosPipeline.from_pretrained(FOLDER)`` and ``Chronos2Pipeline.from_pretrained``
and needs no code of ours: its ``config.json`` names the pipeline class (``"chronos_pipeline_class":
"Chronos2Pipeline"``, without which ``BaseChronosPipeline`` falls back to the original T5 Chronos) and the
stored dtype under both ``dtype`` (transformers 5) and ``torch_dtype`` (transformers 4), like the upstream
checkpoints. The pipeline class travels in the model's config, so a model that ``Chronos2Pipeline.fit`` or
AutoGluon saves again keeps it.

Files are written to a temporary folder beside the final ones and moved in with ``os.replace`` (atomic per
file), weights first and the record last, so a crash never leaves a config that points at half-written
weights, and the record exists only for a finished export.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from chronos.chronos2 import Chronos2Model, Chronos2Pipeline

from chronos_distill.files import publish

RECORD_NAME = "distillation.json"
CARD_NAME = "README.md"
#: What ``BaseChronosPipeline.from_pretrained`` reads to pick the pipeline class.
PIPELINE_CLASS = "Chronos2Pipeline"


def mark_as_chronos2_pipeline(model: Chronos2Model) -> Chronos2Model:
    """Record in the model's config that it loads as a ``Chronos2Pipeline`` (kept by every later save)."""
    model.config.chronos_pipeline_class = PIPELINE_CLASS
    return model


def exportable_student(student: Chronos2Model, context_length: int, prediction_length: int) -> Chronos2Model:
    """A copy of the student with context_length / max_output_patches raised as ``Chronos2Pipeline.fit`` does."""
    model = copy.deepcopy(student).float().eval().cpu()
    chronos_config = model.chronos_config
    chronos_config.context_length = max(chronos_config.context_length, context_length)
    chronos_config.max_output_patches = max(
        chronos_config.max_output_patches, math.ceil(prediction_length / chronos_config.output_patch_size)
    )
    model.config.chronos_config = dict(chronos_config.__dict__)
    return model


def export_student(
    student: Chronos2Model,
    output: Path,
    *,
    context_length: int,
    prediction_length: int,
    record: dict[str, Any],
    model_card: str,
) -> Path:
    """Write the student, ``distillation.json`` and ``README.md`` into ``output`` atomically (see module doc)."""
    model = exportable_student(student, context_length, prediction_length)
    return save_model_atomic(model, output, text_files={CARD_NAME: model_card}, json_files={RECORD_NAME: record})


def save_model_atomic(
    model: Chronos2Model,
    output: Path,
    *,
    dtype: torch.dtype = torch.float32,
    text_files: dict[str, str] | None = None,
    json_files: dict[str, Any] | None = None,
) -> Path:
    """Save ``model`` (as ``dtype``) with extra files into ``output``, each file moved in atomically.

    Weights go first, then ``config.json``, then the text files, then the JSON files (the record that marks a
    finished export), so an interrupted save never leaves a config pointing at half-written weights.
    """
    output.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=output))
    try:
        on_cpu_in_dtype = model.device.type == "cpu" and model.dtype == dtype
        to_save = model if on_cpu_in_dtype else copy.deepcopy(model).cpu().to(dtype)
        mark_as_chronos2_pipeline(to_save)
        Chronos2Pipeline(to_save).save_pretrained(staging)
        _add_legacy_dtype(staging / "config.json", dtype)
        for name, text in (text_files or {}).items():
            (staging / name).write_text(text)
        for name, content in (json_files or {}).items():
            (staging / name).write_text(json.dumps(content, indent=2, default=str) + "\n")
        last = [*(text_files or {}), *(json_files or {})]
        first = sorted(p.name for p in staging.iterdir() if p.name not in last and p.name != "config.json")
        for name in [*first, "config.json", *last]:
            publish(staging / name, output / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output


def _add_legacy_dtype(config_file: Path, dtype: torch.dtype) -> None:
    """Write the stored dtype as both ``dtype`` and ``torch_dtype``, as upstream's checkpoints carry it."""
    config = json.loads(config_file.read_text())
    name = str(dtype).removeprefix("torch.")
    config["dtype"] = config["torch_dtype"] = name
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
