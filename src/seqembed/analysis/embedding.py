"""Embedding analysis, every figure beside its chance level.

``EmbeddingAnalysis(...).fit(table, initial=..., groups=..., sentences=...)``
computes, for one embedding table (one side of one run):

    similar_pairs   the top-N pairs by cosine                     (pairs)
    groups          mean within-group cosine of named word groups (cohesion)
    cooccurrence    pairs that share a training sentence vs pairs
                    that never do                                 (cohesion)
    chosen_pairs    a listing for pairs the user names            (pairs)
    statistics      norms and pairwise cosines, overall and by
                    frequency band                                (norms)
    outliers        the k-std norm rule beside a robust median/MAD
                    rule                                          (norms)
    movement        how far each vector moved from its initial
                    value                                         (norms)

and, side by side with each, (a) the same figure on the untrained initial
vectors of the same words, (b) what random vectors of the same dimension give
(see ``chance``), (c) the movement from initial values. ``findings_`` turns
the tests into plain sentences with multiple-comparison adjusted p-values
(``findings.judge``). The result (``result_``) is plain JSON data; its
schema is ``resources/analysis.schema.json``.
"""

from __future__ import annotations

import numpy as np

from seqembed.analysis.cohesion import cooccurrence, frequency_bins, group_cohesion
from seqembed.analysis.findings import findings_dict, judge
from seqembed.analysis.norms import movement, outliers, statistics
from seqembed.analysis.pairs import chosen_pair_listing, similar_pairs
from seqembed.analysis.settings import default
from seqembed.analysis.similarity import scan_pairs
from seqembed.vectors.table import EmbeddingTable


class EmbeddingAnalysis:
    """The analyses of one embedding table, estimator style.

    Parameters are stored as given; ``fit`` does the work and sets
    ``result_`` (a JSON-ready dict) and ``findings_`` (a list of Finding).
    The defaults are ``AnalysisSettings``' (analysis.settings); ``max_pairs``
    (pairs compared in the co-occurrence test) is this estimator's own.
    """

    def __init__(
        self,
        top_n: int = default("top_n"),
        k_std: float = default("k_std"),
        mad_threshold: float = default("mad_threshold"),
        n_permutations: int = default("n_permutations"),
        max_pairs: int = 20_000,
        alpha: float = default("alpha"),
        correction: str = default("correction"),
        shaped_null_repeats: int | None = default("shaped_null_repeats"),
        random_state: int = default("random_state"),
    ):
        self.top_n = top_n
        self.k_std = k_std
        self.mad_threshold = mad_threshold
        self.n_permutations = n_permutations
        self.max_pairs = max_pairs
        self.alpha = alpha
        self.correction = correction
        self.shaped_null_repeats = shaped_null_repeats
        self.random_state = random_state

    def fit(
        self,
        table: EmbeddingTable,
        initial: EmbeddingTable | None = None,
        groups: dict[str, list[str]] | None = None,
        sentences: list[list[str]] | None = None,
        chosen_pairs: list[tuple[str, str]] | None = None,
    ) -> EmbeddingAnalysis:
        if len(table) < 2:
            raise ValueError("the analysis needs at least two words")
        if initial is not None:
            initial = initial.select(table.tokens)
        rng = np.random.default_rng(self.random_state)
        bins, matched = frequency_bins(table.freqs)
        scan = scan_pairs(table.unit_vectors(), self.top_n)
        initial_scan = None
        if initial is not None:
            initial_scan = scan_pairs(initial.unit_vectors(), self.top_n)
        result = {
            "n_words": len(table),
            "dim": table.dim,
            "similar_pairs": similar_pairs(
                table, initial, scan, initial_scan, self.shaped_null_repeats, rng
            ),
            "statistics": statistics(table, scan, initial_scan, initial),
            "outliers": outliers(table, initial, self.k_std, self.mad_threshold, rng),
            "movement": movement(table, initial, rng) if initial else None,
            "groups": None,
            "cooccurrence": None,
            "chosen_pairs": None,
        }
        if groups:
            result["groups"] = group_cohesion(
                table, initial, groups, bins, matched, self.n_permutations, rng
            )
        if sentences is not None:
            result["cooccurrence"] = cooccurrence(
                table, initial, sentences, bins, matched, self.max_pairs, rng
            )
        if chosen_pairs:
            result["chosen_pairs"] = chosen_pair_listing(
                table, initial, chosen_pairs, sentences
            )
        self.findings_ = judge(result, self.alpha, self.correction)
        result["findings"] = findings_dict(self.findings_, self.alpha, self.correction)
        self.result_ = result
        return self
