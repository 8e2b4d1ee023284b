"""Chinese word segmentation and English tokenisation.

Both sides are normalised first (Unicode NFKC, whitespace collapsed), so that
full-width Latin letters and punctuation match their ASCII forms in training
and at translation time alike.
"""

from __future__ import annotations

import logging
import os
import tempfile
import unicodedata
from functools import cached_property
from typing import TYPE_CHECKING

from seqembed.errors import InputError
from seqembed.textfile import read_text

if TYPE_CHECKING:
    from seqembed.data.subwords import SubwordModel

log = logging.getLogger(__name__)


def normalize(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split())


class ChineseSegmenter:
    """Split a sentence into words.

    ``mode`` is "jieba" (raw text, segmented by jieba with an optional user
    dictionary), "pretokenized" (words already separated by spaces), "char",
    or "sentencepiece" (jieba's words split into the pieces of ``subword``).
    jieba splits 今天天气很好 as 今天天气 / 很 / 好; a user dictionary line
    ``天气 2000`` is how a user makes it split 今天 / 天气.
    """

    def __init__(
        self,
        mode: str = "jieba",
        user_dict_text: str | None = None,
        subword: SubwordModel | None = None,
    ):
        if mode not in ("jieba", "pretokenized", "char", "sentencepiece"):
            raise InputError(f"unknown segmentation mode {mode!r}")
        if mode == "sentencepiece" and subword is None:
            raise InputError("sentencepiece segmentation needs its model")
        self.mode = mode
        self.user_dict_text = user_dict_text
        self.subword = subword

    @cached_property
    def _jieba(self):
        import jieba

        jieba.setLogLevel(logging.WARNING)
        # A private Tokenizer, so user dictionaries never leak between runs.
        tokenizer = jieba.Tokenizer()
        tokenizer.initialize()
        if self.user_dict_text:
            # jieba reads user dictionaries from files only.
            with tempfile.NamedTemporaryFile(
                "w", suffix=".txt", encoding="utf-8", delete=False
            ) as handle:
                handle.write(self.user_dict_text)
            try:
                tokenizer.load_userdict(handle.name)
            finally:
                os.unlink(handle.name)
        return tokenizer

    def __call__(self, text: str) -> list[str]:
        text = normalize(text)
        if self.mode == "pretokenized":
            return text.split()
        if self.mode == "char":
            return [char for char in text if not char.isspace()]
        words = [word for word in self._jieba.lcut(text) if word.strip()]
        if self.mode == "sentencepiece":
            return self.subword.encode(" ".join(words))
        return words

    def words(self, text: str) -> list[str]:
        """Words, never pieces: what SentencePiece learns from and encodes."""
        if self.mode != "sentencepiece":
            return self(text)
        return [word for word in self._jieba.lcut(normalize(text)) if word.strip()]


def read_user_dict(path) -> str:
    """Read a jieba user dictionary, checking each line's shape."""
    text = read_text(path)
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if len(fields) > 1 and not fields[1].isdigit():
            raise InputError(
                f"expected 'word [freq] [tag]', got {line!r}", path, number
            )
    return text


class EnglishTokenizer:
    """Moses tokenisation (or whitespace, or SentencePiece pieces of the raw
    text), optional lowercasing, detokenisation.

    BLEU is computed on ``detokenize`` output against the raw reference, so the
    tokenisation here never leaks into the score.
    """

    def __init__(
        self,
        mode: str = "moses",
        lowercase: bool = True,
        subword: SubwordModel | None = None,
    ):
        if mode not in ("moses", "pretokenized", "sentencepiece"):
            raise InputError(f"unknown tokenization mode {mode!r}")
        if mode == "sentencepiece" and subword is None:
            raise InputError("sentencepiece tokenization needs its model")
        self.mode = mode
        self.lowercase = lowercase
        self.subword = subword

    @cached_property
    def _moses(self):
        from sacremoses import MosesDetokenizer, MosesTokenizer

        return MosesTokenizer(lang="en"), MosesDetokenizer(lang="en")

    def text(self, text: str) -> str:
        """Normalised and, with ``lowercase``, lowercased: what SentencePiece
        learns from and encodes."""
        text = normalize(text)
        return text.lower() if self.lowercase else text

    def tokenize(self, text: str) -> list[str]:
        if self.mode == "sentencepiece":
            return self.subword.encode(self.text(text))
        text = normalize(text)
        if self.mode == "pretokenized":
            tokens = text.split()
        else:
            # Tokenise before lowercasing: Moses splits a sentence-internal
            # period only before a capital ("you. I'm" -> "you . I'm"); after
            # lowercasing it would keep "you." as if it were an abbreviation.
            tokens = self._moses[0].tokenize(text, escape=False)
        return [token.lower() for token in tokens] if self.lowercase else tokens

    def detokenize(self, tokens: list[str]) -> str:
        if self.mode == "sentencepiece":
            return self.subword.decode(tokens)
        if self.mode == "pretokenized":
            return " ".join(tokens)
        return self._moses[1].detokenize(tokens)


def text_processing(
    data, user_dict_text: str | None = None, subwords: dict | None = None
) -> tuple[ChineseSegmenter, EnglishTokenizer]:
    """The run's source segmenter and target tokenizer, from its ``DataConfig``
    (``data``), jieba user dictionary, and ``{"src"/"tgt": SubwordModel}`` for
    the sides that use SentencePiece."""
    subwords = subwords or {}
    segmenter = ChineseSegmenter(
        data.src_segmentation, user_dict_text, subwords.get("src")
    )
    tokenizer = EnglishTokenizer(
        data.tgt_tokenization, data.lowercase, subwords.get("tgt")
    )
    return segmenter, tokenizer
