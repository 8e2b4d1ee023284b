"""Where a command writes, under one policy: a path the user names is never
overwritten without ``--force``, and a mistake about it (a folder where a
file goes, a file where a folder goes) is one line about what was typed.
The files a command keeps inside the run directory by default (RUN/figures,
RUN/analysis, RUN/report.html) are that command's own and are rewritten."""

from __future__ import annotations

from pathlib import Path

from seqembed.errors import InputError


def refuse_existing(paths, force: bool) -> None:
    """Stop before writing anything if one of ``paths`` exists (no --force)."""
    if force:
        return
    for path in paths:
        if Path(path).exists():
            raise InputError("exists; --force overwrites it", path)


def file_out(args, default: Path) -> Path:
    """--out FILE if given (checked), else ``default``."""
    if not args.out:
        return default
    path = Path(args.out)
    if path.is_dir():
        raise InputError("is a folder; --out names the file to write", path)
    refuse_existing([path], args.force)
    return path


def folder_out(path: Path, flag: str = "--out-dir") -> Path:
    if path.is_file():
        raise InputError(f"is a file; {flag} names a folder to write into", path)
    return path
