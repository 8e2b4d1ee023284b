"""The training split as integer arrays on disk, for corpora of millions of pairs.

Tokenised once, by a pool of processes, into ``RUN/cache/``; training then
reads each sentence out of the arrays on disk when a batch needs it, so no
Python lists of strings (or of ids) for the whole corpus are held::

    src.data.npy     int32   [ ids of pair 0 | ids of pair 1 | ids of pair 2 ... ]
    src.offsets.npy  int64   [ 0, len0, len0+len1, ... ]   pair i: data[o[i]:o[i+1]]
    tgt.data.npy, tgt.offsets.npy   the same for the target side

Two passes over ``RUN/data/train.tsv``, both in chunks of ``CHUNK_PAIRS``
lines spread over the pool: the first segments each chunk (jieba / Moses /
SentencePiece, as ``prepare.tokenize_splits`` does, with the same skips),
counts token frequencies and keeps the chunk's tokens in a temporary file;
the vocabularies are built from the merged counts; the second encodes each
chunk to ids and appends them to the arrays.

The ids are written and read with plain file calls, not through a memory
map: a map's pages count in the process's RSS once touched, and with the
kernel mapping large folios, a few hundred random batches map most of a
1 GB array. Read with ``os.pread``, the ids of a batch are copied out and the
rest stays in the OS's page cache (the offsets, 8 bytes a pair and read
whole each epoch, are memory-mapped).
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import pickle
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqembed.config import Config
from seqembed.data.corpus import SkipCounts
from seqembed.data.prepare import no_pairs_left, side_vocab, token_reasons
from seqembed.data.segment import text_processing
from seqembed.data.subwords import SubwordModel, from_state, to_state
from seqembed.data.vocab import Vocab
from seqembed.textfile import iter_lines

log = logging.getLogger(__name__)

CHUNK_PAIRS = 20_000


class TokenArrays:
    """Sentences of token ids stored flat (see the module docstring); indexing
    gives one sentence as a list of ints, as the in-memory lists did."""

    def __init__(self, data: np.ndarray, offsets: np.ndarray):
        self.data = data
        self.offsets = offsets

    @classmethod
    def from_lists(cls, sentences: list[list[int]]) -> TokenArrays:
        lengths = np.fromiter((len(s) for s in sentences), np.int64, len(sentences))
        offsets = np.zeros(len(sentences) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        data = np.fromiter(
            (i for s in sentences for i in s), np.int32, int(offsets[-1])
        )
        return cls(data, offsets)

    @classmethod
    def load(cls, directory: Path, side: str) -> TokenArrays:
        """The ids read from the file on use, the offsets memory-mapped."""
        return cls(
            IdFile(directory / f"{side}.data.npy"),
            np.load(directory / f"{side}.offsets.npy", mmap_mode="r"),
        )

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self.data[self.offsets[i] : self.offsets[i + 1]].tolist()

    def __iter__(self) -> Iterator[list[int]]:
        return (self[i] for i in range(len(self)))


class IdFile:
    """A 1-D array in an ``.npy`` file whose slices are read with
    ``os.pread`` (see the module docstring for why not a memory map)."""

    def __init__(self, path: Path):
        header = np.load(path, mmap_mode="r")  # the header only: no data read
        self.dtype, self.size, self.start = header.dtype, len(header), header.offset
        del header
        self._fd = os.open(path, os.O_RDONLY)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: slice) -> np.ndarray:
        start, stop, _ = index.indices(self.size)
        width = self.dtype.itemsize
        raw = os.pread(self._fd, (stop - start) * width, self.start + start * width)
        return np.frombuffer(raw, self.dtype)

    def __del__(self) -> None:
        os.close(self._fd)


@dataclass
class Cache:
    src: TokenArrays
    tgt: TokenArrays
    src_vocab: Vocab | None  # None when the caller gave the vocabularies
    tgt_vocab: Vocab | None
    skips: SkipCounts


def build_cache(
    train_tsv: Path,
    cache_dir: Path,
    config: Config,
    user_dict: str | None,
    subwords: dict[str, SubwordModel],
    processes: int,
    vocabs: tuple[Vocab, Vocab] | None = None,
) -> Cache:
    """Tokenise ``train_tsv`` (target TAB source) into ``cache_dir`` with
    ``processes`` worker processes. Vocabularies are built from the counts,
    like ``prepare.build_vocabs``, unless ``vocabs`` are given (on resume).
    A split that no pair is left of is an error saying what removed them."""
    if cache_dir.exists():
        shutil.rmtree(cache_dir)  # a cache left half-written
    parts = cache_dir / "parts"
    parts.mkdir(parents=True)
    context = multiprocessing.get_context("fork")
    setup = (config, user_dict, to_state(subwords))
    with context.Pool(processes, _start_worker, setup) as pool:
        counts, skips, sizes = _tokenize_pass(pool, train_tsv, parts)
    if not sum(size[0] for size in sizes):
        shutil.rmtree(cache_dir)
        raise no_pairs_left(skips, token_reasons(config))
    built = vocabs is None
    if built:
        vocabs = tuple(
            side_vocab(config, side, counts[side], subwords) for side in ("src", "tgt")
        )
    del counts
    vocab_state = (vocabs[0].to_dict(), vocabs[1].to_dict())
    with context.Pool(processes, _start_encoder, vocab_state) as pool:
        n_pairs = _encode_pass(pool, parts, cache_dir, sizes)
    shutil.rmtree(parts)
    (cache_dir / "meta.json").write_text(json.dumps({"pairs": n_pairs}))
    log.info("token cache: %d training pairs in %s", n_pairs, cache_dir)
    cache = open_cache(cache_dir)
    cache.skips = skips
    if built:
        cache.src_vocab, cache.tgt_vocab = vocabs
    return cache


def _tokenize_pass(pool, train_tsv: Path, parts: Path):
    """Pass 1: tokenise each chunk into ``parts`` and count; the merged token
    counts, the skips, and each chunk's (pairs, src tokens, tgt tokens)."""
    counts = {"src": Counter(), "tgt": Counter()}
    skips, sizes = SkipCounts(), []
    jobs = ((parts / f"{n}.pkl", chunk) for n, chunk in enumerate(_chunks(train_tsv)))
    for chunk_counts, chunk_skips, size in pool.imap(_tokenize_chunk, jobs):
        for side in ("src", "tgt"):
            counts[side].update(chunk_counts[side])
        skips.reasons.update(chunk_skips)
        sizes.append(size)
    return counts, skips, sizes


def _encode_pass(pool, parts: Path, cache_dir: Path, sizes: list[tuple]) -> int:
    """Pass 2: encode the chunks into arrays whose sizes pass 1 gave; the
    number of pairs."""
    n_pairs = sum(s[0] for s in sizes)
    with contextlib.ExitStack() as stack:
        files, token_at = {}, {"src": 0, "tgt": 0}
        for k, side in enumerate(("src", "tgt")):
            total = sum(s[k + 1] for s in sizes)
            files[side] = (
                stack.enter_context(
                    _create(cache_dir, f"{side}.data", np.int32, total)
                ),
                stack.enter_context(
                    _create(cache_dir, f"{side}.offsets", np.int64, n_pairs + 1)
                ),
            )
            files[side][1].write(np.zeros(1, np.int64).tobytes())
        paths = (parts / f"{n}.pkl" for n in range(len(sizes)))
        for encoded in pool.imap(_encode_chunk, paths):  # in order: appended
            for side, (ids, lengths) in zip(("src", "tgt"), encoded):
                data, offsets = files[side]
                data.write(ids.tobytes())
                offsets.write((token_at[side] + np.cumsum(lengths)).tobytes())
                token_at[side] += len(ids)
    return n_pairs


def open_cache(cache_dir: Path) -> Cache | None:
    """The cache a run wrote (its arrays memory-mapped), or None if there is
    no complete one."""
    if not (cache_dir / "meta.json").exists():
        return None
    return Cache(
        TokenArrays.load(cache_dir, "src"),
        TokenArrays.load(cache_dir, "tgt"),
        None,
        None,
        SkipCounts(),
    )


def _create(directory: Path, name: str, dtype, size: int):
    """A new ``name.npy`` of ``size`` items, open for writing them in order."""
    path = directory / f"{name}.npy"
    header = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=(size,))
    start = header.offset
    del header  # the header written, the file its full (sparse) size
    handle = open(path, "r+b")
    handle.seek(start)
    return handle


def _chunks(train_tsv: Path) -> Iterator[list[tuple[str, str]]]:
    """(source, target) pairs of the file, CHUNK_PAIRS at a time."""
    chunk = []
    for _, text in iter_lines(train_tsv):
        if text:
            tgt, src = text.split("\t")[:2]
            chunk.append((src, tgt))
        if len(chunk) == CHUNK_PAIRS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# ------------------------------------------------ in the worker processes

_worker: dict = {}


def _start_worker(config: Config, user_dict: str | None, subwords: dict) -> None:
    subword_models = from_state({"subword_models": subwords})
    segmenter, tokenizer = text_processing(config.data, user_dict, subword_models)
    _worker.update(
        segmenter=segmenter, tokenizer=tokenizer, limit=config.data.max_tokens
    )


def _tokenize_chunk(job: tuple[Path, list[tuple[str, str]]]):
    """Tokens of one chunk into ``path``; returns its counts, skips and sizes.
    The same skips, in the same order, as ``prepare.tokenize_splits``."""
    path, chunk = job
    segmenter, tokenizer, limit = (
        _worker["segmenter"],
        _worker["tokenizer"],
        _worker["limit"],
    )
    src_out, tgt_out, skips = [], [], Counter()
    for src_text, tgt_text in chunk:
        src, tgt = segmenter(src_text), tokenizer.tokenize(tgt_text)
        if len(src) > limit or len(tgt) > limit:
            skips["too long"] += 1
        elif not src or not tgt:
            skips["empty after tokenisation"] += 1
        else:
            src_out.append(src)
            tgt_out.append(tgt)
    with open(path, "wb") as handle:
        pickle.dump((src_out, tgt_out), handle, protocol=pickle.HIGHEST_PROTOCOL)
    counts = {
        "src": Counter(t for s in src_out for t in s),
        "tgt": Counter(t for s in tgt_out for t in s),
    }
    sizes = (len(src_out), sum(map(len, src_out)), sum(map(len, tgt_out)))
    return counts, skips, sizes


def _start_encoder(src_state: dict, tgt_state: dict) -> None:
    _worker.update(src=Vocab.from_dict(src_state), tgt=Vocab.from_dict(tgt_state))


def _encode_chunk(path: Path):
    with open(path, "rb") as handle:
        sentences = pickle.load(handle)
    encoded = []
    for side, side_sentences in zip(("src", "tgt"), sentences):
        vocab = _worker[side]
        ids = [vocab.encode(s) for s in side_sentences]
        lengths = np.fromiter(map(len, ids), np.int64, len(ids))
        flat = np.fromiter((i for s in ids for i in s), np.int32, int(lengths.sum()))
        encoded.append((flat, lengths))
    return encoded
