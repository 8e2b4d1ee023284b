"""Embedding tables as files other tools read.

word2vec text (gensim, fastText, most embedding tools)::

    n_words dim                  header
    token v1 v2 ... v_dim        one line per row, single spaces

TensorBoard Embedding Projector (``tensorboard --logdir FOLDER``, tab
"Projector")::

    FOLDER/tensors.tsv              one row per word, tab-separated floats
    FOLDER/metadata.tsv             one label row per word (+ a header row
                                    when there are several columns)
    FOLDER/projector_config.pbtxt   text proto naming the two files

Characters that the readers take for field or line separators become U+2581
(``▁``, the SentencePiece space): in word2vec tokens every whitespace
character; in projector labels tabs and line breaks (a plain space is fine
there). Two tokens that would end up identical are refused rather
than silently merged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np

from seqembed.errors import InputError
from seqembed.files import atomic_write
from seqembed.vectors.table import EmbeddingTable

SPACE_MARK = "\u2581"
TENSORS_FILE = "tensors.tsv"
METADATA_FILE = "metadata.tsv"
CONFIG_FILE = "projector_config.pbtxt"  # the name the projector plugin looks for
COLUMNS = ("word", "frequency", "side")

_WHITESPACE = re.compile(r"\s")
# Tabs split metadata columns; every str.splitlines() boundary splits rows in
# some reader.
_LABEL_BREAKS = re.compile("[\t\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
_ROWS_PER_WRITE = 1024


def word2vec_token(token: str) -> str:
    """``token`` as written in a word2vec file: whitespace becomes U+2581."""
    return _WHITESPACE.sub(SPACE_MARK, token)


def projector_label(text: str) -> str:
    """``text`` as written in metadata.tsv: tabs and line breaks become U+2581."""
    return _LABEL_BREAKS.sub(SPACE_MARK, text)


def write_word2vec(table: EmbeddingTable, path: Path, digits: int = 9) -> None:
    """Write ``table`` in word2vec text format, atomically.

    ``digits`` significant digits per value: 9 (the default) round-trips
    float32 exactly; 6 makes the file about a third smaller.
    """
    path = Path(path)
    tokens = [word2vec_token(token) for token in table.tokens]
    _refuse_collisions(table.tokens, tokens, path)
    if "" in tokens:
        raise InputError("an empty token cannot be written in word2vec format", path)
    header = f"{len(table)} {table.dim}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_text(path, [header], _row_chunks(table.vectors, " ", digits, tokens))


def write_projector(
    tables: EmbeddingTable | Mapping[str, EmbeddingTable],
    folder: Path,
    columns: tuple[str, ...] | None = None,
    tensor_name: str | None = None,
    digits: int = 6,
) -> Path:
    """Write the Embedding Projector's files for one table, or for several
    stacked into one point cloud (``{"src": ..., "tgt": ...}``, rows in
    mapping order) so the projector can colour the points by side.

    ``columns`` of metadata.tsv, from ``word``, ``frequency``, ``side``;
    default: word and frequency, plus side when several tables are stacked.
    A single column is written without a header row, several with one: that
    is how the projector tells them apart. ``digits``: significant digits per
    value (6 is plenty to look at and keeps the browser's download small).
    ``tensor_name`` defaults to "embeddings", or the joined mapping keys
    ("src+tgt"). Returns the path of ``projector_config.pbtxt``.
    """
    named, default_name = _named_tables(tables)
    if columns is None:
        columns = COLUMNS if len(named) > 1 else ("word", "frequency")
    columns = tuple(columns)
    if not columns or any(column not in COLUMNS for column in columns):
        raise ValueError(f"columns must be chosen from {COLUMNS}, got {columns}")
    metadata = _metadata_rows(named, columns)
    vectors = np.concatenate([table.vectors for table in named.values()])
    config = _projector_config(tensor_name or default_name, vectors.shape)

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _write_text(folder / TENSORS_FILE, _row_chunks(vectors, "\t", digits))
    _write_text(folder / METADATA_FILE, metadata)
    # Last, so a config never names files that are not there yet.
    _write_text(folder / CONFIG_FILE, [config])
    return folder / CONFIG_FILE


def _named_tables(
    tables: EmbeddingTable | Mapping[str, EmbeddingTable],
) -> tuple[dict[str, EmbeddingTable], str]:
    """``{side: table}`` (one table: ``{"": table}``) and the default tensor
    name; refuses tables with no rows or of different widths."""
    if isinstance(tables, EmbeddingTable):
        named, default_name = {"": tables}, "embeddings"
    else:
        named, default_name = dict(tables), "+".join(tables)
    if not any(len(table) for table in named.values()):
        raise ValueError("no rows to write")
    dims = {name: table.dim for name, table in named.items()}
    if len(set(dims.values())) > 1:
        raise ValueError(
            f"tables of different widths cannot share one projector tensor: {dims}"
        )
    return named, default_name


def _metadata_rows(
    named: dict[str, EmbeddingTable], columns: tuple[str, ...]
) -> list[str]:
    """metadata.tsv's lines: a header row only when there are several columns
    (that is how the projector tells the two layouts apart)."""
    values = {
        "word": [token for table in named.values() for token in table.tokens],
        "frequency": [str(f) for table in named.values() for f in table.freqs],
        "side": [name for name, table in named.items() for _ in table.tokens],
    }
    metadata = ["\t".join(columns) + "\n"] if len(columns) > 1 else []
    for row in zip(*(values[column] for column in columns)):
        metadata.append("\t".join(projector_label(value) for value in row) + "\n")
    return metadata


def _projector_config(tensor_name: str, shape: tuple[int, ...]) -> str:
    """projector_config.pbtxt naming the two files, in the plugin's own proto."""
    from google.protobuf import text_format
    from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

    config = ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = tensor_name
    embedding.tensor_path = TENSORS_FILE  # relative: resolved against the config
    embedding.metadata_path = METADATA_FILE
    embedding.tensor_shape.extend(shape)
    return text_format.MessageToString(config)


def _row_chunks(
    vectors: np.ndarray, sep: str, digits: int, tokens: list[str] | None = None
) -> Iterator[str]:
    """Text lines of ``vectors`` (each after its token, if given), a block of
    rows at a time so 30,000 x 256 values never become one Python list."""
    # One %-format per row: the formatting runs in C, several times faster
    # than joining numbers formatted one by one.
    row_format = sep.join([f"%.{int(digits)}g"] * vectors.shape[1]) + "\n"
    for start in range(0, len(vectors), _ROWS_PER_WRITE):
        block = vectors[start : start + _ROWS_PER_WRITE].tolist()
        lines = [row_format % tuple(row) for row in block]
        if tokens is not None:
            lines = [f"{t} {line}" for t, line in zip(tokens[start:], lines)]
        yield "".join(lines)


def _write_text(path: Path, *parts: Iterable[str]) -> None:
    def write(out) -> None:
        for part in parts:
            for text in part:
                out.write(text.encode("utf-8"))

    atomic_write(path, write)


def _refuse_collisions(original: list[str], written: list[str], path: Path) -> None:
    seen: dict[str, str] = {}
    for before, after in zip(original, written):
        if seen.setdefault(after, before) != before:
            raise InputError(
                f"tokens {seen[after]!r} and {before!r} would both be written "
                f"as {after!r} (whitespace becomes U+2581)",
                path,
            )
