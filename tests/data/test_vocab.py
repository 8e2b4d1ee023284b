from seqembed.data.vocab import EOS, PAD, SOS, UNK, Vocab


def test_specials_have_fixed_indices():
    vocab = Vocab.build([["a"]])
    assert vocab.tokens[:4] == ["<PAD>", "<SOS>", "<EOS>", "<UNK>"]
    assert (PAD, SOS, EOS, UNK) == (0, 1, 2, 3)


def test_min_freq_and_max_size_keep_the_most_frequent():
    sentences = [["a", "b", "a", "c"], ["a", "b", "d"]]
    vocab = Vocab.build(sentences, min_freq=2)
    assert vocab.tokens[4:] == ["a", "b"]
    assert vocab.freqs[4:] == [3, 2]
    assert Vocab.build(sentences, max_size=5).tokens[4:] == ["a"]


def test_encode_unknown_and_decode_stops_at_eos():
    vocab = Vocab.build([["x", "y"]])
    ids = vocab.encode(["x", "zzz", "y"])
    assert ids[1] == UNK
    assert vocab.decode([SOS, *ids, EOS, vocab.index["x"]]) == ["x", "<UNK>", "y"]


def test_round_trip_through_dict_and_file(tmp_path):
    vocab = Vocab.build([["今天", "天气"], ["今天"]])
    assert Vocab.from_dict(vocab.to_dict()).tokens == vocab.tokens
    vocab.save(tmp_path / "v.tsv")
    lines = (tmp_path / "v.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[4] == "今天\t2"
