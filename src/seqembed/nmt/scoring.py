"""Corpus BLEU and chrF of translations (sacrebleu), with a bootstrap
interval for small test sets."""

from __future__ import annotations

from dataclasses import dataclass

# Below this many sentences a corpus score is noisy enough to need its
# interval; above it, the bootstrap's cost buys little.
CI_BELOW = 500
N_BOOTSTRAP = 1000


@dataclass
class Scores:
    bleu: float
    chrf: float
    bleu_signature: str
    chrf_signature: str
    n_sentences: int
    # Fewer than CI_BELOW sentences: the half-width of sacrebleu's 95%
    # bootstrap interval (N_BOOTSTRAP resamples, its fixed seed), else None.
    bleu_ci: float | None = None
    chrf_ci: float | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    def text(self, metric: str) -> str:
        """``BLEU 12.13 ± 5.02 (95% CI)``, or ``BLEU 29.37`` with no interval."""
        value, ci = getattr(self, metric), getattr(self, f"{metric}_ci")
        name = {"bleu": "BLEU", "chrf": "chrF"}[metric]
        if ci is None:
            return f"{name} {value:.2f}"
        return f"{name} {value:.2f} ± {ci:.2f} (95% CI)"


def score(
    hypotheses: list[str],
    references: list[str],
    lowercase: bool,
    interval: bool = False,
) -> Scores:
    """Corpus BLEU and chrF with sacrebleu's default (13a) tokenisation.

    ``lowercase`` matches a model trained on lowercased text: then the score is
    case-insensitive, and the signature says so (``case:lc``). With
    ``interval`` and fewer than ``CI_BELOW`` sentences each score carries its
    95% confidence interval (sacrebleu's bootstrap resampling of the
    sentences, about 0.5 s for 30 of them: not for every validation).
    """
    from sacrebleu.metrics import BLEU, CHRF

    # force: hypotheses are always our own detokenised output; a pretokenised
    # target side is the user's choice, not a mistake to warn about.
    bleu = BLEU(lowercase=lowercase, force=True)
    chrf = CHRF(lowercase=lowercase)
    bleu_score = bleu.corpus_score(hypotheses, [references])
    chrf_score = chrf.corpus_score(hypotheses, [references])
    intervals = {}
    if interval and 1 < len(hypotheses) < CI_BELOW:
        intervals = {
            "bleu_ci": _bootstrap_ci(bleu, hypotheses, references),
            "chrf_ci": _bootstrap_ci(chrf, hypotheses, references),
        }
    return Scores(
        bleu=round(bleu_score.score, 2),
        chrf=round(chrf_score.score, 2),
        bleu_signature=str(bleu.get_signature()),
        chrf_signature=str(chrf.get_signature()),
        n_sentences=len(hypotheses),
        **intervals,
    )


def _bootstrap_ci(metric, hypotheses: list[str], references: list[str]) -> float:
    """The half-width of the 95% interval of sacrebleu's bootstrap (its
    resampling, seed and percentile rule, as ``corpus_score(n_bootstrap=)``
    gives it), from its sentence statistics: its own mean of the resampled
    scores fails when one of them is a Python 0.0 among numpy float32s."""
    from sacrebleu.significance import _bootstrap_resample

    stats = metric._extract_corpus_statistics(hypotheses, [references])
    _, resampled = _bootstrap_resample(stats, metric, N_BOOTSTRAP)
    values = sorted(float(s.score) for s in resampled)
    low = len(values) // 40
    return round(0.5 * (values[len(values) - low - 1] - values[low]), 2)
