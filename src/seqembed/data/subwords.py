"""Subword vocabularies: SentencePiece models, and words as their pieces.

A side trained with SentencePiece (``data.src_segmentation: sentencepiece``,
``data.tgt_tokenization: sentencepiece``) sees pieces, not words::

    english   "the dog barked."   ->  ▁the ▁dog ▁bark ed .
    chinese   今天 天气 很 好 (jieba) ->  ▁今天 ▁天气 ▁很 ▁好

``▁`` (U+2581) marks the start of a word. English is learned from the raw
text (lowercased with ``data.lowercase``); Chinese from jieba's segmentation
of it, so a piece never spans two jieba words and rare words split into
smaller pieces, down to characters, instead of becoming ``<UNK>``.

seqembed's ``Vocab`` stays the authority on ids (``<PAD>`` 0, ``<SOS>`` 1,
``<EOS>`` 2, ``<UNK>`` 3, then the pieces): the SentencePiece model maps text
to piece strings only. Its own ``<s>``, ``</s>`` and ``<pad>`` are switched
off, and its unknown piece is spelled ``<UNK>``, which the ``Vocab`` maps to
its own ``<UNK>``.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Iterable

from seqembed.data.vocab import SPECIALS
from seqembed.errors import InputError

UNK_PIECE = SPECIALS[3]  # "<UNK>"
WORD_START = "\u2581"  # ▁
SEED = 1  # SentencePiece's random generator (training is otherwise ordered)
MAX_SENTENCES = 2_000_000  # learned from, at most: a large corpus is sampled


class SubwordModel:
    """A trained SentencePiece model, held as its serialized proto (``proto``)
    so that a checkpoint can carry it as plain bytes."""

    def __init__(self, proto: bytes):
        import sentencepiece as spm

        self.proto = bytes(proto)
        self._processor = spm.SentencePieceProcessor(model_proto=self.proto)

    @classmethod
    def train(
        cls,
        sentences: Iterable[str],
        model_type: str = "unigram",
        vocab_size: int = 8000,
        character_coverage: float = 1.0,
        name: str = "vocab_size",
    ) -> SubwordModel:
        """Train on ``sentences`` (text already normalised the way encoding
        will see it). One thread and a fixed seed: the same sentences give
        the same model byte for byte. ``vocab_size`` is a soft limit, so a
        small corpus gets the pieces it has. ``name`` is the config key named
        in errors."""
        import sentencepiece as spm

        sentences = (s for s in sentences if s.strip())  # streamed, not held
        first = next(sentences, None)
        if first is None:
            raise InputError("no text to train the SentencePiece model on")
        spm.set_random_generator_seed(SEED)
        buffer = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=itertools.chain([first], sentences),
                model_writer=buffer,
                model_type=model_type,
                vocab_size=vocab_size,
                character_coverage=character_coverage,
                hard_vocab_limit=False,
                num_threads=1,
                # Every sentence of a corpus up to MAX_SENTENCES, else its first
                # MAX_SENTENCES (SentencePiece holds the ones it learns from).
                input_sentence_size=MAX_SENTENCES,
                shuffle_input_sentence=False,
                max_sentence_length=1 << 16,
                # Text is NFKC-normalised (and lowercased) before it gets here;
                # "identity" keeps decode(encode(text)) == text.
                normalization_rule_name="identity",
                unk_id=0,
                unk_piece=UNK_PIECE,
                unk_surface=UNK_PIECE,
                bos_id=-1,
                eos_id=-1,
                pad_id=-1,
                minloglevel=2,
            )
        except RuntimeError as error:
            message = str(error)
            match = re.search(r"smaller than required_chars\. (\d+) vs (\d+)", message)
            if match:
                raise InputError(
                    f"{name} {vocab_size} is too small: SentencePiece needs at "
                    f"least {match.group(2)} pieces for the characters of this "
                    "corpus"
                ) from None
            raise InputError(f"SentencePiece training failed: {message}") from None
        return cls(buffer.getvalue())

    def __len__(self) -> int:
        return self._processor.get_piece_size()

    def pieces(self) -> list[str]:
        """Every piece of the model except the unknown one, in model order."""
        processor = self._processor
        return [
            processor.id_to_piece(i)
            for i in range(len(self))
            if not (processor.is_unknown(i) or processor.is_control(i))
        ]

    def encode(self, text: str) -> list[str]:
        """Pieces of ``text``; characters the model does not know are
        ``<UNK>`` (the piece string, not SentencePiece's surface form)."""
        processor = self._processor
        return [processor.id_to_piece(i) for i in processor.encode(text)]

    def decode(self, pieces: list[str]) -> str:
        return self._processor.decode_pieces(list(pieces))

    def save(self, path) -> None:
        """The ``.model`` file ``spm_encode --model`` and friends read."""
        from seqembed.files import atomic_write

        atomic_write(path, lambda out: out.write(self.proto))


def to_state(models: dict[str, SubwordModel]) -> dict[str, bytes]:
    """``{"src": proto bytes, ...}`` for a checkpoint: plain bytes, which
    ``torch.load(weights_only=True)`` reads."""
    return {side: model.proto for side, model in models.items()}


def from_state(state: dict) -> dict[str, SubwordModel]:
    """The subword models a checkpoint carries (none before seqembed had them).
    A damaged one is an ``InputError``, not SentencePiece's C++ message."""
    models = {}
    for side, proto in (state.get("subword_models") or {}).items():
        try:
            if not isinstance(proto, bytes) or not proto:
                raise RuntimeError("not a serialized model")
            models[side] = SubwordModel(proto)
        except RuntimeError:
            raise InputError(
                f"the checkpoint's {side} SentencePiece model cannot be read"
            ) from None
    return models


# ------------------------------------------------------------ words


def word_pieces(model: SubwordModel, word: str) -> list[str]:
    """The pieces of ``word`` standing alone, as after a space: ``walked``
    -> ``▁walk ed``. A bare leading ``▁`` (the model had no piece for ``▁``
    plus the first letters) only marks the word start, and is left out."""
    pieces = model.encode(word)
    if len(pieces) > 1 and pieces[0] == WORD_START:
        pieces = pieces[1:]
    return pieces
