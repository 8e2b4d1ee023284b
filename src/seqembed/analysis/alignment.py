"""Do the source and target embedding spaces align? Bilingual lexicon induction.

The design claims the encoder's and decoder's word embeddings "gradually
align". We test it the standard way (Mikolov et al. 2013; Conneau et al. 2018):
fit a linear map from the source space to a target space on part of a
Chinese -> English dictionary, then ask whether each *held-out* Chinese word
lands next to one of its English translations. Only held-out words count:
Procrustes fits its own training pairs perfectly even between two unrelated
random spaces.

::

    CC-CEDICT --cedict_lexicon--> [(zh, en), ...] --split_lexicon--> train | test
                                                      (by source word)
    src table --normalize--> X          X_train W ~ Y_train       (fit)
    tgt table --normalize--> Y          rank all of Y for X_test W (evaluate)

``alignment_report(trained, initial)`` runs this for the decoder's input
embeddings ("tgt") and its output projection rows ("out"), each beside two
chance baselines: the same pipeline on the untrained embeddings saved in the
checkpoint, and on the trained ones with the training translations shuffled.
Its result is plain JSON data::

    status          "ok" or "not enough lexicon entries"
    message         why not (empty when ok)
    settings        {test_fraction, random_state, csls_k, alpha, min_freq,
                     ks: [1, 5, 10]}
    lexicon         {name, n_pairs, n_src_words, n_train_pairs, n_test_pairs,
                     n_train_words, n_test_words}   (words: Chinese headwords)
    spaces          {"tgt": SPACE, "out": SPACE}    (empty unless status is ok;
                                                     "out" only where present)

    SPACE = {
      method          "procrustes" (dims equal) or "lstsq" (ridge least squares)
      src_dim, tgt_dim, n_target_words
      chance          {p_at_1, p_at_5, p_at_10}: random ranking of the target
                      vocabulary, given each test word's number of translations
                      (k / n_target_words for a word with one translation)
      trained         RETRIEVAL on the trained embeddings
      initial         RETRIEVAL on the untrained ones, or null where absent
      shuffled        RETRIEVAL on the trained ones, training translations
                      permuted among the training pairs
    }
    RETRIEVAL = {"nn": {p_at_1, p_at_5, p_at_10}, "csls": {p_at_1, ...}}

A test word is correct at k when any of its dictionary translations is among
the k best of the whole target vocabulary (special tokens excluded); ``nn``
ranks by cosine, ``csls`` by cross-domain similarity local scaling.
"""

from __future__ import annotations

import math

import numpy as np

from seqembed.analysis.lexicon import LEXICON_NAME, cedict_lexicon, split_lexicon
from seqembed.analysis.similarity import CHUNK_ROWS
from seqembed.vectors.table import EmbeddingTable

KS = (1, 5, 10)
STATUS_OK = "ok"
STATUS_TOO_SMALL = "not enough lexicon entries"

# ---------------------------------------------------------------- the map


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Unit length, centre, unit length again (Artetxe et al. 2018, sec. 3.1):
    cosine becomes a dot product and no common direction dominates."""
    vectors = _unit(vectors)
    vectors = vectors - vectors.mean(axis=0, dtype=np.float64).astype(np.float32)
    return _unit(vectors)


class CrossLingualMap:
    """A linear map from a source embedding space to a target one, fitted on
    the training part of a bilingual lexicon and scored on the held-out part.

    ``method``: "procrustes" (orthogonal W = U V^T from the SVD of
    X^T Y, Schoenemann 1966; semi-orthogonal when the dims differ), "lstsq"
    (ridge least squares with penalty ``alpha``), or "auto": procrustes when
    the dims are equal, else lstsq. ``shuffle`` permutes the translations
    among the training pairs: a chance baseline with the same words.

    Fitted: ``method_``, ``mapping_`` (src_dim, tgt_dim), ``train_pairs_``,
    ``test_pairs_`` and the normalised vocabularies ``src_words_``/``tgt_words_``
    (specials excluded), ``src_normed_``/``tgt_normed_``.
    """

    def __init__(
        self,
        method: str = "auto",
        test_fraction: float = 0.2,
        alpha: float = 1.0,
        shuffle: bool = False,
        random_state: int = 0,
    ):
        self.method = method
        self.test_fraction = test_fraction
        self.alpha = alpha
        self.shuffle = shuffle
        self.random_state = random_state

    def fit(
        self,
        src_table: EmbeddingTable,
        tgt_table: EmbeddingTable,
        lexicon: list[tuple[str, str]],
    ) -> CrossLingualMap:
        if self.method not in ("auto", "procrustes", "lstsq"):
            raise ValueError(f"unknown method {self.method!r}")
        # min_freq=0: every word of the vocabulary, only the specials left out.
        self.src_words_ = src_table.words(min_freq=0)
        self.tgt_words_ = tgt_table.words(min_freq=0)
        lexicon = [
            (zh, en)
            for zh, en in lexicon
            if zh in self.src_words_ and en in self.tgt_words_
        ]
        train, test = split_lexicon(lexicon, self.test_fraction, self.random_state)
        if not train or not test:
            raise ValueError(
                f"{STATUS_TOO_SMALL}: {len(train)} train and {len(test)} test pairs"
            )
        self.train_pairs_, self.test_pairs_ = train, test

        self.src_normed_ = normalize(self.src_words_.vectors)
        self.tgt_normed_ = normalize(self.tgt_words_.vectors)
        src_rows = [self.src_words_.index[zh] for zh, _ in train]
        tgt_rows = [self.tgt_words_.index[en] for _, en in train]
        if self.shuffle:
            # Another generator than split_lexicon's, so the split stays the
            # same as the unshuffled fit's.
            rng = np.random.default_rng([self.random_state, 1])
            tgt_rows = list(rng.permutation(tgt_rows))
        x = self.src_normed_[src_rows].astype(np.float64)  # (n_train, src_dim)
        y = self.tgt_normed_[tgt_rows].astype(np.float64)  # (n_train, tgt_dim)

        self.method_ = self.method
        if self.method == "auto":
            same = self.src_words_.dim == self.tgt_words_.dim
            self.method_ = "procrustes" if same else "lstsq"
        if self.method_ == "procrustes":
            # argmin ||XW - Y||_F over W^T W = I: W = U V^T, U S V^T = svd(X^T Y)
            u, _, vt = np.linalg.svd(x.T @ y, full_matrices=False)
            mapping = u @ vt
        else:
            # Ridge as plain least squares on [X; sqrt(alpha) I] -> [Y; 0].
            dim = x.shape[1]
            x = np.vstack([x, math.sqrt(self.alpha) * np.eye(dim)])
            y = np.vstack([y, np.zeros((dim, y.shape[1]))])
            mapping = np.linalg.lstsq(x, y, rcond=None)[0]
        self.mapping_ = mapping.astype(np.float32)  # (src_dim, tgt_dim)
        return self

    def evaluate(self, ks: tuple[int, ...] = KS, csls_k: int = 10) -> dict:
        """Precision@k of the held-out source words, by nearest neighbour and by
        CSLS: {"nn": {"p_at_1": ...}, "csls": {...}}."""
        test_words = list(dict.fromkeys(zh for zh, _ in self.test_pairs_))
        gold: dict[str, set[int]] = {zh: set() for zh in test_words}
        for zh, en in self.test_pairs_:
            gold[zh].add(self.tgt_words_.index[en])
        ranked = self._ranked(test_words, max(ks), csls_k)
        result = {}
        for retrieval, ids in ranked.items():  # ids: (n_test_words, max(ks))
            hits = [
                [bool(gold[w] & set(row[:k])) for k in ks]
                for w, row in zip(test_words, ids)
            ]
            precision = np.mean(hits, axis=0)  # (len(ks),)
            result[retrieval] = {f"p_at_{k}": float(p) for k, p in zip(ks, precision)}
        return result

    def translate(
        self, words: list[str], k: int = 5, retrieval: str = "csls", csls_k: int = 10
    ) -> dict[str, list[str]]:
        """Each source word's k best target words, best first: for looking."""
        words = [w for w in words if w in self.src_words_]
        ids = self._ranked(words, k, csls_k)[retrieval]
        return {
            w: [self.tgt_words_.tokens[i] for i in row] for w, row in zip(words, ids)
        }

    def chance(self, ks: tuple[int, ...] = KS) -> dict:
        """Expected precision@k of a random ranking of the target vocabulary:
        1 - C(n - g, k) / C(n, k) for a word with g translations among n."""
        n = len(self.tgt_words_)
        n_gold: dict[str, int] = {}
        for zh, _ in self.test_pairs_:
            n_gold[zh] = n_gold.get(zh, 0) + 1
        result = {}
        for k in ks:
            misses = [
                math.prod((n - g - i) / (n - i) for i in range(min(k, n)))
                if g < n
                else 0.0
                for g in n_gold.values()
            ]
            result[f"p_at_{k}"] = float(1.0 - np.mean(misses))
        return result

    def _mapped(self, rows) -> np.ndarray:
        return _unit(self.src_normed_[rows] @ self.mapping_)  # (n, tgt_dim)

    def _ranked(self, words: list[str], n: int, csls_k: int) -> dict[str, np.ndarray]:
        """(len(words), n) target row ids, best first, for "nn" and "csls"."""
        queries = self._mapped([self.src_words_.index[w] for w in words])
        targets = self.tgt_normed_
        # CSLS (Conneau et al. 2018, eq. 6):
        #   2 cos(Wx, y) - r_T(Wx) - r_S(y),
        # r_S(y) the mean cosine of y with its csls_k nearest mapped source
        # words (the whole source vocabulary). r_T(Wx) is the same for every
        # candidate y of one query, so it cannot change a ranking: left out.
        mapped_src = self._mapped(np.arange(len(self.src_words_)))
        r_src = _mean_top_k(targets, mapped_src, csls_k)  # (n_target,)
        return {
            "nn": _top_ids(queries, targets, n),
            "csls": _top_ids(queries, targets, n, penalty=r_src),
        }


# ------------------------------------------------------------------ report


def alignment_report(
    trained: dict[str, EmbeddingTable],
    initial: dict[str, EmbeddingTable] | None = None,
    lexicon: list[tuple[str, str]] | None = None,
    test_fraction: float = 0.2,
    random_state: int = 0,
    csls_k: int = 10,
    alpha: float = 1.0,
    min_freq: int = 1,
    min_test_words: int = 10,
) -> dict:
    """Held-out precision@k of src -> tgt and src -> out maps, trained beside
    initial and shuffled-lexicon baselines; the layout is in the module
    docstring. ``trained``/``initial`` are ``load_tables`` results;
    ``lexicon`` defaults to CC-CEDICT over the trained vocabularies, of which
    only pairs of words seen ``min_freq`` times or more on both sides count (the
    retrieval is still over the whole target vocabulary): rare words have
    barely trained embeddings."""
    name = LEXICON_NAME if lexicon is None else "given"
    lexicon = _usable_lexicon(trained, lexicon, min_freq)
    train, test = split_lexicon(lexicon, test_fraction, random_state)
    report = {
        "status": STATUS_OK,
        "message": "",
        "settings": {
            "test_fraction": test_fraction,
            "random_state": random_state,
            "csls_k": csls_k,
            "alpha": alpha,
            "min_freq": min_freq,
            "ks": list(KS),
        },
        "lexicon": _lexicon_summary(name, lexicon, train, test),
        "spaces": {},
    }
    n_train_words = report["lexicon"]["n_train_words"]
    n_test_words = report["lexicon"]["n_test_words"]
    if n_test_words < min_test_words or n_train_words < min_test_words:
        report["status"] = STATUS_TOO_SMALL
        report["message"] = (
            f"{len(lexicon)} dictionary pairs in the vocabularies: "
            f"{n_train_words} training and {n_test_words} test source words, "
            f"fewer than {min_test_words}"
        )
        return report
    for kind in ("tgt", "out"):
        if kind in trained:
            report["spaces"][kind] = _space_scores(
                kind, trained, initial or {}, lexicon, report["settings"]
            )
    return report


def _usable_lexicon(trained, lexicon, min_freq: int) -> list[tuple[str, str]]:
    """The lexicon's distinct pairs of words both vocabularies hold, each seen
    ``min_freq`` times or more (CC-CEDICT over the vocabularies when None)."""
    src = trained["src"].words(min_freq=0)
    tgt = trained["tgt"].words(min_freq=0)
    if lexicon is None:
        lexicon = cedict_lexicon(src.tokens, tgt.tokens)
    return [
        (zh, en)
        for zh, en in dict.fromkeys(lexicon)
        if zh in src
        and en in tgt
        and src.freqs[src.index[zh]] >= min_freq
        and tgt.freqs[tgt.index[en]] >= min_freq
    ]


def _lexicon_summary(name: str, lexicon, train, test) -> dict:
    return {
        "name": name,
        "n_pairs": len(lexicon),
        "n_src_words": len({zh for zh, _ in lexicon}),
        "n_train_pairs": len(train),
        "n_test_pairs": len(test),
        "n_train_words": len({zh for zh, _ in train}),
        "n_test_words": len({zh for zh, _ in test}),
    }


def _space_scores(kind: str, trained, initial, lexicon, settings: dict) -> dict:
    """One target space ("tgt" or "out"): the trained map's scores beside the
    initial embeddings' and the shuffled lexicon's."""

    def scores(tables, shuffle=False):
        mapper = CrossLingualMap(
            test_fraction=settings["test_fraction"],
            alpha=settings["alpha"],
            shuffle=shuffle,
            random_state=settings["random_state"],
        ).fit(tables["src"], tables[kind], lexicon)
        return mapper, mapper.evaluate(KS, settings["csls_k"])

    mapper, trained_scores = scores(trained)
    return {
        "method": mapper.method_,
        "src_dim": mapper.src_words_.dim,
        "tgt_dim": mapper.tgt_words_.dim,
        "n_target_words": len(mapper.tgt_words_),
        "chance": mapper.chance(KS),
        "trained": trained_scores,
        "initial": (
            scores(initial)[1] if "src" in initial and kind in initial else None
        ),
        "shuffled": scores(trained, shuffle=True)[1],
    }


def alignment_findings(report: dict, alpha: float, correction: str) -> list[dict]:
    """Is held-out P@1 (nearest neighbour) above chance? The number of test
    words translated right against Binomial(n_test_words, chance P@1); above
    chance also needs the trained map to beat the shuffled-lexicon one."""
    from scipy import stats

    from seqembed.analysis import chance

    n_test = report["lexicon"]["n_test_words"]
    rows = []
    for space, scores in report.get("spaces", {}).items():
        value = scores["trained"]["nn"]["p_at_1"]
        rate = scores["chance"]["p_at_1"]
        hits = round(value * n_test)
        rows.append(
            {
                "space": space,
                "value": value,
                "chance": rate,
                "shuffled": scores["shuffled"]["nn"]["p_at_1"],
                "hits": hits,
                "n_test_words": n_test,
                "p_value": float(stats.binom.sf(hits - 1, n_test, rate)),
            }
        )
    adjusted = chance.adjust([row["p_value"] for row in rows], correction)
    for row, p in zip(rows, adjusted):
        row["p_adjusted"] = p
        row["above_chance"] = bool(p <= alpha and row["value"] > row["shuffled"])
    return rows


# ---------------------------------------------------------------- helpers


def _unit(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1, float32 (a zero row stays zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def _mean_top_k(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """For each row of ``a``, the mean of its k largest dot products with the
    rows of ``b``; one block of rows at a time."""
    k = min(k, len(b))
    result = np.empty(len(a), dtype=np.float32)
    for start in range(0, len(a), CHUNK_ROWS):
        scores = a[start : start + CHUNK_ROWS] @ b.T  # (block, len(b))
        top = np.partition(scores, len(b) - k, axis=1)[:, len(b) - k :]
        result[start : start + CHUNK_ROWS] = top.mean(axis=1)
    return result


def _top_ids(
    queries: np.ndarray,
    targets: np.ndarray,
    n: int,
    penalty: np.ndarray | None = None,
) -> np.ndarray:
    """(len(queries), n) ids of the best targets by q . t (by 2 q . t - penalty
    when given), best first; one block of queries at a time."""
    n = min(n, len(targets))
    result = np.empty((len(queries), n), dtype=np.int64)
    for start in range(0, len(queries), CHUNK_ROWS):
        scores = queries[start : start + CHUNK_ROWS] @ targets.T  # (block, n_tgt)
        if penalty is not None:
            scores = 2 * scores - penalty[None, :]
        best = np.argpartition(-scores, n - 1, axis=1)[:, :n]
        order = np.argsort(-np.take_along_axis(scores, best, axis=1), axis=1)
        result[start : start + CHUNK_ROWS] = np.take_along_axis(best, order, axis=1)
    return result
