"""Word-vector files: word2vec text, GloVe text and word2vec binary, read
as a stream.

Three layouts, told apart from their first lines (``format="auto"``)::

    word2vec          n_words dim                 header line
                      token v1 v2 ... v_dim       one row per line
    glove             token v1 v2 ... v_dim       the same rows, no header
                                                  (also word2vec text without one)
    word2vec-binary   n_words dim\\n               header line
                      token SPACE dim x float32   per word, little-endian,
                                                  optionally followed by \\n

Telling a header from a row: a first line of two integers is a header when the
next line is a row of that width ("400000 300", then rows of 301 fields). When
the next line has 2 fields instead, the first line was a row too: the word
"2" with the 1-dimensional vector [3]. A header of width 1 fits the next line
either way; then the number of rows decides (a header counts them). After a
header, rows that are not text are binary. Without a header the first row
sets the width.

Only rows whose word ``keep`` accepts are parsed and kept, so a file of
millions of words costs the memory of the words wanted; the values of the
other rows are not read, only counted. A word listed twice keeps its first
vector. Whitespace inside a word (GloVe 840B has a few such rows) becomes
U+2581, as ``export`` writes it. The writer is ``export.write_word2vec``.
"""

from __future__ import annotations

import codecs
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seqembed.errors import InputError
from seqembed.textfile import check_file, decode_line
from seqembed.vectors.export import word2vec_token
from seqembed.vectors.table import EmbeddingTable

FORMATS = ("word2vec", "glove", "word2vec-binary")
_HEADER = re.compile(rb"\s*(\d+)[ \t]+(\d+)\s*")
_MAX_LINE = 1 << 24  # 16 MB: far above any row, and a bound for a binary file
_CHUNK = 1 << 20
# Bytes of numbers written as text; a float32 vector hardly ever has only these.
_TEXT_BYTES = frozenset(b"0123456789+-.eEinfatyINFATY \t\r\n")


@dataclass(frozen=True)
class VectorFile:
    """What a vector file's first lines say about it."""

    path: Path
    format: str  # one of FORMATS
    dim: int
    n_words: int | None  # the header's count; None without a header
    offset: int  # byte where the rows start
    first_line: int  # line number of the first row (text formats)


@dataclass
class PretrainedVectors:
    """The kept rows of one file, in file order."""

    file: VectorFile
    table: EmbeddingTable  # frequencies are 0: the file has none
    n_rows: int  # rows in the file, kept or not
    duplicates: int  # kept words listed again (the first vector wins)
    seconds: float


def sniff(path: Path, format: str = "auto") -> VectorFile:
    """Format, width and word count of ``path``, from its first lines."""
    if format != "auto" and format not in FORMATS:
        raise ValueError(f"format must be auto or one of {FORMATS}, got {format!r}")
    path = check_file(path)
    with open(path, "rb") as handle:
        raw = handle.readline(_MAX_LINE)
        if not raw.strip():
            raise InputError("empty file (or a blank first line)", path, 1)
        decode_line(raw, path, 1)  # UTF-16, NUL bytes, GBK: said plainly
        start = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
        header = _HEADER.fullmatch(raw[start:])
        if format == "glove" or (format == "auto" and header is None):
            dim = len(raw.split()) - 1
            if dim < 1:
                raise InputError("expected a word and its values", path, 1)
            return VectorFile(path, "glove", dim, None, start, 1)
        if header is None:
            raise InputError(f"expected a {format} header 'n_words dim'", path, 1)
        n_words, dim = int(header[1]), int(header[2])
        if dim < 1:
            raise InputError("the header gives 0 dimensions", path, 1)
        rows_at = handle.tell()
        as_header = VectorFile(path, format, dim, n_words, rows_at, 2)
        if format != "auto":
            return as_header
        second = handle.readline(_MAX_LINE)
        handle.seek(rows_at)
        head = handle.read(4 * dim + 4096)
        if not second.strip():  # the header alone: read it as a truncated file
            return VectorFile(path, "word2vec", dim, n_words, rows_at, 2)
        fits = _is_row(second, dim)
        if fits and dim == 1:  # "5 1" then "a 0.3": count the rows
            handle.seek(rows_at)
            rows = sum(1 for line in handle if line.strip())
            fits = rows == n_words
        if fits:
            return VectorFile(path, "word2vec", dim, n_words, rows_at, 2)
        if _is_row(second, 1) and len(second.split()) == 2:
            return VectorFile(path, "glove", 1, None, start, 1)
        if not set(head[head.find(b" ") + 1 :][: 4 * dim]) <= _TEXT_BYTES:
            return VectorFile(path, "word2vec-binary", dim, n_words, rows_at, 2)
        found = len(second.split()) - 1
        raise InputError(
            f"expected a word and {dim} values, as the header says; found {found}",
            path,
            2,
        )


def _is_row(raw: bytes, dim: int) -> bool:
    fields = raw.split()
    if len(fields) < dim + 1:
        return False
    try:
        np.array(fields[-dim:], dtype=np.float32)
    except ValueError:
        return False
    return True


def read_vectors(
    path: Path, format: str = "auto", keep: Callable[[str], bool] | None = None
) -> PretrainedVectors:
    """The rows of ``path`` whose word ``keep`` accepts (all rows without it)."""
    info = path if isinstance(path, VectorFile) else sniff(path, format)
    started = time.perf_counter()
    rows = _Rows(info.dim, keep)
    with open(info.path, "rb") as handle:
        handle.seek(info.offset)
        if info.format == "word2vec-binary":
            _read_binary(handle, info, rows)
        else:
            _read_text(handle, info, rows)
    if info.n_words is not None and rows.n_rows != info.n_words:
        raise InputError(
            f"the header says {info.n_words:,} words but the file has "
            f"{rows.n_rows:,} rows (truncated, or a wrong header?)",
            info.path,
        )
    vectors = np.array(rows.vectors, dtype=np.float32).reshape(-1, info.dim)
    table = EmbeddingTable(rows.tokens, vectors, np.zeros(len(rows.tokens)))
    seconds = time.perf_counter() - started
    return PretrainedVectors(info, table, rows.n_rows, rows.duplicates, seconds)


@dataclass
class _Rows:
    dim: int
    keep: Callable[[str], bool] | None
    tokens: list[str] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    n_rows: int = 0
    duplicates: int = 0

    def wants(self, token: str) -> bool:
        self.n_rows += 1
        if self.keep is not None and not self.keep(token):
            return False
        if token in self.seen:
            self.duplicates += 1
            return False
        return True

    def add(self, token: str, vector: np.ndarray, where: str) -> None:
        if not np.isfinite(vector).all():
            raise InputError(f"{where}: a value of {token!r} is not finite")
        self.seen.add(token)
        self.tokens.append(token)
        self.vectors.append(vector)


def _read_text(handle, info: VectorFile, rows: _Rows) -> None:
    path, dim = info.path, info.dim
    for number, raw in enumerate(handle, start=info.first_line):
        line = raw.rstrip(b" \t\r\n")
        if not line:
            continue
        if line.count(b" ") == dim:  # the usual row: single spaces
            cut = line.index(b" ")
            token_bytes, values = line[:cut], None
        else:  # tabs, runs of spaces, a word with spaces, or a bad row
            token_bytes, values = _split_row(line, dim, path, number)
        try:
            token = token_bytes.decode("utf-8")
        except UnicodeDecodeError:
            decode_line(token_bytes, path, number)  # raises, naming the encoding
            raise
        if "\x00" in token:
            decode_line(token_bytes, path, number)
        if values is not None:  # "a b": written as export writes it, "a\u2581b"
            token = word2vec_token(token)
        if not rows.wants(token):
            continue
        if values is None:
            values = line[cut + 1 :].split(b" ")
        try:
            vector = np.array(values, dtype=np.float32)
        except ValueError:
            bad = next(v for v in values if not _is_number(v))
            raise InputError(
                f"{bad.decode('utf-8', 'replace')!r} is not a number", path, number
            ) from None
        rows.add(token, vector, f"{path}:{number}")


def _split_row(line: bytes, dim: int, path: Path, number: int):
    """(word, values) of a row that is not single-space separated."""
    fields = line.split()
    found = len(fields) - 1
    if found < dim or (found > dim and _is_number(fields[-dim - 1])):
        raise InputError(
            f"expected a word and {dim} values, found {found} values", path, number
        )
    return b" ".join(fields[:-dim]), fields[-dim:]


def _is_number(text: bytes) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_binary(handle, info: VectorFile, rows: _Rows) -> None:
    path, width = info.path, 4 * info.dim
    buffer, pos, consumed = b"", 0, info.offset  # consumed: bytes before buffer
    for number in range(1, info.n_words + 1):
        space = buffer.find(b" ", pos)
        while space < 0 or len(buffer) < space + 1 + width:
            more = handle.read(_CHUNK)
            if not more:
                raise InputError(
                    f"truncated: the header says {info.n_words:,} words, the "
                    f"file ends in word {number:,}",
                    path,
                )
            consumed += pos
            buffer, pos = buffer[pos:] + more, 0
            space = buffer.find(b" ")
            if space < 0 and len(buffer) > _MAX_LINE:
                raise InputError(f"word {number:,}: no space after it", path)
        where = f"{path}: word {number:,} at byte {consumed + pos:,}"
        token_bytes = buffer[pos:space].lstrip(b"\r\n")
        start, pos = space + 1, space + 1 + width
        try:
            token = token_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{where}: the word is not UTF-8 text") from None
        if not token:
            raise InputError(f"{where}: an empty word")
        if rows.wants(token):
            vector = np.frombuffer(buffer, "<f4", info.dim, start).copy()
            rows.add(token, vector, where)
