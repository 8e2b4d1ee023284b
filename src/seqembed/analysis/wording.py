"""The words and numbers of results, shared by every text rendering.

A ``Section`` is a titled table with a plain sentence; ``sections_markdown``
writes a list of them as Markdown, the CLI draws them with rich and the HTML
report as tables, so the wording lives in one place. ``number`` and
``p_text`` format figures the same way everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Section:
    title: str
    text: str = ""
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


def number(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.2e}"
    return f"{value:.{digits}f}"


def p_text(value) -> str:
    if value is None:
        return "-"
    return "< 1e-300" if value == 0 else f"{value:.3g}"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 word``, ``2 words``, ``1,000 words`` (``many`` for irregular ones)."""
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def drop_empty_columns(section: Section) -> Section:
    """Leave out the columns nothing was measured in (every cell "-" or
    empty), e.g. "before training" for a run without initial vectors."""
    if not section.rows or not section.columns:
        return section
    keep = [
        i
        for i in range(len(section.columns))
        if any(str(row[i]) not in ("-", "") for row in section.rows)
    ]
    return Section(
        section.title,
        section.text,
        [section.columns[i] for i in keep],
        [[row[i] for i in keep] for row in section.rows],
    )


SIDE_NAMES = {"src": "source (encoder input)", "tgt": "target (decoder input)"}


def sections_markdown(title: str, source: str, parts: list[Section]) -> str:
    lines = [f"# {title}", "", source, ""]
    for section in parts:
        lines += [f"## {section.title}", ""]
        if section.text:
            lines += [section.text, ""]
        if section.columns:
            lines.append("| " + " | ".join(section.columns) + " |")
            lines.append("|" + "---|" * len(section.columns))
            for row in section.rows:
                cells = [str(c).replace("|", "\\|").replace("\n", " ") for c in row]
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
    return "\n".join(lines)
