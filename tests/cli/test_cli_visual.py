"""`seqembed plot | attention` end to end, in subprocesses."""

import re
from pathlib import Path

import pytest
from helpers import assert_clean_error, seqembed

PNG = b"\x89PNG\r\n\x1a\n"


def _written(result) -> Path:
    """The one path a picture command prints on stdout."""
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    return Path(lines[0])


@pytest.mark.slow
def test_plot_defaults_to_a_tsne_png_in_the_run(seed_run):
    result = seqembed("plot", seed_run)
    path = _written(result)
    assert path == seed_run / "figures" / "embeddings-src-tsne.png"
    assert path.read_bytes().startswith(PNG)
    assert "21 tokens" in result.stderr and "perplexity 6.67" in result.stderr
    assert "coloured by frequency" in result.stderr  # no groups known


@pytest.mark.slow
def test_plot_both_sides_by_group_as_svg(seed_run, tmp_path):
    out = tmp_path / "both.svg"
    result = seqembed(
        "plot", seed_run, "--side", "both", "--groups", "design", "--out", out,
        "--random-state", 3, "--threads", 2,
    )  # fmt: skip
    assert _written(result) == out
    assert out.read_text(encoding="utf-8").lstrip().startswith("<?xml")
    assert "coloured by group" in result.stderr


@pytest.mark.slow
def test_plot_html_and_pdf(seed_run, tmp_path):
    html = _written(
        seqembed("plot", seed_run, "--method", "pca", "--out", tmp_path / "m.html")
    )
    text = html.read_text(encoding="utf-8")
    assert "@font-face" in text and not re.search(r"<script[^>]+src=", text)
    pdf = _written(
        seqembed("plot", seed_run, "--format", "pdf", "--out", tmp_path / "m")
    )
    assert pdf.read_bytes().startswith(b"%PDF")


@pytest.mark.slow
def test_plot_colour_by_chance_reads_the_analysis(seed_run, tmp_path):
    missing = seqembed(
        "plot", seed_run, "--color", "chance", "--out", tmp_path / "x.png"
    )
    assert_clean_error(missing, "seqembed analyze")
    analysis = tmp_path / "analysis"
    done = seqembed(
        "analyze", seed_run, "--seed-example", "--no-contextual", "--no-alignment",
        "--no-movement", "--out", analysis,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = seqembed(
        "plot", seed_run, "--color", "chance", "--analysis",
        analysis / "analysis.json", "--out", tmp_path / "chance.png",
    )  # fmt: skip
    assert _written(result).read_bytes().startswith(PNG)


@pytest.mark.slow
def test_plot_movement_png_and_gif(seed_run, tmp_path):
    result = seqembed("plot", seed_run, "--movement", "--panels", 4,
                      "--out", tmp_path / "movement.png")  # fmt: skip
    assert _written(result).read_bytes().startswith(PNG)
    assert "PCA" in result.stderr and "snapshots" in result.stderr
    gif = seqembed("plot", seed_run, "--movement", "--side", "tgt", "--format", "gif",
                   "--frames", 4, "--out", tmp_path / "movement.gif")  # fmt: skip
    from PIL import Image

    with Image.open(_written(gif)) as image:
        assert image.format == "GIF" and image.n_frames == 4


@pytest.mark.slow
def test_attention_heatmap(builtin_run, tmp_path):
    out = tmp_path / "attention.png"
    result = seqembed("attention", builtin_run, "我爱自然语言处理", "--out", out)
    assert _written(result) == out and out.read_bytes().startswith(PNG)
    assert "我 爱 自然 语言 处理  ->" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, fragments",
    [
        (["plot", "{seed}", "--movement", "--side", "both"], ["one side"]),
        (["plot", "{seed}", "--format", "gif"], ["cannot write 'gif'"]),
        (["plot", "{seed}", "--color", "group"], ["--groups"]),
        (["plot", "{seed}", "--threads", "0"], ["--threads"]),
        (["plot", "{seed}", "--groups", "{missing}"], ["missing.yaml"]),
        (["plot", "{missing}"], ["missing.yaml", "file not found"]),
        (["plot", "{seed}", "--analysis", "{seed}/config.yaml", "--color", "chance"],
         ["not an analysis JSON file"]),
        (["attention", "{seed}", "我爱你"], ["no attention"]),
        (["attention", "{builtin}", " "], ["nothing to translate"]),
        (["attention", "{builtin}", "我", "--out", "{missing}"], ["cannot write"]),
    ],
)  # fmt: skip
def test_mistakes_are_one_line_errors(seed_run, builtin_run, tmp_path, args, fragments):
    values = {
        "seed": seed_run, "builtin": builtin_run, "missing": tmp_path / "missing.yaml"
    }  # fmt: skip
    result = seqembed(*[a.format(**values) for a in args])
    assert_clean_error(result, *fragments)
