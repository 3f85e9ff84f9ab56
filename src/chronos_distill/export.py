"""Export: the student as a plain Chronos-2 checkpoint, with its record and model card.

The output folder loads with ``Chronos2Pipeline.from_pretrained(OUTPUT)`` and needs no code of ours. Files
are written to a temporary folder beside the final ones and moved in with ``os.replace`` (atomic per
file), weights first and ``distillation.json`` last, so a crash never leaves a config that points at
half-written weights, and ``distillation.json`` exists only for a finished export.
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from chronos.chronos2 import Chronos2Model, Chronos2Pipeline

RECORD_NAME = "distillation.json"
CARD_NAME = "README.md"


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
        Chronos2Pipeline(model if on_cpu_in_dtype else copy.deepcopy(model).cpu().to(dtype)).save_pretrained(staging)
        for name, text in (text_files or {}).items():
            (staging / name).write_text(text)
        for name, content in (json_files or {}).items():
            (staging / name).write_text(json.dumps(content, indent=2, default=str) + "\n")
        last = [*(text_files or {}), *(json_files or {})]
        first = sorted(p.name for p in staging.iterdir() if p.name not in last and p.name != "config.json")
        umask = os.umask(0)
        os.umask(umask)
        for name in [*first, "config.json", *last]:
            os.chmod(staging / name, 0o666 & ~umask)  # staged files may be private (mkstemp); published ones are not
            os.replace(staging / name, output / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output


def write_json_atomic(path: Path, content: Any) -> None:
    """Write JSON to ``path`` through a temporary file in the same folder and ``os.replace``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    with os.fdopen(fd, "w") as handle:
        json.dump(content, handle, indent=2, default=str)
        handle.write("\n")
    os.replace(tmp, path)


def model_card(record: dict[str, Any]) -> str:
    """A short README.md for the exported student."""
    teacher, student, losses = record["teacher"], record["student"], record["final_losses"]
    data = record["data"]["train"]
    s = student["config"]
    lines = [
        "---",
        "library_name: chronos-forecasting",
        "pipeline_tag: time-series-forecasting",
        "tags: [chronos-2, knowledge-distillation, chronos-distill]",
        "---",
        "",
        "# Chronos-2 student distilled with chronos-distill",
        "",
        f"A Chronos-2 model ({student['parameters']:,} parameters; d_model {s['d_model']}, {s['num_layers']} layers, "
        f"{s['num_heads']} heads, d_ff {s['d_ff']}) distilled from the teacher `{teacher['source']}` "
        f"({teacher['parameters']:,} parameters; d_model {teacher['config']['d_model']}, "
        f"{teacher['config']['num_layers']} layers).",
        "",
        "It is a plain `Chronos2Model` and loads without chronos-distill:",
        "",
        "```python",
        "from chronos import Chronos2Pipeline",
        "pipeline = Chronos2Pipeline.from_pretrained('PATH_TO_THIS_FOLDER')",
        "forecast = pipeline.predict_df(df, prediction_length=" + str(record["options"]["prediction_length"]) + ")",
        "```",
        "",
        "## Distillation",
        "",
        f"- objective: `{record['loss']['output_loss']}`, alpha {record['loss']['alpha']} "
        f"(distill weight {record['loss']['distill_weight']}, truth weight {record['loss']['hard_weight']})",
        f"- data: {data['n_series']} series, {data['n_observations']:,} observations from {data['source']}",
        f"- {record['training']['steps']} steps, batch size {record['options']['batch_size']}, "
        f"learning rate {record['options']['learning_rate']}, {record['training']['train_runtime_s']:.0f} s on "
        f"{record['training']['device']}",
        "- final losses (normalised space): "
        + ", ".join(f"{k} {v:.4f}" for k, v in losses.items() if isinstance(v, (int, float))),
        "",
        "All options are in `distillation.json`.",
        "",
    ]
    return "\n".join(lines)
