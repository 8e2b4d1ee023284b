"""Translate text with a trained model, and score translations with sacrebleu."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import overload

import numpy as np
import torch

from seqembed.config import Config
from seqembed.data.batches import collate, epoch_batches
from seqembed.data.segment import text_processing
from seqembed.data.subwords import SubwordModel, from_state
from seqembed.data.vocab import EOS, SOS, SPECIALS, UNK, Vocab
from seqembed.errors import InputError
from seqembed.nmt.build import build_model
from seqembed.nmt.checkpoint import load_checkpoint, restore_model
from seqembed.nmt.decoding import beam_search, greedy_decode, max_output_length
from seqembed.nmt.devices import autocast_dtype, resolve_device, resolve_precision
from seqembed.nmt.model import Seq2Seq
from seqembed.nmt.scoring import CI_BELOW, N_BOOTSTRAP, Scores, score

__all__ = [
    "CI_BELOW",
    "N_BOOTSTRAP",
    "Attention",
    "Scores",
    "Translation",
    "Translator",
    "score",
]

log = logging.getLogger(__name__)

# Source sentences are cut to this many tokens: a 10,000-character line still
# translates (its start), instead of taking minutes or all memory.
MAX_SOURCE_TOKENS = 400


@dataclass
class Attention:
    """Where the decoder looked while translating one sentence (greedy).

    ``weights[t, s]`` is the attention on source token s at output step t;
    the steps are the translation's tokens and the closing ``<EOS>``, each
    row sums to 1 over the source tokens.
    """

    src_tokens: list[str]  # as segmented; out-of-vocabulary ones included
    src_known: list[bool]  # False where a source token is not in the vocabulary
    tgt_tokens: list[str]  # the translation's tokens, then "<EOS>"
    weights: np.ndarray  # (len(tgt_tokens), len(src_tokens)) float32


@dataclass
class Translation:
    """One sentence translated, with what went into it and how sure the
    model was (``Translator.translate_detailed``)."""

    source: str  # the raw sentence
    text: str  # the translation, detokenised
    src_tokens: list[str]  # as segmented (cut to MAX_SOURCE_TOKENS)
    unknown: list[str]  # source tokens not in the vocabulary: read as <UNK>
    tgt_tokens: list[str]  # the translation's tokens, without <EOS>
    # log P(tgt_tokens, then <EOS>, | source) under the model, summed over the
    # steps; no length penalty (beam search ranks with one).
    log_prob: float
    beam_size: int
    # The attention of each output step (the tokens, then <EOS>) on the source
    # tokens; None for a model without attention or an empty sentence.
    attention: Attention | None


class Translator:
    """A model with its vocabularies and the run's own text processing."""

    def __init__(
        self,
        model: Seq2Seq,
        config: Config,
        src_vocab: Vocab,
        tgt_vocab: Vocab,
        user_dict: str | None = None,
        subwords: dict[str, SubwordModel] | None = None,
    ):
        self.model = model  # translate_tokens switches it to eval mode and back
        self.device = next(model.parameters()).device
        self.config = config
        self.src_vocab = src_vocab
        self.tgt_vocab = tgt_vocab
        self.segmenter, self.tokenizer = text_processing(
            config.data, user_dict, subwords
        )

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, device: str | None = None, **decode_settings
    ) -> Translator:
        """Load a run (a checkpoint trained on any device); ``device``
        ("auto", "cpu", "cuda", "cuda:N", "mps"; None: the run's
        ``decode.device``) is where it translates; ``decode_settings`` (e.g.
        precision="bf16") override the run's own decode section."""
        return cls.from_state(load_checkpoint(Path(path)), device, **decode_settings)

    @classmethod
    def from_state(
        cls, state: dict, device: str | None = None, **decode_settings
    ) -> Translator:
        """From a loaded checkpoint: it carries the vocabularies, the jieba
        user dictionary and the SentencePiece models, so nothing else is read."""
        saved = state["config"].get("decode", {})
        if device is not None:
            where = resolve_device(str(device), "--device")
        else:
            requested = decode_settings.get("device", saved.get("device", "auto"))
            where = resolve_device(requested, "decode.device")
        model, config, src_vocab, tgt_vocab = restore_model(state, where)
        decode = replace(config.decode, **decode_settings)
        precision = resolve_precision(decode.precision, "decode.precision", where)
        config = replace(config, decode=replace(decode, precision=precision))
        user_dict, subwords = state.get("user_dict"), from_state(state)
        return cls(model, config, src_vocab, tgt_vocab, user_dict, subwords)

    @overload
    def translate(
        self, texts: str, beam_size: int | None = ..., batch_size: int | None = ...
    ) -> str: ...
    @overload
    def translate(
        self,
        texts: Sequence[str],
        beam_size: int | None = ...,
        batch_size: int | None = ...,
    ) -> list[str]: ...
    def translate(self, texts, beam_size=None, batch_size=None):
        """Raw source sentences in, detokenised target sentences out, in order;
        one sentence (a ``str``) in, one translation out."""
        if isinstance(texts, str):  # not a list of its characters
            return self.translate([texts], beam_size, batch_size)[0]
        tokens = [self.segmenter(text) for text in texts]
        outputs = self.translate_tokens(tokens, beam_size, batch_size)
        return [self.tokenizer.detokenize(words) for words in outputs]

    def translate_tokens(
        self,
        sentences: list[list[str]],
        beam_size: int | None = None,
        batch_size: int | None = None,
    ) -> list[list[str]]:
        decode = self.config.decode
        beam_size = beam_size or decode.beam_size
        batch_size = batch_size or decode.batch_size
        ids = []
        for words in sentences:
            if len(words) > MAX_SOURCE_TOKENS:
                log.warning(
                    "input of %d tokens cut to its first %d",
                    len(words),
                    MAX_SOURCE_TOKENS,
                )
                words = words[:MAX_SOURCE_TOKENS]
            ids.append(self.src_vocab.encode(words))
        results: list[list[str]] = [[] for _ in ids]
        # An empty input translates to an empty output; only the rest is decoded.
        todo = [i for i, x in enumerate(ids) if x]
        was_training = self.model.training
        self.model.eval()
        with self._autocast():
            decoded = self._decode([ids[i] for i in todo], beam_size, batch_size)
        self.model.train(was_training)
        for i, words in zip(todo, decoded):
            results[i] = words
        return results

    def attention(self, text: str) -> Attention:
        """Translate one raw sentence greedily and keep the attention weights
        of each output step (a model trained with attention only)."""
        if self.model.decoder.attention is None:
            raise InputError(
                "this run's model has no attention (model.attention: none); "
                "attention maps need a model trained with luong or bahdanau"
            )
        words = self.segmenter(text)[:MAX_SOURCE_TOKENS]
        if not words:
            raise InputError("nothing to translate: the sentence is empty")
        ids = self.src_vocab.encode(words)
        batch = collate([ids], [[]])
        decode = self.config.decode
        max_len = max_output_length(
            batch.src_lengths, decode.max_len_a, decode.max_len_b
        )
        was_training = self.model.training
        self.model.eval()
        hypothesis = greedy_decode(
            self.model,
            batch.src.to(self.device),
            batch.src_lengths,
            max_len,
            keep_attention=True,
        )[0]
        self.model.train(was_training)
        tgt_tokens = [self.tgt_vocab.tokens[i] for i in hypothesis.tokens]
        weights = hypothesis.attention.numpy()  # (steps, len(words))
        # A translation cut at max_len has no <EOS> step.
        tgt_tokens = (tgt_tokens + [SPECIALS[2]])[: len(weights)]
        return Attention(
            words, [i != UNK for i in ids], tgt_tokens, weights.astype(np.float32)
        )

    def to(self, device: torch.device | str) -> Translator:
        """Translate on ``device`` (the model moves there); returns self. A
        model with the CPU kernels is rebuilt as the reference model off the
        CPU (they run there only), with the same weights."""
        device = torch.device(device)
        cpu_kernels = any(
            type(module).__module__.startswith("seqembed.nmt.cpu")
            for module in self.model.modules()
        )
        if device.type != "cpu" and cpu_kernels:
            model = build_model(
                self.config.model,
                len(self.src_vocab),
                len(self.tgt_vocab),
                device,
            )
            model.load_state_dict(self.model.state_dict())
            self.model = model.train(self.model.training)
        self.model.to(device)
        self.device = device
        return self

    def _autocast(self):
        """Autocast in the decode precision, on the model's device type."""
        dtype = autocast_dtype(self.config.decode.precision)
        return torch.autocast(
            self.device.type, dtype or torch.float32, enabled=dtype is not None
        )

    def translate_detailed(self, text: str, beam_size: int | None = None):
        """One raw sentence: its translation, tokens, unknown words, the
        model's log-probability of it and (with attention) the weights."""
        beam_size = beam_size or self.config.decode.beam_size
        words = self.segmenter(text)
        if len(words) > MAX_SOURCE_TOKENS:
            log.warning(
                "input of %d tokens cut to its first %d", len(words), MAX_SOURCE_TOKENS
            )
            words = words[:MAX_SOURCE_TOKENS]
        if not words:
            return Translation(text, "", [], [], [], 0.0, beam_size, None)
        ids = self.src_vocab.encode(words)
        unknown = [word for word, i in zip(words, ids) if i == UNK]
        batch = collate([ids], [[]])
        src = batch.src.to(self.device)
        decode = self.config.decode
        max_len = max_output_length(
            batch.src_lengths, decode.max_len_a, decode.max_len_b
        )
        was_training = self.model.training
        self.model.eval()
        with self._autocast():
            if beam_size == 1:
                found = greedy_decode(self.model, src, batch.src_lengths, max_len)
            else:
                found = beam_search(
                    self.model,
                    src,
                    batch.src_lengths,
                    beam_size,
                    max_len,
                    decode.length_penalty,
                )
            tgt_ids = found[0].tokens
            ended = len(tgt_ids) < max_len  # else cut there, with no <EOS>
            log_prob, weights = self._forced(src, batch.src_lengths, tgt_ids, ended)
        self.model.train(was_training)
        tgt_tokens = [self.tgt_vocab.tokens[i] for i in tgt_ids]
        attention = None
        if weights is not None:
            steps = tgt_tokens + [SPECIALS[EOS]] * ended
            known = [i != UNK for i in ids]
            attention = Attention(words, known, steps, weights)
        output = self.tokenizer.detokenize(self.tgt_vocab.decode(tgt_ids))
        return Translation(
            text, output, words, unknown, tgt_tokens, log_prob, beam_size, attention
        )

    @torch.no_grad()
    def _forced(self, src, src_lengths, tgt_ids: list[int], ended: bool):
        """The log-probability of ``tgt_ids`` (then <EOS> if ``ended``) and the
        attention weights (steps, S) of each step, the output fed back."""
        source, state = self.model.encode(src, src_lengths)
        targets = tgt_ids + [EOS] * ended
        previous = [SOS] + tgt_ids
        total, rows = 0.0, []
        for token, target in zip(previous, targets):
            tokens = torch.tensor([token], device=self.device)
            logits, state, weights = self.model.decoder.step(tokens, state, source)
            total += float(torch.log_softmax(logits.float(), dim=-1)[0, target])
            if weights is not None:
                rows.append(weights[0].float().cpu())
        weights = torch.stack(rows).numpy() if rows else None
        return total, weights

    def _decode(
        self, ids: list[list[int]], beam_size: int, batch_size: int
    ) -> list[list[str]]:
        """Decode non-empty id sequences in length-sorted batches, in order."""
        decode = self.config.decode
        results: list[list[str]] = [[] for _ in ids]
        lengths = [len(x) for x in ids]
        for index in epoch_batches(lengths, lengths, batch_size, 0, 0, shuffle=False):
            batch = collate([ids[i] for i in index], [[] for _ in index])
            max_len = max_output_length(
                batch.src_lengths, decode.max_len_a, decode.max_len_b
            )
            src = batch.src.to(self.device)
            if beam_size == 1:
                hypotheses = greedy_decode(self.model, src, batch.src_lengths, max_len)
            else:
                hypotheses = beam_search(
                    self.model,
                    src,
                    batch.src_lengths,
                    beam_size,
                    max_len,
                    decode.length_penalty,
                )
            for i, hypothesis in zip(index, hypotheses):
                results[i] = self.tgt_vocab.decode(hypothesis.tokens)
        return results
