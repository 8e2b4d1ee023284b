"""The HTML report in a real browser: Debian's chromium, driven headless by
Playwright (never a downloaded browser). One browser and one page for the
module, on the report `seqembed report` writes for the built-in run.

Skipped, with the reason, when Playwright or /usr/bin/chromium is missing
(`apt-get install chromium`; .ci/run tries to).
"""

import io
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from helpers import seqembed

from seqembed.nmt.checkpoint import load_checkpoint, load_tables

CHROMIUM = Path(os.environ.get("SEQEMBED_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright not installed (pip install -e '.[test]')"
)
if not CHROMIUM.is_file():
    pytest.skip(
        f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True
    )


@pytest.fixture(scope="module")
def report(builtin_run, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "report.html"
    result = seqembed("report", builtin_run, "--out", path)
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture(scope="module")
def tables(builtin_run):
    return {
        side: table.words()
        for side, table in load_tables(load_checkpoint(builtin_run)).items()
    }


@pytest.fixture(scope="module")
def browser(report):
    """The page after loading, with every request and console error seen."""
    profile = tempfile.mkdtemp(prefix="seqembed-chromium-")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            viewport={"width": 1300, "height": 900},
        )
        requests, errors = [], []
        context.on("request", lambda request: requests.append(request.url))
        page = context.new_page()
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(report.as_uri())
        page.wait_for_function("document.fonts.status === 'loaded'")
        page.wait_for_selector("#map .scatterlayer .point")
        yield page, requests, errors
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


def map_traces(page) -> list[dict]:
    return page.evaluate(
        """() => document.getElementById('map').data.map(t => ({
            name: t.name, n: t.x.length, visible: t.visible}))"""
    )


@pytest.mark.slow
def test_loads_without_errors_or_network(browser, report):
    page, requests, errors = browser
    assert errors == []
    # data: URIs (the embedded font) are not network; nothing else may load.
    assert [url for url in requests if not url.startswith("data:")] == [report.as_uri()]
    assert page.evaluate("typeof Plotly") == "object"
    assert page.locator("#curve .scatterlayer .trace").count() == 4
    assert page.locator("#samples .attention .heatmaplayer").count() == 8


@pytest.mark.slow
def test_the_scatter_has_one_point_per_word(browser, tables):
    page, _, _ = browser
    traces = map_traces(page)
    assert [t["n"] for t in traces[:2]] == [len(tables["src"]), len(tables["tgt"])]
    words = page.evaluate(
        "JSON.parse(document.getElementById('report-data').textContent).map.src.words"
    )
    assert sorted(words) == sorted(tables["src"].tokens)


@pytest.mark.slow
def test_hovering_a_point_shows_its_neighbours(browser, tables):
    page, _, _ = browser
    page.locator("input[name=side][value=src]").check()
    page.locator("#map").scroll_into_view_if_needed()
    # The point farthest from any other on screen, then a real mouse move.
    target = page.evaluate(
        """() => {
        const gd = document.getElementById('map'), box = gd.getBoundingClientRect();
        const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, t = gd.data[0];
        const px = t.x.map(x => box.left + xa._offset + xa.l2p(x));
        const py = t.y.map(y => box.top + ya._offset + ya.l2p(y));
        let best = 0, gap = -1;
        px.forEach((x, i) => {
            let near = Infinity;
            px.forEach((x2, j) => { if (j !== i)
                near = Math.min(near, Math.hypot(x - x2, py[i] - py[j])); });
            if (near > gap) { gap = near; best = i; }
        });
        return {i: best, x: px[best], y: py[best],
                word: gd.data[0].hovertext[best].match(/<b>(.*?)<\\/b>/)[1]};
    }"""
    )
    page.mouse.move(target["x"] + 30, target["y"] + 30)
    page.mouse.move(target["x"], target["y"], steps=5)
    word = target["word"]
    neighbours = [w for w, _ in tables["src"].most_similar(word, 10)]
    label = page.locator("#map .hoverlayer .hovertext")
    label.wait_for()
    assert word in label.text_content() and neighbours[0] in label.text_content()
    assert page.locator("#word-info h3").text_content() == word
    panel = page.locator("#word-info li").all_text_contents()
    assert [item.split()[0] for item in panel] == neighbours


@pytest.mark.slow
def test_searching_finds_a_word_and_zooms_to_it(browser, tables):
    page, _, _ = browser
    page.locator("input[name=side][value=src]").check()
    # An English word: the search switches to the target side by itself.
    word = next(
        w for w in tables["tgt"].tokens if w.isalpha() and w not in tables["src"]
    )
    page.fill("#search", word)
    page.press("#search", "Enter")
    page.wait_for_function("document.getElementById('word-info').dataset.word")
    assert page.locator("#word-info h3").text_content() == word
    assert page.locator("input[name=side][value=tgt]").is_checked()
    assert [t["visible"] for t in map_traces(page)[:2]] == [False, True]
    assert "found" in page.locator("#search-status").text_content()
    view = page.evaluate(
        """(word) => {
        const gd = document.getElementById('map'), t = gd.data[1];
        const i = t.hovertext.findIndex(h => h.startsWith('<b>' + word + '<'));
        return {x: t.x[i], y: t.y[i], ring: gd.data[2].x, range: gd.layout.xaxis.range,
                span: Math.max(...t.x) - Math.min(...t.x)};
    }""",
        word,
    )
    assert view["ring"] == [view["x"]]  # the red ring is on the word
    low, high = view["range"]
    assert low < view["x"] < high and high - low < view["span"]  # zoomed in
    page.fill("#search", "不在词表里的词")
    page.press("#search", "Enter")
    assert "not on the map" in page.locator("#search-status").text_content()


@pytest.mark.slow
def test_switching_sides_shows_the_other_table(browser):
    page, _, _ = browser
    page.locator("input[name=side][value=src]").check()
    assert [t["visible"] for t in map_traces(page)[:2]] == [True, False]
    page.locator("input[name=side][value=tgt]").check()
    assert [t["visible"] for t in map_traces(page)[:2]] == [False, True]
    assert "target (English)" in page.locator("#map-caption").text_content()


def platform_fonts(page, selector: str) -> list[dict]:
    """The fonts Chromium really drew a node's text with, and how many glyphs
    each drew (DevTools CSS.getPlatformFontsForNode)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]})
    cdp.detach()
    return fonts["fonts"]


@pytest.mark.slow
def test_chinese_is_drawn_with_real_glyphs(browser):
    """Three checks that the Chinese text is not tofu, on a machine that may
    have no Chinese font at all (the page embeds one):

    1. Chromium reports the embedded Noto Sans SC as the font that drew every
       glyph of a Chinese map label and of a sample sentence;
    2. two different Chinese words, drawn in the page's font, give different
       pixels (tofu boxes are the same for every character) and are not the
       picture of two characters no font has;
    3. a Chinese map label in the screenshot has ink.
    """
    from PIL import Image, ImageChops

    page, _, _ = browser
    page.locator("input[name=side][value=src]").check()
    label = "#map .textpoint text"
    text = page.locator(label).first.text_content()
    for selector, chars in ((label, text), ("#samples tbody td:nth-child(2)", None)):
        chars = chars or page.locator(selector).first.text_content()
        drawn = platform_fonts(page, selector)
        assert [(f["familyName"], f["isCustomFont"]) for f in drawn] == [
            ("Noto Sans SC", True)
        ], drawn
        assert drawn[0]["glyphCount"] == len(chars)

    def picture(text: str) -> Image.Image:
        page.evaluate(
            """(text) => {
            let probe = document.getElementById('probe');
            if (!probe) {
                probe = document.createElement('div');
                probe.id = 'probe';
                probe.style.cssText = 'position:fixed;left:0;top:0;z-index:99;' +
                    'background:#fff;color:#000;font-size:48px;padding:4px;';
                document.body.appendChild(probe);
            }
            probe.textContent = text;
        }""",
            text,
        )
        shot = page.locator("#probe").screenshot()
        return Image.open(io.BytesIO(shot)).convert("L")

    first, second = picture("天气"), picture("学习")
    tofu = picture("\U000f0000\U000f0001")  # private use: in no font
    page.evaluate("document.getElementById('probe').remove()")
    assert first.size == second.size
    assert ImageChops.difference(first, second).getbbox() is not None
    assert first.size != tofu.size or ImageChops.difference(first, tofu).getbbox()
    assert (np.asarray(first) < 128).sum() > 100  # dark strokes

    page.locator("#map").scroll_into_view_if_needed()
    shot = Image.open(io.BytesIO(page.locator(label).first.screenshot())).convert("L")
    assert (np.asarray(shot) < 160).sum() > 10


# ----------------------------------------------- what the page says


def test_the_page_names_its_checkpoint_and_has_contents(browser):
    page, _, _ = browser
    assert page.locator("#checkpoint").text_content().startswith("Checkpoint best.pt")
    links = page.eval_on_selector_all(
        "#contents a", "links => links.map(a => a.getAttribute('href'))"
    )
    assert len(links) > 10 and all(link.startswith("#") for link in links)
    for link in links:
        assert page.locator(link).count() == 1, link
    target = next(link for link in links if link.endswith("most-similar-pairs"))
    page.locator(f"#contents a[href='{target}']").click()
    page.wait_for_function(
        "(id) => Math.abs(document.querySelector(id).getBoundingClientRect().top) < 40",
        arg=target,
    )


def test_long_tables_are_folded_and_short_ones_are_not(browser):
    page, _, _ = browser
    tables = page.evaluate(
        """() => [...document.querySelectorAll('#analysis table')].map(t => ({
            rows: t.tBodies[0].rows.length,
            folded: !!t.closest('details.fold'),
            open: t.closest('details.fold') ? t.closest('details').open : null}))"""
    )
    assert any(t["folded"] for t in tables) and any(not t["folded"] for t in tables)
    for table in tables:
        assert table["folded"] == (table["rows"] > 12), table
        assert table["open"] in (None, False)
    header = page.eval_on_selector(
        "#analysis table th",
        "th => [...th.parentNode.children].map(c => c.textContent)",
    )
    assert header == ["figure", "value", "chance level", "p", "tested against",
                      "verdict"]  # fmt: skip


def test_curve_axes_start_at_zero_and_overfitting_is_marked(browser, builtin_run):
    from seqembed.nmt.metrics_log import read_metrics

    page, _, _ = browser
    axes = page.evaluate(
        """() => { const L = document.getElementById('curve')._fullLayout;
        return ['yaxis', 'yaxis2'].map(a => ({range: L[a].range,
            ticks: L[a]._vals.map(v => v.x), dtick: L[a].dtick})); }"""
    )
    for axis in axes:
        assert axis["range"][0] == 0 and min(axis["ticks"]) == 0
        step = axis["dtick"]
        assert round(step / 10 ** np.floor(np.log10(step)), 9) in (1, 2, 5)
        assert all(abs(t / step - round(t / step)) < 1e-9 for t in axis["ticks"])
    metrics = read_metrics(builtin_run)
    lowest = min(range(len(metrics)), key=lambda i: metrics[i]["valid_loss"])
    marks = page.locator("#curve .annotation-text").all_text_contents()
    assert marks == [f"overfitting from epoch {metrics[lowest + 1]['epoch']}"]


def boxes(page, selector: str) -> list[dict]:
    return page.eval_on_selector_all(
        selector,
        """nodes => nodes.filter(n => n.textContent.trim()).map(n => {
            const b = n.getBoundingClientRect();
            return {l: b.left, r: b.right, t: b.top, b: b.bottom,
                    text: n.textContent}; })""",
    )


def overlap(a: dict, b: dict) -> bool:
    return a["l"] < b["r"] and b["l"] < a["r"] and a["t"] < b["b"] and b["t"] < a["b"]


def test_map_fills_its_area_and_its_labels_never_overlap(browser):
    page, _, _ = browser
    # A resize (a screenshot of the whole page makes one) keeps the map's
    # height; then through the other side, so the view is the whole map.
    page.set_viewport_size({"width": 1300, "height": 2400})
    page.wait_for_timeout(300)
    page.set_viewport_size({"width": 1300, "height": 900})
    page.locator("input[name=side][value=tgt]").check()
    page.locator("input[name=side][value=src]").check()
    page.locator("#map").scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    area = page.evaluate(
        """() => { const gd = document.getElementById('map');
        const box = gd.getBoundingClientRect();
        const points = [...gd.querySelectorAll('.scatterlayer .trace')[0]
            .querySelectorAll('.point')].map(p => p.getBoundingClientRect());
        const span = (f, g) => Math.max(...points.map(f)) - Math.min(...points.map(g));
        const w = span(p => p.right, p => p.left), h = span(p => p.bottom, p => p.top);
        return w * h / (box.width * box.height); }"""
    )
    assert area > 0.7, area
    labels = boxes(page, "#map .scatterlayer .textpoint text")  # no word ringed
    assert len(labels) >= 20
    clashes = [
        (a["text"], b["text"])
        for i, a in enumerate(labels)
        for b in labels[i + 1 :]
        if overlap(a, b)
    ]
    assert clashes == []
    caption = page.locator("#map-caption").text_content()
    assert f"Labels: {len(labels)} words" in caption


def test_the_colour_bar_title_has_room(browser):
    page, _, _ = browser
    page.locator("input[name=side][value=src]").check()
    title = boxes(page, "#map .colorbar .cbtitle text")
    ticks = boxes(page, "#map .colorbar .cbaxis text")
    assert [t["text"] for t in title] == ["training frequency"]
    assert ticks and ticks[0]["text"] == "1"
    assert not any(overlap(title[0], tick) for tick in ticks)
    frame = page.locator("#map").bounding_box()
    assert title[0]["r"] <= frame["x"] + frame["width"]


def test_the_neighbour_panel_says_how_stable_the_list_is(browser):
    page, _, _ = browser
    page.fill("#search", "天气")
    page.press("#search", "Enter")
    page.wait_for_function("document.getElementById('word-info').dataset.word")
    line = page.locator("#word-stability").text_content()
    label = line.split(":")[0]
    assert label in ("stable", "changes between epochs")
    assert "of 10 kept in epochs" in line and "random lists" in line
