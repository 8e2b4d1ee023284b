"""From figures to findings: every test of one table, judged as one family.

``judge(result, alpha, correction)`` reads the figures ``EmbeddingAnalysis``
computed (the ``result_`` dict) and returns one ``Finding`` per test, in a
fixed order the pictures rely on (``report.embedding_map.word_verdicts``)::

    similar_pairs   one per top pair                 rank order
    groups          one per group with a p-value     the groups' order
    cooccurrence    one, where it has a p-value
    chosen_pairs    one per pair with a cosine       the pairs' order
    outliers        the std rule, the MAD rule, the most extreme norm
    statistics      norm against frequency, where it has a p-value

The p-values are adjusted together (Holm or Benjamini-Hochberg): one
family, so "above chance" holds for the table as a whole at ``alpha``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from seqembed.analysis import chance

# What each figure is tested against, for the reader.
NULLS = {
    "similar_pairs": "isotropic random vectors",
    "shaped": "random tables shaped like these",
    "groups": "random word sets of the same size",
    "cooccurrence": "no difference (Mann-Whitney U)",
    "chosen_pairs": "two random vectors",
    "outliers": "norm-matched random vectors",
    "statistics": "no correlation",
}


@dataclass(frozen=True)
class Finding:
    """One test: a figure, its chance level and the verdict.

    ``chance``/``p_value``/``p_adjusted`` are the figure's own test (for top
    pairs against isotropic random vectors); ``verdict_chance``,
    ``verdict_p`` and ``verdict_null`` those of the test that decides the
    verdict: the same, except for a top pair that passes it, which must then
    also pass the shape-matched null (``shaped_p_value``, a test over all
    ranks at once whose chance level is the typical best pair of a random
    table shaped like this one).
    """

    figure: str
    subject: str
    value: float
    chance: float
    p_value: float
    p_adjusted: float = float("nan")
    above_chance: bool = False
    # Top pairs only: the best pair of any random table shaped like this one;
    # a pair must beat it (a family-wise test over all ranks, see similar_pairs).
    shaped_chance: float | None = None
    shaped_p_value: float | None = None
    shaped_best: float | None = None  # the typical best pair of such a table
    verdict_chance: float = float("nan")
    verdict_p: float = float("nan")
    verdict_null: str = ""

    def sentence(self, alpha: float) -> str:
        verdict = "above chance" if self.above_chance else "not above chance"
        return (
            f"{self.subject}: {self.value:.4f} (chance {self.verdict_chance:.4f}, "
            f"{self.verdict_null}) is {verdict} (p = {self.verdict_p:.3g}, "
            f"level {alpha})"
        )


def judge(result: dict, alpha: float, correction: str) -> list[Finding]:
    """Collect every test, adjust the p-values together (one family), and
    mark which are above chance at ``alpha``. A top pair must also pass the
    shape-matched null where there is one: a test of its own over all ranks,
    so it is not adjusted again."""
    raw = [
        *_pair_findings(result["similar_pairs"]),
        *_group_findings(result["groups"]),
        *_cooccurrence_findings(result["cooccurrence"]),
        *_chosen_findings(result["chosen_pairs"]),
        *_outlier_findings(result["outliers"]),
        *_statistics_findings(result["statistics"]),
    ]
    adjusted = chance.adjust([f.p_value for f in raw], correction)
    return [_verdict(f, p, alpha) for f, p in zip(raw, adjusted)]


def _verdict(finding: Finding, p_adjusted: float, alpha: float) -> Finding:
    own = replace(
        finding,
        p_adjusted=p_adjusted,
        verdict_chance=finding.chance,
        verdict_p=p_adjusted,
        verdict_null=NULLS[finding.figure],
        above_chance=bool(p_adjusted <= alpha),
    )
    if finding.shaped_p_value is None or not own.above_chance:
        return own
    return replace(
        own,
        verdict_chance=finding.shaped_best,
        verdict_p=finding.shaped_p_value,
        verdict_null=NULLS["shaped"],
        # With R tables, p <= 1 / (R + 1) only when the pair beats the best
        # pair of every one of them (shaped_chance).
        above_chance=bool(finding.shaped_p_value <= alpha),
    )


def findings_dict(findings: list[Finding], alpha: float, correction: str) -> dict:
    """The ``findings`` block of a side's result."""
    return {
        "alpha": alpha,
        "correction": correction,
        "tests": [finding.__dict__ for finding in findings],
        "summary": [finding.sentence(alpha) for finding in findings],
    }


# ------------------------------------------------------------ by figure


def _pair_findings(similar: dict) -> list[Finding]:
    return [
        Finding(
            "similar_pairs",
            f"top pair #{pair['rank']} {pair['a']}-{pair['b']}",
            pair["cosine"],
            pair["chance_cosine"],
            pair["p_value"],
            shaped_chance=similar["shaped_threshold"],
            shaped_p_value=pair.get("shaped_p_value"),
            shaped_best=similar.get("shaped_best_median"),
        )
        for pair in similar["pairs"]
    ]


def _group_findings(groups: dict | None) -> list[Finding]:
    return [
        Finding(
            "groups",
            f"group {group['name']} within-group cosine",
            group["within"],
            group["chance_within"],
            group["p_value"],
        )
        for group in (groups or {}).get("groups", [])
        if group["p_value"] is not None
    ]


def _cooccurrence_findings(co: dict | None) -> list[Finding]:
    if not co or co["p_value"] is None:
        return []
    return [
        Finding(
            "cooccurrence",
            "co-occurring minus never co-occurring pairs, mean cosine",
            co["difference"],
            0.0,
            co["p_value"],
        )
    ]


def _chosen_findings(pairs: list[dict] | None) -> list[Finding]:
    return [
        Finding(
            "chosen_pairs",
            f"pair {pair['a']}-{pair['b']} cosine",
            pair["cosine"],
            0.0,
            pair["p_value"],
        )
        for pair in pairs or []
        if pair["cosine"] is not None
    ]


def _outlier_findings(outliers: dict) -> list[Finding]:
    found = [
        Finding(
            "outliers",
            f"outlier rate, {outliers[rule]['rule']}",
            outliers[rule]["rate"],
            outliers[rule]["chance_rate"],
            outliers[rule]["p_value"],
        )
        for rule in ("std_rule", "mad_rule")
    ]
    largest = outliers["mad_rule"]["largest"]
    found.append(
        Finding(
            "outliers",
            f"most extreme norm, {largest['word']} (modified z)",
            largest["score"],
            largest["chance_score"],
            largest["p_value"],
        )
    )
    return found


def _statistics_findings(statistics: dict) -> list[Finding]:
    norm_frequency = statistics["norm_frequency"]
    if norm_frequency["p_value"] is None:
        return []
    return [
        Finding(
            "statistics",
            "Spearman correlation of norm with frequency",
            norm_frequency["spearman"],
            0.0,
            norm_frequency["p_value"],
        )
    ]
