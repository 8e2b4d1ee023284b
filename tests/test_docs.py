"""The documentation: the site builds with ``mkdocs build --strict`` (a
broken link or a missing page fails), its generated references hold every
config key and every command-line flag, and the README stays a newcomer's
page whose links and pictures exist."""

from __future__ import annotations

import argparse
import dataclasses
import html
import os
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from seqembed.cli.main import build_parser
from seqembed.config import Config

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def page_text(path: Path) -> str:
    """The words of a built page's article, tags dropped."""
    text = path.read_text(encoding="utf-8")
    article = text[text.index("<article") : text.index("</article>")]
    return html.unescape(re.sub(r"<[^>]+>", "", article))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    warnings = [line for line in done.stderr.splitlines() if "WARNING -" in line]
    assert warnings == []
    return out


def test_every_page_of_the_nav_is_built(site):
    for page in ("getting-started", "training", "analysis", "pictures", "api",
                 "configuration", "cli", "analysis-json", "reliability",
                 "benchmarks", "changelog"):  # fmt: skip
        assert (site / page / "index.html").is_file(), page
    assert (site / "demo-tsne.png").is_file()


def test_the_configuration_reference_has_every_key(site):
    text = page_text(site / "configuration" / "index.html")
    keys = [
        f"{section}.{field.name}"
        for section, cls in typing.get_type_hints(Config).items()
        for field in dataclasses.fields(cls)
    ]
    assert len(keys) > 60
    missing = [key for key in keys if key not in text]
    assert missing == []
    # the ones the old README left out, and a mode it never named
    for key in ("data.cache_min_pairs", "model.freeze_embeddings", "train.precision"):
        assert key in text
    assert "char" in text


def test_the_cli_reference_has_every_command_and_flag(site):
    text = page_text(site / "cli" / "index.html")
    parser = build_parser()
    commands = next(
        a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    )
    flags = [f for a in parser._actions for f in a.option_strings if f != "-h"]
    for name, sub in commands.choices.items():
        assert f"seqembed {name}" in text
        for action in sub._actions:
            flags += [f for f in action.option_strings if f not in ("-h", "--help")]
    assert "seqembed report" in text
    missing = sorted({flag for flag in flags if flag not in text})
    assert missing == []


def test_the_api_reference_is_rendered_from_the_docstrings(site):
    text = page_text(site / "api" / "index.html")
    for name in ("load_run", "translate_detailed", "most_similar", "doesnt_match",
                 "evaluate_word_pairs", "findings_above_chance", "plot_map",
                 "UnknownWordError"):  # fmt: skip
        assert name in text
    # a sentence from a docstring, not just a name
    assert "refuses checkpoints that would run code" in text


def test_the_readme_is_short_and_its_links_exist():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) < 250
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if "://" not in t]
    assert local, "the README links into the docs"
    for target in local:
        assert (ROOT / target).exists(), target
    assert "../shared" not in text and "target 1" not in text
    for command in ("seqembed demo", "pytest"):
        assert command in text
