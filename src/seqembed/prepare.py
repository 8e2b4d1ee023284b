"""The data a run trains on: split the corpus once, write the splits into the
run directory, and segment them the same way for training, resume and analysis.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from seqembed.config import Config, from_dict
from seqembed.corpus import (
    Pair,
    SkipCounts,
    deduplicate,
    heldout_size,
    read_tsv,
    split_pairs,
    write_tsv,
)
from seqembed.errors import InputError
from seqembed.segment import ChineseSegmenter, EnglishTokenizer, text_processing
from seqembed.subwords import SubwordModel, from_state
from seqembed.vocab import Vocab

log = logging.getLogger(__name__)


@dataclass
class Split:
    """One side of the split: raw pairs and their tokens."""

    pairs: list[Pair]
    src: list[list[str]] = field(default_factory=list)
    tgt: list[list[str]] = field(default_factory=list)


def split_corpus(
    pairs: list[Pair],
    config: Config,
    run_dir: Path,
    heldout: dict[str, list[Pair]] | None = None,
) -> dict[str, list[Pair]]:
    """Deduplicate, split without shared sentences, write the splits to RUN/data.

    With ``heldout`` ({"valid": ..., "test": ...}, the user's own split),
    ``pairs`` are the training pairs as given and nothing is split.
    """
    if heldout is not None:
        splits = {"train": pairs, "valid": heldout["valid"], "test": heldout["test"]}
    else:
        unique = deduplicate(pairs)
        if len(unique) < len(pairs):
            log.info("removed %d duplicate pairs", len(pairs) - len(unique))
        data = config.data
        fraction = data.heldout_fraction
        splits = split_pairs(
            unique,
            valid_size=heldout_size(len(unique), data.valid_size, fraction),
            test_size=heldout_size(len(unique), data.test_size, fraction),
            seed=data.split_seed,
        )
    if not splits["train"]:
        raise InputError("the corpus is too small: no pairs left for training")
    (run_dir / "data").mkdir(parents=True, exist_ok=True)
    for name, side in splits.items():
        write_tsv(side, run_dir / "data" / f"{name}.tsv")
    return splits


def read_splits(run_dir: Path) -> dict[str, list[Pair]]:
    """The splits a run wrote (Tatoeba layout: target TAB source)."""
    splits = {}
    for name in ("train", "valid", "test"):
        path = run_dir / "data" / f"{name}.tsv"
        if path.exists() and path.stat().st_size:
            splits[name] = read_tsv(path, 1, 0, 10**9, SkipCounts())
        else:
            splits[name] = []
    return splits


def tokenize_splits(
    splits: dict[str, list[Pair]],
    config: Config,
    segmenter: ChineseSegmenter,
    tokenizer: EnglishTokenizer,
    skips: SkipCounts,
) -> dict[str, Split]:
    """Segment both sides; training pairs longer than max_tokens are skipped
    (from ``pairs`` too, so pairs and tokens stay aligned)."""
    limit = config.data.max_tokens
    result = {}
    for name, pairs in splits.items():
        split = Split(pairs=[])
        for pair in pairs:
            src, tgt = segmenter(pair.src), tokenizer.tokenize(pair.tgt)
            if name == "train" and (len(src) > limit or len(tgt) > limit):
                skips.add("too long")
                continue
            if name == "train" and (not src or not tgt):
                skips.add("empty after tokenisation")
                continue
            split.pairs.append(pair)
            split.src.append(src)
            split.tgt.append(tgt[:limit])
        result[name] = split
    return result


def train_subwords(
    config: Config, pairs: list[Pair], user_dict: str | None, run_dir: Path
) -> dict[str, SubwordModel]:
    """SentencePiece models for the sides that use them, trained on the
    training pairs and written to ``RUN/spm.{src,tgt}.model``.

    Chinese is learned from jieba's words (with the user dictionary), joined
    by spaces: pieces stay inside words, and a word's pieces are the same
    wherever it occurs. English is learned from the raw text, lowercased with
    ``data.lowercase``; SentencePiece's own whitespace handling splits it."""
    data, models = config.data, {}
    if data.src_segmentation == "sentencepiece":
        jieba = ChineseSegmenter("jieba", user_dict)
        models["src"] = SubwordModel.train(
            (" ".join(jieba(pair.src)) for pair in pairs),
            data.src_sp_type,
            data.src_sp_vocab_size,
            # SentencePiece's advice for CJK: the rarest 0.05% of characters
            # become <UNK> rather than pieces of their own.
            character_coverage=0.9995,
            name="data.src_sp_vocab_size",
        )
    if data.tgt_tokenization == "sentencepiece":
        english = EnglishTokenizer("pretokenized", data.lowercase)
        models["tgt"] = SubwordModel.train(
            (english.text(pair.tgt) for pair in pairs),
            data.tgt_sp_type,
            data.tgt_sp_vocab_size,
            name="data.tgt_sp_vocab_size",
        )
    for side, model in models.items():
        model.save(run_dir / f"spm.{side}.model")
        log.info("%s: SentencePiece model of %d pieces", side, len(model))
    return models


def build_vocabs(
    config: Config, train: Split, subwords: dict[str, SubwordModel]
) -> tuple[Vocab, Vocab]:
    """Word vocabularies by frequency (``vocab.min_freq``, ``vocab.max_size``);
    a SentencePiece side's vocabulary is all of its model's pieces, so that no
    piece the model can produce is ``<UNK>``."""
    return tuple(
        side_vocab(config, side, Counter(t for s in sentences for t in s), subwords)
        for side, sentences in (("src", train.src), ("tgt", train.tgt))
    )


def side_vocab(
    config: Config, side: str, counts: Counter, subwords: dict[str, SubwordModel]
) -> Vocab:
    """One side's vocabulary from its token counts (``build_vocabs``)."""
    if side in subwords:
        pieces = subwords[side].pieces()
        return Vocab.from_counts(counts, 1, len(pieces) + 4, pieces)
    return Vocab.from_counts(counts, config.vocab.min_freq, config.vocab.max_size)


def training_tokens(run_dir: Path, checkpoint: dict) -> Split:
    """The run's training pairs, segmented and tokenised exactly as training
    saw them (for co-occurrence counts and contextual states)."""
    config = from_dict(checkpoint["config"], "checkpoint")
    pairs = read_splits(Path(run_dir))["train"]
    if not pairs:
        raise InputError("the run has no training data (data/train.tsv)", run_dir)
    segmenter, tokenizer = text_processing(
        config.data, checkpoint.get("user_dict"), from_state(checkpoint)
    )
    splits = tokenize_splits(
        {"train": pairs}, config, segmenter, tokenizer, SkipCounts()
    )
    return splits["train"]


def training_words(run_dir: Path, checkpoint: dict) -> Split:
    """``training_tokens``' pairs with each SentencePiece side as words
    instead of pieces: jieba's (with the run's user dictionary) for the
    source, Moses tokens (lowercased as the run was) for the target."""
    split = training_tokens(run_dir, checkpoint)
    data = from_dict(checkpoint["config"], "checkpoint").data
    if data.src_segmentation == "sentencepiece":
        jieba = ChineseSegmenter("jieba", checkpoint.get("user_dict"))
        split.src = [jieba(pair.src) for pair in split.pairs]
    if data.tgt_tokenization == "sentencepiece":
        moses = EnglishTokenizer("moses", data.lowercase)
        split.tgt = [moses.tokenize(pair.tgt) for pair in split.pairs]
    return split
