"""Every route of the server, over real HTTP, against the library's own
answers for the same run (Translator, load_tables, gensim)."""

from __future__ import annotations

import numpy as np
import pytest

from seqembed.analysis.chance import cosine_two_sided, expected_top_scores
from seqembed.data.prepare import read_splits
from seqembed.nmt.checkpoint import load_checkpoint, load_tables
from seqembed.nmt.evaluation import Translator, score

SENTENCES = ["今天天气很好", "我喜欢学习中文。", "机器翻译很有趣", "量子计算机"]


@pytest.fixture(scope="module")
def translator(builtin_run):
    return Translator.from_checkpoint(builtin_run)


@pytest.fixture(scope="module")
def tables(builtin_run):
    state = load_checkpoint(builtin_run)
    return load_tables(state), load_tables(state, initial=True)


def ids(server) -> list[str]:
    return [m["id"] for m in server.get("/models").json()["models"]]


def test_health_names_the_loaded_models(server, builtin_run, rotated_run):
    answer = server.get("/health")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ok"
    assert body["models"] == [builtin_run.name, rotated_run[0].name]
    assert all(worker["alive"] for worker in body["workers"].values())


def test_models_describe_each_run(server, builtin_run, translator):
    models = server.get("/models").json()["models"]
    first = models[0]
    assert first["id"] == builtin_run.name
    assert first["languages"] == {"src": "zh", "tgt": "en"}
    assert first["vocabulary"] == {
        "src": len(translator.src_vocab),
        "tgt": len(translator.tgt_vocab),
    }
    assert first["attention"] == translator.config.model.attention
    # The test BLEU is the run's own test split, translated greedily.
    test = read_splits(builtin_run, ("test",))["test"]
    outputs = translator.translate([p.src for p in test], beam_size=1)
    expected = score(outputs, [p.tgt for p in test], translator.config.data.lowercase)
    assert first["test_bleu"] == expected.bleu
    assert models[1]["test_bleu"] is None  # the copy has no data/test.tsv


def test_translate_one_sentence_and_a_list(server, translator):
    one = server.post("/translate", {"text": SENTENCES[0]})
    assert one.status_code == 200
    assert one.json()["translations"] == translator.translate(SENTENCES[:1])
    many = server.post("/translate", {"text": SENTENCES, "beam": 5}).json()
    assert many["beam"] == 5
    assert many["translations"] == translator.translate(SENTENCES, beam_size=5)
    assert len(many["scores"]) == len(SENTENCES)
    assert all(s < 0 for s in many["scores"])  # log-probabilities
    for text, tokens, unknown in zip(SENTENCES, many["tokens"], many["unknown"]):
        assert tokens == translator.segmenter(text)
        assert unknown == [t for t in tokens if t not in translator.src_vocab]
    assert any(many["unknown"])  # 量子计算机 is not in the built-in corpus


def test_the_model_field_picks_a_model(server, rotated_run):
    answer = server.post("/translate", {"text": "你好", "model": rotated_run[0].name})
    assert answer.status_code == 200
    assert answer.json()["model"] == rotated_run[0].name


def test_opennmt_py_requests_get_opennmt_py_answers(server):
    ours = server.post("/translate", {"text": SENTENCES[:2]}).json()
    theirs = server.post(
        "/translator/translate",
        [{"src": SENTENCES[0], "id": 0}, {"src": SENTENCES[1], "id": 0}],
    )
    assert theirs.status_code == 200
    body = theirs.json()
    assert len(body) == 1  # one list per n-best rank
    assert [r["tgt"] for r in body[0]] == ours["translations"]
    assert [r["src"] for r in body[0]] == SENTENCES[:2]
    assert [r["pred_score"] for r in body[0]] == ours["scores"]
    assert all(r["n_best"] == 1 for r in body[0])
    unknown = server.post("/translator/translate", [{"src": "你好", "id": 100}])
    assert unknown.status_code == 404
    assert unknown.json()["status"] == "error" and "100" in unknown.json()["error"]


def test_attention_rows_are_target_steps(server, translator):
    body = server.post("/attention", {"text": SENTENCES[0]}).json()
    expected = translator.attention(SENTENCES[0])
    assert body["src_tokens"] == expected.src_tokens
    assert body["tgt_tokens"] == expected.tgt_tokens
    weights = np.array(body["weights"])
    assert weights.shape == (len(expected.tgt_tokens), len(expected.src_tokens))
    np.testing.assert_allclose(weights, expected.weights, atol=1e-4)
    np.testing.assert_allclose(weights.sum(axis=1), 1, atol=1e-3)


def test_states_give_each_word_its_context_figures(server, translator, tables):
    body = server.post("/states", {"text": SENTENCES[0], "k": 3}).json()
    words = translator.segmenter(SENTENCES[0])
    assert body["tokens"] == words
    src = tables[0]["src"].words()
    for word, entry in zip(words, body["words"]):
        assert entry["word"] == word and entry["known"]
        assert len(entry["contextual_neighbours"]) == 3
        expected = [w for w, _ in src.most_similar(word, 3)]
        assert [n["word"] for n in entry["static_neighbours"]] == expected
        figures = entry["self_similarity"]
        assert figures["n_occurrences"] >= 1
        if figures["n_sampled"] >= 2:
            assert figures["difference"] == pytest.approx(
                figures["self_similarity"] - figures["baseline"]
            )
    assert body["fit"]["n_sentences"] > 0


def test_neighbours_beside_initial_cosine_chance_and_stability(server, tables):
    trained, initial = tables[0]["src"].words(), tables[1]["src"].words()
    word = trained.tokens[np.argmax(trained.freqs)]
    body = server.get("/neighbours", word=word, side="src", k=5).json()
    expected = trained.most_similar(word, 5)
    assert [n["word"] for n in body["neighbours"]] == [w for w, _ in expected]
    for item, (other, cosine) in zip(body["neighbours"], expected):
        assert item["cosine"] == pytest.approx(cosine, abs=1e-4)
        assert item["initial_cosine"] == pytest.approx(
            initial.similarity(word, other), abs=1e-4
        )
        assert 0 <= item["stability"] <= 1
    chance = expected_top_scores(5, len(trained) - 1, trained.dim)
    assert [n["chance"] for n in body["neighbours"]] == pytest.approx(chance, abs=1e-4)
    assert body["stability"]["over"] == "snapshots" and body["stability"]["n"] >= 1
    target = server.get("/neighbours", word="the", side="tgt", k=3).json()
    assert [n["word"] for n in target["neighbours"]] == [
        w for w, _ in tables[0]["tgt"].words().most_similar("the", 3)
    ]


def test_similarity_and_its_chance(server, tables):
    trained, initial = tables[0]["src"].words(), tables[1]["src"].words()
    a, b = trained.tokens[:2]
    body = server.post("/similarity", {"pairs": [[a, b]]}).json()
    found = body["similarities"][0]
    assert found["cosine"] == pytest.approx(trained.similarity(a, b), abs=1e-4)
    assert found["initial_cosine"] == pytest.approx(initial.similarity(a, b), abs=1e-4)
    assert found["p_random"] == pytest.approx(
        float(cosine_two_sided(trained.similarity(a, b), trained.dim)), rel=1e-3
    )
    assert body["chance"]["sd"] == pytest.approx(1 / np.sqrt(trained.dim), abs=1e-4)


def test_analogy_is_gensims_most_similar(server, tables):
    gensim = pytest.importorskip("gensim.models")
    trained = tables[0]["src"].words()
    vectors = gensim.KeyedVectors(trained.dim)
    vectors.add_vectors(trained.tokens, trained.vectors)
    positive, negative = list(trained.tokens[:2]), [trained.tokens[2]]
    body = server.post(
        "/analogy", {"positive": positive, "negative": negative, "k": 5}
    ).json()
    expected = vectors.most_similar(positive=positive, negative=negative, topn=5)
    assert [r["word"] for r in body["results"]] == [w for w, _ in expected]
    for result, (_, cosine) in zip(body["results"], expected):
        assert result["cosine"] == pytest.approx(cosine, abs=1e-4)
        assert -1 < result["chance"] < 1


def test_map_places_the_frequent_words(server, tables):
    body = server.get("/map", side="src", method="pca").json()
    trained = tables[0]["src"].words()
    assert body["n_words"] == len(trained)
    assert sorted(body["words"]) == sorted(trained.tokens)
    assert len(body["x"]) == len(body["y"]) == len(body["words"])
    first = body["words"][0]
    assert [w for w, _ in body["neighbours"][0]] == [
        w for w, _ in trained.most_similar(first, 10)
    ]
    assert body["chance"] == pytest.approx(
        expected_top_scores(10, len(trained) - 1, trained.dim), abs=1e-6
    )
    again = server.get("/map", side="src", method="pca").json()
    assert again == body  # cached: the same picture


def test_compare_trained_with_initial(server, tables):
    trained, initial = tables[0]["src"].words(), tables[1]["src"].words()
    body = server.get("/compare", side="src", method="pca").json()
    assert body["labels"][1].endswith("(initial)")
    for word, cosine in zip(body["words"], body["cosine"]):
        a, b = trained.vector(word), initial.vector(word)
        expected = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
        assert cosine == pytest.approx(expected, abs=1e-3)
    moved = [m["cosine"] for m in body["moved_most"]]
    assert moved == sorted(moved) and moved[0] == pytest.approx(min(body["cosine"]))
    kept = [c["overlap"] for c in body["changed_most"]]
    assert kept == sorted(kept)
    assert body["chance_overlap"] == pytest.approx(10 / (len(trained) - 1))
    assert len(body["spaces"]) == 2 and len(body["spaces"][1]["x"]) == len(
        body["words"]
    )


def test_compare_two_runs_aligns_a_rotated_copy(server, rotated_run):
    """The rotated copy is the same geometry: Procrustes turns it back, so
    every word's two vectors agree and every neighbour list is kept."""
    body = server.get(
        "/compare", other=rotated_run[0].name, side="tgt", method="pca"
    ).json()
    assert "Procrustes" in body["alignment"]
    assert min(body["cosine"]) > 0.999
    assert body["mean_overlap"] == pytest.approx(1.0)
