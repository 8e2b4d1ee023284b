"""The token cache (seqembed.data.token_cache): the same ids as the in-memory path,
whatever the number of tokenising processes, read from disk, and training on
it bitwise equal to training without it; the epoch order held as one array."""

import numpy as np
import pytest
import torch

from seqembed.cli.demo import builtin_pairs, demo_config
from seqembed.data.batches import BUCKET_WINDOW, epoch_batches
from seqembed.data.corpus import SkipCounts
from seqembed.data.prepare import (
    build_vocabs,
    read_splits,
    split_corpus,
    tokenize_splits,
)
from seqembed.data.segment import text_processing
from seqembed.data.token_cache import IdFile, TokenArrays, build_cache
from seqembed.nmt.checkpoint import load_checkpoint
from seqembed.nmt.training import train


@pytest.fixture(scope="module")
def split_run(tmp_path_factory):
    """The built-in corpus split into a run directory, and its config."""
    run_dir = tmp_path_factory.mktemp("split")
    config = demo_config(seed_example=False, seed=1)
    split_corpus(builtin_pairs(), config, run_dir)
    return run_dir, config, read_splits(run_dir)


@pytest.mark.slow
def test_cache_gives_the_in_memory_ids_with_one_or_two_processes(split_run):
    run_dir, config, splits = split_run
    segmenter, tokenizer = text_processing(config.data)
    tokens = tokenize_splits(
        {"train": splits["train"]}, config, segmenter, tokenizer, SkipCounts()
    )["train"]
    src_vocab, tgt_vocab = build_vocabs(config, tokens, {})
    for processes in (1, 2):
        cache = build_cache(
            run_dir / "data" / "train.tsv",
            run_dir / f"cache-{processes}",
            config,
            None,
            {},
            processes,
        )
        assert cache.src_vocab.to_dict() == src_vocab.to_dict()
        assert cache.tgt_vocab.to_dict() == tgt_vocab.to_dict()
        assert list(cache.src) == [src_vocab.encode(s) for s in tokens.src]
        assert list(cache.tgt) == [tgt_vocab.encode(t) for t in tokens.tgt]
        for arrays in (cache.src, cache.tgt):
            assert isinstance(arrays.data, IdFile)  # read with pread, not held
            assert isinstance(arrays.offsets, np.memmap)
            assert arrays.data.dtype == np.int32


@pytest.mark.slow
def test_cache_chunks_are_joined_in_order(split_run, monkeypatch):
    """Chunks smaller than the split: several per process, written in order."""
    run_dir, config, _ = split_run
    whole = build_cache(
        run_dir / "data" / "train.tsv", run_dir / "one", config, None, {}, 1
    )
    monkeypatch.setattr("seqembed.data.token_cache.CHUNK_PAIRS", 7)
    chunked = build_cache(
        run_dir / "data" / "train.tsv", run_dir / "many", config, None, {}, 2
    )
    assert list(chunked.src) == list(whole.src)
    assert list(chunked.tgt) == list(whole.tgt)
    assert np.array_equal(chunked.tgt.lengths, whole.tgt.lengths)


def test_token_arrays_from_lists_index_like_the_lists():
    sentences = [[4, 5], [], [6], [7, 8, 9]]
    arrays = TokenArrays.from_lists(sentences)
    assert len(arrays) == 4
    assert list(arrays) == sentences
    assert arrays[1:3] == sentences[1:3]
    assert arrays.lengths.tolist() == [2, 0, 1, 3]


@pytest.mark.slow
def test_training_on_the_cache_is_bitwise_training_without_it(tmp_path):
    extra = ["train.epochs=2"]
    runs = {}
    for name, threshold in (("lists", 10**9), ("cache", 1)):
        config = demo_config(
            seed_example=False,
            seed=1,
            extra=[*extra, f"data.cache_min_pairs={threshold}"],
        )
        train(config, tmp_path / name, builtin_pairs())
        runs[name] = load_checkpoint(tmp_path / name / "last.pt")
    assert (tmp_path / "cache" / "cache" / "src.data.npy").exists()
    assert not (tmp_path / "lists" / "cache").exists()
    lists, cache = runs["lists"], runs["cache"]
    assert lists["src_vocab"] == cache["src_vocab"]
    assert lists["tgt_vocab"] == cache["tgt_vocab"]
    for key, value in lists["model"].items():
        assert torch.equal(value, cache["model"][key]), key
    assert (tmp_path / "lists" / "metrics.jsonl").read_text().count("train_loss") == 2


@pytest.mark.slow
def test_resume_on_the_cache_ends_as_the_uninterrupted_run(tmp_path):
    def config(epochs):
        extra = [f"train.epochs={epochs}", "data.cache_min_pairs=1"]
        return demo_config(seed_example=False, seed=1, extra=extra)

    train(config(2), tmp_path / "straight", builtin_pairs())
    train(config(1), tmp_path / "resumed", builtin_pairs())
    train(config(2), tmp_path / "resumed", resume=True)
    straight = load_checkpoint(tmp_path / "straight" / "last.pt")["model"]
    resumed = load_checkpoint(tmp_path / "resumed" / "last.pt")["model"]
    for key, value in straight.items():
        assert torch.equal(value, resumed[key]), key


def list_epoch_batches(src_lengths, tgt_lengths, batch_size, seed, epoch):
    """epoch_batches as it was written with a Python list a batch."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(len(src_lengths), generator=generator).numpy()
    window, batches = batch_size * BUCKET_WINDOW, []
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        chunk = chunk[np.lexsort((tgt_lengths[chunk], src_lengths[chunk]))]
        batches.extend(
            chunk[i : i + batch_size].tolist() for i in range(0, len(chunk), batch_size)
        )
    permutation = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in permutation]


@pytest.mark.parametrize("n_pairs", [0, 1, 63, 3200, 3201, 10_007])
def test_the_epoch_order_is_one_array_and_the_list_built_batches(n_pairs):
    rng = np.random.default_rng(n_pairs)
    src, tgt = rng.integers(1, 40, (2, n_pairs))
    for batch_size in (1, 7, 64):
        batches = epoch_batches(src, tgt, batch_size, seed=3, epoch=2)
        assert isinstance(batches.order, np.ndarray)  # 8 bytes a pair
        expected = list_epoch_batches(src, tgt, batch_size, 3, 2)
        assert batches == expected and len(batches) == len(expected)
        assert batches[1:4] == expected[1:4]
