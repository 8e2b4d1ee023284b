"""A font that draws Chinese, found on any machine, registered at first use.

matplotlib's default font (DejaVu Sans) has no Chinese glyphs: labels come
out as empty boxes ("tofu") with a "Glyph ... missing from font" warning, and
the usual fix (``rcParams["font.sans-serif"] = ["Arial Unicode MS"]``) works
only on the machine it was written on. ``cjk_font()`` picks, in order:

1. the font file in ``$SEQEMBED_CJK_FONT``, when set;
2. an installed system font that has glyphs for common Chinese characters,
   well-known families first (Noto Sans CJK SC, PingFang SC, Microsoft YaHei,
   ...), then any other installed font that covers them;
3. Noto Sans SC (SIL Open Font License 1.1) from the ``pylopdf-fonts-zh-cn``
   dependency, so a fresh Linux, macOS or Windows install still has one.

Nothing happens at import: the first call registers the chosen file with
matplotlib's font manager (``fontManager.addfont``) and caches the choice.
``cjk_rc()`` is an ``rc_context`` that puts the font first, with DejaVu Sans
behind it for the few symbols a CJK font lacks (matplotlib >= 3.6 falls back
glyph by glyph); figures are built and saved inside it, so no global
``rcParams`` change outlives a call.

HTML pages cannot rely on the viewer's fonts either. ``font_face_css(text)``
returns an ``@font-face`` rule with the bundled Noto Sans SC cut down to the
characters of ``text`` (a few kB to a few hundred kB, inlined as base64).
It always embeds the bundled font, never a system one: the OFL allows
redistributing Noto Sans SC inside a document; a system font's licence
may not.
"""

from __future__ import annotations

import base64
import functools
import io
import logging
import os
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from seqembed.errors import InputError

log = logging.getLogger(__name__)

FONT_ENV = "SEQEMBED_CJK_FONT"
HTML_FAMILY = "seqembed-cjk"
# A font that draws these draws ordinary Simplified Chinese text.
PROBE = "今天天气人工智能我爱自然语言处理的了是"
# Families that cover Simplified Chinese, in the order we would like them.
PREFERRED = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "PingFang SC",
    "Hiragino Sans GB",
    "Heiti SC",
    "STHeiti",
    "Microsoft YaHei",
    "DengXian",
    "SimHei",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
    "Noto Serif CJK SC",
    "Source Han Serif SC",
    "Songti SC",
    "SimSun",
    "AR PL UMing CN",
    "Arial Unicode MS",
)
LATIN_FALLBACK = "DejaVu Sans"  # matplotlib's own font: always there


@dataclass(frozen=True)
class FontChoice:
    family: str  # the name matplotlib knows it by
    path: Path
    source: str  # "environment", "system" or "bundled"


def bundled_font_path() -> Path:
    """Noto Sans SC as installed by the ``pylopdf-fonts-zh-cn`` package."""
    try:
        from pylopdf_fonts_zh_cn import sans_path
    except ImportError:  # a broken install: say which package is missing
        raise InputError(
            "no Chinese font: install a CJK font or the pylopdf-fonts-zh-cn "
            "package (pip install pylopdf-fonts-zh-cn)"
        ) from None
    return Path(sans_path())


def covers(path: Path, text: str, face_index: int = 0) -> bool:
    """Does the font file have its own glyph for every character of ``text``?

    A glyph of its own: "last resort" fonts (matplotlib ships one) map whole
    Unicode blocks to one placeholder glyph, which is tofu by another name.
    """
    from matplotlib.ft2font import FT2Font

    try:
        font = FT2Font(str(path), face_index=face_index)
    except (OSError, RuntimeError, ValueError):  # unreadable or unsupported
        return False
    characters = {c for c in text if not c.isspace()}
    glyphs = {font.get_char_index(ord(c)) for c in characters}
    return 0 not in glyphs and len(glyphs) == len(characters)


def system_cjk_font() -> FontChoice | None:
    """An installed font that draws Chinese: a preferred family if there is
    one (its regular weight first), else any font covering ``PROBE``, by name
    for a stable choice."""
    from matplotlib import font_manager

    def weight(entry) -> int:  # 400 is regular; names like "bold" to numbers
        if isinstance(entry.weight, int):
            return entry.weight
        return font_manager.weight_dict.get(entry.weight, 400)

    fonts = [f for f in font_manager.fontManager.ttflist if f.style == "normal"]
    rank = {name: i for i, name in enumerate(PREFERRED)}
    preferred = sorted(
        (f for f in fonts if f.name in rank),
        key=lambda f: (rank[f.name], abs(weight(f) - 400), f.fname),
    )
    others = sorted((f for f in fonts if f.name not in rank), key=lambda f: f.name)
    for entry in [*preferred, *others]:
        if covers(Path(entry.fname), PROBE, entry.index):
            return FontChoice(entry.name, Path(entry.fname), "system")
    return None


@functools.lru_cache(maxsize=1)
def cjk_font() -> FontChoice:
    """The font for Chinese labels, registered with matplotlib (once)."""
    from matplotlib import font_manager

    configured = os.environ.get(FONT_ENV)
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise InputError(f"${FONT_ENV}: no such font file", path)
        if not covers(path, PROBE):
            raise InputError(f"${FONT_ENV}: this font has no Chinese glyphs", path)
        choice = FontChoice(_family_of(path), path, "environment")
    else:
        choice = system_cjk_font()
        if choice is None:
            path = bundled_font_path()
            choice = FontChoice(_family_of(path), path, "bundled")
    if choice.source != "system":
        font_manager.fontManager.addfont(str(choice.path))
    log.debug(
        "Chinese labels in %s (%s, %s)", choice.family, choice.source, choice.path
    )
    return choice


def _family_of(path: Path) -> str:
    from matplotlib.ft2font import FT2Font

    return FT2Font(str(path)).family_name


def font_families() -> list[str]:
    """``font.family`` for matplotlib: the CJK font, then DejaVu Sans."""
    return [cjk_font().family, LATIN_FALLBACK]


def cjk_rc() -> AbstractContextManager:
    """An ``rc_context`` in which text is drawn in the CJK font; build and
    save figures inside it (tick labels are made at draw time)."""
    import matplotlib

    return matplotlib.rc_context(
        {
            "font.family": font_families(),
            "svg.fonttype": "path",  # an SVG viewer need not have the font
            # Type 3 (glyph outlines as PDF procedures), matplotlib's default:
            # Type 42 would declare Noto Sans SC's CFF outlines as TrueType.
            "pdf.fonttype": 3,
            "axes.unicode_minus": False,  # CJK fonts often lack U+2212
        }
    )


# ------------------------------------------------------------------ HTML


def font_face_css(text: str, family: str = HTML_FAMILY) -> str:
    """An ``@font-face`` rule for ``family`` holding the bundled Noto Sans
    SC's glyphs for the characters of ``text`` (WOFF, base64 inline)."""
    data = _subset_woff(bundled_font_path(), "".join(sorted(set(text))))
    encoded = base64.b64encode(data).decode("ascii")
    return (
        f"@font-face {{ font-family: '{family}'; "
        f"src: url(data:font/woff;base64,{encoded}) format('woff'); }}"
    )


def html_font_stack(family: str = HTML_FAMILY) -> str:
    """A CSS ``font-family`` value: the embedded subset, then system fonts."""
    return (
        f"'{family}', 'Noto Sans SC', 'Noto Sans CJK SC', 'PingFang SC', "
        "'Microsoft YaHei', sans-serif"
    )


@functools.lru_cache(maxsize=8)
def _subset_woff(path: Path, characters: str) -> bytes:
    from fontTools import subset

    with _quiet("fontTools"):  # it logs every table it touches, at INFO
        return _subset(subset, path, characters)


@contextmanager
def _quiet(name: str):
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _subset(subset, path: Path, characters: str) -> bytes:
    options = subset.Options()
    options.flavor = "woff"  # zlib: no brotli needed, as woff2 would be
    options.layout_features = ["*"]
    options.name_IDs = ["*"]  # keep the copyright and licence records (OFL)
    options.notdef_outline = True
    # Latin letters and digits too: English words share the labels.
    latin = "".join(chr(c) for c in range(0x20, 0x7F))
    with subset.load_font(str(path), options) as font:
        subsetter = subset.Subsetter(options)
        subsetter.populate(text=characters + latin)
        subsetter.subset(font)
        buffer = io.BytesIO()
        subset.save_font(font, buffer, options)
    return buffer.getvalue()
