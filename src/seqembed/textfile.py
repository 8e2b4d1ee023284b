"""The user's text files: UTF-8, and said plainly when they are not.

Every reader of a user's text (corpora, word lists, topic groups, jieba user
dictionaries, configs, translation input on stdin) decodes through here, so a
GBK or UTF-16 file, a NUL byte, or a folder given as a file gets the same
one-line ``InputError`` naming the file and line. A UTF-8 BOM is dropped and
CR LF line ends are read as LF.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from seqembed.errors import InputError

_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_HAN = re.compile(r"[\u4e00-\u9fff]")


def check_file(path: Path) -> Path:
    """``path`` if it is a readable file; else the one-line reason why not."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path)
    if path.is_dir():
        raise InputError("is a directory, expected a file", path)
    return path


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of a UTF-8 file, without line ends, streamed."""
    path = check_file(path)
    try:
        handle = open(path, "rb")
    except OSError as error:
        raise InputError(f"cannot open: {error.strerror}", path) from None
    with handle:
        yield from decode_lines(handle, path)


def decode_lines(raw_lines: Iterable[bytes], source) -> Iterator[tuple[int, str]]:
    """Decode lines of bytes (a file, stdin) named ``source`` in messages."""
    for number, raw in enumerate(raw_lines, start=1):
        yield number, decode_line(raw, source, number).rstrip("\r\n")


def read_text(path: Path) -> str:
    """A whole small UTF-8 file (a config, a word list), checked line by line."""
    path = check_file(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"cannot read: {error.strerror}", path) from None
    lines = data.splitlines(keepends=True)
    return "".join(decode_line(raw, path, n) for n, raw in enumerate(lines, 1))


def decode_line(raw: bytes, source, number: int) -> str:
    if number == 1:
        if raw.startswith(_UTF16_BOMS):
            raise InputError(_not_utf8("UTF-16", "UTF-16"), source, number)
        raw = raw.removeprefix(codecs.BOM_UTF8)
    if b"\x00" in raw:
        # UTF-16 text is about half NUL bytes when it is mostly ASCII.
        nuls = raw.count(0)
        if nuls >= 2 and nuls * 5 >= len(raw) * 2:
            raise InputError(_not_utf8("UTF-16", "UTF-16"), source, number)
        raise InputError("contains a NUL byte (a binary file?)", source, number)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        if _looks_like_gb(raw):
            message = _not_utf8("GBK/GB18030", "GB18030")
        else:
            message = f"not UTF-8 text: invalid UTF-8 at byte {error.start + 1}"
        raise InputError(message, source, number) from None


def _not_utf8(looks_like: str, iconv_name: str) -> str:
    return (
        f"not UTF-8 text (looks like {looks_like}; convert it with "
        f"iconv -f {iconv_name} -t UTF-8)"
    )


def _looks_like_gb(raw: bytes) -> bool:
    try:
        text = raw.decode("gb18030")
    except UnicodeDecodeError:
        return False
    return bool(_HAN.search(text))
