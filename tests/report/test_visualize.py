"""Pictures: the CJK font, projections, the embedding map, attention heatmaps
and movement, rendered for real on the session's trained runs."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers import seqembed

from seqembed.analysis.run import DESIGN_GROUPS
from seqembed.data.vocab import SPECIALS
from seqembed.errors import InputError
from seqembed.nmt.checkpoint import load_checkpoint, load_tables
from seqembed.nmt.evaluation import Translator
from seqembed.report import fonts
from seqembed.report.embedding_map import embedding_map, label_mask, word_verdicts
from seqembed.report.figures import new_figure, save_figure, standalone_html
from seqembed.report.heatmap import attention_figure
from seqembed.report.map_drawing import map_figure, map_html
from seqembed.report.movement_plot import (
    movement_figure,
    movement_frames,
    movement_plotly,
    panel_indices,
    spread,
    write_gif,
)
from seqembed.report.projection import Projection, effective_perplexity
from seqembed.vectors.table import EmbeddingTable

LABEL = "今天 天气 人工 智能"


@pytest.fixture
def fresh_font_choice(monkeypatch):
    """Forget the cached font choice before and after a test."""
    monkeypatch.delenv(fonts.FONT_ENV, raising=False)
    fonts.cjk_font.cache_clear()
    yield
    fonts.cjk_font.cache_clear()


# ------------------------------------------------------------------ fonts


def _render(text: str, families: list[str] | None = None) -> np.ndarray:
    """``text`` drawn large on a blank figure, in the CJK font (or in
    ``families``): the pixels that carry ink, cropped (True = ink)."""
    import matplotlib

    rc = (
        fonts.cjk_rc()
        if families is None
        else matplotlib.rc_context({"font.family": families})
    )
    with rc:
        figure = new_figure(3, 1.5)
        figure.text(0.1, 0.3, text, fontsize=40)
        figure.canvas.draw()
    pixels = np.asarray(figure.canvas.buffer_rgba())[..., :3].min(axis=2) < 128
    rows, columns = np.flatnonzero(pixels.any(1)), np.flatnonzero(pixels.any(0))
    assert len(rows), f"nothing drawn for {text!r}"
    return pixels[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool((a == b).all())


def test_chinese_labels_render_without_missing_glyph_warnings(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with fonts.cjk_rc():
            figure = new_figure(4, 2)
            ax = figure.add_subplot()
            ax.text(0.1, 0.5, LABEL)
            ax.set_title(LABEL)
            ax.set_xticks([0.2, 0.8], ["今天", "智能"])
        for suffix in ("png", "svg", "pdf"):
            assert save_figure(figure, tmp_path / f"label.{suffix}").stat().st_size


def test_the_default_font_would_warn_so_the_check_above_can_fail():
    with pytest.warns(UserWarning, match="missing from font"):
        _render("今天", ["DejaVu Sans"])


def test_chinese_glyphs_are_drawn_not_the_empty_box():
    """Each character has its own shape; tofu is one box for all of them."""
    dejavu = ["DejaVu Sans"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the missing-glyph warnings, on purpose
        tofu = [_render(c, dejavu) for c in "今天"]
        # A code point no font has: what the chosen font draws for "missing".
        notdef = _render("\u0378")
    assert _same(tofu[0], tofu[1])  # the control: without the font, all boxes
    drawn = {c: _render(c) for c in "今天气人工智能"}
    for c, pixels in drawn.items():
        assert not _same(pixels, tofu[0]), c
        assert not _same(pixels, notdef), c
    assert len({p.tobytes() + bytes(p.shape) for p in drawn.values()}) == len(drawn)


def test_the_chosen_font_covers_chinese_and_is_registered(fresh_font_choice):
    from matplotlib import font_manager

    choice = fonts.cjk_font()
    assert choice.path.is_file()
    assert fonts.covers(choice.path, fonts.PROBE + LABEL)
    assert choice.family in {f.name for f in font_manager.fontManager.ttflist}
    assert fonts.font_families()[0] == choice.family


def test_bundled_noto_sans_sc_and_its_licence_are_installed():
    path = fonts.bundled_font_path()
    assert path.name == "NotoSansSC-Regular.otf" and path.is_file()
    assert fonts.covers(path, fonts.PROBE + LABEL)
    from importlib.metadata import distribution

    licence = [
        f for f in distribution("pylopdf-fonts-zh-cn").files if "LICENSE" in f.name
    ]
    text = licence[0].locate().read_text(encoding="utf-8")
    assert "SIL Open Font License" in text and "Version 1.1" in text


def test_last_resort_and_latin_fonts_do_not_count_as_chinese():
    import matplotlib

    data = Path(matplotlib.get_data_path()) / "fonts/ttf"
    assert not fonts.covers(data / "LastResortHE-Regular.ttf", fonts.PROBE)
    assert not fonts.covers(data / "DejaVuSans.ttf", fonts.PROBE)


def test_font_from_the_environment(monkeypatch, fresh_font_choice):
    bundled = fonts.bundled_font_path()
    monkeypatch.setenv(fonts.FONT_ENV, str(bundled))
    assert fonts.cjk_font().source == "environment"
    fonts.cjk_font.cache_clear()
    monkeypatch.setenv(fonts.FONT_ENV, str(bundled.parent / "missing.otf"))
    with pytest.raises(InputError, match="no such font file"):
        fonts.cjk_font()
    import matplotlib

    dejavu = Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans.ttf"
    monkeypatch.setenv(fonts.FONT_ENV, str(dejavu))
    with pytest.raises(InputError, match="no Chinese glyphs"):
        fonts.cjk_font()


def test_a_system_font_that_draws_chinese_is_preferred(monkeypatch, fresh_font_choice):
    from matplotlib import font_manager

    # Install the bundled file as if it were a system font.
    manager = font_manager.FontManager()
    manager.addfont(str(fonts.bundled_font_path()))
    monkeypatch.setattr(font_manager, "fontManager", manager)
    choice = fonts.cjk_font()
    assert choice.source == "system" and choice.family == "Noto Sans SC"


def test_html_font_subset_holds_the_glyphs_and_is_small():
    from fontTools.ttLib import TTFont

    css = fonts.font_face_css("我爱自然语言处理")
    data = base64.b64decode(re.search(r"base64,([A-Za-z0-9+/=]+)", css).group(1))
    assert len(data) < 200_000  # the whole font is 8 MB
    cmap = TTFont(io.BytesIO(data)).getBestCmap()
    assert all(ord(c) in cmap for c in "我爱自然语言处理A")


@pytest.mark.slow
def test_no_pyplot_and_no_backend_choice_at_import_or_render(seed_run, tmp_path):
    code = (
        "import sys, matplotlib\n"
        "backend = matplotlib.rcParams._get_backend_or_none()\n"
        "import seqembed.report.embedding_map, seqembed.report.heatmap\n"
        "import seqembed.report.map_drawing\n"
        "import seqembed.report.movement_plot, seqembed.cli.visual\n"
        "import seqembed.report.fonts, seqembed.report.projection\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
        "assert matplotlib.rcParams._get_backend_or_none() == backend\n"
        "from seqembed.cli.main import main\n"
        f"assert main(['plot', {str(seed_run)!r}, '--method', 'pca', '--out', "
        f"{str(tmp_path / 'x.png')!r}]) == 0\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------- projection


@pytest.mark.parametrize("n_words", [18, 20, 22])
def test_perplexity_is_capped_for_small_vocabularies(n_words):
    vectors = np.random.default_rng(n_words).normal(size=(n_words, 16))
    projection = Projection("tsne", perplexity=30).fit(vectors)
    assert projection.perplexity_ == effective_perplexity(30, n_words)
    assert projection.perplexity_ <= (n_words - 1) / 3
    assert projection.embedding_.shape == (n_words, 2)
    assert np.isfinite(projection.embedding_).all()


def test_effective_perplexity():
    assert effective_perplexity(30, 22) == 7
    assert effective_perplexity(5, 1000) == 5
    assert effective_perplexity(30, 2) == 1


@pytest.mark.parametrize(
    "method, large_from",
    [pytest.param("tsne", 1000, marks=pytest.mark.slow), ("tsne", 50), ("pca", 1000)],
)
def test_projection_is_reproducible_and_cosine_only(method, large_from):
    """Same random_state, same picture; and rescaling a word's vector (its
    norm, not its direction) does not move it."""
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(120, 16))
    scaled = vectors * rng.uniform(0.5, 3.0, size=(120, 1))

    def project(x):
        return Projection(method, random_state=0, large_from=large_from).fit(x)

    first = project(vectors)
    assert (
        first.method_
        == {
            "pca": "PCA",
            "tsne": "t-SNE (openTSNE)" if large_from < 120 else "t-SNE (scikit-learn)",
        }[method]
    )
    np.testing.assert_array_equal(first.embedding_, project(vectors).embedding_)
    np.testing.assert_allclose(first.embedding_, project(scaled).embedding_, atol=1e-5)


def test_umap_without_the_extra_is_a_clear_error():
    pytest.importorskip("sklearn")
    try:
        import umap  # noqa: F401

        pytest.skip("umap-learn is installed")
    except ImportError:
        pass
    with pytest.raises(InputError, match=r"seqembed\[umap\]"):
        Projection("umap").fit(np.eye(5))


# ---------------------------------------------------------- embedding map


@pytest.fixture(scope="module")
def seed_tables(seed_run):
    return load_tables(load_checkpoint(seed_run))


def test_seed_map_labels_every_word_and_marks_special_tokens(seed_tables, tmp_path):
    m = embedding_map(
        seed_tables, "src", Projection("tsne"), color="group", groups=DESIGN_GROUPS
    )
    words = [w for w in seed_tables["src"].tokens if w != "<PAD>"]
    assert m.words == words and m.xy.shape == (len(words), 2)
    assert m.labelled.all()
    assert [w for w, s in zip(m.words, m.special) if s] == list(SPECIALS[1:])
    assert m.categories[m.words.index("天气")] == "时间天气"
    assert m.categories[m.words.index("世界")] == "other"
    assert "perplexity 6.67" in m.method
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = save_figure(map_figure(m), tmp_path / "map.png")
    assert path.stat().st_size > 10_000


def test_frequency_map_and_label_limit(seed_tables):
    m = embedding_map(
        seed_tables, "tgt", Projection("pca"), color="frequency", n_labels=5,
        include_specials=False,
    )  # fmt: skip
    assert not m.special.any() and m.categories is None
    assert m.labelled.sum() == 5
    top = np.sort(m.freqs)[::-1][:5]
    assert sorted(m.freqs[m.labelled], reverse=True) == list(top)
    map_figure(m)


def test_label_mask_per_side_and_specials_always():
    freqs = np.array([0, 5, 1, 9, 0, 3, 2, 8])
    sides = ["src"] * 4 + ["tgt"] * 4
    special = np.array([True, False, False, False, True, False, False, False])
    labelled = label_mask(freqs, sides, special, n_labels=2)
    assert labelled.tolist() == [True, True, False, True, True, True, False, True]


def _rotated_tables(n_words=40, dim=8, seed=0):
    """A target table that is the source table turned by a fixed rotation."""
    rng = np.random.default_rng(seed)
    src = rng.normal(size=(n_words, dim))
    rotation, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    zh = [f"词{i}" for i in range(n_words)]
    en = [f"word{i}" for i in range(n_words)]
    freqs = [0] * 4 + [5] * n_words
    specials = rng.normal(size=(4, dim))

    def table(tokens, vectors):
        return EmbeddingTable(
            list(SPECIALS) + tokens, np.vstack([specials, vectors]), freqs
        )

    tables = {"src": table(zh, src), "tgt": table(en, src @ rotation)}
    return tables, list(zip(zh, en))


def test_both_sides_map_the_target_back_onto_its_translation():
    tables, lexicon = _rotated_tables()
    m = embedding_map(
        tables, "both", Projection("pca"), lexicon=lexicon, include_specials=False
    )
    assert m.sides.count("src") == m.sides.count("tgt") == 40
    assert len(m.links) == 40
    for i, j in m.links:
        assert (m.words[i], m.words[j]) in lexicon
        # The rotation is recovered: a word and its translation coincide.
        np.testing.assert_allclose(m.xy[i], m.xy[j], atol=1e-4)


def test_both_sides_without_a_lexicon_is_a_clear_error():
    tables, _ = _rotated_tables()
    with pytest.raises(InputError, match="--side src or tgt"):
        embedding_map(tables, "both", Projection("pca"), lexicon=[])


@pytest.mark.slow
def test_both_sides_on_the_seed_run(seed_tables, tmp_path):
    m = embedding_map(seed_tables, "both", Projection("tsne"), color="group",
                      groups=DESIGN_GROUPS)  # fmt: skip
    assert set(m.sides) == {"src", "tgt"} and m.links
    assert ("天气", "weather") in {(m.words[i], m.words[j]) for i, j in m.links}
    # An English word takes the topic group of its dictionary translation.
    assert m.categories[m.words.index("weather")] == "时间天气"
    save_figure(map_figure(m), tmp_path / "both.svg")


def _analysis(above: set[str]):
    """A minimal analysis result: one top pair, one group, one chosen pair."""
    tests = [
        {"figure": "similar_pairs", "above_chance": "top" in above},
        {"figure": "groups", "above_chance": "group" in above},
        {"figure": "chosen_pairs", "above_chance": "chosen" in above},
        {"figure": "outliers", "above_chance": True},
    ]
    return {
        "sides": {
            "src": {
                "similar_pairs": {"pairs": [{"a": "天气", "b": "好"}]},
                "groups": {
                    "groups": [
                        {"words": ["人工", "智能"], "p_value": 0.01},
                        {"words": ["爱"], "p_value": None},  # untested
                    ]
                },
                "chosen_pairs": [
                    {"a": "我", "b": "爱", "cosine": 0.2},
                    {"a": "我", "b": "某", "cosine": None},
                ],
                "findings": {"tests": tests},
            }
        }
    }


def test_word_verdicts_follow_the_findings():
    verdicts = word_verdicts(_analysis({"group", "chosen"}), "src")
    assert verdicts == {
        "天气": "not above chance",
        "好": "not above chance",
        "人工": "above chance",
        "智能": "above chance",
        "我": "above chance",
        "爱": "above chance",
    }
    with pytest.raises(InputError, match="no tgt side"):
        word_verdicts(_analysis(set()), "tgt")


def test_colour_by_chance(seed_tables):
    m = embedding_map(
        seed_tables, "src", Projection("pca"), color="chance",
        analysis=_analysis({"top"}),
    )  # fmt: skip
    category = dict(zip(m.words, m.categories))
    assert category["天气"] == "above chance"
    assert category["人工"] == "not above chance"
    assert category["世界"] == "not tested"
    assert category["<EOS>"] == "special token"
    with pytest.raises(InputError, match="seqembed analyze"):
        embedding_map(seed_tables, "src", Projection("pca"), color="chance")


def test_html_map_works_offline(seed_tables):
    m = embedding_map(seed_tables, "src", Projection("pca"), color="group",
                      groups=DESIGN_GROUPS)  # fmt: skip
    html = map_html(m)
    assert "@font-face" in html and "data:font/woff;base64," in html
    assert not re.search(r"<script[^>]+src=", html)  # plotly.js is inline
    for text in ("天气", "时间天气"):  # plotly writes them as JSON \u escapes
        assert text in html or json.dumps(text)[1:-1] in html


# -------------------------------------------------------------- attention


@pytest.mark.slow
def test_attention_heatmap_for_a_model_with_attention(builtin_run, tmp_path):
    attention = Translator.from_checkpoint(builtin_run).attention("我爱自然语言处理")
    assert attention.src_tokens == ["我", "爱", "自然", "语言", "处理"]
    assert attention.tgt_tokens[-1] == "<EOS>"
    assert attention.weights.shape == (len(attention.tgt_tokens), 5)
    np.testing.assert_allclose(attention.weights.sum(axis=1), 1.0, atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = save_figure(attention_figure(attention), tmp_path / "attention.png")
    assert path.stat().st_size > 5_000


@pytest.mark.slow
def test_attention_marks_unknown_source_words(builtin_run):
    attention = Translator.from_checkpoint(builtin_run).attention("我爱鳄鱼")
    assert attention.src_known[:2] == [True, True] and not attention.src_known[-1]
    attention_figure(attention)


def test_attention_of_a_model_without_attention_is_a_clear_error(seed_run):
    translator = Translator.from_checkpoint(seed_run)
    with pytest.raises(InputError, match="no attention"):
        translator.attention("我 爱 自然 语言 处理")


# --------------------------------------------------------------- movement


@pytest.mark.slow
def test_movement_frames_and_pictures(seed_run, tmp_path):
    state = load_checkpoint(seed_run)
    frames = movement_frames(seed_run, state["src_vocab"], "src")
    n_epochs = len(list((seed_run / "embeddings").glob("epoch-*.pt")))
    assert frames.xy.shape == (n_epochs, len(frames.words), 2)
    assert frames.epochs.tolist() == sorted(frames.epochs.tolist())
    assert not set(frames.words) & set(SPECIALS)
    assert np.isnan(frames.step_mean[0]) and frames.from_initial_mean[0] == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        save_figure(movement_figure(frames, n_panels=4), tmp_path / "m.png")
    from PIL import Image

    per_epoch = ("epochs", "xy", "step_mean", "from_initial_mean")
    few = replace(frames, **{name: getattr(frames, name)[:5] for name in per_epoch})
    with Image.open(write_gif(few, tmp_path / "m.gif", max_frames=3)) as gif:
        assert gif.n_frames == 3
    animation = movement_plotly(frames, max_frames=4)
    assert [f.name for f in animation.frames] == ["0", "17", "33", "50"]
    assert "@font-face" in standalone_html(animation)


def test_panels_and_frames_include_the_first_and_last_snapshot():
    assert spread(5, 3) == [0, 2, 4] and spread(1, 3) == [0]
    assert panel_indices(51, 9) == [0, 6, 12, 19, 25, 31, 38, 44, 50]
    assert panel_indices(3, 9) == [0, 1, 2]
    assert panel_indices(100, 40)[-1] == 99 and len(panel_indices(100, 40)) == 12


# ------------------------------------------------------- labels that help


@pytest.fixture(scope="module")
def builtin_tables(builtin_run):
    return load_tables(load_checkpoint(builtin_run))


def visible_labels(figure) -> list:
    ax = figure.axes[0]
    return [t for t in ax.texts if t.get_visible()]


def test_group_members_are_labelled_first_then_content_words(builtin_tables):
    from seqembed.analysis.words import is_content_word

    groups = {"weather": ["天气", "下雨"], "food": ["吃", "水果", "晚饭"]}
    members = {w for words in groups.values() for w in words}
    m = embedding_map(
        builtin_tables, "src", Projection("pca"), color="group", groups=groups,
        include_specials=False,
    )  # fmt: skip
    labelled = [w for w, shown in zip(m.words, m.labelled) if shown]
    assert members <= set(labelled) and len(labelled) == 40
    others = [w for w in labelled if w not in members]
    assert all(is_content_word(w) for w in others)  # no 的, 了, 我
    freq = dict(zip(m.words, m.freqs))
    unlabelled = [w for w in m.words if w not in labelled and is_content_word(w)]
    assert min(freq[w] for w in others) >= max(freq[w] for w in unlabelled)
    assert "labels: the 5 words of the topic groups, then the 35 most frequent " \
        "content words" in m.label_note  # fmt: skip


def test_labels_never_overlap_and_the_legend_is_off_the_map(builtin_tables):
    from seqembed.analysis.run import builtin_groups

    for method in ("tsne", "pca"):
        m = embedding_map(
            builtin_tables, "src", Projection(method), color="group",
            groups=builtin_groups(),
        )  # fmt: skip
        figure = map_figure(m)
        renderer = figure.canvas.get_renderer()
        shown = visible_labels(figure)
        extents = [t.get_window_extent(renderer) for t in shown]
        assert len(shown) >= 20
        for i, a in enumerate(extents):
            assert not any(a.overlaps(b) for b in extents[i + 1 :]), shown[i]
        hidden = len(figure.axes[0].texts) - len(shown)
        caption = figure.axes[0].get_xlabel()
        assert "words of the topic groups" in caption
        if hidden:
            assert f"({hidden} left out where they would overlap)" in caption
        legend = figure.axes[0].get_legend().get_window_extent(renderer)
        assert not legend.overlaps(figure.axes[0].get_window_extent(renderer))


@pytest.mark.parametrize("method", ["tsne", "pca"])
def test_plot_with_groups_labels_the_coloured_words(builtin_run, tmp_path, method):
    """The CLI's SVG: its text, glyph outlines each headed by the text they
    draw, labels only the group members (the built-in groups have more than
    the 40 labels), and the caption says so."""
    from seqembed.analysis.run import builtin_groups
    from seqembed.data.vocab import SPECIALS as specials

    out = tmp_path / f"{method}.svg"
    result = seqembed(
        "plot", builtin_run, "--groups", "builtin", "--method", method, "--out", out
    )
    assert result.returncode == 0, result.stderr
    svg = out.read_text(encoding="utf-8")
    texts = [t.strip() for t in re.findall(r"<!-- (.*?) -->", svg, flags=re.S)]
    # A wrapped caption is one comment per line: join them back with spaces.
    joined = " ".join(texts)
    assert "labels: the 40 most frequent words of the topic groups" in joined
    members = {w for words in builtin_groups().values() for w in words}
    vocabulary = set(load_tables(load_checkpoint(builtin_run))["src"].tokens)
    words = [t for t in texts if t in vocabulary and t not in specials]
    assert len(words) >= 20 and set(words) <= members, set(words) - members
