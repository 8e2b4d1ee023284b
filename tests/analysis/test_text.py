"""The analysis in words: real sentences with the right plural forms, no
placeholders ("-" for a missing epoch, "(s)"), and nothing that does not
apply; the top pairs carry how stable they are."""

from __future__ import annotations

import re

import pytest

from seqembed.analysis.text import sections, to_markdown
from seqembed.analysis.trust import STABLE_OVERLAP

# "1 words", "1 tests", ... after a number that is exactly one.
ONE_PLURAL = re.compile(
    r"(?<![\d.,])1 (words|pairs|layers|epochs|tests|runs|seeds|groups|draws|"
    r"dimensions|parameters|tokens|sentences|times)\b"
)
PLACEHOLDERS = ("(s)", "epoch -", "at epoch None", "overlap -", "None")


def all_text(parts) -> list[str]:
    texts = []
    for section in parts:
        texts += [section.title, section.text, *section.columns]
        texts += [str(cell) for row in section.rows for cell in row]
    return texts


@pytest.fixture(scope="module")
def results(seed_result, builtin_result, bare_result):
    return {"seed": seed_result, "builtin": builtin_result, "bare": bare_result}


@pytest.mark.parametrize("name", ["seed", "builtin", "bare"])
def test_no_placeholders_and_right_plurals(results, name):
    for text in all_text(sections(results[name])):
        assert not ONE_PLURAL.search(text), text
        for placeholder in PLACEHOLDERS:
            assert placeholder not in text, text


BAND = re.compile(
    r"seen (once|[\d,]+-[\d,]+ times|[\d,]+\+ times) \((?P<n>[\d,]+) (?P<w>words?)\)"
)


@pytest.mark.parametrize("name", ["seed", "builtin"])
def test_frequency_bands_read_as_sentences(results, name):
    for side, data in results[name]["sides"].items():
        title = [s for s in sections(results[name]) if s.title.endswith("statistics")]
        rows = [row[0] for row in title[0 if side == "src" else -1].rows]
        bands = rows[len(rows) - len(data["statistics"]["by_frequency"]) :]
        for label, band in zip(bands, data["statistics"]["by_frequency"]):
            match = BAND.fullmatch(label)
            assert match, label
            assert int(match["n"].replace(",", "")) == band["n_words"]
            assert (match["w"] == "word") == (band["n_words"] == 1)


def test_a_run_that_never_settled_says_so(seed_result):
    movement = {
        **seed_result["movement"]["src"],
        "neighbours_stable_epoch": None,
        "movement_settled_epoch": None,
    }
    result = {**seed_result, "movement": {"src": movement}}
    text = [s for s in sections(result) if s.title.endswith("movement per epoch")]
    sentence = text[0].text
    assert f"still changing at epoch {movement['final_epoch']}" in sentence
    assert "still moved more than 1% of their length" in sentence


def test_columns_with_nothing_measured_are_left_out(bare_result, seed_result):
    """Without initial vectors there is no "before training" column."""
    bare = {s.title: s for s in sections(bare_result)}
    full = {s.title: s for s in sections(seed_result)}
    title = "source (encoder input): most similar pairs"
    assert "before training" in full[title].columns
    assert "before training" not in bare[title].columns
    assert "initial" not in bare["source (encoder input): outlier candidates"].columns


def test_top_pairs_carry_their_stability_across_epochs(builtin_result):
    for side in ("src", "tgt"):
        similar = builtin_result["sides"][side]["similar_pairs"]
        summary = similar["stability"]
        assert summary["epochs"] and summary["k"] == 10
        for pair in similar["pairs"]:
            stability = pair["stability"]
            assert 0 <= stability["epochs"] <= 1 and stability["seeds"] is None
            stable = stability["epochs"] >= STABLE_OVERLAP
            assert stability["label"] == (
                "stable" if stable else "changes between epochs"
            )
    markdown = to_markdown(builtin_result)
    assert "neighbours in other epochs / seeds" in markdown
    assert "docs/reading-neighbours.md" in markdown
