"""Subword tables as word tables: each word's vector the mean of its pieces'.

A side trained with SentencePiece has an embedding row per piece, not per
word; the analysis wants words, so a word's vector is the mean of its pieces'
vectors (``seqembed.data.subwords.word_pieces``: ``walked`` -> ``▁walk ed``).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from seqembed.data.subwords import SubwordModel, word_pieces
from seqembed.data.vocab import SPECIALS
from seqembed.vectors.table import EmbeddingTable


def aggregate_words(
    table: EmbeddingTable, model: SubwordModel, word_counts: Counter
) -> EmbeddingTable:
    """A word table from a piece table: each word's vector is the mean of its
    pieces' vectors (``word_pieces``), its frequency its count in
    ``word_counts``. Words with a piece outside the table (or ``<UNK>``) are
    left out. Rows in descending frequency, ties alphabetical, as a Vocab."""
    words, rows, freqs = [], [], []
    for word, count in sorted(word_counts.items(), key=lambda x: (-x[1], x[0])):
        pieces = word_pieces(model, word)
        if not pieces or any(p in SPECIALS or p not in table for p in pieces):
            continue
        words.append(word)
        rows.append([table.index[p] for p in pieces])
        freqs.append(count)
    vectors = np.zeros((len(words), table.dim), dtype=np.float32)
    for i, piece_rows in enumerate(rows):
        vectors[i] = table.vectors[piece_rows].mean(axis=0)  # (dim,)
    freqs = np.asarray(freqs, dtype=np.int64)
    return EmbeddingTable(words, vectors, freqs, table.side)


def aggregate_tables(
    tables: dict[str, EmbeddingTable],
    models: dict[str, SubwordModel],
    sentences: dict[str, list[list[str]]],
) -> dict[str, EmbeddingTable]:
    """``load_tables`` output with the subword sides' tables (``src``; ``tgt``
    and ``out`` for the target) replaced by word tables, the words and their
    counts taken from ``sentences[side]`` (the training text as words)."""
    result = dict(tables)
    for kind, table in tables.items():
        side = "src" if kind == "src" else "tgt"
        if side in models:
            counts = Counter(word for sentence in sentences[side] for word in sentence)
            result[kind] = aggregate_words(table, models[side], counts)
    return result
