"""The settings of one embedding analysis, as typed data with its defaults.

Kept apart from ``analysis.run`` (which loads torch) so that the command line
can read these defaults when it builds its parser, before anything heavy is
imported; ``seqembed analyze``'s flags take their defaults from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class AnalysisSettings:
    sides: tuple[str, ...] = ("src", "tgt")
    min_freq: int = 1
    words: tuple[str, ...] | None = None  # analyse only these words
    include_specials: bool = False
    groups: dict[str, list[str]] = field(default_factory=dict)
    pairs: tuple[tuple[str, str], ...] = ()
    top_n: int = 20
    k_std: float = 2.0
    mad_threshold: float = 3.5
    n_permutations: int = 1000
    alpha: float = 0.05
    correction: str = "holm"
    shaped_null_repeats: int = 19  # 0: no shape-matched null (large tables)
    alignment: bool = True
    contextual: bool = True
    context_words: tuple[str, ...] | None = None  # default: frequent words
    movement: bool = True
    random_state: int = 0
    # Subword sides: analyse words (mean of their pieces' vectors) instead of
    # pieces; contextual states and movement stay per piece.
    aggregate_words: bool = False
