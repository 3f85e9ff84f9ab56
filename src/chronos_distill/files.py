"""The one atomic file writer: every file chronos-distill publishes (records, cards, tables of forecasts, cache
shards, ONNX files, model weights) is written to a temporary name in its own folder and moved into place with
``os.replace``, so a reader never sees half a file and an interrupted write leaves the old one. Published files
get the permissions of a plainly created file (0666 less the umask), not ``mkstemp``'s private 0600.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def publish(staged: Path, path: Path) -> None:
    """Move a finished temporary file ``staged`` (in ``path``'s folder) to ``path`` with plain permissions."""
    os.chmod(staged, 0o666 & ~current_umask())
    os.replace(staged, path)


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(temporary_path)`` and move the result to ``path`` (its folder is created); on any error the
    temporary file is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        publish(Path(tmp), path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | Path, content: Any) -> Path:
    """JSON (indented, non-JSON values as text) through :func:`write_atomic`."""
    return write_atomic(path, lambda tmp: tmp.write_text(json.dumps(content, indent=2, default=str) + "\n"))


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(text))
