"""Pretrained word vectors as the starting point of the embedding tables.

Three file layouts, told apart from their first lines (``format="auto"``)::

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
header, rows that are not text are binary.

The file is streamed: only rows whose word is wanted (the vocabulary's, matched
exactly or else ignoring case) are parsed and kept, so a file of millions of
words costs the memory of the vocabulary. Values of the other rows are not
read, only counted. Words the file lacks keep their random initialisation; a
word listed twice keeps its first vector; ``<PAD>`` always stays zero.
Whitespace inside a file's word matches U+2581, as ``export`` writes it.
"""

from __future__ import annotations

import codecs
import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from seqembed.config import Config, ModelConfig
from seqembed.embeddings import EmbeddingTable
from seqembed.errors import InputError
from seqembed.export import word2vec_token
from seqembed.files import atomic_write
from seqembed.textfile import check_file, decode_line
from seqembed.vocab import PAD, SPECIALS, Vocab

log = logging.getLogger(__name__)

FORMATS = ("word2vec", "glove", "word2vec-binary")
COVERAGE_FILE = "pretrained.json"
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


# ---------------------------------------------------------------- coverage


@dataclass
class Coverage:
    """Which vocabulary words a file gave a vector, and how much of the
    training text they make up (frequencies from the vocabulary)."""

    side: str
    path: str
    format: str
    dim: int
    file_rows: int
    found: list[tuple[str, int]]  # (word, training frequency), specials apart
    missing: list[tuple[str, int]]  # most frequent first: random init kept
    by_case: dict[str, str]  # word -> the file's word, when only case differed
    specials: list[str]  # special tokens the file had (never <PAD>)
    frozen: bool = False
    seconds: float = 0.0

    @property
    def words(self) -> int:
        return len(self.found) + len(self.missing)

    @property
    def tokens(self) -> int:
        return self.tokens_found + sum(freq for _, freq in self.missing)

    @property
    def tokens_found(self) -> int:
        return sum(freq for _, freq in self.found)

    @property
    def word_coverage(self) -> float:
        return 100.0 * len(self.found) / max(self.words, 1)

    @property
    def token_coverage(self) -> float:
        return 100.0 * self.tokens_found / max(self.tokens, 1)

    def to_dict(self) -> dict:
        counts = {
            "words": self.words,
            "words_found": len(self.found),
            "tokens": self.tokens,
            "tokens_found": self.tokens_found,
            "word_coverage": round(self.word_coverage, 2),
            "token_coverage": round(self.token_coverage, 2),
        }
        fields = asdict(self)
        for name in ("found", "missing"):  # {"word": frequency, ...}, in order
            fields[name] = dict(fields[name])
        return {**counts, **fields}

    def summary(self, top: int = 10) -> list[str]:
        """A few lines for a person: counts, then the most frequent misses."""
        lines = [
            f"{self.side} embeddings: {self.path} ({self.format}, {self.dim}-dim, "
            f"{self.file_rows:,} rows, {self.seconds:.1f}s)"
            + (", frozen" if self.frozen else ""),
            f"  found {len(self.found):,} of {self.words:,} words "
            f"({self.word_coverage:.1f}%), {self.token_coverage:.1f}% of the "
            f"training tokens"
            + (f"; {len(self.by_case):,} by case alone" if self.by_case else "")
            + (f"; specials {' '.join(self.specials)}" if self.specials else ""),
        ]
        if self.missing:
            shown = ", ".join(f"{w} ({f:,})" for w, f in self.missing[:top])
            lines.append(f"  random init kept, most frequent first: {shown}")
        return lines


class _Lookup:
    """Vocabulary ids by a file's word: exactly, else ignoring case."""

    def __init__(self, vocab: Vocab):
        self.exact: dict[str, int] = {}
        self.folded: dict[str, list[int]] = {}
        for i, token in enumerate(vocab.tokens):
            if i == PAD:
                continue
            for key in dict.fromkeys((token, word2vec_token(token))):
                self.exact.setdefault(key, i)
                self.folded.setdefault(key.casefold(), []).append(i)

    def wants(self, token: str) -> bool:
        return token in self.exact or token.casefold() in self.folded

    def assign(self, tokens: list[str]) -> tuple[dict[int, int], set[int]]:
        """{vocabulary id: row} (an exact match wins over an earlier row that
        differs in case only), and the ids matched by case alone."""
        exact, by_case = {}, {}
        for row, token in enumerate(tokens):
            if token in self.exact:
                exact.setdefault(self.exact[token], row)
            for i in self.folded.get(token.casefold(), ()):
                by_case.setdefault(i, row)
        return {**by_case, **exact}, set(by_case) - set(exact)


def load_into(
    embedding: nn.Embedding, vocab: Vocab, path: Path, format: str = "auto"
) -> Coverage:
    """Copy the file's vectors into the rows of the vocabulary words it has."""
    info = sniff(path, format)
    if info.dim != embedding.embedding_dim:
        raise InputError(
            f"the vectors are {info.dim}-dimensional but the model's embeddings "
            f"{embedding.embedding_dim} (set model.emb_size: {info.dim})",
            path,
        )
    lookup = _Lookup(vocab)
    vectors = read_vectors(info, keep=lookup.wants)
    assigned, case_only = lookup.assign(vectors.table.tokens)
    ids = sorted(assigned)
    with torch.no_grad():
        rows = vectors.table.vectors[[assigned[i] for i in ids]]
        weight = embedding.weight
        weight[ids] = torch.from_numpy(rows).to(weight.device, weight.dtype)
    words = range(len(SPECIALS), len(vocab))
    pairs = [(vocab.tokens[i], vocab.freqs[i]) for i in words]
    missing = [pairs[i - len(SPECIALS)] for i in words if i not in assigned]
    tokens = vectors.table.tokens
    return Coverage(
        side="",
        path=str(path),
        format=info.format,
        dim=info.dim,
        file_rows=vectors.n_rows,
        found=[pairs[i - len(SPECIALS)] for i in words if i in assigned],
        missing=sorted(missing, key=lambda pair: -pair[1]),
        by_case={vocab.tokens[i]: tokens[assigned[i]] for i in sorted(case_only)},
        specials=[SPECIALS[i] for i in ids if i < len(SPECIALS)],
        seconds=vectors.seconds,
    )


def check_files(config: ModelConfig) -> None:
    """Fail early (before the corpus is read) on a missing or unreadable file
    or a width other than ``emb_size``."""
    for path in (config.src_embeddings, config.tgt_embeddings):
        if path:
            info = sniff(Path(path), config.embeddings_format)
            if info.dim != config.emb_size:
                raise InputError(
                    f"the vectors are {info.dim}-dimensional but model.emb_size "
                    f"is {config.emb_size} (set model.emb_size: {info.dim})",
                    path,
                )


def apply_pretrained(
    model,
    src_vocab: Vocab,
    tgt_vocab: Vocab,
    config: Config,
    run_dir: Path,
    resume: bool = False,
) -> dict[str, Coverage]:
    """Initialise the embedding tables of a new ``model`` from the configured
    files, and freeze them if asked. Logs the coverage and writes it to
    ``run_dir/pretrained.json``. With ``resume`` the checkpoint already holds
    the vectors: only the freezing is set again."""
    settings = config.model
    sides = {
        "src": (settings.src_embeddings, model.encoder.embedding, src_vocab),
        "tgt": (settings.tgt_embeddings, model.decoder.embedding, tgt_vocab),
    }
    coverages = {}
    for side, (path, embedding, vocab) in sides.items():
        if not path:
            continue
        if not resume:
            if _is_main():
                log.info("reading %s embeddings from %s", side, path)
            file_format = settings.embeddings_format
            coverage = load_into(embedding, vocab, Path(path), file_format)
            coverage.side, coverage.frozen = side, settings.freeze_embeddings
            coverages[side] = coverage
            if _is_main():
                for line in coverage.summary():
                    log.info("%s", line)
        if settings.freeze_embeddings:
            # No gradient, so Adam, clipping and DDP leave the table alone.
            embedding.weight.requires_grad_(False)
    if coverages and _is_main():
        text = json.dumps(
            {side: c.to_dict() for side, c in coverages.items()},
            ensure_ascii=False,
            indent=1,
        )
        atomic_write(run_dir / COVERAGE_FILE, lambda out: out.write(text.encode()))
    return coverages


def _is_main() -> bool:
    # torchrun sets RANK before any process group exists; one process has none.
    return os.environ.get("RANK", "0") == "0"
