"""Analyse a run's embeddings: typed findings, each beside its chance level.

::

    result = seqembed.analyze(run, groups="builtin")
    for finding in result.findings_above_chance():
        print(finding.subject, finding.value, finding.chance, finding.p_adjusted)
    result.to_json("analysis.json")          # the schema of docs/analysis-json.md

The work is ``seqembed.analysis.run.analyze_run``; this module chooses its
settings from keyword arguments and reads its JSON result as typed data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqembed.analysis.run import (
    DESIGN_GROUPS,
    analyze_run,
    builtin_groups,
    parse_pair,
    read_groups,
)
from seqembed.analysis.settings import AnalysisSettings, setting_names
from seqembed.api.progress import Progress, ProgressCallback, report
from seqembed.api.runs import Run
from seqembed.errors import InputError
from seqembed.files import atomic_write

SIDE_CHOICES = {"src": ("src",), "tgt": ("tgt",), "both": ("src", "tgt")}
PARTS = ("src", "tgt", "alignment", "contextual", "movement")


@dataclass(frozen=True)
class Finding:
    """One test of the analysis: a figure, its chance level, the verdict.

    ``side`` is "src" or "tgt" (one table's tests) or "alignment" (the
    cross-lingual map). ``p_adjusted`` is corrected together with the other
    tests of its side (Holm unless ``correction="bh"``); ``above_chance`` is
    decided by ``verdict_p``: ``p_adjusted``, except for a top pair that
    passes its own test, which must then also beat random tables shaped like
    this one (``shaped_p_value``; ``verdict_chance`` is then the typical best
    pair of such a table, ``shaped_best``). ``verdict_null`` names the null
    that decided.
    """

    side: str
    figure: str  # similar_pairs, groups, cooccurrence, chosen_pairs, ...
    subject: str  # e.g. "top pair #1 你-您", "group weather within-group cosine"
    value: float
    chance: float
    p_value: float
    p_adjusted: float
    above_chance: bool
    shaped_chance: float | None = None
    shaped_p_value: float | None = None
    shaped_best: float | None = None
    verdict_chance: float = float("nan")
    verdict_p: float = float("nan")
    verdict_null: str = ""

    @property
    def verdict(self) -> str:
        return "above chance" if self.above_chance else "not above chance"


class AnalysisResult:
    """The analysis of one run: ``findings`` (typed) and ``data`` (the JSON
    result, ``docs/analysis-json.md``), with the run it came from."""

    def __init__(self, data: dict):
        self.data = data
        self.findings: list[Finding] = _findings(data)

    def __repr__(self) -> str:
        return f"<seqembed.AnalysisResult {self.data['run']}: {self.summary()}>"

    def summary(self) -> str:
        """``src: 6 of 23 tests above chance; tgt: 1 of 15 ...``."""
        parts = []
        for side in dict.fromkeys(f.side for f in self.findings):
            tests = [f for f in self.findings if f.side == side]
            above = sum(f.above_chance for f in tests)
            parts.append(f"{side}: {above} of {len(tests)} tests above chance")
        return "; ".join(parts) or "no tests"

    def findings_above_chance(self, side: str | None = None) -> list[Finding]:
        """The findings above chance (of one side, if given), in report order."""
        return [
            f
            for f in self.findings
            if f.above_chance and (side is None or f.side == side)
        ]

    def side(self, name: str) -> dict:
        """One side's part of ``data`` (similar pairs, groups, statistics...)."""
        if name not in self.data["sides"]:
            sides = ", ".join(self.data["sides"]) or "none"
            raise KeyError(f"no {name!r} side in this analysis (sides: {sides})")
        return self.data["sides"][name]

    def to_json(self, path: str | Path) -> Path:
        """Write ``data`` as ``analysis.json`` is written (no NaN), atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.data, ensure_ascii=False, indent=1, allow_nan=False)
        atomic_write(path, lambda out: out.write(text.encode("utf-8")))
        return path

    def save(self, folder: str | Path) -> tuple[Path, Path]:
        """``folder/analysis.json`` and ``folder/analysis.md``, as ``seqembed
        analyze`` writes them (the report and ``plot --color chance`` read
        ``RUN/analysis/analysis.json``)."""
        from seqembed.analysis.run import write_analysis

        return write_analysis(self.data, Path(folder))

    def to_markdown(self) -> str:
        """Every table of the analysis as Markdown (``analysis.md``)."""
        from seqembed.analysis.text import to_markdown

        return to_markdown(self.data)

    @classmethod
    def from_json(cls, path: str | Path) -> AnalysisResult:
        """Read an ``analysis.json`` back."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError("file not found", path) from None
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise InputError("not an analysis JSON file", path) from None
        if not isinstance(data, dict) or data.get("format") != "seqembed-analysis":
            raise InputError("not a seqembed analysis (analysis.json)", path)
        return cls(data)


def analyze(
    run: Run | str | Path,
    groups: str | Path | dict[str, list[str]] | None = None,
    pairs: list[tuple[str, str] | str] | None = None,
    side: str = "both",
    min_freq: int = 1,
    words: list[str] | None = None,
    progress: ProgressCallback | None = None,
    settings: AnalysisSettings | None = None,
    **options: Any,
) -> AnalysisResult:
    """Analyse a run's embeddings, every figure beside its chance level.

    ``run``: a ``Run`` or a run folder / checkpoint. ``groups``: topic
    groups, a ``{name: [words]}`` dict, a YAML file, ``"builtin"`` (the
    built-in corpus' topics) or ``"design"`` (the design document's four).
    ``pairs``: word pairs to report, ``("猫", "狗")`` or ``"猫-狗"``.
    ``side``: "src", "tgt" or "both". ``words``: analyse only these words
    (else every word seen ``min_freq`` times). ``options``: the other
    ``AnalysisSettings`` (``top_n``, ``alpha``, ``correction``,
    ``shaped_null_repeats``, ``alignment``, ``contextual``, ``movement``,
    ``random_state``, ...). ``progress`` hears each part as it starts.
    ``settings``: a whole ``AnalysisSettings`` instead of the keywords (what
    ``seqembed analyze`` builds from its flags).
    """
    if settings is None:
        settings = _keyword_settings(side, groups, pairs, min_freq, words, options)
    elif options or groups or pairs or words:
        raise InputError("analyze: give settings= or keyword options, not both")
    checkpoint = run.checkpoint if isinstance(run, Run) else Path(run)
    parts = [p for p in PARTS if p in settings.sides or getattr(settings, p, False)]

    def tell(part: str) -> None:
        done = parts.index(part) if part in parts else 0
        report(progress, Progress("analysis", done, len(parts), f"analysing {part}"))

    return AnalysisResult(analyze_run(checkpoint, settings, tell))


def _keyword_settings(
    side, groups, pairs, min_freq, words, options
) -> AnalysisSettings:
    """``analyze``'s keyword arguments as AnalysisSettings, each checked."""
    if side not in SIDE_CHOICES:
        raise InputError(f"side must be src, tgt or both, not {side!r}")
    known = set(setting_names())
    for name in options:
        if name not in known or name in ("sides", "groups", "pairs", "words"):
            raise InputError(
                f"analyze: unknown option {name!r} "
                f"(known: {', '.join(sorted(known - {'sides'}))})"
            )
    return AnalysisSettings(
        sides=SIDE_CHOICES[side],
        min_freq=min_freq,
        words=tuple(words) if words else None,
        groups=resolve_groups(groups),
        pairs=tuple(p if isinstance(p, tuple) else parse_pair(p) for p in pairs or ()),
        **options,
    )


def resolve_groups(
    groups: str | Path | dict[str, list[str]] | None,
) -> dict[str, list[str]]:
    """Topic groups from a dict, a YAML file, "builtin" or "design"."""
    if groups is None:
        return {}
    if isinstance(groups, dict):
        return {str(name): list(members) for name, members in groups.items()}
    if str(groups) == "builtin":
        return builtin_groups()
    if str(groups) == "design":
        return dict(DESIGN_GROUPS)
    return read_groups(Path(groups))


def _findings(data: dict) -> list[Finding]:
    findings = []
    for name, side in data["sides"].items():
        for test in side["findings"]["tests"]:
            findings.append(Finding(side=name, **test))
    for row in (data.get("alignment") or {}).get("findings", []):
        findings.append(
            Finding(
                side="alignment",
                figure="alignment",
                subject=f"cross-lingual P@1, {row['space']}",
                value=row["value"],
                chance=row["chance"],
                p_value=row["p_value"],
                p_adjusted=row["p_adjusted"],
                above_chance=row["above_chance"],
                verdict_chance=row["chance"],
                verdict_p=row["p_adjusted"],
                verdict_null="random retrieval, and the shuffled lexicon",
            )
        )
    return findings
