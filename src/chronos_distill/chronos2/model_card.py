"""Model cards (``README.md``) of the folders a user publishes, and the path scrubbing of what they publish.

A card's front-matter is what the Hugging Face Hub indexes: ``license``, ``base_model`` (the teacher's hub
id), ``datasets``, ``tags``, ``library_name`` and ``pipeline_tag``; it is written with
``huggingface_hub.ModelCardData`` so that ``huggingface_hub.ModelCard`` reads it back. Nothing published
names a local absolute path: paths are reduced to their file or folder name.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from chronos_distill.training.run_folder import looks_like_a_local_path

#: Front-matter constants of every card the project writes.
LIBRARY_NAME = "chronos-forecasting"
PIPELINE_TAG = "time-series-forecasting"
STUDENT_TAGS = ["time-series", "forecasting", "chronos-2", "knowledge-distillation", "chronos-distill"]
PRETRAINED_TAGS = ["time-series", "forecasting", "chronos-2", "chronos-distill"]

# an absolute POSIX path (or ~/...) inside a longer text, up to the next blank or quote
_ABSOLUTE_PATH = re.compile(r"(?<![\w.-])(?:~|/)[^\s'\"]*")


def file_name(value: Any) -> Any:
    """A path (str or Path) reduced to its last component; other values unchanged."""
    if isinstance(value, Path):
        return value.name
    if isinstance(value, str) and ("/" in value or value.startswith("~")) and (
            Path(value).expanduser().exists() or looks_like_a_local_path(value)):
        return Path(value.rstrip("/")).name
    return value


def scrub_local_paths(value: Any) -> Any:
    """``value`` (a JSON-like structure) with every absolute path inside its strings reduced to its last part."""
    if isinstance(value, dict):
        return {k: scrub_local_paths(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_local_paths(v) for v in value]
    if isinstance(value, Path):
        return value.name
    if isinstance(value, str):
        return _ABSOLUTE_PATH.sub(lambda m: Path(m.group(0).rstrip("/")).name or m.group(0), value)
    return value


def front_matter(*, license: str | None, base_model: str | None, datasets: list[str] | None,
                 tags: list[str]) -> str:
    from huggingface_hub import ModelCardData

    data = ModelCardData(
        license=license or "unknown",
        base_model=base_model,
        datasets=list(datasets) if datasets else None,
        tags=tags,
        library_name=LIBRARY_NAME,
        pipeline_tag=PIPELINE_TAG,
    )
    return "---\n" + data.to_yaml() + "\n---\n"


def _usage(prediction_length: int) -> list[str]:
    return [
        "It is a plain Chronos-2 model (`Chronos2Model`) and loads without chronos-distill:",
        "",
        "```python",
        "from chronos import BaseChronosPipeline",
        "pipeline = BaseChronosPipeline.from_pretrained('PATH_OR_HUB_ID_OF_THIS_FOLDER')",
        f"forecast = pipeline.predict_df(df, prediction_length={prediction_length})",
        "```",
        "",
        "In AutoGluon: `TimeSeriesPredictor(...).fit(..., hyperparameters={'Chronos2': {'model_path': "
        "'PATH_OR_HUB_ID_OF_THIS_FOLDER'}})`.",
    ]


def _number(value: Any) -> str:
    """A number as people read it: 4 significant digits (0.3, not 0.30000000000000004), None as 'not logged'."""
    return "not logged" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _losses(losses: dict[str, Any]) -> str:
    shown = [f"{k} {v:.4g}" for k, v in losses.items() if isinstance(v, (int, float))]
    return ", ".join(shown) if shown else "not logged"


def _columns(columns: dict[str, list[str]] | None) -> list[str]:
    if not columns:
        return []

    def names(key: str) -> str:
        return ", ".join(f"`{c}`" for c in columns[key]) or "none"

    return [f"- columns: target {names('target')}; past-only covariates {names('past_covariates')}; "
            f"known covariates {names('known_covariates')}"]


def student_card(record: dict[str, Any]) -> str:
    """The ``README.md`` of an exported student, from its (already path-scrubbed) ``distillation.json``."""
    teacher, student = record["teacher"], record["student"]
    options, training, loss = record["options"], record["training"], record["loss"]
    data = record["data"]["train"]
    s, t = student["config"], teacher["config"]
    exported = training["exported"]
    started = student.get("started_from")
    lines = [
        # the checkpoint whose weights the student starts from is its base model; else the teacher it was built from
        front_matter(license=record["card"]["license"],
                     base_model=(started or {}).get("hub_id") if started else teacher["hub_id"],
                     datasets=record["card"]["datasets"], tags=STUDENT_TAGS),
        "# Chronos-2 student distilled with chronos-distill",
        "",
        f"A Chronos-2 model ({student['parameters']:,} parameters; d_model {s['d_model']}, {s['num_layers']} layers, "
        f"{s['num_heads']} heads, d_ff {s['d_ff']}) distilled from the teacher **{teacher['name']}** "
        f"({teacher['parameters']:,} parameters; d_model {t['d_model']}, {t['num_layers']} layers).",
        "",
        *_usage(options["prediction_length"] or student.get("horizon") or 64),
        "",
        "## Distillation",
        "",
        f"- teacher: {teacher['name']}" + (f" (`{teacher['hub_id']}`)" if teacher["hub_id"] else "")
        + f", license {teacher['license'] or 'not known'}",
        *([f"- started from: {started['name']}" + (f" (`{started['hub_id']}`)" if started["hub_id"] else "")
           + " (its weights and config; then distilled)"] if started else []),
        *_ensemble(record.get("ensemble")),
        f"- objective: output loss `{loss['output_loss']}` in the teacher's normalised space; terms "
        + ", ".join(f"{name} {_number(term['weight'])} ({term['option']})" for name, term in loss["terms"].items()),
        (f"- data: {data['source']}, labelled by the teacher (no user data)" if not data["n_series"] else
         f"- data: {data['n_series']} series, {data['n_observations']:,} observations from {data['source']}"),
        *_columns(data.get("columns")),
        f"- {_steps(training)}, {_batch(training, options)}, learning rate {_number(options['learning_rate'])}, "
        f"{training['train_runtime_s']:.0f} s on {training['device']}" + (" in the last session" if _resumed(training)
                                                                         else ""),
        *([f"- {restarted}"] if (restarted := _restarts(training.get("restarts"))) else []),
        f"- exported weights: {exported['description']}",
        f"- losses of the exported weights: {_losses(exported['losses'])}",
        "",
        "Every option is in `distillation.json`; local paths are reduced to file names.",
        "",
    ]
    return "\n".join(lines)


def _restarts(entries: list[dict[str, Any]] | None) -> str | None:
    """``restarted twice: from step 5 (2 steps redone), from step 10 (0 steps redone)``, or None for a run that
    never restarted (``training.restarts``)."""
    if not entries:
        return None
    times = {1: "once", 2: "twice"}.get(len(entries), f"{len(entries)} times")
    return f"restarted {times}: " + ", ".join(
        f"from step {e['from_step']} (" + ("steps redone not known" if e.get("steps_redone") is None else
                                           f"{e['steps_redone']} step{'' if e['steps_redone'] == 1 else 's'} redone")
        + ")" for e in entries)


def _resumed(training: dict[str, Any]) -> bool:
    return training.get("session_steps", training["steps"]) != training["steps"]


def _steps(training: dict[str, Any]) -> str:
    """``40 steps`` (``40 steps, the last 10 after resuming`` for a resumed run)."""
    if _resumed(training):
        return f"{training['steps']} steps, the last {training['session_steps']} after resuming"
    return f"{training['steps']} steps"


def _batch(training: dict[str, Any], options: dict[str, Any]) -> str:
    """``batch size 16`` or, with accumulation or several processes, ``effective batch 64 (16 x 2 accumulation x
    2 processes)``: what one optimizer step averages over."""
    accumulation, processes = training.get("gradient_accumulation_steps", 1), training.get("processes", 1)
    if accumulation == 1 and processes == 1:
        return f"batch size {options['batch_size']}"
    return (f"effective batch {training['effective_batch_size']} ({options['batch_size']} x {accumulation} "
            f"accumulation x {processes} process{'es' if processes > 1 else ''})")


def _ensemble(ensemble: dict[str, Any] | None) -> list[str]:
    """The card's lines on an ensemble of teachers: each member with its weight, and how the weights were set."""
    if not ensemble:
        return []
    how = {"auto": "chosen by greedy ensemble selection on validation windows of the training data",
           "given": "given", "equal": "equal"}[ensemble["mode"]]
    distances = ensemble.get("member_distances") or {}
    lines = [f"- target: the weighted quantile average of {len(ensemble['teachers'])} teachers in the first teacher's "
             f"normalised space (weights {how}); feature teacher {ensemble['feature_teacher']}"]
    for member in ensemble["teachers"]:
        kind = (f"{member['parameters']:,} parameters" if member["kind"] == "chronos-2"
                else f"statsforecast {member['model']}, season length {member['season_length']}")
        distance = distances.get(member["name"])
        lines.append(f"  - {member['name']}: weight {member['weight']:.3f} ({kind})"
                     + (f", mean distance to the target {distance:.4f}" if distance is not None else ""))
    return lines


def pretrained_card(record: dict[str, Any]) -> str:
    """The ``README.md`` of a model trained from scratch by ``chronos-distill pretrain``."""
    options = record["options"]
    lines = [
        front_matter(license=options.get("license"), base_model=None, datasets=None, tags=PRETRAINED_TAGS),
        "# Chronos-2 model pretrained with chronos-distill",
        "",
        f"A Chronos-2 model ({record['parameters']:,} parameters; d_model {options['d_model']}, "
        f"{options['num_layers']} layers, {options['num_heads']} heads, d_ff {options['d_ff']}) trained from scratch "
        f"by `chronos-distill pretrain` for {record['steps']} steps ({record['train_runtime_s']:.0f} s on "
        f"{record['device']}; final training loss {_number(record['final_loss'])}) on synthetic series and the training "
        f"portions of {', '.join(options['real_data']) or 'no real data set'}."
        + (f" The run {restarted}." if (restarted := _restarts(record.get("restarts"))) else ""),
        "",
        *_usage(16),
        "",
        "Every option is in `pretraining.json`.",
        "",
    ]
    return "\n".join(lines)
