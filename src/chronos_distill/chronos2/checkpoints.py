"""Chronos-2 checkpoints on disk, without loading them: which folder a name means (bundled teachers, run
folders, Hugging Face cache snapshots), whether a folder holds a Chronos-2 checkpoint, its ``chronos_config``,
and what a model card says about it.

This module imports no torch, so a command can check a checkpoint before it pays for the training stack;
:mod:`chronos_distill.chronos2.loading` loads what it names.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from chronos_distill.errors import CheckpointError
from chronos_distill.files import damage
from chronos_distill.training.run_folder import looks_like_a_local_path, model_folder

# A Hugging Face hub id: "name" or "owner/name" (letters, digits, '-', '_', '.').
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")


def check_chronos2_folder(folder: Path, role: str = "teacher") -> None:
    """Refuse, with a message saying why, a folder that is not a Chronos-2 checkpoint."""
    if not folder.is_dir():
        raise CheckpointError(f"{role} {folder} is not a folder")
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{role} folder {folder} is not a Chronos-2 checkpoint: it has no config.json")
    try:
        config = json.loads(config_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{role} folder {folder}: config.json is not valid JSON ({exc})") from exc
    architectures = config.get("architectures") or []
    if "chronos_config" not in config or "Chronos2Model" not in architectures:
        found = architectures or config.get("model_type") or "unknown"
        raise CheckpointError(
            f"{role} folder {folder} is not a Chronos-2 checkpoint: its config.json describes {found}, "
            "expected architectures ['Chronos2Model'] with a chronos_config"
        )
    for weights in sorted(folder.glob("*.safetensors")):
        problem = damage(weights)
        if problem is not None:
            raise CheckpointError(f"{role} folder {folder}: {weights.name} is {problem}; copy the folder again or "
                                  "export the model again")
    if not any((folder / name).is_file() for name in _WEIGHT_FILES):
        if any(folder.glob("*.bin")) or any(folder.glob("*.pt")):
            # pickled weights can run code when loaded: only safetensors are read from user folders
            raise CheckpointError(
                f"{role} folder {folder} holds pickled weights (*.bin / *.pt) but no model.safetensors; "
                "chronos-distill only loads safetensors: convert it with "
                "Chronos2Model.from_pretrained(folder).save_pretrained(folder) in an environment you trust"
            )
        raise CheckpointError(f"{role} folder {folder} has a Chronos-2 config.json but no weights (model.safetensors)")


@dataclass(frozen=True)
class BundledTeacher:
    """A Chronos-2 checkpoint shipped inside the package, selected by its alias (``--teacher reference``)."""

    alias: str
    folder: Path
    title: str
    version: str
    license: str = "apache-2.0"  # trained by this project, from scratch, on public competition data

    @property
    def name(self) -> str:
        return f"{self.title} {self.version}"


_BUNDLE = Path(__file__).parent.parent / "reference_teachers"
_V0 = BundledTeacher("reference-v0", _BUNDLE / "v0", "chronos-distill reference teacher", "v0")
_V1 = BundledTeacher("reference-v1", _BUNDLE / "v1", "chronos-distill reference teacher", "v1")
_V2 = BundledTeacher("reference-v2", _BUNDLE / "v2", "chronos-distill reference teacher", "v2")
#: The bundled teachers by alias (each folder's README.md is its model card). ``reference`` is the current one;
#: ``reference-vN`` stay available so that earlier results can be reproduced.
BUNDLED_TEACHERS = {"reference": _V2, "reference-v2": _V2, "reference-v1": _V1, "reference-v0": _V0}
#: Name of the default bundled reference teacher.
REFERENCE = "reference"

#: Licenses stated on the model cards of the public Chronos-2 checkpoints, for hub ids we know.
KNOWN_HUB_LICENSES = {
    "amazon/chronos-2": "apache-2.0",
    "autogluon/chronos-2": "apache-2.0",
    "autogluon/chronos-2-small": "apache-2.0",
    "autogluon/chronos-2-synth": "apache-2.0",
}
# .../models--ORG--NAME/snapshots/<revision>: a Hugging Face cache snapshot names its hub id
_HUB_CACHE_SNAPSHOT = re.compile(r"models--([\w.-]+)--([\w.-]+)/snapshots/[^/]+/?$")


def resolve_teacher(name_or_path: str | Path) -> str:
    """The local folder of a bundled teacher's alias (``"reference"``); any other name or path is returned as is."""
    bundled = BUNDLED_TEACHERS.get(str(name_or_path))
    if bundled is None:
        return str(name_or_path)
    if not (bundled.folder / "config.json").is_file():
        if bundled is not BUNDLED_TEACHERS[REFERENCE]:
            raise CheckpointError(
                f"the teacher {bundled.alias!r} ships only in chronos-distill's source tree (kept to reproduce earlier "
                "benchmarks), not in the wheel; install from a clone (pip install -e .) to use it, or use "
                f"--teacher {REFERENCE}")
        raise CheckpointError(f"the bundled teacher {bundled.alias!r} is missing from {bundled.folder}; reinstall chronos-distill")
    return str(bundled.folder)


@dataclass(frozen=True)
class TeacherDescription:
    """What a model card and a published record say about a teacher: never a local absolute path."""

    name: str  # a bundled teacher's name and version, a hub id, or a local folder's name
    hub_id: str | None
    license: str | None

    def to_dict(self) -> dict[str, str | None]:
        return {"name": self.name, "hub_id": self.hub_id, "license": self.license}


def describe_teacher(name_or_path: str | Path) -> TeacherDescription:
    """Name, hub id and license of a teacher given as a bundled alias, a hub id or a local folder.

    A local folder's license comes from its own model card (``README.md`` front-matter) when it has one;
    its hub id is known when it is a Hugging Face cache snapshot (``.../models--ORG--NAME/snapshots/REV``).
    """
    text = str(name_or_path)
    bundled = BUNDLED_TEACHERS.get(text)
    if bundled is not None:
        return TeacherDescription(bundled.name, None, bundled.license)
    path = Path(text).expanduser()
    if not path.exists():  # a hub id
        return TeacherDescription(text, text, KNOWN_HUB_LICENSES.get(text))
    path = path.resolve()
    snapshot = _HUB_CACHE_SNAPSHOT.search(path.as_posix())
    hub_id = f"{snapshot.group(1)}/{snapshot.group(2)}" if snapshot else None
    for candidate in BUNDLED_TEACHERS.values():
        if path == candidate.folder.resolve():
            return TeacherDescription(candidate.name, None, candidate.license)
    license_ = _card_license(path / "README.md") or KNOWN_HUB_LICENSES.get(hub_id or "")
    return TeacherDescription(hub_id or path.name, hub_id, license_)


def _card_license(card: Path) -> str | None:
    if not card.is_file():
        return None
    import yaml
    from huggingface_hub import ModelCard

    try:
        return ModelCard.load(card).data.license
    except (yaml.YAMLError, ValueError, OSError, AttributeError):  # a README that is not a model card: no license
        return None


def local_folder(name_or_path: str | Path) -> Path | None:
    """The local Chronos-2 folder named by a bundled alias, a folder or a run folder; None for anything else."""
    path = Path(resolve_teacher(name_or_path)).expanduser()
    if path.is_dir() and not (path / "config.json").exists() and (model_folder(path) / "config.json").is_file():
        return model_folder(path)  # a run folder of distill / pretrain: its model is in model/
    return path if path.exists() else None


def peek_chronos_config(name_or_path: str | Path) -> dict | None:
    """The ``chronos_config`` of a local checkpoint's config.json, read without loading weights (None when the
    checkpoint is not local, or its config is not a Chronos-2 one: :func:`load_teacher` says why)."""
    folder = local_folder(name_or_path)
    try:
        return json.loads((folder / "config.json").read_text())["chronos_config"] if folder else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class CheckpointRef:
    """A checkpoint name resolved once: the local folder it means (None for a hub id), what cards and records say
    about it, and its ``chronos_config`` when it is local (read from config.json, no weights loaded)."""

    name: str  # as the user gave it
    folder: Path | None
    description: TeacherDescription
    chronos_config: dict | None

    @property
    def source(self) -> str:
        """What to load: the local folder, or the hub id."""
        return str(self.folder) if self.folder is not None else self.name


def resolve_checkpoint(name_or_path: str | Path, role: str = "teacher") -> CheckpointRef:
    """Resolve a bundled alias, a (run) folder or a hub id once, refusing a local folder that is not a Chronos-2
    checkpoint and a name that looks like a path but does not exist, with a message that says why."""
    folder = local_folder(name_or_path)
    if folder is not None:
        check_chronos2_folder(folder, role)
    elif looks_like_a_local_path(resolve_teacher(name_or_path)) or not _HUB_ID.match(resolve_teacher(name_or_path)):
        raise CheckpointError(f"{role} folder {name_or_path} does not exist (not tried as a hub id: it looks like a path)")
    return CheckpointRef(str(name_or_path), folder, describe_teacher(name_or_path),
                         peek_chronos_config(name_or_path) if folder is not None else None)


def training_corpus(name_or_path: str | Path, _depth: int = 0) -> set[str]:
    """The competition data sets (``"M1"``, ``"M3"``) a local checkpoint was trained on, directly or through the
    teacher it was distilled from: a pretrained model's ``pretraining.json`` names its real data; a distilled
    student's ``distillation.json`` names its teacher, whose corpus it inherits (its forecasts carry what the
    teacher saw). Empty when nothing says so (a hub id, a user's own data)."""
    folder = local_folder(name_or_path)
    if folder is None or _depth > 3:
        return set()
    corpus: set[str] = set()
    try:
        pretraining = folder / "pretraining.json"
        if pretraining.is_file():
            corpus |= set(json.loads(pretraining.read_text()).get("options", {}).get("real_data") or [])
        distillation = folder / "distillation.json"
        if distillation.is_file():
            teacher = json.loads(distillation.read_text())["teacher"]["name"]
            bundled = next((t for t in BUNDLED_TEACHERS.values() if t.name == teacher), None)
            if bundled is not None:
                corpus |= training_corpus(bundled.alias, _depth + 1)
    except (OSError, ValueError, KeyError, TypeError):
        return corpus
    return corpus
