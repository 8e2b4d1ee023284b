"""Atomic file writes: a crash leaves the old file or the new one, never half."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(
    path: Path,
    write: Callable[[BinaryIO], None],
    before_replace: Callable[[], None] | None = None,
) -> None:
    """Call ``write`` on a temp file beside ``path``, fsync, then rename it over
    ``path``. On any failure the temp file is removed and ``path`` is untouched.

    ``before_replace`` runs once the new content is safely on disk, just before
    the rename (checkpoints shift their older copies there)."""
    path = Path(path)
    handle, temp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".part", dir=path.parent
    )
    try:
        # mkstemp makes the file private (0600); a result file is as readable
        # as any other file the user writes (0666 less the umask). Windows
        # has no fchmod before Python 3.13, and no such modes either.
        if hasattr(os, "fchmod"):
            os.fchmod(handle, 0o666 & ~_umask())
        with os.fdopen(handle, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        if before_replace is not None:
            before_replace()
        os.replace(temp, path)
    except BaseException as error:
        Path(temp).unlink(missing_ok=True)
        if isinstance(error, OSError) and error.filename is None:
            # "No space left on device" alone does not say where.
            raise OSError(
                error.errno, error.strerror or str(error), str(path)
            ) from error
        raise
    _fsync_directory(path.parent)


def _fsync_directory(folder: Path) -> None:
    """Make the rename itself durable (a power cut after it keeps the new
    file). POSIX only; elsewhere, and where a folder cannot be opened, the
    rename is as durable as the system makes it."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it back
    os.umask(mask)
    return mask


def write_json_and_markdown(
    folder: Path, stem: str, data: dict, markdown: str
) -> tuple[Path, Path]:
    """``folder/stem.json`` (no NaN or infinity) and ``folder/stem.md``, each
    written atomically; returns both paths."""
    import json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    json_path, markdown_path = folder / f"{stem}.json", folder / f"{stem}.md"
    text = json.dumps(data, ensure_ascii=False, indent=1, allow_nan=False)
    atomic_write(json_path, lambda out: out.write(text.encode("utf-8")))
    atomic_write(markdown_path, lambda out: out.write(markdown.encode("utf-8")))
    return json_path, markdown_path
