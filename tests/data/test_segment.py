import pytest

from seqembed.cli.demo import builtin_user_dict
from seqembed.data.segment import ChineseSegmenter, EnglishTokenizer, normalize


@pytest.mark.slow
def test_jieba_needs_a_user_dictionary_for_the_design_segmentation():
    assert ChineseSegmenter("jieba")("今天天气很好") == ["今天天气", "很", "好"]
    with_dict = ChineseSegmenter("jieba", builtin_user_dict())
    assert with_dict("今天天气很好") == ["今天", "天气", "很", "好"]
    assert with_dict("人工智能改变世界") == ["人工", "智能", "改变", "世界"]


@pytest.mark.slow
def test_user_dictionary_does_not_leak_into_other_segmenters():
    ChineseSegmenter("jieba", builtin_user_dict())("今天天气很好")
    assert ChineseSegmenter("jieba")("今天天气很好") == ["今天天气", "很", "好"]


def test_pretokenized_text_is_kept_and_char_mode_splits_characters():
    assert ChineseSegmenter("pretokenized")("今天天 气很好") == ["今天天", "气很好"]
    assert ChineseSegmenter("char")("今天 好") == ["今", "天", "好"]


def test_normalisation_maps_full_width_forms():
    assert normalize("ＡＢＣ，  你好！") == "ABC, 你好!"


def test_moses_tokenise_lowercase_and_detokenise_round_trip():
    tokenizer = EnglishTokenizer("moses", lowercase=True)
    tokens = tokenizer.tokenize("I don't know, Tom.")
    assert tokens == ["i", "don", "'t", "know", ",", "tom", "."]
    assert tokenizer.detokenize(tokens) == "i don't know, tom."


def test_case_can_be_kept():
    assert EnglishTokenizer("moses", lowercase=False).tokenize("Hi Tom") == [
        "Hi",
        "Tom",
    ]


def test_sentence_internal_periods_are_split_before_lowercasing():
    tokenizer = EnglishTokenizer("moses", lowercase=True)
    tokens = tokenizer.tokenize("No, thank you. I'm full.")
    assert tokens == ["no", ",", "thank", "you", ".", "i", "'m", "full", "."]
    assert tokenizer.tokenize("Mr. Smith is here.")[:2] == ["mr.", "smith"]
