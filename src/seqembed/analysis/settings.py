"""The analysis settings: every default in one place, checked on creation.

``AnalysisSettings`` is what ``analyze_run`` reads, what the CLI's flags
default to (cli/analysis.py reads the field defaults) and what
``EmbeddingAnalysis`` takes its own defaults from, so a default cannot
disagree between the three. A value out of range is a one-line
``InputError`` naming the setting, raised when the settings are made, before
any run is read. Kept apart from ``analysis.run`` (which loads torch) so that
the command line reads these defaults when it builds its parser, before
anything heavy is imported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from seqembed.errors import InputError

SIDES = ("src", "tgt")
CORRECTIONS = ("holm", "bh")
# The smallest permutation p-value is 1 / (n + 1); with ~30 tests adjusted
# together it must fall well below alpha / 30 to ever reach a verdict.
MIN_PERMUTATIONS = 1000


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
    # Which checkpoint a run directory stands for: best.pt (else last.pt) or
    # last.pt (nmt.checkpoint.resolve_checkpoint).
    checkpoint: str = "best"
    # Where the encoder computes the contextual states ("auto", "cpu",
    # "cuda", "cuda:N", "mps"; nmt.devices.resolve_device checks it where it
    # is used). The tables themselves are analysed on the CPU either way.
    device: str = "cpu"

    def __post_init__(self):
        # Sequences as tuples, whatever the caller gave (a list from YAML).
        for name in ("sides", "words", "context_words"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                object.__setattr__(self, name, tuple(value))
        object.__setattr__(self, "pairs", tuple(tuple(p) for p in self.pairs))
        _check_sides(self.sides)
        _check_words("words", self.words)
        _check_words("context_words", self.context_words)
        _check_groups(self.groups)
        _check_pairs(self.pairs)
        _at_least("min_freq", self.min_freq, 0)
        _at_least("top_n", self.top_n, 1)
        _at_least("n_permutations", self.n_permutations, MIN_PERMUTATIONS)
        _at_least("shaped_null_repeats", self.shaped_null_repeats, 0)
        _integer("random_state", self.random_state)
        _positive("k_std", self.k_std)
        _positive("mad_threshold", self.mad_threshold)
        _positive("alpha", self.alpha)
        if self.alpha >= 1:
            _refuse("alpha", self.alpha, "must be below 1")
        # nmt.checkpoint.CHECKPOINTS' names; not imported: it loads torch,
        # and the CLI reads these defaults before anything heavy.
        if self.checkpoint not in ("best", "last"):
            _refuse("checkpoint", self.checkpoint, "must be best or last")
        if self.correction not in CORRECTIONS:
            _refuse("correction", self.correction, "must be holm or bh")
        for name in ("include_specials", "alignment", "contextual", "movement"):
            if not isinstance(getattr(self, name), bool):
                _refuse(name, getattr(self, name), "must be true or false")


# ------------------------------------------------------------- checks


def _refuse(name: str, value, why: str):
    raise InputError(f"analysis setting {name} {why} (got {value!r})")


def _integer(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        _refuse(name, value, "must be a whole number")


def _at_least(name: str, value, low: int) -> None:
    _integer(name, value)
    if value < low:
        _refuse(name, value, f"must be at least {low}")


def _positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        _refuse(name, value, "must be a number")
    if not math.isfinite(value) or value <= 0:
        _refuse(name, value, "must be a positive number")


def _check_sides(sides) -> None:
    if not sides or any(side not in SIDES for side in sides):
        _refuse("sides", sides, "must name src, tgt or both")
    if len(set(sides)) != len(sides):
        _refuse("sides", sides, "names a side twice")


def _check_words(name: str, words) -> None:
    if words is None:
        return
    if not words or not all(isinstance(w, str) and w.strip() for w in words):
        _refuse(name, words, "must be a non-empty list of words")


def _check_groups(groups) -> None:
    if not isinstance(groups, dict):
        _refuse("groups", groups, "must map group names to lists of words")
    for name, words in groups.items():
        if isinstance(words, str) or not all(isinstance(w, str) for w in words):
            _refuse("groups", name, "must map each group to a list of words")
        if not words:
            _refuse("groups", name, "has a group without words")


def _check_pairs(pairs) -> None:
    for pair in pairs:
        if len(pair) != 2 or not all(isinstance(w, str) and w for w in pair):
            _refuse("pairs", pair, "must be pairs of two words")


def default(name: str):
    """The default of one setting (for the estimators' keyword defaults)."""
    return getattr(DEFAULTS, name)


def settings_from_dict(data: dict, path=None) -> AnalysisSettings:
    """The settings an analysis.json records, as AnalysisSettings (checked
    like any others); a mistake names ``path``."""
    if not isinstance(data, dict):
        raise InputError("settings: expected a mapping of setting -> value", path)
    unknown = sorted(set(data) - set(setting_names()))
    if unknown:
        raise InputError(f"settings: unknown setting {unknown[0]!r}", path)
    try:
        return AnalysisSettings(**data)
    except InputError as error:
        raise InputError(str(error), path) from None
    except (TypeError, ValueError):
        raise InputError("settings: a value of the wrong kind", path) from None


def setting_names() -> list[str]:
    return [f.name for f in fields(AnalysisSettings)]


# Last: the checks above must exist before the defaults are checked.
DEFAULTS = AnalysisSettings()
