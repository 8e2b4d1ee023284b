"""The HTML report without a browser: its data (map positions, neighbours,
attention), that the page is self-contained, and the report/demo commands.
Browser checks are in test_report_browser.py."""

import json
import re
import shutil

import numpy as np
import pytest
from helpers import assert_clean_error, seqembed

from seqembed.nmt.checkpoint import load_checkpoint, load_tables, resolve_checkpoint
from seqembed.nmt.evaluation import Attention
from seqembed.report.build import attention_figure, write_report
from seqembed.report.curve import curve_figure, overfitting_epoch
from seqembed.report.html import script_json
from seqembed.report.map_data import map_side, nearest_words
from seqembed.vectors.table import EmbeddingTable


@pytest.fixture(scope="module")
def seed_report(seed_run, tmp_path_factory):
    """The design's run: no test split, no attention, analysis computed."""
    out = tmp_path_factory.mktemp("report") / "seed.html"
    return write_report(seed_run, out), seed_run


def page_data(page: str) -> dict:
    block = re.search(r'id="report-data">(.*?)</script>', page, re.S).group(1)
    return json.loads(block)


def test_script_json_cannot_end_its_script_block():
    value = {"words": ["</script><script>alert(1)</script>", "<!--", "天气"]}
    text = script_json(value)
    assert "<" not in text
    assert json.loads(text) == value


def test_nearest_words_match_most_similar(seed_run):
    table = load_tables(load_checkpoint(seed_run))["src"].words()
    lists = nearest_words(table, table.tokens, 5)
    for word, found in zip(table.tokens, lists):
        expected = table.most_similar(word, 5)
        assert [w for w, _ in found] == [w for w, _ in expected]
        assert np.allclose([c for _, c in found], [c for _, c in expected], atol=1e-3)


def test_map_side_keeps_the_most_frequent_words_and_searches_all():
    rng = np.random.default_rng(0)
    tokens = [f"w{i}" for i in range(40)]
    freqs = np.arange(40)[::-1] + 1  # w0 most frequent
    table = EmbeddingTable(tokens, rng.normal(size=(40, 8)), freqs)
    side = map_side("tgt", table, max_words=10, method="pca")
    assert side["words"] == tokens[:10]
    assert side["freqs"] == freqs[:10].tolist()
    assert len(side["x"]) == len(side["y"]) == len(side["neighbours"]) == 10
    assert side["n_words"] == 40
    # Neighbours come from all 40 words, not only the 10 on the map.
    assert [w for w, _ in side["neighbours"][0]] == [
        w for w, _ in table.most_similar("w0", 10)
    ]


def test_attention_figure_keeps_repeated_tokens_apart_and_escapes_specials():
    weights = np.full((3, 2), 0.5, dtype=np.float32)
    figure = attention_figure(
        Attention(["很", "很"], [True, True], ["very", "very", "<EOS>"], weights)
    )
    heatmap = figure["data"][0]
    assert np.array(heatmap["z"]).shape == (3, 2)
    assert figure["layout"]["xaxis"]["tickvals"] == [0, 1]
    assert figure["layout"]["yaxis"]["ticktext"] == ["very", "very", "&lt;EOS&gt;"]


def test_curve_figure_has_losses_and_scores_on_two_axes():
    rows = [
        {"epoch": e, "train_loss": 1 / e, "valid_loss": 2 / e, "valid_bleu": e}
        for e in (1, 2, 3)
    ]
    figure = curve_figure(rows)
    axes = {trace["name"]: trace["yaxis"] for trace in figure["data"]}
    assert axes == {
        "training loss": "y",
        "validation loss": "y",
        "validation BLEU": "y2",
    }
    assert curve_figure([]) is None


@pytest.mark.slow
def test_report_is_one_self_contained_file(seed_report):
    path, run = seed_report
    page = path.read_text(encoding="utf-8")
    # Nothing is fetched: no external scripts, styles, fonts or images (the
    # browser test checks the requests themselves).
    markup = re.sub(r"(<script[^>]*>).*?</script>", r"\1", page, flags=re.S)
    assert not re.search(r"<(script|img|iframe)[^>]*\ssrc=", markup)
    assert "<link" not in markup and "@import" not in markup
    assert re.search(r"url\((?!data:)", markup) is None
    assert markup.count("<script") == 3  # data, plotly.js, the page's script
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    # The Chinese font is embedded, cut down to a subset.
    assert "@font-face" in page and "data:font/woff;base64," in page
    data = page_data(page)
    words = load_tables(load_checkpoint(run))["src"].words().tokens
    assert sorted(data["map"]["src"]["words"]) == sorted(words)
    assert data["attention"] == []  # the design's model has no attention
    assert "No test split" in page  # its scores come from the last validation
    for title in ("most similar pairs", "statistics", "outlier candidates"):
        assert title in page


@pytest.mark.slow
def test_report_command_writes_beside_the_run_by_default(seed_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(seed_run, run)
    result = seqembed("report", run, "--side", "src", "--projection", "pca")
    assert result.returncode == 0, result.stderr
    assert f"Wrote {run / 'report.html'}" in result.stderr
    data = page_data((run / "report.html").read_text(encoding="utf-8"))
    assert list(data["map"]) == ["src"]


@pytest.mark.slow
def test_report_mistakes_are_one_line(seed_run, tmp_path):
    assert_clean_error(seqembed("report", tmp_path / "nope"), "nope")
    assert_clean_error(seqembed("report", seed_run, "--max-words", "0"), "--max-words")
    # A saved analysis from another version of the format: say what to do.
    run = tmp_path / "run"
    shutil.copytree(seed_run, run)
    (run / "analysis").mkdir()
    (run / "analysis" / "analysis.json").write_text(
        json.dumps({"checkpoint": resolve_checkpoint(run).name, "sides": {"src": {}}})
    )
    assert_clean_error(seqembed("report", run), "analysis.json", "seqembed analyze")


@pytest.mark.slow
def test_demo_writes_the_report_and_prints_its_path(tmp_path):
    out = tmp_path / "seed"
    result = seqembed("demo", "--seed-example", "--out", out)
    assert result.returncode == 0, result.stderr
    assert f"Report (open it in a browser): {out / 'report.html'}" in result.stderr
    assert (out / "report.html").stat().st_size > 1_000_000  # plotly.js inline


@pytest.mark.slow
def test_report_of_a_seed_run_shows_the_stability_across_seeds(seed_run, tmp_path):
    from seqembed.analysis.run import analyze_run
    from seqembed.analysis.settings import AnalysisSettings
    from seqembed.analysis.stability import stability_report, write_stability
    from seqembed.report.build import build_report

    runs = [tmp_path / "seeds" / f"seed-{k}" for k in (1, 2)]
    for run in runs:
        shutil.copytree(seed_run, run)
    settings = AnalysisSettings(sides=("src",), alignment=False, contextual=False)
    results = [analyze_run(run, settings) for run in runs]
    write_stability(
        stability_report(runs, results, settings), tmp_path / "seeds" / "stability"
    )
    content = build_report(runs[0], analysis=results[0])
    assert [s.title for s in content["stability"]][:1] == [
        "src: stability across 2 seeds"
    ]
    assert build_report(seed_run, analysis=results[0])["stability"] == []


# ------------------------------------------------ what the page says


def test_curve_axes_start_at_zero_with_round_ticks():
    rows = [
        {"epoch": e, "train_loss": 5 - 0.4 * e, "valid_loss": 4.5, "valid_bleu": b}
        for e, b in zip(range(1, 6), (0.0, 3.3, 12.4, 18.9, 25.2))
    ]
    layout = curve_figure(rows)["layout"]
    for axis, top in (("yaxis", 4.6), ("yaxis2", 25.2)):
        low, high = layout[axis]["range"]
        step = layout[axis]["dtick"]
        assert low == 0 and high > top and layout[axis]["tick0"] == 0
        mantissa = step / 10 ** np.floor(np.log10(step))
        assert round(mantissa, 9) in (1, 2, 5), step
        assert high / step == pytest.approx(round(high / step))
    assert "shapes" not in layout  # validation loss never rose


def test_overfitting_is_marked_where_validation_loss_turns():
    train = [5.0, 4.0, 3.2, 2.6, 2.1, 1.7, 1.4]
    valid = [4.8, 4.2, 3.9, 3.8, 3.9, 4.1, 4.3]
    rows = [
        {"epoch": e, "train_loss": t, "valid_loss": v}
        for e, (t, v) in enumerate(zip(train, valid), start=1)
    ]
    assert overfitting_epoch(rows) == 5  # lowest at 4, rising from 5
    figure = curve_figure(rows)["layout"]
    assert figure["shapes"][0]["x0"] == 5
    assert figure["annotations"][0]["text"] == "overfitting from epoch 5"
    # Validation loss rising while training loss rises too: not overfitting.
    rising = [{**row, "train_loss": 1 + row["epoch"]} for row in rows]
    assert overfitting_epoch(rising) is None
    # A rise of less than 1% is noise.
    flat = [{**row, "valid_loss": min(v, 3.8 * 1.005)} for row, v in zip(rows, valid)]
    assert overfitting_epoch(flat) is None


@pytest.fixture(scope="module")
def builtin_content(builtin_run):
    from seqembed.report.build import ReportSettings, build_report

    settings = ReportSettings(projection="pca", max_words=200, n_samples=2)
    return build_report(builtin_run, settings)


def test_summary_is_sentences_with_plurals(builtin_content, builtin_run):
    from seqembed.nmt.metrics_log import read_metrics

    rows = dict(builtin_content["summary"])
    layers = load_checkpoint(builtin_run)["config"]["model"]["num_layers"]
    assert f"{layers} layer{'s' if layers > 1 else ''}," in rows["model"]
    metrics = read_metrics(builtin_run)
    lowest = min(metrics, key=lambda m: m["valid_loss"])["epoch"]
    assert f"overfitting from epoch {lowest + 1}" in rows["training"]
    for text in [*rows.values(), builtin_content["scores"]]:
        assert "(s)" not in text and " -." not in text


def test_scores_on_a_small_test_set_carry_their_interval(builtin_content, builtin_run):
    from seqembed.data.prepare import read_splits
    from seqembed.nmt.evaluation import Translator, score

    test = read_splits(builtin_run)["test"]
    outputs = Translator.from_checkpoint(builtin_run).translate([p.src for p in test])
    scores = score(outputs, [p.tgt for p in test], True, interval=True)
    assert len(test) < 500 and scores.bleu_ci > 0 and scores.chrf_ci > 0
    text = builtin_content["scores"]
    assert f"BLEU {scores.bleu:.2f} ± {scores.bleu_ci:.2f} (95% CI)" in text
    assert f"chrF {scores.chrf:.2f} ± {scores.chrf_ci:.2f} (95% CI)" in text
    assert f"on the {len(test)} held-out test pairs" in text


def test_scores_interval_only_below_500_sentences():
    from seqembed.nmt.evaluation import CI_BELOW, score

    hyps = ["the cat sat on the mat", "a dog barks", "it rains today"]
    refs = ["the cat sat on a mat", "the dog barks", "it is raining today"]
    few = score(hyps * 10, refs * 10, True, interval=True)
    assert few.bleu_ci is not None and few.chrf_ci is not None
    assert few.text("bleu").endswith("(95% CI)")
    assert few.bleu_signature == score(hyps * 10, refs * 10, True).bleu_signature
    many = score(hyps * (CI_BELOW // 3 + 1), refs * (CI_BELOW // 3 + 1), True, True)
    assert many.bleu_ci is None and many.text("bleu") == f"BLEU {many.bleu:.2f}"
    assert score(hyps, refs, True).bleu_ci is None  # only when asked
    # Nothing right: resamples that score 0 (sacrebleu's own mean of them fails).
    nothing = score(["x", "y", "z", "w"], ["a b", "c d", "e", "f g"], True, True)
    assert nothing.bleu == nothing.bleu_ci == 0.0


def test_evaluate_prints_the_interval(builtin_run):
    result = seqembed("evaluate", builtin_run, builtin_run / "data" / "test.tsv")
    assert result.returncode == 0, result.stderr
    bleu, chrf = result.stdout.splitlines()[:2]
    assert bleu.startswith("BLEU ") and "± " in bleu and "(95% CI)" in bleu
    assert chrf.startswith("chrF ") and "(95% CI)" in chrf
    assert "nrefs:1|" in bleu


def test_report_reads_best_pt_whatever_the_saved_analysis_describes(
    builtin_run, tmp_path
):
    """The demo analyses last.pt; the report, like neighbours, reads best.pt
    and re-analyses it with the saved analysis' settings."""
    from seqembed.analysis.run import AnalysisSettings, analyze_run, write_analysis
    from seqembed.report.build import ReportSettings, build_report

    run = tmp_path / "run"
    shutil.copytree(builtin_run, run)
    groups = {"weather": ["天气", "下雨", "冷"]}
    settings = AnalysisSettings(
        sides=("src",), groups=groups, top_n=5, alignment=False, contextual=False
    )
    write_analysis(analyze_run(run / "last.pt", settings), run / "analysis")
    quick = {"projection": "pca", "max_words": 50, "n_samples": 1, "sides": ("src",)}
    content = build_report(run, ReportSettings(**quick))
    assert content["checkpoint"] == "best.pt"
    assert content["checkpoint_line"].startswith("Checkpoint best.pt: the model")
    assert "made now for best.pt with the settings of" in content["analysis_from"]
    titles = [s.title for s in content["analysis"]]
    assert "source (encoder input): topic groups" in titles  # the saved settings
    last = build_report(run, ReportSettings(**quick, checkpoint="last"))
    assert last["checkpoint"] == "last.pt"
    assert last["analysis_from"].startswith("from analysis/analysis.json")
    assert resolve_checkpoint(run, "last").name == "last.pt"
    (run / "best.pt").unlink()
    assert resolve_checkpoint(run).name == "last.pt"  # best falls back to last


def test_a_caller_given_analysis_leaves_no_placeholder(seed_run, tmp_path):
    from seqembed.analysis.run import AnalysisSettings, analyze_run

    analysis = analyze_run(seed_run, AnalysisSettings(sides=("src",), contextual=False))
    path = write_report(seed_run, tmp_path / "r.html", analysis=analysis)
    page = path.read_text(encoding="utf-8")
    markup = re.sub(r"<script[^>]*>.*?</script>", "", page, flags=re.S)
    assert "given by the caller" not in markup and "(s)" not in markup
    assert "Checkpoint best.pt" in markup
