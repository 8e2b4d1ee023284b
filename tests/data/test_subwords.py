"""SentencePiece subwords: training, text round trips, the vocabulary's
specials, self-contained checkpoints, BLEU on text, and the analysis of
piece tables (and of words averaged from them)."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import jsonschema
import numpy as np
import pytest
import sentencepiece as spm
import torch
from helpers import seqembed

from seqembed.analysis.run import analyze_run, schema
from seqembed.analysis.settings import AnalysisSettings
from seqembed.cli.demo import builtin_pairs, builtin_user_dict, demo_config
from seqembed.config import load_config
from seqembed.data.prepare import read_splits, training_tokens, training_words
from seqembed.data.segment import ChineseSegmenter, EnglishTokenizer, normalize
from seqembed.data.subwords import SubwordModel, word_pieces
from seqembed.data.vocab import SPECIALS, UNK
from seqembed.errors import InputError
from seqembed.nmt.checkpoint import load_checkpoint, load_tables
from seqembed.nmt.evaluation import Translator, score
from seqembed.nmt.training import train
from seqembed.vectors.aggregate import aggregate_words
from seqembed.vectors.table import EmbeddingTable

ENGLISH = [
    "the cat sat on the mat.",
    "the dog walked to the park and barked.",
    "a cat and a dog are walking together.",
    "she talked to the walkers in the park.",
    "we are going to the market tomorrow.",
] * 4
CHINESE = [
    "我 爱 你",
    "今天 天气 很 好",
    "我们 明天 去 公园",
    "猫 和 狗 在 公园 里",
] * 4

SUBWORD_SETTINGS = [
    "data.src_segmentation=sentencepiece",
    "data.tgt_tokenization=sentencepiece",
    "data.src_sp_vocab_size=600",
    "data.tgt_sp_vocab_size=300",
]


@pytest.fixture(scope="module")
def sp_run(tmp_path_factory):
    """The built-in corpus with SentencePiece on both sides (unigram source,
    BPE target), a few epochs."""
    run_dir = tmp_path_factory.mktemp("sp-run")
    config = demo_config(
        seed_example=False,
        seed=3,
        extra=[*SUBWORD_SETTINGS, "data.tgt_sp_type=bpe", "train.epochs=4"],
    )
    train(config, run_dir, builtin_pairs(), user_dict=builtin_user_dict())
    return run_dir


# ---------------------------------------------------------------- the models


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_training_is_deterministic(model_type):
    first = SubwordModel.train(ENGLISH, model_type, 40)
    second = SubwordModel.train(list(ENGLISH), model_type, 40)
    assert first.proto == second.proto
    assert SubwordModel.train(ENGLISH, model_type, 35).proto != first.proto


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_text_pieces_text_round_trip(model_type):
    tokenizer = EnglishTokenizer(
        "sentencepiece", True, SubwordModel.train(ENGLISH, model_type, 60)
    )
    # Unseen words too: every letter is known, so nothing becomes <UNK>.
    for text in ["The  cat sat.", "Talkers walked to markets.", "a", ""]:
        pieces = tokenizer.tokenize(text)
        assert all(piece != SPECIALS[UNK] for piece in pieces)
        assert tokenizer.detokenize(pieces) == normalize(text).lower()
    assert len(tokenizer.tokenize("walkers")) > 1  # a subword split

    source = SubwordModel.train(CHINESE, model_type, 40)
    segmenter = ChineseSegmenter("sentencepiece", None, source)
    for text in ["我爱你", "今天天气很好", "我们去公园"]:
        pieces = segmenter(text)
        assert source.decode(pieces).replace(" ", "") == text
        assert pieces[0].startswith("▁")


@pytest.mark.slow
def test_unknown_characters_are_the_vocabularys_unk(sp_run):
    translator = Translator.from_checkpoint(sp_run)
    pieces = translator.segmenter("我爱鼹鼠")  # 鼹 is not in the corpus
    assert SPECIALS[UNK] in pieces
    ids = translator.src_vocab.encode(pieces)
    assert ids.count(UNK) == pieces.count(SPECIALS[UNK])


def test_a_too_small_vocabulary_names_the_key(tmp_path):
    config = demo_config(
        seed_example=False,
        seed=1,
        extra=[*SUBWORD_SETTINGS[:2], "data.src_sp_vocab_size=50"],
    )
    with pytest.raises(InputError, match="data.src_sp_vocab_size 50 is too small"):
        train(config, tmp_path, builtin_pairs())
    with pytest.raises(InputError, match="unigram, bpe"):
        load_config(None, ["data.tgt_sp_type=wordpiece"])
    with pytest.raises(InputError, match="must be > 0"):
        load_config(None, ["data.src_sp_vocab_size=0"])


# ---------------------------------------------------------------- the run


@pytest.mark.slow
def test_vocabulary_specials_are_intact(sp_run):
    state = load_checkpoint(sp_run / "best.pt")
    for side in ("src", "tgt"):
        tokens = state[f"{side}_vocab"]["tokens"]
        model = SubwordModel(state["subword_models"][side])
        assert tuple(tokens[:4]) == SPECIALS
        assert len(tokens) == len(set(tokens))
        # Every piece has its own id past the specials; no SentencePiece
        # control piece (<s>, </s>, <pad>) exists at all.
        assert set(tokens[4:]) == set(model.pieces())
        assert not {"<s>", "</s>", "<pad>", "<unk>"} & set(tokens)
        vocab_lines = (sp_run / f"vocab.{side}.tsv").read_text().splitlines()
        assert [line.split("\t")[0] for line in vocab_lines] == tokens
    translator = Translator.from_checkpoint(sp_run)
    ids = translator.src_vocab.encode(translator.segmenter("今天天气很好"))
    assert ids and min(ids) >= len(SPECIALS)
    assert translator.src_vocab.encode(["<EOS>", "<PAD>"]) == [UNK, UNK]


@pytest.mark.slow
def test_the_run_and_the_checkpoint_hold_the_models(sp_run):
    state = torch.load(sp_run / "best.pt", weights_only=True)
    assert set(state["subword_models"]) == {"src", "tgt"}
    for side, proto in state["subword_models"].items():
        assert isinstance(proto, bytes)
        assert (sp_run / f"spm.{side}.model").read_bytes() == proto
    # The files are ordinary SentencePiece models.
    processor = spm.SentencePieceProcessor(model_file=str(sp_run / "spm.tgt.model"))
    assert processor.encode("the weather", out_type=str)[0].startswith("▁")
    config = state["config"]["data"]
    assert (config["src_sp_type"], config["tgt_sp_type"]) == ("unigram", "bpe")


@pytest.mark.slow
def test_a_damaged_model_in_the_checkpoint_is_one_error(sp_run):
    state = load_checkpoint(sp_run / "best.pt")
    for damaged in (b"junk", b"", "text", None):
        state["subword_models"]["tgt"] = damaged
        with pytest.raises(InputError, match="tgt SentencePiece model cannot be"):
            Translator.from_state(state)


@pytest.mark.slow
def test_a_copied_checkpoint_translates_without_the_run(sp_run, tmp_path):
    sentences = ["今天天气很好", "我爱你", "我们明天去北京", ""]
    expected = Translator.from_checkpoint(sp_run / "best.pt").translate(sentences)
    run_copy = tmp_path / "run"
    shutil.copytree(sp_run, run_copy)
    alone = tmp_path / "elsewhere" / "model.pt"
    alone.parent.mkdir()
    shutil.copy(run_copy / "best.pt", alone)
    shutil.rmtree(run_copy)  # no spm.*.model, no data, no config.yaml
    translations = Translator.from_checkpoint(alone).translate(sentences)
    assert translations == expected
    assert translations[-1] == ""
    assert not any("▁" in text for text in translations)
    result = seqembed("translate", alone, sentences[0])
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected[0] + "\n"


@pytest.mark.slow
def test_bleu_is_computed_on_detokenised_text(sp_run):
    translator = Translator.from_checkpoint(sp_run)
    references = [pair.tgt for pair in builtin_pairs()[:20]]
    # The target side's pieces decode back to the (lowercased) text, so
    # scoring the pieces of the references against them gives 100.
    pieces = [translator.tokenizer.tokenize(text) for text in references]
    assert any(len(p) > len(r.split()) for p, r in zip(pieces, references))
    decoded = [translator.tokenizer.detokenize(p) for p in pieces]
    assert score(decoded, references, lowercase=True).bleu == 100.0
    # and translations are text, scored as text
    hypotheses = translator.translate([pair.src for pair in builtin_pairs()[:20]])
    assert not any("▁" in text for text in hypotheses)
    joined = [" ".join(translator.tokenizer.tokenize(h)) for h in hypotheses]
    assert score(hypotheses, references, True) != score(joined, references, True)


@pytest.mark.slow
def test_evaluate_writes_and_scores_text(sp_run, tmp_path):
    hyp = tmp_path / "test.hyp"
    result = seqembed(
        "evaluate", sp_run, sp_run / "data/test.tsv", "--json", "--hyp-out", hyp
    )
    assert result.returncode == 0, result.stderr
    hypotheses = hyp.read_text(encoding="utf-8").splitlines()
    assert hypotheses and not any("▁" in line for line in hypotheses)
    test = read_splits(sp_run)["test"]
    expected = score(hypotheses, [pair.tgt for pair in test], lowercase=True)
    assert json.loads(result.stdout)["bleu"] == expected.bleu


@pytest.mark.slow
def test_resume_keeps_the_subword_models(tmp_path):
    config = demo_config(
        seed_example=False, seed=1, extra=[*SUBWORD_SETTINGS, "train.epochs=1"]
    )
    train(config, tmp_path, builtin_pairs())
    before = load_checkpoint(tmp_path / "last.pt")["subword_models"]
    (tmp_path / "spm.src.model").unlink()  # resume must not need it
    resumed = demo_config(
        seed_example=False, seed=1, extra=[*SUBWORD_SETTINGS, "train.epochs=2"]
    )
    result = train(resumed, tmp_path, resume=True)
    assert result.epochs_done == 2
    assert load_checkpoint(tmp_path / "last.pt")["subword_models"] == before


# ---------------------------------------------------------------- analysis


def test_word_pieces_and_their_mean():
    model = SubwordModel.train(ENGLISH, "unigram", 60)
    pieces = sorted({p for text in ENGLISH for p in model.encode(text)})
    rng = np.random.default_rng(0)
    table = EmbeddingTable(
        pieces, rng.normal(size=(len(pieces), 8)), np.ones(len(pieces))
    )
    counts = Counter({"walkers": 3, "cat": 5, "park.": 1, "鼹": 2})
    words = aggregate_words(table, model, counts)
    assert words.tokens[:2] == ["cat", "walkers"]  # by frequency
    assert "鼹" not in words  # its piece is <UNK>
    assert list(words.freqs[:2]) == [5, 3]
    walkers = word_pieces(model, "walkers")
    assert len(walkers) > 1 and walkers[0] != "▁"
    expected = np.mean([table.vector(p) for p in walkers], axis=0)
    np.testing.assert_allclose(words.vector("walkers"), expected, rtol=1e-6)


@pytest.mark.slow
def test_analysis_runs_on_pieces_and_on_words(sp_run, tmp_path):
    settings = AnalysisSettings(contextual=False, shaped_null_repeats=0, top_n=5)
    pieces = analyze_run(sp_run, settings)
    options = ["--no-contextual", "--shaped-repeats", "0", "--top", "5"]
    result = seqembed(
        "analyze", sp_run, *options, "--aggregate-words", "--out", tmp_path
    )
    assert result.returncode == 0, result.stderr
    words = json.loads((tmp_path / "analysis.json").read_text(encoding="utf-8"))
    for result in (pieces, words):
        jsonschema.validate(result, schema())
        json.dumps(result, allow_nan=False)
    assert words["settings"]["aggregate_words"] is True
    state = load_checkpoint(sp_run / "best.pt")
    tables = load_tables(state)
    split, as_words = training_tokens(sp_run, state), training_words(sp_run, state)
    assert len(split.pairs) == len(as_words.pairs)
    for side in ("src", "tgt"):
        piece_pairs = pieces["sides"][side]["similar_pairs"]["pairs"]
        word_pairs = words["sides"][side]["similar_pairs"]["pairs"]
        assert all(pair["a"] in tables[side] for pair in piece_pairs)
        # Word rows: the training text's words, not pieces.
        vocabulary = {w for s in getattr(as_words, side) for w in s}
        assert all(
            pair["a"] in vocabulary and "▁" not in pair["a"] for pair in word_pairs
        )
    assert "今天" in {w for s in as_words.src for w in s}
    assert words["sides"]["src"]["n_words"] != pieces["sides"]["src"]["n_words"]


def test_aggregating_needs_a_subword_run(seed_run):
    with pytest.raises(InputError, match="SentencePiece side"):
        analyze_run(seed_run, AnalysisSettings(aggregate_words=True))
