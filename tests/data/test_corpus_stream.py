"""The streaming preparation of a corpus (prepare.split_corpus over
corpus.Corpus): the same split as split_pairs(deduplicate(pairs)), the same
file:line errors, and memory that does not grow with Python objects a pair."""

import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from seqembed.config import load_config
from seqembed.data.corpus import (
    Corpus,
    Pair,
    SkipCounts,
    deduplicate,
    first_occurrences,
    heldout_size,
    read_tsv,
    split_pairs,
)
from seqembed.data.prepare import read_splits, split_corpus
from seqembed.errors import InputError


def reference_split(pairs, config):
    """What split_corpus wrote before it streamed: lists, sets and dicts."""
    unique = deduplicate(pairs)
    data = config.data
    return split_pairs(
        unique,
        heldout_size(len(unique), data.valid_size, data.heldout_fraction),
        heldout_size(len(unique), data.test_size, data.heldout_fraction),
        data.split_seed,
    )


def as_text(splits):
    return {name: [(p.src, p.tgt) for p in side] for name, side in splits.items()}


def assert_same_split(source, pairs, config, run_dir):
    sizes = split_corpus(source, config, run_dir)
    written = as_text(read_splits(run_dir))
    expected = as_text(reference_split(pairs, config))
    assert written == expected
    assert sizes == {name: len(side) for name, side in expected.items()}


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 7])
def test_streaming_split_equals_the_list_split_on_tatoeba(tatoeba_tsv, tmp_path, seed):
    config = load_config(None, [f"data.split_seed={seed}"])
    corpus = Corpus((tatoeba_tsv,), 1, 0, config.data.max_chars)
    pairs = read_tsv(tatoeba_tsv, 1, 0, config.data.max_chars, SkipCounts())
    assert_same_split(corpus, pairs, config, tmp_path)


def shared_sentence_corpus(n_pairs: int, seed: int) -> list[Pair]:
    """Pairs drawn from few sentences: many repeats (some only in case or
    width, which normalisation joins), long chains of shared sentences."""
    rng = random.Random(seed)
    src = [f"句子{i}" for i in range(n_pairs // 3)] + ["Ｆｕｌｌ", "full"]
    tgt = [f"Sentence {i}" for i in range(n_pairs // 2)] + ["CASE", "case", "Case"]
    return [
        Pair(rng.choice(src), rng.choice(tgt), line) for line in range(1, n_pairs + 1)
    ]


@pytest.mark.parametrize("seed", range(6))
def test_streaming_split_equals_the_list_split_with_shared_sentences(tmp_path, seed):
    pairs = shared_sentence_corpus(300 + 500 * seed, seed)
    config = load_config(
        None, [f"data.split_seed={seed}", "data.valid_size=40", "data.test_size=25"]
    )
    assert_same_split(pairs, pairs, config, tmp_path / "list")
    path = tmp_path / "corpus.tsv"
    path.write_text("".join(f"{p.tgt}\t{p.src}\n" for p in pairs), encoding="utf-8")
    assert_same_split(Corpus((path,)), pairs, config, tmp_path / "file")


def test_aligned_files_stream_the_same_split(tmp_path):
    pairs = shared_sentence_corpus(2000, 3)
    (tmp_path / "s").write_text("".join(f"{p.src}\n" for p in pairs), "utf-8")
    (tmp_path / "t").write_text("".join(f"{p.tgt}\n" for p in pairs), "utf-8")
    config = load_config(None, ["data.valid_size=50", "data.test_size=50"])
    corpus = Corpus((tmp_path / "s", tmp_path / "t"))
    assert_same_split(corpus, pairs, config, tmp_path / "run")


def test_a_pair_key_collision_is_settled_by_the_second_hash():
    keys = np.array([5, 5, 5, 2, 5])
    check = np.array([1, 2, 1, 3, 2])  # pairs 0 and 2 are one pair, 1 and 4 one
    assert first_occurrences(keys, check).tolist() == [1, 1, 0, 1, 0]
    assert first_occurrences(keys, keys).tolist() == [1, 0, 0, 1, 0]
    assert first_occurrences(keys[:0], keys[:0]).tolist() == []


@pytest.mark.parametrize(
    "content, line, message",
    [
        ("a\t甲\nb\t乙\nc\n", 3, "expected at least 2 tab-separated columns"),
        ("a\t甲\n".encode() * 5 + "b\t乙\n".encode("gbk"), 6, "GBK"),
        (b"a\t\xe7\x94\xb2\n" * 3 + b"b\t\x00\n", 4, "NUL byte"),
    ],
)
def test_streaming_reader_names_file_and_line(tmp_path, content, line, message):
    path = tmp_path / "bad.tsv"
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        split_corpus(Corpus((path,)), load_config(None, []), tmp_path / "run")
    assert str(info.value).startswith(f"{path}:{line}:")
    assert not (tmp_path / "run").exists()  # found before anything is written


def test_streaming_reader_counts_skips_and_refuses_an_empty_corpus(tmp_path, caplog):
    path = tmp_path / "c.tsv"
    path.write_text("a\t甲\n\n \t乙\n" + "x" * 50 + "\t丙\n", encoding="utf-8")
    caplog.set_level("INFO")
    sizes = split_corpus(Corpus((path,), max_chars=20), load_config(None, []), tmp_path)
    assert sizes == {"train": 1, "valid": 0, "test": 0}
    assert "skipped 3 lines: 2 empty, 1 too long" in caplog.text
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(InputError, match="no usable sentence pairs"):
        split_corpus(Corpus((path,)), load_config(None, []), tmp_path / "empty")


PREPARE = textwrap.dedent(
    """
    import random, resource, sys
    from pathlib import Path
    from seqembed.config import load_config
    from seqembed.data.corpus import Corpus
    from seqembed.data.prepare import split_corpus

    n, work = int(sys.argv[1]), Path(sys.argv[2])
    rng = random.Random(0)
    words = [f"w{i}" for i in range(3000)]
    path = work / f"corpus-{n}.tsv"
    with open(path, "w", encoding="utf-8") as handle:
        for _ in range(n):
            src = " ".join(rng.choices(words, k=12))
            tgt = " ".join(rng.choices(words, k=12))
            handle.write(f"{tgt}\\t{src}\\n")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    split_corpus(Corpus((path,)), load_config(None, []), work / f"run-{n}")
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((after - before) * 1024)
    """
)


def prepare_growth(n_pairs: int, work) -> int:
    """Bytes the peak RSS grew by while split_corpus streamed n_pairs pairs,
    in a fresh process."""
    output = subprocess.run(
        [sys.executable, "-c", PREPARE, str(n_pairs), str(work)],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(output.stdout.split()[-1])


@pytest.mark.slow
def test_streaming_preparation_keeps_no_python_objects_per_pair(tmp_path):
    # A Pair and its normalised strings are hundreds of bytes; the streaming
    # path keeps 32 bytes of hashes a pair, plus numpy's and scipy's
    # temporaries of tens of bytes a pair. On 120k pairs, read_tsv +
    # deduplicate + split_pairs grew the peak by 1,176 bytes a pair, this by 90.
    growth = prepare_growth(120_000, tmp_path)
    assert growth < 120_000 * 250, growth
