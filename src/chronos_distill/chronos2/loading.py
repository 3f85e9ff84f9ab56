"""Loading the teacher: any Chronos-2 checkpoint, by hub id or local folder, frozen."""

from __future__ import annotations

from pathlib import Path

import torch
from chronos.chronos2 import Chronos2Model, Chronos2Pipeline
from safetensors import SafetensorError

from chronos_distill.chronos2.checkpoints import resolve_checkpoint
from chronos_distill.errors import CheckpointError, ConfigError


def inference_device(device: str | None = None) -> torch.device:
    """Where a model forecasts: ``device`` (``cpu``, ``cuda``, ``cuda:N``), by default the GPU when one is visible.
    Asking for a GPU that is not there is a one-line :class:`~chronos_distill.errors.ConfigError`."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    chosen = torch.device(device)
    if chosen.type == "cuda" and (chosen.index or 0) >= torch.cuda.device_count():  # 0 without CUDA
        raise ConfigError(f"--device {device}: {torch.cuda.device_count()} GPU(s) visible here; use --device cpu, or "
                          "leave it out to take the GPU when there is one")
    return chosen


def load_teacher(name_or_path: str | Path, device: str | torch.device = "cpu") -> Chronos2Model:
    """The frozen teacher: :func:`load_chronos2` with messages that call it the teacher."""
    return load_chronos2(name_or_path, device, role="teacher")


def load_chronos2(name_or_path: str | Path, device: str | torch.device = "cpu", role: str = "model") -> Chronos2Model:
    """Load any Chronos-2 model (a teacher, a student, a model to evaluate) frozen for inference.

    It is loaded with ``Chronos2Pipeline.from_pretrained`` and frozen.

    ``"reference"`` is the bundled reference teacher. The teacher is in eval mode, fp32 (whatever dtype it
    is stored in), with ``requires_grad=False`` on every parameter; it is never handed to
    an optimizer. A local folder is checked first so that a wrong folder gets a clear message; anything that
    is not a local path but looks like a hub id is fetched from the Hugging Face Hub.
    """
    ref = resolve_checkpoint(name_or_path, role)
    if ref.folder is not None:
        return freeze(_load_pipeline(str(ref.folder), ref.name, role, "folder").model).to(device)
    return freeze(_load_from_hub(ref.name, role).model).to(device)


def _load_from_hub(hub_id: str, role: str) -> Chronos2Pipeline:
    """A hub id: from the local Hugging Face cache if it is there, else one short attempt at the Hub.

    With ``HF_HUB_OFFLINE=1`` only the cache is tried. Otherwise one metadata request with a 10 s timeout (no
    retries) tells whether the Hub answers, before the download, so that no network means a quick, clear error
    instead of the hub client's retries.
    """
    import os

    from huggingface_hub import model_info, snapshot_download

    patterns = ["*.json", "*.safetensors", "README.md"]
    try:
        return _load_pipeline(snapshot_download(hub_id, allow_patterns=patterns, local_files_only=True), hub_id, role,
                              "hub id (from the local cache)")
    except CheckpointError:
        raise
    except (OSError, ValueError):  # not in the cache (LocalEntryNotFoundError is an OSError): ask the Hub below
        pass
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        raise CheckpointError(
            f"{role} {hub_id}: no local folder of that name, and the hub id is not in the local Hugging Face cache "
            "(HF_HUB_OFFLINE is set, so the hub was not asked)"
        )
    try:
        model_info(hub_id, timeout=10)
        folder = snapshot_download(hub_id, allow_patterns=patterns)
    except Exception as exc:  # the network's boundary: no network, unknown id, gated repo, the http client's own errors
        raise CheckpointError(
            f"{role} {hub_id}: no local folder of that name, not in the local Hugging Face cache, and the Hugging "
            f"Face Hub could not provide it ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        ) from exc
    return _load_pipeline(folder, hub_id, role, "hub id")


def _load_pipeline(source: str, name: str, role: str, where: str) -> Chronos2Pipeline:
    try:
        return Chronos2Pipeline.from_pretrained(source)
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as exc:  # damaged weights, an unreadable config
        raise CheckpointError(f"could not load {role} {where} {name}: {type(exc).__name__}: {exc}") from exc


def freeze(model: Chronos2Model) -> Chronos2Model:
    """Eval mode, fp32, no gradients: the teacher only ever runs forward."""
    model = model.float().eval()
    model.requires_grad_(False)
    return model
