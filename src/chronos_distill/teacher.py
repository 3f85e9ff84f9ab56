"""Loading the teacher: any Chronos-2 checkpoint, by hub id or local folder, frozen."""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from chronos.chronos2 import Chronos2Model, Chronos2Pipeline

from .errors import CheckpointError

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
        raise CheckpointError(f"{role} folder {folder}: config.json is not valid JSON ({exc})") from None
    architectures = config.get("architectures") or []
    if "chronos_config" not in config or "Chronos2Model" not in architectures:
        found = architectures or config.get("model_type") or "unknown"
        raise CheckpointError(
            f"{role} folder {folder} is not a Chronos-2 checkpoint: its config.json describes {found}, "
            "expected architectures ['Chronos2Model'] with a chronos_config"
        )
    if not any((folder / name).is_file() for name in _WEIGHT_FILES):
        if any(folder.glob("*.bin")) or any(folder.glob("*.pt")):
            # pickled weights can run code when loaded: only safetensors are read from user folders
            raise CheckpointError(
                f"{role} folder {folder} holds pickled weights (*.bin / *.pt) but no model.safetensors; "
                "chronos-distill only loads safetensors: convert it with "
                "Chronos2Model.from_pretrained(folder).save_pretrained(folder) in an environment you trust"
            )
        raise CheckpointError(f"{role} folder {folder} has a Chronos-2 config.json but no weights (model.safetensors)")


#: Name of the bundled reference teacher (see ``reference_teacher/README.md``).
REFERENCE = "reference"
REFERENCE_FOLDER = Path(__file__).parent / "reference_teacher"


def resolve_teacher(name_or_path: str | Path) -> str:
    """The local folder of ``"reference"`` (the bundled teacher); any other name or path is returned as is."""
    if str(name_or_path) != REFERENCE:
        return str(name_or_path)
    if not (REFERENCE_FOLDER / "config.json").is_file():
        raise CheckpointError(f"the bundled reference teacher is missing from {REFERENCE_FOLDER}; reinstall chronos-distill")
    return str(REFERENCE_FOLDER)


def load_teacher(name_or_path: str | Path, device: str | torch.device = "cpu", role: str = "teacher") -> Chronos2Model:
    """Load a Chronos-2 model with ``Chronos2Pipeline.from_pretrained`` and freeze it.

    ``"reference"`` is the bundled reference teacher. The teacher is in eval mode, fp32 (whatever dtype it
    is stored in), with ``requires_grad=False`` on every parameter; it is never handed to
    an optimizer. A local folder is checked first so that a wrong folder gets a clear message; anything that
    is not a local path but looks like a hub id is fetched from the Hugging Face Hub.
    """
    name = resolve_teacher(name_or_path)
    path = Path(name).expanduser()
    if path.exists():
        check_chronos2_folder(path, role)
        source = str(path)
    elif _HUB_ID.match(name) and not name.startswith("."):
        source = name
    else:
        raise CheckpointError(f"{role} folder {name} does not exist")

    try:
        pipeline = Chronos2Pipeline.from_pretrained(source)
    except CheckpointError:
        raise
    except Exception as exc:  # corrupted weights, no network, unknown hub id, ...
        where = "folder" if path.exists() else "hub id (no local folder of that name exists)"
        raise CheckpointError(f"could not load {role} {where} {name}: {type(exc).__name__}: {exc}") from None
    return freeze(pipeline.model).to(device)


def freeze(model: Chronos2Model) -> Chronos2Model:
    """Eval mode, fp32, no gradients: the teacher only ever runs forward."""
    model = model.float().eval()
    model.requires_grad_(False)
    return model
