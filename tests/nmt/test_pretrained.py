"""Pretrained vectors (modules wordvectors and pretrained): each format read
the same, the header told from a row, bad files as one-line errors, coverage
counted, frozen tables kept, and a round trip through export and train."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch
from helpers import assert_clean_error, seqembed
from torch import nn

from seqembed.cli.demo import demo_config, seed_pairs
from seqembed.data.vocab import SPECIALS, Vocab
from seqembed.errors import InputError
from seqembed.nmt.checkpoint import load_checkpoint
from seqembed.nmt.pretrained import COVERAGE_FILE, check_files, load_into
from seqembed.nmt.training import train
from seqembed.vectors.wordvectors import read_vectors, sniff

WORDS = ["我", "你们", "hello", "Hello", "2", "e\u2581mail", "x" * 40]
DIM = 5


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.standard_normal((len(WORDS), DIM)).astype(np.float32)


def write_text(path, words, vectors, header=True, sep=" ", end="\n"):
    rows = [sep.join([w, *(f"{x:.9g}" for x in row)]) for w, row in zip(words, vectors)]
    lines = ([f"{len(words)} {vectors.shape[1]}"] if header else []) + rows
    path.write_bytes("".join(line + end for line in lines).encode("utf-8"))
    return path


def write_binary(path, words, vectors, newline=True):
    """word2vec's C layout: header, then word, space, raw float32 (and \\n)."""
    out = [f"{len(words)} {vectors.shape[1]}\n".encode()]
    for word, row in zip(words, vectors):
        out.append(word.encode() + b" " + row.astype("<f4").tobytes())
        out.append(b"\n" if newline else b"")
    path.write_bytes(b"".join(out))
    return path


def gensim_writer(binary, header=True):
    def write(path, words, vectors):
        from gensim.models import KeyedVectors

        table = KeyedVectors(vector_size=vectors.shape[1])
        table.add_vectors(words, vectors)
        table.save_word2vec_format(str(path), binary=binary, write_header=header)
        return path

    return write


WRITERS = {
    "text with header": ("word2vec", write_text),
    "text without header": ("glove", lambda p, w, v: write_text(p, w, v, False)),
    "GloVe, CRLF, trailing space": (
        "glove",
        lambda p, w, v: write_text(p, w, v, False, end=" \r\n"),
    ),
    "binary": ("word2vec-binary", write_binary),
    "binary without newlines": (
        "word2vec-binary",
        lambda p, w, v: write_binary(p, w, v, newline=False),
    ),
    "gensim text": ("word2vec", gensim_writer(binary=False)),
    "gensim text without header": ("glove", gensim_writer(False, header=False)),
    "gensim binary": ("word2vec-binary", gensim_writer(binary=True)),
}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_every_format_reads_the_same_vectors(writer, vectors, tmp_path):
    if writer.startswith("gensim"):
        pytest.importorskip("gensim")
    expected_format, write = WRITERS[writer]
    path = write(tmp_path / "vectors", WORDS, vectors)
    assert sniff(path).format == expected_format
    for format in ("auto", expected_format):
        read = read_vectors(path, format)
        assert read.table.tokens == WORDS
        np.testing.assert_array_equal(read.table.vectors, vectors)  # bit for bit
        assert read.n_rows == len(WORDS) and read.duplicates == 0


def test_only_wanted_rows_are_kept(vectors, tmp_path):
    path = write_binary(tmp_path / "v.bin", WORDS, vectors)
    read = read_vectors(path, keep={"hello", "2", "absent"}.__contains__)
    assert read.table.tokens == ["hello", "2"] and read.n_rows == len(WORDS)
    np.testing.assert_array_equal(read.table.vectors, vectors[[2, 4]])


# ------------------------------------------------------------ header or row


@pytest.mark.parametrize(
    "text, format, tokens, dim",
    [
        # "2 3" followed by 2-field rows: the word "2" with the vector [3]
        ("2 3\na 0.5\nb 0.25\n", "glove", ["2", "a", "b"], 1),
        # a header of width 3 before rows of 4 fields
        ("2 3\na 1 2 3\nb 4 5 6\n", "word2vec", ["a", "b"], 3),
        # width 1 fits both readings: the row count decides
        ("2 1\na 0.5\nb 0.25\n", "word2vec", ["a", "b"], 1),
        ("3 1\na 0.5\nb 0.25\n", "glove", ["3", "a", "b"], 1),
        # a number as the first word of a GloVe file
        ("7 0.5 0.25\nb 1 2\n", "glove", ["7", "b"], 2),
        # UTF-8 BOM, tabs, runs of spaces, a blank last line
        ("\ufeff2  2\na\t1\t2\n b  3 4 \n\n", "word2vec", ["a", "b"], 2),
        ("\ufeffa 1 2\nb 3 4\n", "glove", ["a", "b"], 2),
        # a word with a space (GloVe 840B has some): U+2581, as export writes
        ("a 1 2\n. . . 3 4\n", "glove", ["a", ".\u2581.\u2581."], 2),
        # a header with surrounding spaces, and the word "1" with 2 values
        (" 2 2 \n1 1 2\nb 3 4\n", "word2vec", ["1", "b"], 2),
    ],
)
def test_header_or_first_row(text, format, tokens, dim, tmp_path):
    path = tmp_path / "v.txt"
    path.write_text(text, encoding="utf-8")
    info = sniff(path)
    assert (info.format, info.dim) == (format, dim)
    assert read_vectors(path).table.tokens == tokens


def test_an_explicit_format_overrides_the_guess(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("3 1\na 0.5\nb 0.25\n", encoding="utf-8")
    assert read_vectors(path).table.tokens == ["3", "a", "b"]
    with pytest.raises(InputError, match="header says 3 words but the file has 2"):
        read_vectors(path, "word2vec")
    path.write_text("2 1\na 0.5\nb 0.25\n", encoding="utf-8")
    assert read_vectors(path, "glove").table.tokens == ["2", "a", "b"]
    path.write_text("a 0.5\n", encoding="utf-8")
    with pytest.raises(InputError, match="v.txt:1: expected a word2vec header"):
        read_vectors(path, "word2vec")


def test_a_repeated_word_keeps_its_first_vector(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("a 1 2\nb 3 4\na 5 6\n", encoding="utf-8")
    read = read_vectors(path)
    assert read.table.tokens == ["a", "b"] and read.duplicates == 1
    np.testing.assert_array_equal(read.table.vector("a"), [1, 2])


# ------------------------------------------------------------ bad files


@pytest.mark.parametrize(
    "content, message",
    [
        (b"a 1 2\nb 1 x\n", "v.txt:2: 'x' is not a number"),
        (b"a 1 2\nb 1\n", "v.txt:2: expected a word and 2 values, found 1 values"),
        (b"a 1 2\nb 1 2 3\n", "v.txt:2: expected a word and 2 values, found 3"),
        # an unwanted row of the wrong width is still an error
        (b"a 1 2\nzz 1\n", "v.txt:2: expected a word and 2 values"),
        (b"a 1 2\nb 1 nan\n", "v.txt:2: a value of 'b' is not finite"),
        (b"2 3\na 1 2 3\n", "header says 2 words but the file has 1 rows"),
        (b"1 3\na 1 2 3\nb 4 5 6\n", "header says 1 words but the file has 2"),
        (b"2 3\n", "header says 2 words but the file has 0 rows"),
        (b"2 3\na 1 2\n", "v.txt:2: expected a word and 3 values, as the header"),
        (b"", "v.txt:1: empty file"),
        (b"a\n", "v.txt:1: expected a word and its values"),
        ("a 1 2\n词 1 2\n".encode("gbk"), "v.txt:2: not UTF-8 text (looks like GBK"),
        (b"a 1 2\nb\xff 1 2\n", "v.txt:2: not UTF-8 text"),
        ("a 1 2\n".encode("utf-16"), "v.txt:1: not UTF-8 text (looks like UTF-16"),
        (b"a 1 2\nb\x00 1 2\n", "v.txt:2: contains a NUL byte"),
    ],
)
def test_bad_text_files_are_one_line_errors(content, message, tmp_path):
    path = tmp_path / "v.txt"
    path.write_bytes(content)
    with pytest.raises(InputError) as error:
        read_vectors(path, keep={"a", "b"}.__contains__)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_bad_binary_files_are_one_line_errors(vectors, tmp_path):
    path = write_binary(tmp_path / "v.bin", WORDS, vectors)
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    with pytest.raises(InputError, match="truncated: the header says 7 words, the"):
        read_vectors(path)
    at = data.index(b"hello")
    path.write_bytes(data[:at] + b"\xff" + data[at + 1 :])
    with pytest.raises(InputError, match=r"v.bin: word 3 at byte \d+: the word is n"):
        read_vectors(path)
    path.write_bytes(b"1 2\nw " + struct.pack("<ff", 1.0, np.inf))
    with pytest.raises(InputError, match="v.bin: word 1 at byte 4: a value of 'w'"):
        read_vectors(path)


def test_a_missing_file_and_a_folder(tmp_path):
    with pytest.raises(InputError, match="nope.vec: file not found"):
        read_vectors(tmp_path / "nope.vec")
    with pytest.raises(InputError, match="is a directory"):
        read_vectors(tmp_path)


# ------------------------------------------------------------ coverage


def toy_vocab() -> Vocab:
    words = ["the", "cat", "paris", "sat", "mat", "on"]
    freqs = [50, 20, 15, 10, 4, 1]
    return Vocab(list(SPECIALS) + words, [0] * len(SPECIALS) + freqs)


def test_coverage_counts_words_and_tokens(tmp_path):
    vocab = toy_vocab()
    path = tmp_path / "v.txt"
    # "Paris" only by case; "The" before "the": the exact match still wins;
    # <PAD> is never taken, <UNK> is; "dog" is not in the vocabulary.
    path.write_text(
        "The 9 9\nthe 1 1\ndog 2 2\nParis 3 3\non 4 4\n<PAD> 5 5\n<UNK> 6 6\n",
        encoding="utf-8",
    )
    embedding = nn.Embedding(len(vocab), 2, padding_idx=0)
    before = embedding.weight.detach().clone()
    coverage = load_into(embedding.weight, vocab, path)
    weight = embedding.weight.detach()
    assert weight[vocab.index["the"]].tolist() == [1, 1]
    assert weight[vocab.index["paris"]].tolist() == [3, 3]
    assert weight[vocab.index["<UNK>"]].tolist() == [6, 6]
    assert torch.all(weight[0] == 0)
    for word in ("cat", "sat", "mat", "<SOS>", "<EOS>"):
        assert torch.equal(weight[vocab.index[word]], before[vocab.index[word]])

    assert coverage.found == [("the", 50), ("paris", 15), ("on", 1)]
    assert coverage.missing == [("cat", 20), ("sat", 10), ("mat", 4)]
    assert coverage.by_case == {"paris": "Paris"}
    assert coverage.specials == ["<UNK>"]
    assert (coverage.words, coverage.tokens, coverage.tokens_found) == (6, 100, 66)
    assert coverage.token_coverage == pytest.approx(66.0)
    assert coverage.word_coverage == pytest.approx(50.0)
    assert (coverage.format, coverage.dim, coverage.file_rows) == ("glove", 2, 7)
    summary = "\n".join(coverage.summary())
    assert "found 3 of 6 words (50.0%), 66.0% of the training tokens" in summary
    assert "most frequent first: cat (20), sat (10), mat (4)" in summary
    data = json.loads(json.dumps(coverage.to_dict()))
    assert data["missing"] == {"cat": 20, "sat": 10, "mat": 4}
    assert data["token_coverage"] == 66.0


def test_a_width_other_than_the_models_is_an_error(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("the 1 1 1\n", encoding="utf-8")
    embedding = nn.Embedding(len(toy_vocab()), 2, padding_idx=0)
    with pytest.raises(InputError, match="3-dimensional but the model's embeddings 2"):
        load_into(embedding.weight, toy_vocab(), path)
    config = demo_config(True, 1, [f"model.tgt_embeddings={path}"])
    with pytest.raises(InputError, match="v.txt: the vectors are 3-dimensional but"):
        check_files(config.model)


# ------------------------------------------------------------ training


def vector_files(tmp_path, dim=64):
    """A file per side covering some words of the seed example, not all."""
    rng = np.random.default_rng(3)
    src = ["我", "学习", "天气", "很", "不在词表"]
    tgt = ["I", "love", "today", "good", "absent"]  # "Today": by case alone
    return (
        write_text(tmp_path / "src.vec", src, rng.normal(size=(5, dim))),
        write_binary(tmp_path / "tgt.bin", tgt, rng.normal(size=(5, dim))),
    )


def test_freezing_keeps_the_tables_while_the_rest_learns(tmp_path):
    src, tgt = vector_files(tmp_path)
    settings = [
        "train.epochs=2",
        f"model.src_embeddings={src}",
        f"model.tgt_embeddings={tgt}",
        "model.freeze_embeddings=true",
    ]
    config = demo_config(seed_example=True, seed=1, extra=settings)
    train(config, tmp_path / "run", seed_pairs())
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    model, initial = state["model"], state["initial_embeddings"]
    assert torch.equal(model["encoder.embedding.weight"], initial["src"])
    assert torch.equal(model["decoder.embedding.weight"], initial["tgt"])
    assert not torch.equal(model["decoder.output_projection.weight"], initial["out"])
    # Adam keeps no state for a frozen table, and resuming keeps it frozen.
    assert len(state["optimizer"]["state"]) == len(model) - 2
    longer = demo_config(seed_example=True, seed=1, extra=[*settings, "train.epochs=3"])
    train(longer, tmp_path / "run", resume=True)
    resumed = load_checkpoint(tmp_path / "run" / "last.pt")["model"]
    assert torch.equal(resumed["encoder.embedding.weight"], initial["src"])
    assert not torch.equal(resumed["encoder.lstm.weight_ih_l0"], model[
        "encoder.lstm.weight_ih_l0"])  # fmt: skip

    coverage = json.loads((tmp_path / "run" / COVERAGE_FILE).read_text("utf-8"))
    assert coverage["src"]["words_found"] == 4 and coverage["src"]["frozen"]
    assert coverage["tgt"]["by_case"] == {"Today": "today"}
    assert coverage["tgt"]["format"] == "word2vec-binary"


def test_without_freezing_the_pretrained_rows_fine_tune(tmp_path):
    src, _ = vector_files(tmp_path)
    extra = ["train.epochs=2", f"model.src_embeddings={src}"]
    train(demo_config(True, 1, extra), tmp_path / "run", seed_pairs())
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    src_vocab = Vocab.from_dict(state["src_vocab"])
    initial = state["initial_embeddings"]["src"]
    file_rows = read_vectors(src).table
    for word in ("我", "学习", "天气", "很"):
        row = initial[src_vocab.index[word]].numpy()
        np.testing.assert_array_equal(row, file_rows.vector(word))
    assert torch.all(initial[0] == 0)
    assert not torch.equal(state["model"]["encoder.embedding.weight"], initial)


# ------------------------------------------------------------ command line


@pytest.mark.slow
def test_round_trip_export_then_train_from_it(tmp_path):
    """The new run starts from exactly the vectors the old one exported."""
    corpus = tmp_path / "corpus.tsv"
    corpus.write_text(
        "".join(f"{p.tgt}\t{p.src}\n" for p in seed_pairs() * 2), encoding="utf-8"
    )
    config = tmp_path / "c.yaml"
    config.write_text(
        "data: {src_segmentation: pretokenized}\nvocab: {min_freq: 1}\n"
        "model: {emb_size: 16, hidden_size: 16}\ntrain: {epochs: 2}\n"
    )
    first = seqembed("train", corpus, "--out", tmp_path / "a", "--config", config)
    assert first.returncode == 0, first.stderr
    export = seqembed(
        "export", tmp_path / "a", "--format", "word2vec", "--side", "both",
        "--out", tmp_path,
    )  # fmt: skip
    assert export.returncode == 0, export.stderr

    second = seqembed(
        "train", corpus, "--out", tmp_path / "b", "--config", config,
        "--src-embeddings", tmp_path / "src.vec",
        "--tgt-embeddings", tmp_path / "tgt.vec", "--freeze-embeddings",
    )  # fmt: skip
    assert second.returncode == 0, second.stderr
    assert "found 18 of 18 words (100.0%), 100.0% of the training tokens" in (
        second.stderr
    )
    state = load_checkpoint(tmp_path / "b" / "last.pt")
    assert state["config"]["model"]["src_embeddings"] == str(tmp_path / "src.vec")
    for side in ("src", "tgt"):
        exported = read_vectors(tmp_path / f"{side}.vec").table
        vocab = Vocab.from_dict(state[f"{side}_vocab"])
        rows = [vocab.index[token] for token in exported.tokens]
        initial = state["initial_embeddings"][side][rows].numpy()
        np.testing.assert_array_equal(initial, exported.vectors)
        trained = state["model"][f"{'encoder' if side == 'src' else 'decoder'}"
                                 ".embedding.weight"]  # fmt: skip
        assert torch.equal(trained, state["initial_embeddings"][side])  # frozen

    wrong = seqembed(
        "train", corpus, "--out", tmp_path / "c", "--config", config,
        "--src-embeddings", tmp_path / "src.vec", "--set", "model.emb_size=8",
    )  # fmt: skip
    assert_clean_error(wrong, "src.vec: the vectors are 16-dimensional")
    assert not (tmp_path / "c").exists()  # refused before anything was written
    broken = tmp_path / "broken.vec"
    lines = (tmp_path / "src.vec").read_text("utf-8").splitlines()
    lines[3] = lines[3].rsplit(" ", 1)[0]  # a value short: line 4
    broken.write_text("\n".join(lines) + "\n", encoding="utf-8")
    bad = seqembed(
        "--quiet", "train", corpus, "--out", tmp_path / "d", "--config", config,
        "--src-embeddings", broken,
    )  # fmt: skip
    assert_clean_error(bad, "broken.vec:4: expected a word and 16 values, found 15")
    again = seqembed(
        "train", "--out", tmp_path / "b", "--resume", "--freeze-embeddings"
    )
    assert_clean_error(again, "a resumed run has its vectors in the checkpoint")
