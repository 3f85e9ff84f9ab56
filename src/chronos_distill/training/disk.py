"""A full disk (or a folder that is not writable) while a run writes: one line that says which folder, how much
was free, about how much the write needed, the last complete checkpoint, and what to type next, instead of a
traceback from deep inside torch, safetensors or pyarrow; the half-written checkpoint removed, so that ``--resume``
after freeing space continues from the last complete one (the export in ``model/`` is written atomically and
stays as it was).

torch's zip writer reports a full disk as ``RuntimeError: [enforce fail at inline_container.cc] ... unexpected
pos``, safetensors as ``SafetensorError: ... No space left on device``: neither carries an errno, so those texts
are matched too.
"""

from __future__ import annotations

import errno
import logging
import shutil
from pathlib import Path

from chronos_distill.errors import DistillError

logger = logging.getLogger(__name__)

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)
_NO_SPACE_TEXTS = ("no space left on device", "unexpected pos", "file write failed", "disk quota exceeded")


def write_failure(exc: BaseException) -> str | None:
    """``"no space"`` or ``"not writable"`` when ``exc`` (or what caused it) is a write that failed for want of
    space or permission, else None."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
            return "no space"
        if isinstance(exc, OSError) and exc.errno in _NOT_WRITABLE:
            return "not writable"
        if any(text in str(exc).lower() for text in _NO_SPACE_TEXTS):
            return "no space"
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def free_bytes(folder: Path) -> int | None:
    """Free space of the file system ``folder`` is on (its nearest existing parent), or None."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def human(n: int | None) -> str:
    if n is None:
        return "an unknown amount"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def disk_error(kind: str, folder: Path, needed: int | None, last_checkpoint: str | None) -> DistillError:
    """The one line of a failed write (see the module doc)."""
    what = "no space left" if kind == "no space" else "permission denied"
    fix = "free space" if kind == "no space" else "make it writable"
    return DistillError(
        f"{what} writing {folder}: {human(free_bytes(folder))} free"
        + (f", the write needs about {human(needed)}; " if needed else "; ")
        + (f"the last complete checkpoint is {last_checkpoint}. {fix.capitalize()}, then run the same command with "
           "--resume" if last_checkpoint else
           f"no checkpoint is complete yet. {fix.capitalize()}, then run the same command again"))


def remove_incomplete_checkpoints(folder: Path, complete: str | None) -> list[Path]:
    """Remove every ``checkpoint-N`` in ``folder`` newer than the complete one ``complete`` (a save that failed
    half-way); returns what was removed."""
    from chronos_distill.training.run_folder import checkpoint_step

    keep_step = checkpoint_step(complete) if complete else -1
    removed = []
    for path in Path(folder).glob("checkpoint-*"):
        try:
            step = int(path.name.rsplit("-", 1)[-1])
        except ValueError:
            continue
        if step > keep_step:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def warn_if_short_of_space(folder: Path, checkpoint_bytes: int) -> None:
    """Warn, before the first checkpoint, when ``folder`` has less free space than two checkpoints need (the
    Trainer keeps two, and writes the next before it deletes the oldest)."""
    free = free_bytes(folder)
    if free is not None and free < 2 * checkpoint_bytes:
        logger.warning("only %s free for %s; the next two checkpoints need about %s: free space before the run "
                       "stops at a save", human(free), folder, human(2 * checkpoint_bytes))
