"""`seqembed analyze | neighbours | export` end to end, in subprocesses."""

import json

import numpy as np
import pytest
from helpers import assert_clean_error, seqembed

from seqembed.nmt.checkpoint import load_checkpoint, load_tables


@pytest.fixture(scope="module")
def analysed(builtin_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("analysis")
    result = seqembed(
        "analyze",
        builtin_run,
        "--groups",
        "builtin",
        "--pairs",
        "天气-下雨",
        "吃-喝",
        "--top",
        "5",
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr
    return out, result


@pytest.mark.slow
def test_analyze_writes_json_and_markdown_and_prints_the_verdicts(analysed):
    out, result = analysed
    data = json.loads((out / "analysis.json").read_text(encoding="utf-8"))
    assert data["format"] == "seqembed-analysis"
    assert set(data["sides"]) == {"src", "tgt"}
    src = data["sides"]["src"]
    assert len(src["similar_pairs"]["pairs"]) == 5
    assert {g["name"] for g in src["groups"]["groups"]} >= {"weather", "food"}
    assert [(p["a"], p["b"]) for p in src["chosen_pairs"]] == [
        ("天气", "下雨"),
        ("吃", "喝"),
    ]
    n_tests = len(src["findings"]["tests"])
    assert n_tests == 5 + len(src["groups"]["groups"]) + 1 + 2 + 2 + 1 + 1
    markdown = (out / "analysis.md").read_text(encoding="utf-8")
    for title in ("most similar pairs", "topic groups", "outlier candidates"):
        assert title in markdown and title in result.stderr
    assert "tests are above chance" in result.stderr
    assert f"Wrote {out / 'analysis.json'}" in result.stderr.replace("\n", "")


@pytest.mark.slow
def test_analyze_word_list_restricts_the_table(builtin_run, tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("天气 下雨  # weather\n吃 喝 不在词表里\n", encoding="utf-8")
    result = seqembed(
        "analyze",
        builtin_run,
        "--side",
        "src",
        "--word-file",
        words,
        "--no-alignment",
        "--no-contextual",
        "--no-movement",
        "--out",
        tmp_path / "a",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "a" / "analysis.json").read_text(encoding="utf-8"))
    side = data["sides"]["src"]
    assert side["n_words"] == 4 and side["similar_pairs"]["n_pairs"] == 6
    assert data["alignment"] is None and data["contextual"] is None


@pytest.mark.slow
def test_neighbours_match_the_embedding_table(builtin_run):
    result = seqembed("neighbours", builtin_run, "天气", "-k", "5", "--json")
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    table = load_tables(load_checkpoint(builtin_run))["src"].words()
    expected = table.most_similar("天气", 5)
    assert [n["word"] for n in listing["neighbours"]] == [w for w, _ in expected]
    assert listing["side"] == "src"
    assert all(n["chance_cosine"] > 0 for n in listing["neighbours"])


@pytest.mark.slow
def test_neighbours_finds_an_english_word_on_the_target_side(builtin_run):
    result = seqembed("neighbours", builtin_run, "weather", "-k", "3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("weather (tgt")
    assert len(result.stdout.strip().splitlines()) == 4


@pytest.mark.slow
def test_export_word2vec_loads_in_gensim(builtin_run, tmp_path):
    gensim = pytest.importorskip("gensim")
    path = tmp_path / "src.vec"
    result = seqembed("export", builtin_run, "--format", "word2vec", "--out", path)
    assert result.returncode == 0, result.stderr
    vectors = gensim.models.KeyedVectors.load_word2vec_format(str(path))
    table = load_tables(load_checkpoint(builtin_run))["src"].words()
    assert vectors.index_to_key == table.tokens
    np.testing.assert_array_equal(vectors["天气"], table.vector("天气"))


@pytest.mark.slow
def test_export_projector_both_sides(builtin_run, tmp_path):
    out = tmp_path / "projector"
    result = seqembed(
        "export", builtin_run, "--format", "projector", "--side", "both", "--out", out
    )
    assert result.returncode == 0, result.stderr
    tables = load_tables(load_checkpoint(builtin_run))
    n_rows = len(tables["src"].words()) + len(tables["tgt"].words())
    tensors = (out / "tensors.tsv").read_text(encoding="utf-8").splitlines()
    metadata = (out / "metadata.tsv").read_text(encoding="utf-8").splitlines()
    assert len(tensors) == n_rows
    assert metadata[0] == "word\tfrequency\tside" and len(metadata) == n_rows + 1
    assert (out / "projector_config.pbtxt").is_file()


@pytest.mark.slow
def test_bad_groups_file_names_file_and_line(builtin_run, tmp_path):
    groups = tmp_path / "groups.yaml"
    groups.write_text("weather: [天气, 下雨]\nfood: {吃: 1}\n", encoding="utf-8")
    result = seqembed("analyze", builtin_run, "--groups", groups)
    assert_clean_error(result, f"{groups}:2:", "food")


@pytest.mark.slow
def test_analysis_mistakes_are_one_line(builtin_run, tmp_path):
    assert_clean_error(
        seqembed("neighbours", builtin_run, "没有这个词"), "not in the src or tgt"
    )
    assert_clean_error(
        seqembed("analyze", builtin_run, "--permutations", "10"), "at least 1000"
    )
    assert_clean_error(seqembed("analyze", tmp_path), "no checkpoint")
    assert_clean_error(
        seqembed("analyze", builtin_run, "--pairs", "天气"), "cannot read the word pair"
    )
    assert_clean_error(
        seqembed("analyze", builtin_run, builtin_run), "several runs need --stability"
    )


@pytest.mark.slow
def test_train_seeds_trains_each_seed_and_compares_them(tmp_path):
    from seqembed.cli.demo import resource_path

    out = tmp_path / "seeds"
    result = seqembed(
        "train",
        resource_path("builtin.tsv"),
        "--out",
        out,
        "--seeds",
        "2",
        "--seed",
        "5",
        "--epochs",
        "1",
        "--set",
        "model.emb_size=16",
        "--set",
        "model.hidden_size=16",
    )
    assert result.returncode == 0, result.stderr
    assert (out / "seed-5" / "best.pt").is_file()
    assert (out / "seed-6" / "best.pt").is_file()
    report = json.loads((out / "stability" / "stability.json").read_text("utf-8"))
    assert report["runs"] == [str(out / "seed-5"), str(out / "seed-6")]
    overlap = report["sides"]["src"]["neighbour_overlap"]
    assert 0 <= overlap["mean"] <= 1 and overlap["chance"] > 0
    # A second --seeds into the same folder would mix runs: refused.
    again = seqembed(
        "train",
        resource_path("builtin.tsv"),
        "--out",
        out,
        "--seeds",
        "2",
        "--seed",
        "5",
    )
    assert_clean_error(again, "already holds a run")
