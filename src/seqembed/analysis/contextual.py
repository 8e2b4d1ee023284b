"""Contextual states: does one word get different encoder states in different
contexts, and by how much more than any two words do?

For a source word we collect the encoder's output at the word's position in
each training sentence that contains it: the top LSTM layer's output, i.e.
``Seq2Seq.encode(...).memory[b, position]`` (hidden_size wide). For a
unidirectional encoder that state has read the words up to and including the
word (its left context only); for a bidirectional one it is the joined
``[forward; backward]`` output at that position, which has read the whole
sentence. Sentences are segmented exactly as training segmented them.

Self-similarity (Ethayarajh 2019, "How Contextual are Contextualized Word
Representations?", eq. 1) is the mean cosine over all pairs of a word's
states. On its own it means little: contextual states of *any* two tokens are
often highly similar (anisotropy). So each word also gets a chance baseline,
the mean cosine between its states and the states of a fixed random sample of
other tokens from the same sentences, and the difference of the two.

``ContextualStates.report(words)`` returns one plain, JSON-serialisable dict
per word::

    word                  the word
    n_occurrences         its occurrences in the fitted sentences (all of them)
    n_sampled             states used below: at most max_occurrences, sampled
                          deterministically (random_state) when there are more
    self_similarity       mean pairwise cosine of the sampled states, or None
    baseline              mean cosine between its states and the states of
                          the random sample of other tokens, or None
    difference            self_similarity - baseline, or None
    reason                why self_similarity is None (one occurrence, none,
                          no other tokens to compare with), else None
    static_neighbours     [{"word", "cosine"}, ...]: top k rows of the encoder
                          embedding table (the context-free vectors)
    contextual_neighbours [{"word", "cosine"}, ...]: top k words by cosine
                          between mean contextual states (each word's states
                          averaged over all its occurrences)
    nearest_contexts      [{"sentence", "target", "tokens", "position",
                          "cosine"}, ...]: sampled occurrences whose state is
                          nearest the word's mean contextual state, nearest
                          first; sentence is the raw source text, target its
                          translation (or None), tokens the segmented
                          sentence and position the word's index in tokens
    farthest_contexts     the same for the farthest, farthest first; never
                          repeats one of nearest_contexts (so with few
                          occurrences it is shorter, or empty)

``summary()`` describes the whole fit: n_sentences, n_tokens, state_size,
directions ("forward" or "forward+backward"), layer ("top"), n_baseline (sampled
tokens), anisotropy (mean pairwise cosine within that sample, the corpus-wide
chance level), max_occurrences, random_state.
"""

from __future__ import annotations

import logging
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from seqembed.analysis.words import (
    SegmentedSentences,
    is_content_word,
)
from seqembed.data.batches import pad
from seqembed.data.vocab import PAD, SPECIALS
from seqembed.errors import InputError
from seqembed.nmt.checkpoint import load_tables, restore_model
from seqembed.nmt.devices import resolve_device

log = logging.getLogger(__name__)


def self_similarity(states: np.ndarray) -> float | None:
    """Mean cosine over all pairs i < j of rows (None for fewer than 2 rows).

    With unit rows u_i and their sum s, sum_{i<j} u_i.u_j = (|s|^2 - sum |u_i|^2)
    / 2, so no n x n matrix is built. A zero row has cosine 0 with everything.
    """
    n = len(states)
    if n < 2:
        return None
    unit = _unit(states)
    total = unit.sum(axis=0)
    pair_sum = (total @ total - (unit * unit).sum()) / 2
    return float(pair_sum / (n * (n - 1) / 2))


def mean_cosine(a: np.ndarray, b: np.ndarray) -> float | None:
    """Mean cosine over all pairs (row of a, row of b); None if either is empty."""
    if not len(a) or not len(b):
        return None
    # mean_ij u_i.v_j = (mean_i u_i).(mean_j v_j)
    return float(_unit(a).mean(axis=0) @ _unit(b).mean(axis=0))


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


class ContextualStates:
    """Encoder states of source words across their contexts (estimator style).

    ``fit(state, sentences)`` encodes every sentence once (eval mode, no
    grad) to get each word's mean contextual state and a random sample of
    ``n_baseline`` token states; ``report(words)`` then re-encodes only the
    sentences holding up to ``max_occurrences`` occurrences of each word.
    """

    def __init__(
        self,
        max_occurrences: int = 200,
        n_baseline: int = 1000,
        n_neighbours: int = 5,
        n_contexts: int = 3,
        batch_size: int = 64,
        random_state: int = 0,
        device: str = "cpu",
    ):
        self.max_occurrences = max_occurrences
        self.n_baseline = n_baseline
        self.n_neighbours = n_neighbours
        self.n_contexts = n_contexts
        self.batch_size = batch_size
        self.random_state = random_state
        self.device = device

    # ------------------------------------------------------------ fit

    def fit(
        self,
        state: dict[str, Any],
        sentences: SegmentedSentences | Sequence[list[str]],
    ) -> ContextualStates:
        """``state``: a loaded checkpoint; ``sentences``: segmented source
        sentences (a SegmentedSentences, or plain token lists)."""
        if not isinstance(sentences, SegmentedSentences):
            sentences = SegmentedSentences.from_tokens(sentences)
        model, config, src_vocab, _ = restore_model(
            state, resolve_device(self.device, "--device")
        )
        self.model_ = model.eval()
        self.vocab_ = src_vocab
        self.sentences_ = sentences
        self.bidirectional_ = config.model.bidirectional
        self.ids_ = [src_vocab.encode(tokens) for tokens in sentences.tokens]
        occurrences: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for row, tokens in enumerate(sentences.tokens):
            for position, token in enumerate(tokens):
                occurrences[token].append((row, position))
        self.occurrences_ = dict(occurrences)
        self.counts_ = Counter({t: len(o) for t, o in self.occurrences_.items()})
        self.n_tokens_ = sum(self.counts_.values())
        self.static_ = load_tables(state)["src"].words()
        self._fit_means_and_baseline()
        log.info(
            "encoded %d sentences (%d tokens); anisotropy %.3f",
            len(sentences.tokens),
            self.n_tokens_,
            self.anisotropy_ if self.anisotropy_ is not None else float("nan"),
        )
        return self

    def _fit_means_and_baseline(self) -> None:
        """One pass over all sentences: sum the states per vocabulary id, and
        keep the states at ``n_baseline`` token positions drawn at random."""
        rng = np.random.default_rng(self.random_state)
        n_sample = min(self.n_baseline, self.n_tokens_)
        flat = np.sort(rng.choice(self.n_tokens_, size=n_sample, replace=False))
        # A flat token index -> (sentence, position) through the running lengths.
        starts = np.cumsum([0] + [len(ids) for ids in self.ids_])
        rows = np.searchsorted(starts, flat, side="right") - 1
        sample = list(zip(rows.tolist(), (flat - starts[rows]).tolist()))
        hidden = self.model_.encoder.lstm.hidden_size * (1 + self.bidirectional_)
        sums = torch.zeros(len(self.vocab_), hidden, dtype=torch.float64)
        counts = torch.zeros(len(self.vocab_), dtype=torch.float64)
        wanted = defaultdict(list)  # sentence -> [(sample slot, position)]
        for slot, (row, position) in enumerate(sample):
            wanted[row].append((slot, position))
        baseline = np.zeros((n_sample, hidden), dtype=np.float32)
        for batch_rows, src, memory in self._encode(range(len(self.ids_))):
            mask = src != PAD  # (B, S)
            states = memory[mask].double()  # (n_real_tokens, hidden)
            sums.index_add_(0, src[mask], states)
            counts.index_add_(
                0, src[mask], torch.ones(len(states), dtype=torch.float64)
            )
            for b, row in enumerate(batch_rows):
                for slot, position in wanted.get(row, ()):
                    baseline[slot] = memory[b, position].numpy()
        present = counts > 0
        sums[present] /= counts[present, None]
        self.mean_states_ = sums.float().numpy()  # (V, hidden), zero if unseen
        self.has_mean_ = present.numpy()
        self.baseline_states_ = baseline
        self.baseline_tokens_ = [self.sentences_.tokens[r][p] for r, p in sample]
        self.anisotropy_ = self_similarity(baseline)

    @torch.no_grad()
    def _encode(self, rows: Iterable[int]):
        """Yield (rows, src (B, S), memory (B, S, hidden)) for batches of
        sentences; sorted by length so batches carry little padding."""
        rows = sorted(
            (r for r in rows if self.ids_[r]), key=lambda r: len(self.ids_[r])
        )
        for start in range(0, len(rows), self.batch_size):
            batch_rows = rows[start : start + self.batch_size]
            src = pad([self.ids_[row] for row in batch_rows])  # (B, S)
            lengths = torch.tensor([len(self.ids_[row]) for row in batch_rows])
            # The same memory as Seq2Seq.encode(...).memory, without the
            # attention keys nobody reads here.
            # (lengths stay on the CPU: packing reads them there)
            device = self.model_.encoder.embedding.weight.device
            memory, _ = self.model_.encoder(src.to(device), lengths)
            yield batch_rows, src, memory.float().cpu()  # (B, S, hidden)

    # ------------------------------------------------------------ per word

    def states(self, word: str) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """The word's sampled states (n_sampled, hidden) and their (sentence,
        position) occurrences, in corpus order."""
        self._check_word(word)
        occurrences = self.occurrences_.get(word, [])
        if len(occurrences) > self.max_occurrences:
            # A per-word generator: a word's sample does not depend on which
            # other words were asked for, or in what order.
            seed = [self.random_state, zlib.crc32(word.encode("utf-8"))]
            rng = np.random.default_rng(seed)
            keep = rng.choice(len(occurrences), self.max_occurrences, replace=False)
            occurrences = [occurrences[i] for i in sorted(keep)]
        hidden = self.mean_states_.shape[1]
        states = np.zeros((len(occurrences), hidden), dtype=np.float32)
        where = defaultdict(list)  # sentence -> [(slot, position)]
        for slot, (row, position) in enumerate(occurrences):
            where[row].append((slot, position))
        for batch_rows, _, memory in self._encode(where):
            for b, row in enumerate(batch_rows):
                for slot, position in where[row]:
                    states[slot] = memory[b, position].numpy()
        return states, occurrences

    def word_report(self, word: str) -> dict[str, Any]:
        """One word's dict (fields in the module docstring)."""
        states, occurrences = self.states(word)
        n = len(occurrences)
        others = self.baseline_states_[
            [token != word for token in self.baseline_tokens_]
        ]
        similarity = self_similarity(states)
        baseline = mean_cosine(states, others)
        reason = None
        if n == 0:
            reason = "the word does not occur in these sentences"
        elif n == 1:
            reason = "the word occurs once: self-similarity needs two contexts"
        elif baseline is None:
            reason = "no other tokens to compare with"
        nearest, farthest = self._contexts(word, states, occurrences)
        return {
            "word": word,
            "n_occurrences": self.counts_.get(word, 0),
            "n_sampled": n,
            "self_similarity": similarity,
            "baseline": baseline,
            "difference": (
                similarity - baseline
                if similarity is not None and baseline is not None
                else None
            ),
            "reason": reason,
            "static_neighbours": _pairs(
                self.static_.most_similar(word, self.n_neighbours)
            ),
            "contextual_neighbours": self._contextual_neighbours(word),
            "nearest_contexts": nearest,
            "farthest_contexts": farthest,
        }

    def report(self, words: Iterable[str]) -> list[dict[str, Any]]:
        """A dict per word (in the order given, repeats dropped); every word is
        checked before any work, so a typo fails fast."""
        words = list(dict.fromkeys(words))
        for word in words:
            self._check_word(word)
        return [self.word_report(word) for word in words]

    def summary(self) -> dict[str, Any]:
        return {
            "n_sentences": len(self.sentences_.tokens),
            "n_tokens": self.n_tokens_,
            "state_size": int(self.mean_states_.shape[1]),
            "directions": "forward+backward" if self.bidirectional_ else "forward",
            "layer": "top",
            "n_baseline": len(self.baseline_tokens_),
            "anisotropy": self.anisotropy_,
            "max_occurrences": self.max_occurrences,
            "random_state": self.random_state,
        }

    def default_words(self, n: int = 10, min_occurrences: int = 2) -> list[str]:
        """The ``n`` most frequent content words (``is_content_word``) in the
        vocabulary with at least ``min_occurrences`` occurrences; ties
        alphabetical."""
        candidates = [
            (-count, word)
            for word, count in self.counts_.items()
            if count >= min_occurrences
            and word in self.vocab_
            and word not in SPECIALS
            and is_content_word(word)
        ]
        return [word for _, word in sorted(candidates)[:n]]

    # ------------------------------------------------------------ helpers

    def _check_word(self, word: str) -> None:
        if word in SPECIALS:
            raise InputError(f"{word!r} is a special token, not a source word")
        if word not in self.vocab_:
            seen = self.counts_.get(word, 0)
            hint = (
                f"; it occurs {seen} time(s) in these sentences, below the "
                "vocabulary's min_freq, so the encoder saw it as <UNK>"
                if seen
                else "; words are matched after segmentation, e.g. 学习 not 学"
            )
            raise InputError(f"{word!r} is not in the source vocabulary{hint}")

    def _contextual_neighbours(self, word: str) -> list[dict[str, Any]]:
        index = self.vocab_.index[word]
        if not self.has_mean_[index]:
            return []
        unit = _unit(self.mean_states_)
        scores = unit @ unit[index]
        candidates = self.has_mean_.copy()
        candidates[: len(SPECIALS)] = False
        candidates[index] = False
        order = np.flatnonzero(candidates)
        best = order[np.argsort(-scores[order], kind="stable")][: self.n_neighbours]
        return [
            {"word": self.vocab_.tokens[i], "cosine": float(scores[i])} for i in best
        ]

    def _contexts(self, word, states, occurrences):
        """Occurrences nearest to and farthest from the word's mean state."""
        if not occurrences:
            return [], []
        mean = self.mean_states_[self.vocab_.index[word]]
        scores = _unit(states) @ _unit(mean[None, :])[0]
        order = np.argsort(-scores, kind="stable").tolist()
        k = self.n_contexts
        nearest = order[:k]
        farthest = order[k:][::-1][:k]
        return (
            [self._context(occurrences[i], scores[i]) for i in nearest],
            [self._context(occurrences[i], scores[i]) for i in farthest],
        )

    def _context(self, occurrence: tuple[int, int], score: float) -> dict[str, Any]:
        row, position = occurrence
        targets = self.sentences_.targets
        return {
            "sentence": self.sentences_.texts[row],
            "target": targets[row] if targets is not None else None,
            "tokens": list(self.sentences_.tokens[row]),
            "position": position,
            "cosine": float(score),
        }


def _pairs(neighbours: list[tuple[str, float]]) -> list[dict[str, Any]]:
    return [{"word": word, "cosine": float(score)} for word, score in neighbours]
