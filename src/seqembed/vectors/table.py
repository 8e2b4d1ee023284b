"""An embedding table as plain data, queried with gensim's names.

``EmbeddingTable`` holds tokens, token -> row index, a (n_words, dim) float32
matrix, each token's training frequency, and cached norms: gensim's
``KeyedVectors`` as data. Where the two overlap the names and meanings are
gensim's (``most_similar(positive=, negative=, topn=)``,
``most_similar_cosmul``, ``similarity``, ``n_similarity``, ``doesnt_match``,
``evaluate_word_pairs``, ``key_to_index``, ``index_to_key``, ``vectors``,
``table[word]``, ``word in table``), with two differences on purpose:

* a word that is not in the table raises ``UnknownWordError`` (a
  ``KeyError`` naming the word, the side and the vocabulary size), in
  ``doesnt_match`` too, where gensim drops it with a log line;
* ``chance=True`` on ``similarity`` and ``most_similar`` gives, beside each
  cosine, the cosine that random vectors of this table's shape have at the
  same rank (``seqembed.vectors.null``), so a neighbour is read against
  what learning nothing gives.

The computations over all pairs of rows live in
``seqembed.analysis.similarity``; the tables of a checkpoint come from
``seqembed.nmt.checkpoint.load_tables``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from seqembed.data.vocab import SPECIALS
from seqembed.errors import InputError, UnknownWordError
from seqembed.textfile import read_text
from seqembed.vectors import null

# A query term: a word, a vector, or (either, weight) as gensim takes them.
Term = Any


class WordPairEvaluation(NamedTuple):
    """``evaluate_word_pairs``' result, unpacked as gensim's:
    ``pearson, spearman, oov_ratio = table.evaluate_word_pairs(path)``."""

    pearson: tuple[float, float]  # (r, p-value)
    spearman: tuple[float, float]  # (rho, p-value)
    oov_ratio: float  # percent of the file's pairs with a word not in the table


@dataclass
class EmbeddingTable:
    """Rows of ``vectors`` are the embeddings of ``tokens`` (same order).

    ``side`` ("src", "tgt", "out" or None) only names the table in errors.
    """

    tokens: list[str]
    vectors: np.ndarray  # (n_words, dim) float32
    freqs: np.ndarray | None = None  # (n_words,) training frequency; 0 if None
    side: str | None = None
    index: dict[str, int] = field(init=False, repr=False)
    _norms: np.ndarray | None = field(default=None, init=False, repr=False)
    _unit: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        self.tokens = list(self.tokens)
        self.vectors = np.ascontiguousarray(self.vectors, dtype=np.float32)
        if self.freqs is None:
            self.freqs = np.zeros(len(self.tokens), dtype=np.int64)
        self.freqs = np.asarray(self.freqs, dtype=np.int64)
        if self.vectors.ndim != 2 or len(self.tokens) != len(self.vectors):
            raise ValueError("vectors must be (len(tokens), dim)")
        if len(self.freqs) != len(self.tokens):
            raise ValueError("freqs must have one entry per token")
        self.index = {token: i for i, token in enumerate(self.tokens)}

    # ------------------------------------------------------------ as data

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self.index

    def __getitem__(self, key: str | list[str]) -> np.ndarray:
        """A word's vector (a view of its row), or (len(key), dim) for a list."""
        if isinstance(key, str):
            return self.vectors[self.index_of(key)]
        return self.vectors[[self.index_of(word) for word in key]]

    @property
    def key_to_index(self) -> dict[str, int]:
        return self.index

    @property
    def index_to_key(self) -> list[str]:
        return self.tokens

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    @property
    def norms(self) -> np.ndarray:
        if self._norms is None:
            self._norms = np.linalg.norm(self.vectors, axis=1)
        return self._norms

    def index_of(self, token: str) -> int:
        """The row of ``token``; ``UnknownWordError`` if it has none."""
        try:
            return self.index[token]
        except (KeyError, TypeError):
            raise UnknownWordError(token, self.side, len(self)) from None

    def unit_vectors(self) -> np.ndarray:
        """Rows scaled to length 1 (a zero row stays zero)."""
        if self._unit is None:
            norms = self.norms[:, None]
            self._unit = self.vectors / np.where(norms > 0, norms, 1.0)
        return self._unit

    def vector(self, token: str, norm: bool = False) -> np.ndarray:
        """``token``'s vector; ``norm``: scaled to length 1."""
        row = self.index_of(token)
        return self.unit_vectors()[row] if norm else self.vectors[row]

    def select(self, tokens: list[str]) -> EmbeddingTable:
        """The sub-table of these tokens, in this order."""
        rows = [self.index_of(token) for token in tokens]
        return EmbeddingTable(
            list(tokens), self.vectors[rows], self.freqs[rows], self.side
        )

    def words(
        self,
        min_freq: int = 1,
        include_specials: bool = False,
        only: list[str] | None = None,
    ) -> EmbeddingTable:
        """The analysed sub-table: ``only`` these words (those in the table), or
        every word seen at least ``min_freq`` times in training."""
        if only is not None:
            chosen = [t for t in dict.fromkeys(only) if t in self.index]
        else:
            chosen = [
                t
                for t, f in zip(self.tokens, self.freqs)
                if f >= min_freq or (include_specials and t in SPECIALS)
            ]
        if not include_specials:
            chosen = [t for t in chosen if t not in SPECIALS]
        return self.select(chosen)

    # ----------------------------------------------------------- queries

    def similarity(self, a: str, b: str, chance: bool = False):
        """The cosine of two words. ``chance=True``: ``(cosine, chance)``,
        where chance is the cosine random vectors of this table's shape have
        at the rank ``b`` holds among ``a``'s neighbours."""
        value = cosine(self.vector(a), self.vector(b))
        if not chance:
            return value
        unit = self.unit_vectors()
        scores = unit @ unit[self.index_of(a)]
        scores[self.index_of(a)] = -np.inf
        rank = 1 + int(np.sum(scores > scores[self.index_of(b)]))
        n_candidates = max(len(self) - 1, 1)
        rank = min(rank, n_candidates)
        return value, null.typical_cosine(rank, n_candidates, self.dim)

    def n_similarity(self, words_a: list[str], words_b: list[str]) -> float:
        """The cosine of the means of two word lists (gensim's)."""
        if not (len(words_a) and len(words_b)):
            raise ZeroDivisionError("At least one of the passed list is empty.")
        return cosine(self[words_a].mean(axis=0), self[words_b].mean(axis=0))

    def most_similar(
        self,
        positive: Term | list[Term] | None = None,
        negative: Term | list[Term] | int | None = None,
        topn: int = 10,
        restrict_vocab: int | None = None,
        *,
        chance: bool = False,
    ) -> list[tuple]:
        """The ``topn`` rows nearest by cosine to the mean of the ``positive``
        terms' unit vectors minus the ``negative`` ones' (gensim's rule), best
        first, leaving out the query words: ``[(word, cosine), ...]``.

        A term is a word, a vector, or ``(term, weight)``. ``restrict_vocab``:
        search only the first N rows (the most frequent). ``chance=True``:
        ``[(word, cosine, chance), ...]`` with the typical cosine of random
        vectors of this shape at each rank. An int in ``negative``'s place is
        ``topn`` (seqembed's earlier ``most_similar(word, k)``).
        """
        if isinstance(negative, int) and not isinstance(negative, bool):
            negative, topn = None, negative
        if topn < 1:
            return []
        terms, weights = _weighted_terms(positive, negative)
        query = self._mean_unit(terms, weights)
        excluded = {self.index[t] for t in terms if isinstance(t, str)}
        end = min(restrict_vocab or len(self), len(self))
        unit = self.unit_vectors()[:end]
        scores = (unit @ query).astype(np.float64)
        scores[[i for i in excluded if i < end]] = -np.inf
        n_candidates = end - sum(i < end for i in excluded)
        best = _top(scores, min(topn, n_candidates))
        results = [(self.tokens[i], float(scores[i])) for i in best]
        if not chance:
            return results
        typical = null.expected_top_scores(len(results), n_candidates, self.dim)
        return [(w, c, r) for (w, c), r in zip(results, typical)]

    def most_similar_cosmul(
        self,
        positive: Term | list[Term] | None = None,
        negative: Term | list[Term] | None = None,
        topn: int = 10,
        restrict_vocab: int | None = None,
    ) -> list[tuple[str, float]]:
        """3CosMul (Levy & Goldberg 2014, eq. 4, cosines shifted to [0, 1]):
        the product of the positive terms' similarities over the negative
        ones' (+ 1e-6), best first, leaving out the query words."""
        if topn < 1:
            return []
        positive, negative = _as_list(positive), _as_list(negative)
        if not positive:
            raise ValueError("cannot compute similarity with no input")
        end = min(restrict_vocab or len(self), len(self))
        unit = self.unit_vectors()[:end]

        def shifted(term) -> np.ndarray:
            vector = self.vector(term, norm=True) if isinstance(term, str) else term
            return (1 + unit @ np.asarray(vector, dtype=np.float32)) / 2

        dists = np.prod([shifted(t) for t in positive], axis=0) / (
            np.prod([shifted(t) for t in negative], axis=0) + 1e-6
        )
        dists = dists.astype(np.float64)
        excluded = {self.index[t] for t in positive + negative if isinstance(t, str)}
        dists[[i for i in excluded if i < end]] = -np.inf
        best = _top(dists, min(topn, end - sum(i < end for i in excluded)))
        return [(self.tokens[i], float(dists[i])) for i in best]

    def doesnt_match(self, words: list[str]) -> str:
        """The word furthest from the mean of the words' unit vectors."""
        if not words:
            raise ValueError("cannot select a word from an empty list")
        unit = np.vstack([self.vector(word, norm=True) for word in words])
        mean = _unit(unit.mean(axis=0))
        return sorted(zip((unit @ mean).tolist(), words))[0][1]

    def evaluate_word_pairs(
        self,
        path: str | Path,
        delimiter: str = "\t",
        restrict_vocab: int = 300_000,
        case_insensitive: bool = True,
        dummy4unknown: bool = False,
    ) -> WordPairEvaluation:
        """Correlate the table's cosines with human similarity scores.

        ``path``: a word-similarity file (WordSim-353, SimLex-999 layout):
        ``word1 TAB word2 TAB score`` per line, ``#`` lines are comments. Pairs
        with a word outside the first ``restrict_vocab`` rows are left out
        (``dummy4unknown``: scored 0 instead) and counted in ``oov_ratio``.
        A line that is not two words and a number is an error naming it."""
        from scipy import stats

        rows = {}  # the first (most frequent) spelling wins, as in gensim
        for i, token in reversed(list(enumerate(self.tokens[:restrict_vocab]))):
            rows[token.upper() if case_insensitive else token] = i
        gold, model, oov = [], [], 0
        for a, b, score in _word_pairs(Path(path), delimiter):
            if case_insensitive:
                a, b = a.upper(), b.upper()
            if a not in rows or b not in rows:
                oov += 1
                if dummy4unknown:
                    gold.append(score)
                    model.append(0.0)
                continue
            gold.append(score)
            model.append(cosine(self.vectors[rows[a]], self.vectors[rows[b]]))
        if len(gold) < 3:
            raise InputError(
                f"only {len(gold)} of the file's pairs have both words in the "
                "table; at least 3 are needed for a correlation",
                path,
            )
        pearson = stats.pearsonr(gold, model)
        spearman = stats.spearmanr(gold, model)
        return WordPairEvaluation(
            (float(pearson[0]), float(pearson[1])),
            (float(spearman[0]), float(spearman[1])),
            100.0 * oov / (len(gold) + oov),  # as gensim counts it
        )

    def to_gensim(self):
        """A ``gensim.models.KeyedVectors`` with these rows (and each word's
        training frequency as its ``count``); needs ``pip install gensim``."""
        try:
            from gensim.models import KeyedVectors
        except ImportError as error:
            raise ImportError(
                "EmbeddingTable.to_gensim needs gensim: pip install gensim"
            ) from error
        kv = KeyedVectors(self.dim, dtype=np.float32)
        kv.add_vectors(self.tokens, self.vectors)
        for token, freq in zip(self.tokens, self.freqs.tolist()):
            kv.set_vecattr(token, "count", freq)
        return kv

    def _mean_unit(self, terms: list, weights: list[float]) -> np.ndarray:
        """gensim's get_mean_vector(pre_normalize=True, post_normalize=True)."""
        if not terms:
            raise ValueError("cannot compute similarity with no input")
        total = np.zeros(self.dim, dtype=np.float32)
        for term, weight in zip(terms, weights):
            vector = self.vector(term, norm=True) if isinstance(term, str) else term
            total += weight * np.asarray(vector, dtype=np.float32)
        return _unit(total / sum(abs(w) for w in weights))


def _as_list(terms) -> list:
    if terms is None:
        return []
    if isinstance(terms, (str, np.ndarray)):
        return [terms]
    return list(terms)


def _weighted_terms(positive, negative) -> tuple[list, list[float]]:
    """Terms and weights: +1 for positive, -1 for negative, unless given."""
    terms, weights = [], []
    for items, sign in ((_as_list(positive), 1.0), (_as_list(negative), -1.0)):
        for item in items:
            if isinstance(item, tuple):
                terms.append(item[0])
                weights.append(float(item[1]))
            else:
                terms.append(item)
                weights.append(sign)
    return terms, weights


def _top(scores: np.ndarray, n: int) -> list[int]:
    """Indices of the n largest scores, best first."""
    if n <= 0:
        return []
    best = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else scores.argsort()
    return sorted(best.tolist(), key=lambda i: -scores[i])[:n]


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return (vector / norm if norm else vector).astype(np.float32)


def _word_pairs(path: Path, delimiter: str):
    """(word1, word2, score) of each pair line of a word-similarity file."""
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split(delimiter)
        try:
            if len(fields) != 3:
                raise ValueError
            yield fields[0].strip(), fields[1].strip(), float(fields[2])
        except ValueError:
            raise InputError(
                f"expected word1{delimiter!r}word2{delimiter!r}score, got {line!r}",
                path,
                number,
            ) from None


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / denominator if denominator else 0.0


def read_word_list(path: Path) -> list[str]:
    """Words from a file: whitespace-separated, ``#`` starts a comment."""
    text = read_text(path)
    words = []
    for line in text.splitlines():
        words.extend(line.split("#", 1)[0].split())
    if not words:
        raise InputError("no words in the word list", path)
    return words
