"""A served run: the one seam between the server and the library.

Everything the HTTP layer asks of a model goes through ``ServedModel``:
translation (with each sentence's unknown words and score), attention,
encoder states, and the embedding tables before and after training. It is
built on ``nmt.evaluation.Translator``, ``nmt.checkpoint.load_tables`` and
``analysis.contextual``; when the library API (``seqembed.load_run``) lands,
this module is what changes, and nothing above it.

A ``ServedModel`` is not thread-safe. The server loads each run twice: the
copy in the model's own process (``serve.model_process``) is the only one
that translates, attends and encodes; the copy beside the event loop
answers table queries (neighbours, maps) and ``info``.
"""

from __future__ import annotations

import json
import logging
import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqembed.analysis.contextual import ContextualStates
from seqembed.analysis.words import SegmentedSentences, training_sentences
from seqembed.data.batches import collate, epoch_batches
from seqembed.data.prepare import read_splits
from seqembed.data.vocab import SPECIALS, UNK
from seqembed.errors import InputError
from seqembed.nmt.checkpoint import load_checkpoint, load_tables, resolve_checkpoint
from seqembed.nmt.decoding import beam_search, greedy_decode, max_output_length
from seqembed.nmt.evaluation import MAX_SOURCE_TOKENS, Translator, score
from seqembed.vectors.table import EmbeddingTable

log = logging.getLogger(__name__)

SIDES = ("src", "tgt")
STATES_CACHE = 256  # per-word self-similarity reports kept (LRU)


@dataclass
class Translated:
    """One sentence's answer."""

    translation: str
    tokens: list[str]  # the source as segmented
    unknown: list[str]  # source tokens outside the vocabulary (<UNK>)
    score: float  # log-probability (length-penalised with a beam)


class ServedModel:
    """One run loaded for serving: its translator, its embedding tables."""

    def __init__(
        self, model_id: str, run_dir: Path, state: dict[str, Any], device: str = "cpu"
    ):
        self.id = model_id
        self.run_dir = run_dir
        self.checkpoint: Path | None = None  # the file, when load() read one
        self._state = state
        self.device = device
        self.translator = Translator.from_state(state, device)
        self.config = self.translator.config
        trained, initial = load_tables(state), load_tables(state, initial=True)
        # Every word of each side's vocabulary (specials left out), with the
        # initial table in the same row order, so row i is one word in both.
        self.tables: dict[str, EmbeddingTable] = {}
        self.initial: dict[str, EmbeddingTable] = {}
        for side in SIDES:
            self.tables[side] = trained[side].words(min_freq=0)
            if side in initial:
                self.initial[side] = initial[side].select(self.tables[side].tokens)
        # Eval mode for good: the CPU kernels then keep the decoder's weights
        # reordered for decoding from one batch to the next (packing them
        # costs more than decoding a small batch).
        self.translator.model.eval()
        self.test_bleu: float | None = None
        self._states: ContextualStates | None = None
        self._word_reports: OrderedDict[str, dict] = OrderedDict()

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> ServedModel:
        """A run directory (or a checkpoint file in one); its id is the
        folder's name. Anything unreadable is an ``InputError`` now."""
        path = Path(path)
        checkpoint = resolve_checkpoint(path)
        run_dir = checkpoint.parent
        model = cls(run_dir.name, run_dir, load_checkpoint(checkpoint), device)
        model.checkpoint = checkpoint
        where = model.translator.device
        log.info("loaded %s from %s on %s", model.id, checkpoint, where)
        return model

    # ------------------------------------------------------------ about

    @property
    def has_attention(self) -> bool:
        return self.translator.model.decoder.attention is not None

    def info(self) -> dict[str, Any]:
        """What ``GET /models`` says about this model."""
        model = self.config.model
        return {
            "id": self.id,
            "languages": {"src": "zh", "tgt": "en"},
            "vocabulary": {
                "src": len(self.translator.src_vocab),
                "tgt": len(self.translator.tgt_vocab),
            },
            "attention": model.attention,
            "embedding_size": model.emb_size,
            "hidden_size": model.hidden_size,
            "test_bleu": self.test_bleu,
            "best_valid_bleu": _best_valid_bleu(self.run_dir),
            "max_chars": self.config.data.max_chars,
            "beam_size": self.config.decode.beam_size,
            "has_initial": sorted(self.initial),
        }

    def score_test_split(self) -> float | None:
        """BLEU of greedy translations of the run's test split (RUN/data/
        test.tsv), kept for ``info``; None when the run has no test split."""
        test = read_splits(self.run_dir, ("test",))["test"]
        if not test:
            return None
        outputs = [t.translation for t in self.translate([p.src for p in test], 1)]
        lowercase = self.config.data.lowercase
        self.test_bleu = score(outputs, [p.tgt for p in test], lowercase).bleu
        return self.test_bleu

    # ------------------------------------------------------------ the model

    def translate(
        self, texts: list[str], beam: int, batch_size: int | None = None
    ) -> list[Translated]:
        """Raw sentences in, one ``Translated`` each, in order."""
        translator = self.translator
        tokens = [translator.segmenter(text)[:MAX_SOURCE_TOKENS] for text in texts]
        ids = [translator.src_vocab.encode(words) for words in tokens]
        todo = [i for i, x in enumerate(ids) if x]  # an empty input stays empty
        decoded = self._decode([ids[i] for i in todo], beam, batch_size)
        words: list[list[str]] = [[] for _ in texts]
        scores = [0.0] * len(texts)
        for i, (output, value) in zip(todo, decoded):
            words[i], scores[i] = output, value
        return [
            Translated(
                translator.tokenizer.detokenize(out),
                src,
                [t for t, i in zip(src, x) if i == UNK],
                value,
            )
            for out, src, x, value in zip(words, tokens, ids, scores)
        ]

    @torch.no_grad()
    def _decode(
        self, ids: list[list[int]], beam: int, batch_size: int | None
    ) -> list[tuple[list[str], float]]:
        """Non-empty id sequences, decoded in length-sorted batches as
        ``Translator`` does, keeping each hypothesis' score."""
        model, decode = self.translator.model, self.config.decode
        results: list[tuple[list[str], float]] = [([], 0.0)] * len(ids)
        if not ids:
            return results
        lengths = [len(x) for x in ids]
        batch_size = batch_size or decode.batch_size
        bf16 = decode.precision == "bf16"
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            for index in epoch_batches(lengths, lengths, batch_size, 0, 0, False):
                batch = collate([ids[i] for i in index], [[] for _ in index])
                max_len = max_output_length(
                    batch.src_lengths, decode.max_len_a, decode.max_len_b
                )
                if beam == 1:
                    found = greedy_decode(model, batch.src, batch.src_lengths, max_len)
                else:
                    found = beam_search(
                        model,
                        batch.src,
                        batch.src_lengths,
                        beam,
                        max_len,
                        decode.length_penalty,
                    )
                for i, hypothesis in zip(index, found):
                    words = self.translator.tgt_vocab.decode(hypothesis.tokens)
                    results[i] = (words, float(hypothesis.score))
        return results

    def attention(self, text: str) -> dict[str, Any]:
        """Tokens on both sides and the weights (greedy decoding)."""
        found = self.translator.attention(text)
        return {
            "src_tokens": found.src_tokens,
            "src_known": found.src_known,
            "tgt_tokens": found.tgt_tokens,
            "weights": np.round(found.weights.astype(np.float64), 5).tolist(),
        }

    @torch.no_grad()
    def states(self, text: str, k: int, sentences: int) -> dict[str, Any]:
        """The encoder's state of each word of ``text`` in this sentence, the
        words whose mean training state is nearest it, the word's static
        neighbours, and its self-similarity figures over the training data
        (``analysis.contextual``, fitted on the first ``sentences``)."""
        words = self.translator.segmenter(text)[:MAX_SOURCE_TOKENS]
        if not words:
            raise InputError("nothing to encode: the sentence is empty")
        fitted = self._contextual(sentences)
        ids = self.translator.src_vocab.encode(words)
        memory, _ = self.translator.model.encoder(
            torch.tensor([ids]), torch.tensor([len(ids)])
        )  # (1, len(words), hidden)
        rows = memory[0].double().numpy()
        means, has_mean = fitted.mean_states_, fitted.has_mean_
        unit_means = _unit(means)
        table = self.tables["src"]
        result = []
        for word, index, state in zip(words, ids, rows):
            scores = unit_means @ _unit(state[None, :])[0]
            scores[~has_mean] = -np.inf
            scores[: len(SPECIALS)] = -np.inf
            best = np.argsort(-scores, kind="stable")[:k]
            known = index != UNK
            result.append(
                {
                    "word": word,
                    "known": known,
                    "state_norm": float(np.linalg.norm(state)),
                    "contextual_neighbours": [
                        {"word": fitted.vocab_.tokens[i], "cosine": float(scores[i])}
                        for i in best
                        if np.isfinite(scores[i])
                    ],
                    "static_neighbours": (
                        _pairs(table.most_similar(word, k)) if word in table else []
                    ),
                    "self_similarity": self._word_figures(word) if known else None,
                }
            )
        return {"tokens": words, "words": result, "fit": fitted.summary()}

    def _contextual(self, sentences: int) -> ContextualStates:
        """Fitted once, on the first call (in the worker)."""
        if self._states is None:
            try:
                corpus = training_sentences(self.run_dir, self._state)
            except InputError:  # no RUN/data/train.tsv: the test split, if any
                corpus = SegmentedSentences([], [])
            n = min(sentences, len(corpus.tokens))
            subset = SegmentedSentences(
                corpus.tokens[:n],
                corpus.texts[:n],
                corpus.targets[:n] if corpus.targets is not None else None,
            )
            if not subset.tokens:
                raise InputError(
                    f"model {self.id}: no training sentences (data/train.tsv) to "
                    "measure contextual states on"
                )
            self._states = ContextualStates(
                max_occurrences=50, n_contexts=2, device=self.device
            ).fit(self._state, subset)
        return self._states

    def _word_figures(self, word: str) -> dict[str, Any]:
        """Self-similarity, its baseline and their difference for one word."""
        if word not in self._word_reports:
            report = self._states.word_report(word)
            self._word_reports[word] = {
                key: report[key]
                for key in (
                    "n_occurrences",
                    "n_sampled",
                    "self_similarity",
                    "baseline",
                    "difference",
                    "reason",
                )
            }
            if len(self._word_reports) > STATES_CACHE:
                self._word_reports.popitem(last=False)
        self._word_reports.move_to_end(word)
        return self._word_reports[word]


def _best_valid_bleu(run_dir: Path) -> float | None:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    best = None
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            value = json.loads(line).get("valid_bleu")
        except (json.JSONDecodeError, AttributeError):
            continue
        if isinstance(value, (int, float)) and math.isfinite(value):
            best = value if best is None else max(best, value)
    return best


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def _pairs(neighbours: list[tuple[str, float]]) -> list[dict[str, Any]]:
    return [{"word": word, "cosine": float(value)} for word, value in neighbours]
