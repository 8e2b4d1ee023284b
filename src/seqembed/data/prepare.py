"""The data a run trains on: split the corpus once, write the splits into the
run directory, and segment them the same way for training, resume and analysis.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seqembed.config import SAVED, Config, from_dict
from seqembed.data.corpus import (
    SIDES,
    Corpus,
    Pair,
    SkipCounts,
    first_occurrences,
    hash_keys,
    heldout_size,
    iter_tsv,
    read_tsv,
    split_groups,
    write_tsv,
)
from seqembed.data.segment import ChineseSegmenter, EnglishTokenizer, text_processing
from seqembed.data.subwords import SubwordModel, from_state
from seqembed.data.vocab import SPECIALS, Vocab
from seqembed.errors import InputError

log = logging.getLogger(__name__)


@dataclass
class Split:
    """One side of the split: raw pairs and their tokens."""

    pairs: list[Pair]
    src: list[list[str]] = field(default_factory=list)
    tgt: list[list[str]] = field(default_factory=list)


def split_corpus(
    pairs: Iterable[Pair] | Corpus,
    config: Config,
    run_dir: Path,
    heldout: dict[str, list[Pair]] | None = None,
) -> dict[str, int]:
    """Deduplicate, split without shared sentences, write the splits to
    RUN/data; the number of pairs on each side.

    ``pairs`` (a list, or a ``Corpus`` read from its files) is streamed twice
    and never held: once for four hashes a pair, from which the sides are
    decided (the sides ``split_pairs(deduplicate(pairs))`` gives), then to
    write each pair into its side's file. With ``heldout`` ({"valid": ...,
    "test": ...}, the user's own split), ``pairs`` are the training pairs as
    given and nothing is split."""
    read = pairs.read if isinstance(pairs, Corpus) else lambda _: iter(pairs)
    skips = SkipCounts()
    sides = None  # with ``heldout``, all train
    if heldout is None:
        sides = _decide_sides(_named_skips(read(skips), skips, config), config)
        if skips.total:
            log.warning("%s", skips.summary())
        if not np.any(sides == 0):
            raise _nothing_to_split(sides, skips, config)
        skips = SkipCounts()  # the second pass skips the same lines again
    data_dir = run_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    sizes = dict.fromkeys(SIDES, 0)
    with contextlib.ExitStack() as stack:
        files = [
            stack.enter_context(open(data_dir / f"{name}.tsv", "w", encoding="utf-8"))
            for name in SIDES
        ]
        for i, pair in enumerate(read(skips)):
            side = 0 if sides is None else sides[i]
            if side >= 0:
                files[side].write(f"{pair.tgt}\t{pair.src}\n")
                sizes[SIDES[side]] += 1
    if heldout is not None:
        if skips.total:
            log.warning("%s", skips.summary())
        if not sizes["train"]:
            raise no_pairs_left(skips, read_reasons(config))
        for name in ("valid", "test"):
            write_tsv(heldout[name], data_dir / f"{name}.tsv")
            sizes[name] = len(heldout[name])
    log.info("split: %s", ", ".join(f"{n} {name}" for name, n in sizes.items()))
    return sizes


def read_reasons(config: Config) -> dict[str, str]:
    """What each reason a corpus line is skipped for says in an error."""
    return {
        "empty": "have an empty side",
        "too long": f"are longer than data.max_chars={config.data.max_chars}",
    }


def token_reasons(config: Config) -> dict[str, str]:
    """The same for the reasons a training pair is skipped once tokenised."""
    return {
        "too long": f"are longer than data.max_tokens={config.data.max_tokens}",
        "empty after tokenisation": "are empty after tokenisation",
    }


def no_pairs_left(skips: SkipCounts, reasons: dict[str, str]) -> InputError:
    """``no training pairs left: all 320 are longer than data.max_tokens=1``:
    what removed them, and so the key to change."""
    counts = skips.reasons.most_common()
    if len(counts) == 1:
        reason, n = counts[0]
        what = f"all {n} {reasons.get(reason, reason)}"
    else:
        what = " and ".join(f"{n} {reasons.get(r, r)}" for r, n in counts)
    return InputError(f"no training pairs left: {what}" if counts else "no pairs")


def _named_skips(
    pairs: Iterator[Pair], skips: SkipCounts, config: Config
) -> Iterator[Pair]:
    """``pairs``; a corpus whose lines were all skipped, some as too long,
    is an error naming ``data.max_chars`` (the corpus's own error names the
    file, which is right for a file of blank lines)."""
    empty = True
    try:
        for pair in pairs:
            empty = False
            yield pair
    except InputError as error:
        # Lines skipped for a setting (too long): name the key; a file of
        # blank lines keeps the corpus's own message, which names the file.
        if empty and error.line is None and skips.reasons["too long"]:
            raise no_pairs_left(skips, read_reasons(config)) from None
        raise


def _nothing_to_split(sides: np.ndarray, skips: SkipCounts, config: Config):
    """Why ``split_corpus`` has no training pair: every line skipped, or the
    held-out splits took every distinct pair."""
    if not len(sides):
        if skips.total:
            return no_pairs_left(skips, read_reasons(config))
        return InputError("the corpus holds no pairs")
    return InputError(
        f"no training pairs left: the held-out splits took all "
        f"{int(np.sum(sides >= 0))} distinct pairs; lower data.valid_size, "
        f"data.test_size or data.heldout_fraction"
    )


def _decide_sides(pairs: Iterator[Pair], config: Config) -> np.ndarray:
    """Each pair's side as a code into ``SIDES``, -1 for a duplicate."""
    keys = hash_keys(pairs)
    log.info("read %d pairs", len(keys.pair))
    keep = first_occurrences(keys.pair, keys.pair_check)
    n_unique = int(keep.sum())
    if n_unique < len(keep):
        log.info("removed %d duplicate pairs", len(keep) - n_unique)
    sides = np.full(len(keep), -1, dtype=np.int8)
    if n_unique:
        data = config.data
        sides[keep] = split_groups(
            keys.src[keep],
            keys.tgt[keep],
            valid_size=heldout_size(n_unique, data.valid_size, data.heldout_fraction),
            test_size=heldout_size(n_unique, data.test_size, data.heldout_fraction),
            seed=data.split_seed,
        )
    return sides


def read_splits(run_dir: Path, names: tuple[str, ...] = SIDES) -> dict[str, list[Pair]]:
    """The splits a run wrote (Tatoeba layout: target TAB source)."""
    splits = {}
    for name in names:
        path = run_dir / "data" / f"{name}.tsv"
        if path.exists() and path.stat().st_size:
            splits[name] = read_tsv(path, 1, 0, 10**9, SkipCounts())
        else:
            splits[name] = []
    return splits


def stream_split(run_dir: Path, name: str) -> Iterator[Pair]:
    """The pairs of one split a run wrote, streamed."""
    path = run_dir / "data" / f"{name}.tsv"
    if not path.exists():
        return iter(())
    return iter_tsv(path, 1, 0, 10**9, SkipCounts())


def count_lines(path: Path) -> int:
    """Lines of a file (a split: one pair a line), counted in blocks."""
    if not path.exists():
        return 0
    with open(path, "rb") as handle:
        return sum(
            block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b"")
        )


def tokenize_splits(
    splits: dict[str, list[Pair]],
    config: Config,
    segmenter: ChineseSegmenter,
    tokenizer: EnglishTokenizer,
    skips: SkipCounts,
) -> dict[str, Split]:
    """Segment both sides; training pairs longer than max_tokens are skipped
    (from ``pairs`` too, so pairs and tokens stay aligned). A training split
    that none are left of is an error saying what removed them."""
    limit = config.data.max_tokens
    result = {}
    for name, pairs in splits.items():
        split, skipped = Split(pairs=[]), SkipCounts()
        for pair in pairs:
            src, tgt = segmenter(pair.src), tokenizer.tokenize(pair.tgt)
            if name == "train" and (len(src) > limit or len(tgt) > limit):
                skipped.add("too long")
                continue
            if name == "train" and (not src or not tgt):
                skipped.add("empty after tokenisation")
                continue
            split.pairs.append(pair)
            split.src.append(src)
            split.tgt.append(tgt[:limit])
        if pairs and not split.pairs:
            raise no_pairs_left(skipped, token_reasons(config))
        skips.reasons.update(skipped.reasons)
        result[name] = split
    return result


def train_subwords(
    config: Config, user_dict: str | None, run_dir: Path
) -> dict[str, SubwordModel]:
    """SentencePiece models for the sides that use them, trained on the
    training pairs (streamed from ``RUN/data/train.tsv``; a corpus of more
    than ``subwords.MAX_SENTENCES`` pairs is sampled) and written to
    ``RUN/spm.{src,tgt}.model``.

    Chinese is learned from jieba's words (with the user dictionary), joined
    by spaces: pieces stay inside words, and a word's pieces are the same
    wherever it occurs. English is learned from the raw text, lowercased with
    ``data.lowercase``; SentencePiece's own whitespace handling splits it."""
    data, models = config.data, {}
    if data.src_segmentation == "sentencepiece":
        jieba = ChineseSegmenter("jieba", user_dict)
        models["src"] = SubwordModel.train(
            (" ".join(jieba(p.src)) for p in stream_split(run_dir, "train")),
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
            (english.text(p.tgt) for p in stream_split(run_dir, "train")),
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
    """One side's vocabulary from its token counts (``build_vocabs``). One
    of only the special tokens is an error naming the key that emptied it."""
    if side in subwords:
        pieces = subwords[side].pieces()
        return Vocab.from_counts(counts, 1, len(pieces) + 4, pieces)
    vocab = Vocab.from_counts(counts, config.vocab.min_freq, config.vocab.max_size)
    if len(vocab) > len(SPECIALS):
        return vocab
    name = {"src": "source", "tgt": "target"}[side]
    if config.vocab.max_size <= len(SPECIALS):
        raise InputError(
            f"vocab.max_size={config.vocab.max_size} leaves no room beside the "
            f"{len(SPECIALS)} special tokens: the {name} vocabulary would hold "
            "nothing else"
        )
    raise InputError(
        f"the {name} vocabulary would hold only the special tokens: no {name} "
        f"token occurs vocab.min_freq={config.vocab.min_freq} times in the "
        "training pairs"
    )


def training_tokens(run_dir: Path, checkpoint: dict) -> Split:
    """The run's training pairs, segmented and tokenised exactly as training
    saw them (for co-occurrence counts and contextual states)."""
    config = from_dict(checkpoint["config"], SAVED)
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
    data = from_dict(checkpoint["config"], SAVED).data
    if data.src_segmentation == "sentencepiece":
        jieba = ChineseSegmenter("jieba", checkpoint.get("user_dict"))
        split.src = [jieba(pair.src) for pair in split.pairs]
    if data.tgt_tokenization == "sentencepiece":
        moses = EnglishTokenizer("moses", data.lowercase)
        split.tgt = [moses.tokenize(pair.tgt) for pair in split.pairs]
    return split
