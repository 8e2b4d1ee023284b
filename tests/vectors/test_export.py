"""Exports read back by the tools they are for: gensim for word2vec text,
TensorBoard's own proto and TSV rules for the Embedding Projector."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
from google.protobuf import text_format
from helpers import FullDisk
from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

from seqembed.errors import InputError
from seqembed.nmt.checkpoint import load_checkpoint, load_tables
from seqembed.vectors.export import (
    CONFIG_FILE,
    METADATA_FILE,
    SPACE_MARK,
    TENSORS_FILE,
    write_projector,
    write_word2vec,
)
from seqembed.vectors.table import EmbeddingTable

gensim_models = pytest.importorskip("gensim.models")


@pytest.fixture(scope="module")
def tables(seed_run) -> dict[str, EmbeddingTable]:
    return load_tables(load_checkpoint(seed_run))


def read_tensor_tsv(path) -> np.ndarray:
    # The projector plugin's own reading: split each line on tabs.
    lines = path.read_text(encoding="utf-8").splitlines()
    return np.array([[float(x) for x in line.split("\t")] for line in lines])


def read_config(folder) -> ProjectorConfig:
    config = ProjectorConfig()
    text_format.Parse((folder / CONFIG_FILE).read_text(encoding="utf-8"), config)
    return config


# ------------------------------------------------------------ word2vec


def test_gensim_reads_the_trained_table_back_exactly(tables, tmp_path):
    table = tables["src"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in "".join(table.tokens))
    path = tmp_path / "src.w2v.txt"
    write_word2vec(table, path)

    vectors = gensim_models.KeyedVectors.load_word2vec_format(path, binary=False)
    assert vectors.index_to_key == table.tokens
    assert vectors.vector_size == table.dim
    # 9 significant digits round-trip float32 exactly.
    np.testing.assert_array_equal(vectors.vectors, table.vectors)
    assert path.read_text(encoding="utf-8").splitlines()[0] == f"{len(table)} 64"


def test_fewer_digits_stay_close(tables, tmp_path):
    table = tables["tgt"]
    write_word2vec(table, tmp_path / "tgt.txt", digits=4)
    vectors = gensim_models.KeyedVectors.load_word2vec_format(
        tmp_path / "tgt.txt", binary=False
    )
    np.testing.assert_allclose(vectors.vectors, table.vectors, rtol=1e-3, atol=1e-7)


def test_whitespace_inside_tokens_becomes_the_space_mark(tmp_path):
    tokens = ["New York", "tab\there", "line\nbreak", "全角\u3000空格", "plain"]
    table = EmbeddingTable(tokens, np.eye(5, 3, dtype=np.float32), np.ones(5))
    write_word2vec(table, tmp_path / "w.txt")

    vectors = gensim_models.KeyedVectors.load_word2vec_format(
        tmp_path / "w.txt", binary=False
    )
    expected = [
        f"New{SPACE_MARK}York",
        f"tab{SPACE_MARK}here",
        f"line{SPACE_MARK}break",
        f"全角{SPACE_MARK}空格",
        "plain",
    ]
    assert vectors.index_to_key == expected
    np.testing.assert_array_equal(vectors.vectors, table.vectors)


def test_tokens_that_would_collide_are_refused(tmp_path):
    table = EmbeddingTable(
        ["a b", f"a{SPACE_MARK}b"], np.ones((2, 2), np.float32), [1, 1]
    )
    with pytest.raises(InputError, match="would both be written"):
        write_word2vec(table, tmp_path / "w.txt")
    assert not (tmp_path / "w.txt").exists()
    assert list(tmp_path.iterdir()) == []  # no temp file left behind


def test_a_failed_write_leaves_the_old_file(tables, tmp_path, monkeypatch):
    path = tmp_path / "w.txt"
    path.write_text("old", encoding="utf-8")
    # The disk fills up after the header: the rows fail to write.
    real_fdopen = os.fdopen  # seqembed.files writes through it
    monkeypatch.setattr(
        os, "fdopen", lambda *a, **k: FullDisk(real_fdopen(*a, **k), 16)
    )
    with pytest.raises(OSError) as info:
        write_word2vec(tables["src"], path)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    assert path.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["w.txt"]


# ------------------------------------------------------------ projector


def test_projector_for_one_table(tables, tmp_path):
    table = tables["src"]
    config_path = write_projector(table, tmp_path / "proj")
    folder = tmp_path / "proj"
    assert config_path == folder / CONFIG_FILE

    tensor = read_tensor_tsv(folder / TENSORS_FILE)
    np.testing.assert_allclose(tensor, table.vectors, rtol=1e-5, atol=1e-8)
    rows = (folder / METADATA_FILE).read_text(encoding="utf-8").splitlines()
    assert rows[0] == "word\tfrequency"  # several columns: a header row
    assert len(rows) == len(tensor) + 1
    assert [row.split("\t") for row in rows[1:]] == [
        [token, str(freq)] for token, freq in zip(table.tokens, table.freqs)
    ]

    (embedding,) = read_config(folder).embeddings
    assert embedding.tensor_name == "embeddings"
    assert embedding.tensor_path == TENSORS_FILE
    assert embedding.metadata_path == METADATA_FILE
    assert list(embedding.tensor_shape) == [len(table), table.dim]


def test_projector_stacks_src_and_tgt_with_a_side_column(tables, tmp_path):
    src, tgt = tables["src"], tables["tgt"]
    write_projector({"src": src, "tgt": tgt}, tmp_path)

    tensor = read_tensor_tsv(tmp_path / TENSORS_FILE)
    assert tensor.shape == (len(src) + len(tgt), src.dim)
    np.testing.assert_allclose(tensor[len(src) :], tgt.vectors, rtol=1e-5, atol=1e-8)
    rows = (tmp_path / METADATA_FILE).read_text(encoding="utf-8").splitlines()
    assert rows[0] == "word\tfrequency\tside"
    assert len(rows) == len(tensor) + 1
    sides = [row.split("\t")[2] for row in rows[1:]]
    assert sides == ["src"] * len(src) + ["tgt"] * len(tgt)
    (embedding,) = read_config(tmp_path).embeddings
    assert embedding.tensor_name == "src+tgt"


def test_a_single_column_has_no_header(tables, tmp_path):
    table = tables["tgt"]
    write_projector(table, tmp_path, columns=("word",))
    rows = (tmp_path / METADATA_FILE).read_text(encoding="utf-8").splitlines()
    assert rows == table.tokens
    assert len(rows) == len(read_tensor_tsv(tmp_path / TENSORS_FILE))


def test_labels_with_tabs_and_line_breaks_are_sanitised(tmp_path):
    tokens = ["a\tb", "c\nd", "e\r\nf", "g h", "x\u2028y"]
    table = EmbeddingTable(tokens, np.eye(5, 4, dtype=np.float32), [5, 4, 3, 2, 1])
    for columns in (("word",), ("word", "frequency")):
        write_projector(table, tmp_path, columns=columns)
        text = (tmp_path / METADATA_FILE).read_text(encoding="utf-8")
        rows = text.split("\n")[:-1]
        assert len(rows) == len(tokens) + (len(columns) > 1)
        assert all(row.count("\t") == len(columns) - 1 for row in rows)
        labels = [row.split("\t")[0] for row in rows[len(columns) > 1 :]]
        m = SPACE_MARK
        assert labels == [f"a{m}b", f"c{m}d", f"e{m}{m}f", "g h", f"x{m}y"]


def test_projector_refuses_tables_of_different_widths(tables, tmp_path):
    with pytest.raises(ValueError, match="different widths"):
        write_projector({"src": tables["src"], "out": tables["out"]}, tmp_path)
    with pytest.raises(ValueError, match="columns"):
        write_projector(tables["src"], tmp_path, columns=("word", "colour"))
    assert list(tmp_path.iterdir()) == []
