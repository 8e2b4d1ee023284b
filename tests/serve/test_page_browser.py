"""The explorer page in a real browser: Debian's chromium, headless, driven by
Playwright (never a downloaded browser), against the real server. Type a
sentence, see the translation and the heatmap; hover a map point, see its
neighbours; open the compare view. No request leaves the server's address.

Skipped, with the reason, when Playwright or /usr/bin/chromium is missing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from seqembed.nmt.checkpoint import load_checkpoint, load_tables
from seqembed.nmt.evaluation import Translator

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
def tables(builtin_run):
    return {s: t.words() for s, t in load_tables(load_checkpoint(builtin_run)).items()}


@pytest.fixture(scope="module")
def browser(server):
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
        page.set_default_timeout(120_000)
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(server.url + "/")
        page.wait_for_selector("body[data-ready='1']")
        yield page, requests, errors
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


def test_typing_a_sentence_shows_translation_heatmap_and_neighbours(
    browser, builtin_run, tables
):
    page, _, errors = browser
    text = "我喜欢学习中文。"
    page.fill("#source", text)
    page.click("#translate")
    page.wait_for_selector("#word-neighbours .card")
    translator = Translator.from_checkpoint(builtin_run)
    assert (
        page.locator("#translation").text_content() == translator.translate([text])[0]
    )
    assert page.locator("#heatmap .heatmaplayer").count() == 1
    words = [w for w in translator.segmenter(text) if w in tables["src"]]
    cards = page.locator("#word-neighbours .card")
    assert [cards.nth(i).get_attribute("data-word") for i in range(cards.count())] == (
        list(dict.fromkeys(words))
    )
    first = cards.nth(0)
    shown = first.locator("td:first-child").all_text_contents()
    expected = tables["src"].most_similar(words[0], 8)
    assert shown == [w for w, _ in expected]
    assert "chance" in first.locator("tr").nth(0).text_content()
    assert errors == []


def test_hovering_a_map_point_shows_its_neighbours(browser, tables):
    page, _, errors = browser
    page.click("button[data-tab=map]")
    page.wait_for_selector("#map .scatterlayer .point")
    page.locator("#map").scroll_into_view_if_needed()
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
        return {x: px[best], y: py[best],
                word: t.hovertext[best].match(/<b>(.*?)<\\/b>/)[1]};
    }"""
    )
    page.mouse.move(target["x"] + 30, target["y"] + 30)
    page.mouse.move(target["x"], target["y"], steps=5)
    page.wait_for_function(
        "(w) => document.getElementById('map-info').dataset.word === w",
        arg=target["word"],
    )
    word = target["word"]
    items = page.locator("#map-info li").all_text_contents()
    assert [item.split()[0] for item in items] == [
        w for w, _ in tables["src"].most_similar(word, 10)
    ]
    assert all("chance" in item for item in items)
    label = page.locator("#map .hoverlayer .hovertext").text_content()
    assert word in label and "chance" in label
    page.fill("#map-search", word)
    page.press("#map-search", "Enter")
    assert "found" in page.locator("#map-search-status").text_content()
    page.fill("#map-search", "不在词表里的词")
    page.press("#map-search", "Enter")
    assert "not on the map" in page.locator("#map-search-status").text_content()
    assert errors == []


def test_the_compare_view_shows_two_spaces_and_what_moved(browser, tables):
    page, _, errors = browser
    page.click("button[data-tab=compare]")
    page.click("#compare-go")
    page.wait_for_selector("#compare-a[data-done='1']")
    page.wait_for_selector("#compare-b .scatterlayer .point")
    assert page.locator("#moved tr").count() > 1
    assert page.locator("#changed tr").count() > 1
    assert "(initial)" in page.locator("#compare-caption").text_content()
    # Hovering a word in one picture rings it in the other.
    page.locator("#compare-a").scroll_into_view_if_needed()
    point = page.evaluate(
        """() => {
        const gd = document.getElementById('compare-a');
        const box = gd.getBoundingClientRect(), t = gd.data[0];
        const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
        return {x: box.left + xa._offset + xa.l2p(t.x[0]),
                y: box.top + ya._offset + ya.l2p(t.y[0])};
    }"""
    )
    page.mouse.move(point["x"] + 25, point["y"] + 25)
    page.mouse.move(point["x"], point["y"], steps=5)
    page.wait_for_selector("#compare-info[data-word]")
    # The pointer crossed other points on its way: wait until the panel has
    # settled on the word it names (its headings drawn for that word).
    page.wait_for_function(
        """() => {
        const info = document.getElementById('compare-info');
        const heads = [...info.querySelectorAll('h3')].map(h => h.textContent);
        return heads.length == 2
            && heads.every(h => h.startsWith(info.dataset.word + ' in '));
    }"""
    )
    word = page.locator("#compare-info").get_attribute("data-word")
    ring = page.evaluate(
        """() => {
        const b = document.getElementById('compare-b');
        const i = b.data[0].hovertext.findIndex(
            h => h.startsWith('<b>' + document.getElementById('compare-info')
                                            .dataset.word + '<'));
        return {ring: b.data[1].x, x: b.data[0].x[i]};
    }"""
    )
    assert ring["ring"] == [ring["x"]]
    headings = page.locator("#compare-info h3").all_text_contents()
    assert len(headings) == 2 and all(h.startswith(word + " in ") for h in headings)
    assert word in tables["src"]
    assert errors == []


def test_no_request_leaves_the_server(browser, server):
    page, requests, errors = browser
    outside = [
        url
        for url in requests
        if not url.startswith(server.url + "/")
        and not url.startswith(("data:", "blob:"))
    ]
    assert outside == []
    assert any(url.endswith("/static/plotly.min.js") for url in requests)
    assert page.evaluate("document.fonts.check('16px seqembed-cjk', '天气')")
    assert errors == []


def test_the_api_docs_render_offline(browser, server):
    page, requests, errors = browser
    before = len(requests)
    page.goto(server.url + "/docs")
    page.wait_for_selector(".swagger-ui .opblock")
    assert "/translate" in page.locator(".swagger-ui").text_content()
    outside = [u for u in requests[before:] if not u.startswith(server.url + "/")]
    assert [u for u in outside if not u.startswith("data:")] == []
    assert errors == []
