import pytest
import torch

from seqembed.data.batches import collate
from seqembed.data.prepare import read_splits
from seqembed.data.vocab import SOS
from seqembed.nmt.cpu import onednn
from seqembed.nmt.decoding import beam_search, greedy_decode
from seqembed.nmt.evaluation import Translator


def encoded_test_batch(translator, run_dir, n=24):
    pairs = read_splits(run_dir)["train"][:n] + read_splits(run_dir)["test"][:n]
    ids = [translator.src_vocab.encode(translator.segmenter(p.src)) for p in pairs]
    return collate(ids, [[] for _ in ids])


def test_beam_1_equals_greedy(builtin_run):
    translator = Translator.from_checkpoint(builtin_run)
    batch = encoded_test_batch(translator, builtin_run)
    greedy = greedy_decode(translator.model, batch.src, batch.src_lengths, 30)
    beam = beam_search(translator.model, batch.src, batch.src_lengths, 1, 30, alpha=0.0)
    assert [h.tokens for h in beam] == [h.tokens for h in greedy]
    torch.testing.assert_close(
        torch.tensor([h.score for h in beam]), torch.tensor([h.score for h in greedy])
    )


def test_beam_finds_at_least_greedy_probability(builtin_run):
    translator = Translator.from_checkpoint(builtin_run)
    batch = encoded_test_batch(translator, builtin_run)
    greedy = greedy_decode(translator.model, batch.src, batch.src_lengths, 30)
    beam = beam_search(translator.model, batch.src, batch.src_lengths, 5, 30, alpha=0.0)
    # Not a guarantee per sentence: the greedy prefix can fall out of the K
    # best, and a sentence ends once K hypotheses have ended, so beam search
    # occasionally returns less than greedy's probability. On the whole it
    # finds more.
    at_least = [b.score >= g.score - 1e-4 for g, b in zip(greedy, beam)]
    assert sum(at_least) >= 0.9 * len(at_least)
    assert sum(b.score for b in beam) > sum(g.score for g in greedy)


def test_batched_beam_equals_one_sentence_at_a_time(builtin_run):
    translator = Translator.from_checkpoint(builtin_run)
    batch = encoded_test_batch(translator, builtin_run, n=6)
    together = beam_search(translator.model, batch.src, batch.src_lengths, 4, 30)
    for row, hypothesis in enumerate(together):
        length = int(batch.src_lengths[row])
        alone = beam_search(
            translator.model,
            batch.src[row : row + 1, :length],
            batch.src_lengths[row : row + 1],
            4,
            30,
        )
        assert alone[0].tokens == hypothesis.tokens


def test_greedy_keeps_attention_for_each_output_word(builtin_run):
    translator = Translator.from_checkpoint(builtin_run)
    batch = encoded_test_batch(translator, builtin_run, n=3)
    for row, h in enumerate(
        greedy_decode(
            translator.model, batch.src, batch.src_lengths, 30, keep_attention=True
        )
    ):
        assert h.attention.shape == (len(h.tokens) + 1, batch.src.size(1))
        assert torch.all(h.attention[:, int(batch.src_lengths[row]) :] == 0)


@pytest.mark.bf16
def test_bf16_decoding_agrees_with_fp32_on_training_sentences(builtin_run):
    sentences = [p.src for p in read_splits(builtin_run)["train"][:40]]
    fp32 = Translator.from_checkpoint(builtin_run).translate(sentences, beam_size=3)
    bf16 = Translator.from_checkpoint(builtin_run, precision="bf16")
    same = sum(a == b for a, b in zip(fp32, bf16.translate(sentences, beam_size=3)))
    assert same >= 32  # bfloat16 keeps 8 bits of mantissa: near-ties may flip


def test_reordered_decoding_weights_translate_as_the_plain_step(builtin_run):
    translator = Translator.from_checkpoint(builtin_run)
    model, decoder = translator.model, translator.model.decoder
    batch = encoded_test_batch(translator, builtin_run)
    packed = decoder.decoding_weights()
    if not onednn.available():
        assert packed is None
        pytest.skip("oneDNN not available: the plain step is the only one")
    assert packed.output.is_mkldnn
    with torch.no_grad():
        source, state = model.encode(batch.src, batch.src_lengths)
        tokens = torch.full((batch.src.size(0),), SOS)
        for _ in range(4):
            plain, plain_state, _ = decoder.step(tokens, state, source)
            fast, fast_state, _ = decoder.step(tokens, state, source, packed)
            torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-4)
            for a, b in zip(fast_state, plain_state):
                if a is not None:
                    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
            tokens, state = plain.argmax(-1), plain_state
    results = {}
    for name, weights in (("fast", decoder.decoding_weights), ("plain", None)):
        if weights is None:
            decoder.decoding_weights = lambda: None  # the plain step
        results[name] = [
            [h.tokens for h in greedy_decode(model, batch.src, batch.src_lengths, 30)],
            [h.tokens for h in beam_search(model, batch.src, batch.src_lengths, 4, 30)],
        ]
    del decoder.decoding_weights
    assert results["fast"] == results["plain"]
    # Made afresh for each translation: after a fused Adam step (which does
    # not bump the parameters' versions) decoding follows the new weights.
    tokens = [translator.segmenter(p.src) for p in read_splits(builtin_run)["test"]]
    before = translator.translate_tokens(tokens)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05, fused=True)
    sum((p**2).sum() for p in model.parameters()).backward()  # shrink them all
    optimizer.step()
    after = translator.translate_tokens(tokens)
    decoder.decoding_weights = lambda: None  # the plain step
    assert translator.translate_tokens(tokens) == after != before
    del decoder.decoding_weights
    # training, and bf16 autocast, keep the plain step
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert decoder.decoding_weights() is None
    decoder.train()
    assert decoder.decoding_weights() is None
