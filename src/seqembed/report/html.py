"""The report's HTML: one file from ``report.build_report``'s content.

The page is a small template (resources/report.html: markup and CSS) with
the values filled in escaped, the data for the figures as one JSON block, and
the scripts inline: plotly.js and resources/report.js, which draws the
figures from that block. Chinese text is drawn with a subset of the bundled
Noto Sans SC embedded as a data URI (fonts.font_face_css), so the page needs
no font on the viewer's machine.
"""

from __future__ import annotations

import html
import json
import logging
import re
from importlib import resources

from seqembed import __version__
from seqembed.analysis.wording import Section

SIDE_LABELS = {"src": "source (Chinese)", "tgt": "target (English)"}


def render_html(content: dict) -> str:
    from plotly.offline import get_plotlyjs

    from seqembed.report.fonts import font_face_css, html_font_stack

    body = _body(content)
    data = script_json(
        {
            "curve": content["curve"],
            "attention": content["attention"],
            "map": content["map"],
        }
    )
    # The embedded font holds only the glyphs this page uses.
    used = {c for c in body + data if ord(c) > 0x7F}
    parts = {
        "title": html.escape(content["title"]),
        "font_face": _quietly(font_face_css, "".join(sorted(used))),
        "font_stack": html_font_stack(),
        "body": body,
        "data": data,
        "plotly_js": _inline_script(get_plotlyjs()),
        "script": _inline_script(_resource("report.js")),
    }
    # One pass, so nothing substituted (plotly.js) is searched for markers.
    return re.sub(
        r"\{\{(\w+)\}\}", lambda m: parts[m.group(1)], _resource("report.html")
    )


def _quietly(function, *args):
    """Call with fontTools' logging at WARNING: its subsetter reports every
    table it prunes at INFO, which the CLI would show."""
    logger = logging.getLogger("fontTools")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        return function(*args)
    finally:
        logger.setLevel(level)


def script_json(value) -> str:
    """JSON for a <script type="application/json"> block: with every "<" as
    \\u003c (still the same JSON), no word can close the block ("</script>")
    or open a comment."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False).replace(
        "<", "\\u003c"
    )


def _inline_script(code: str) -> str:
    if "</script" in code.lower():
        raise ValueError("script would end its own <script> element")
    return code


def _resource(name: str) -> str:
    return (resources.files("seqembed") / "resources" / name).read_text("utf-8")


def _e(value) -> str:
    return html.escape(str(value))


FOLD_ROWS = 12  # a table with more rows than this starts folded


def _table(columns: list[str], rows: list[list], css: str = "") -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    return (
        f'<table class="{css}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def _cell(value) -> str:
    text = str(value)
    if text in ("above chance", "not above chance"):
        css = "above" if text == "above chance" else "below"
        return f'<td class="{css}">{_e(text)}</td>'
    return f"<td>{_e(text)}</td>"


def _folded(table: str, n_rows: int) -> str:
    """A long table inside a closed <details>: the page stays readable."""
    if n_rows <= FOLD_ROWS:
        return table
    return (
        f'<details class="fold"><summary>show all {n_rows} rows</summary>'
        f"{table}</details>"
    )


def anchor(text: str, taken: set[str]) -> str:
    """An id for a heading: its words in lowercase joined by "-" (other
    scripts kept), unique on the page."""
    words = re.findall(r"\w+", text.lower())
    base = "-".join(words) or "section"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def _section_html(section: Section, taken: set[str]) -> tuple[str, str]:
    """(the section's HTML, its id)."""
    name = anchor(section.title, taken)
    parts = [f'<h3 id="{_e(name)}">{_e(section.title)}</h3>']
    if section.text:
        parts.append(f"<p>{_e(section.text)}</p>")
    if section.columns:
        table = _table(section.columns, section.rows)
        parts.append(_folded(table, len(section.rows)))
    return "\n".join(parts), name


def _contents(entries: list[tuple[str, str, list[tuple[str, str]]]]) -> str:
    """A table of contents: (id, title, [(id, title) of subsections])."""
    items = []
    for name, title, subsections in entries:
        inner = "".join(
            f'<li><a href="#{_e(sub)}">{_e(text)}</a></li>' for sub, text in subsections
        )
        items.append(
            f'<li><a href="#{_e(name)}">{_e(title)}</a>'
            + (f"<ol>{inner}</ol>" if inner else "")
            + "</li>"
        )
    return (
        '<nav id="contents" aria-label="contents"><h2>Contents</h2>'
        f"<ol>{''.join(items)}</ol></nav>"
    )


def _analysis_html(content: dict, taken: set[str]):
    """The analysis and stability sections, and their contents entries."""
    entries, parts = [], []
    blocks = [("analysis", "What the embeddings learned", content["analysis"])]
    if content["stability"]:
        blocks.append(("stability", "Stability across seeds", content["stability"]))
    for name, title, sections in blocks:
        rendered = [_section_html(s, taken) for s in sections]
        intro = ""
        if name == "analysis":
            source = content.get("analysis_from")
            intro = (
                "<p>Each figure beside its chance level"
                + (f"; the analysis is {_e(source)}" if source else "")
                + ".</p>"
            )
        parts.append(
            f'<section id="{name}"><h2>{title}</h2>{intro}'
            + "\n".join(html for html, _ in rendered)
            + "</section>"
        )
        subsections = [(sub, s.title) for (_, sub), s in zip(rendered, sections)]
        entries.append((name, title, subsections))
    return parts, entries


def _body(content: dict) -> str:
    taken = {"contents", "summary", "training", "samples", "embedding-map"}
    taken |= {"analysis", "stability", "curve", "map", "word-info", "map-caption"}
    summary = [*content["summary"], ["scores", content["scores"]]]
    analysis_parts, analysis_entries = _analysis_html(content, taken)
    entries = [
        ("summary", "Summary", []),
        ("training", "Training curve", []),
        ("samples", "Sample translations", []),
        *([("embedding-map", "Embedding map", [])] if content["map"] else []),
        *analysis_entries,
    ]
    parts = [
        f"<h1>{_e(content['title'])}</h1>",
        f'<p class="meta">Run {_e(content["run"])}; written by seqembed '
        f"{_e(__version__)}.</p>",
        f'<p id="checkpoint" class="checkpoint">{_e(content["checkpoint_line"])}</p>',
        _contents(entries),
        '<section id="summary"><h2>Summary</h2>',
        _table(["", ""], summary, "summary"),
        "<details><summary>configuration</summary><pre>"
        f"{_e(content['config_yaml'])}</pre></details></section>",
        '<section id="training"><h2>Training curve</h2>',
        '<div id="curve" class="plot"></div>'
        if content["curve"]
        else "<p>No metrics.jsonl: no training curve.</p>",
        "</section>",
        '<section id="samples"><h2>Sample translations</h2>',
        _table(["split", "source", "translation", "reference"], content["samples"]),
        _attention_html(content["attention"], content["samples"]),
        "</section>",
        _map_html(content["map"]),
        *analysis_parts,
    ]
    return "\n".join(parts)


def _attention_html(figures: list[dict], samples: list[list]) -> str:
    if not figures:
        return "<p>The model has no attention: no attention maps.</p>"
    plots = "".join(
        f'<figure><div id="attention-{i}" class="plot attention"></div>'
        f"<figcaption>{_e(row[1])}</figcaption></figure>"
        for i, row in enumerate(samples[: len(figures)])
    )
    return (
        "<h3>Attention</h3><p>Where the decoder looked at each output step "
        "(greedy translation; each row sums to 1 over the source tokens).</p>"
        f'<div class="attention-grid">{plots}</div>'
    )


def _map_html(sides: dict) -> str:
    if not sides:
        return ""
    radios = "".join(
        f'<label><input type="radio" name="side" value="{_e(side)}"'
        f"{' checked' if i == 0 else ''}> {_e(SIDE_LABELS.get(side, side))}</label>"
        for i, side in enumerate(sides)
    )
    return f"""<section id="embedding-map"><h2>Embedding map</h2>
<p id="map-caption" class="caption"></p>
<div class="controls">
<fieldset id="side-switch"{"" if len(sides) > 1 else " hidden"}>{radios}</fieldset>
<form id="search-form" role="search"><input id="search" type="search"
 list="search-words" placeholder="find a word" autocomplete="off"
 aria-label="find a word"><button type="submit">Find</button></form>
<datalist id="search-words"></datalist><span id="search-status" role="status"></span>
</div>
<div class="map-wrap"><div id="map" class="plot"></div>
<aside id="word-info"><p>Hover over a point, or find a word, to see its nearest
neighbours.</p></aside></div></section>"""
