"""Which sentences and words the analyses read.

``training_sentences`` gives a run's training sentences exactly as training
segmented them (tokens, raw text, translation); ``is_content_word`` tells
the words a reader wants to see (天气, 学习) from the function words that are
frequent everywhere (的, 了, 是), for choosing default words to show.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqembed.data.prepare import training_tokens
from seqembed.nmt.checkpoint import load_checkpoint, resolve_checkpoint

# Frequent Chinese function words (particles, pronouns, the copula,
# conjunctions, negation): frequent everywhere, so they would crowd out the
# content words a reader wants to see by default.
FUNCTION_WORDS = frozenset(
    "的 地 得 了 着 过 吗 呢 吧 啊 呀 嘛 是 在 和 与 及 或 也 都 就 而 但 "
    "我 你 您 他 她 它 我们 你们 他们 她们 这 那 这个 那个 这些 那些 "
    "一 个 不 没 没有 把 被 给 对 从".split()
)
# The same for English: articles, pronouns, auxiliaries, prepositions,
# conjunctions and the pieces of contractions 13a tokenisation leaves.
ENGLISH_FUNCTION_WORDS = frozenset(
    "a an the this that these those i you he she it we they me him her us them "
    "my your his its our their is are was were be been being am do does did "
    "have has had will would can could shall should may might must not no "
    "to of in on at by for with from as into about than then and or but if so "
    "what who which there here 's 't 're 've 'll 'd 'm n't".split()
)


@dataclass
class SegmentedSentences:
    """Source sentences as training saw them: tokens, raw text, translation."""

    tokens: list[list[str]]
    texts: list[str]
    targets: list[str] | None = None

    @classmethod
    def from_tokens(cls, tokens: Iterable[list[str]]) -> SegmentedSentences:
        tokens = [list(sentence) for sentence in tokens]
        return cls(tokens, [" ".join(sentence) for sentence in tokens])


def training_sentences(
    run_dir: Path, state: dict[str, Any] | None = None
) -> SegmentedSentences:
    """A run's training sentences, read from RUN/data/train.tsv and segmented
    exactly as training did (same mode, the checkpoint's user dictionary, the
    same pairs skipped as too long or empty). ``run_dir`` may also name a
    checkpoint file inside the run directory."""
    run_dir = Path(run_dir)
    if state is None:
        state = load_checkpoint(run_dir)
    if not run_dir.is_dir():
        run_dir = resolve_checkpoint(run_dir).parent
    split = training_tokens(run_dir, state)
    return SegmentedSentences(
        split.src, [p.src for p in split.pairs], [p.tgt for p in split.pairs]
    )


def is_content_word(word: str) -> bool:
    """Has a letter (CJK characters count) and is not a listed function word
    (Chinese or English)."""
    has_letter = any(unicodedata.category(char).startswith("L") for char in word)
    return (
        has_letter
        and word not in FUNCTION_WORDS
        and word.lower() not in ENGLISH_FUNCTION_WORDS
    )
