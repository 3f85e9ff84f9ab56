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


def damage(path: str | Path) -> str | None:
    """Why a weights or state file cannot be read (missing, truncated, not the format its name says), or None
    when it opens. Reads only headers and structure, never the tensors into torch (no torch is imported):

    - ``*.safetensors``: the 8-byte header length, the JSON header, and a file exactly as long as the header's
      last data offset says (an interrupted copy is shorter);
    - ``*.pt`` / ``*.pth`` / ``*.bin`` (``torch.save``'s zip format): a zip archive whose every member's CRC
      matches;
    - ``*.json``: valid JSON.
    """
    import struct
    import zipfile

    path = Path(path)
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    try:
        if path.suffix == ".safetensors":
            with path.open("rb") as f:
                head = f.read(8)
                if len(head) < 8:
                    return f"truncated ({size} bytes, no header)"
                (length,) = struct.unpack("<Q", head)
                if 8 + length > size:
                    return f"truncated ({size} bytes; its header alone says {8 + length})"
                header = json.loads(f.read(length))
            end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
            if size != 8 + length + end:
                return f"truncated ({size} bytes of {8 + length + end})"
        elif path.suffix in (".pt", ".pth", ".bin"):
            if not zipfile.is_zipfile(path):
                return f"not a torch.save archive ({size} bytes; truncated or overwritten)"
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
            if bad is not None:
                return f"damaged (member {bad} fails its checksum)"
        elif path.suffix == ".json":
            json.loads(path.read_text())
    except (OSError, ValueError, KeyError, TypeError, struct.error, zipfile.BadZipFile) as exc:
        return f"unreadable ({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else 'no detail'})"
    return None
