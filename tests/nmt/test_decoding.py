"""Greedy and beam search, for both ``model.kernels``: decoding only calls
the decoder's step, which the CPU kernels make fast (reordered weights)."""

import pytest
import torch

from seqembed.data.batches import collate
from seqembed.data.prepare import read_splits
from seqembed.data.vocab import SOS
from seqembed.nmt.checkpoint import load_checkpoint
from seqembed.nmt.decoding import beam_search, greedy_decode
from seqembed.nmt.evaluation import Translator

# The searches with the fast kernels are slow-marked: in the quick loop
# test_fast_decoding_translates_as_the_reference checks them whole.
KERNELS = ["reference", pytest.param("auto", marks=pytest.mark.slow)]


def translator_with(run_dir, kernels: str, **decode_settings) -> Translator:
    """The run's model with the given kernels (it was trained with "auto")."""
    state = load_checkpoint(run_dir)
    state["config"]["model"]["kernels"] = kernels
    return Translator.from_state(state, **decode_settings)


def encoded_test_batch(translator, run_dir, n=24):
    pairs = read_splits(run_dir)["train"][:n] + read_splits(run_dir)["test"][:n]
    ids = [translator.src_vocab.encode(translator.segmenter(p.src)) for p in pairs]
    return collate(ids, [[] for _ in ids])


@pytest.mark.parametrize("kernels", KERNELS)
def test_beam_1_equals_greedy(builtin_run, kernels):
    translator = translator_with(builtin_run, kernels)
    batch = encoded_test_batch(translator, builtin_run)
    greedy = greedy_decode(translator.model, batch.src, batch.src_lengths, 30)
    beam = beam_search(translator.model, batch.src, batch.src_lengths, 1, 30, alpha=0.0)
    assert [h.tokens for h in beam] == [h.tokens for h in greedy]
    torch.testing.assert_close(
        torch.tensor([h.score for h in beam]), torch.tensor([h.score for h in greedy])
    )


@pytest.mark.parametrize("kernels", KERNELS)
def test_beam_finds_at_least_greedy_probability(builtin_run, kernels):
    translator = translator_with(builtin_run, kernels)
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


@pytest.mark.parametrize("kernels", KERNELS)
def test_batched_beam_equals_one_sentence_at_a_time(builtin_run, kernels):
    translator = translator_with(builtin_run, kernels)
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


@pytest.mark.parametrize("kernels", KERNELS)
def test_greedy_keeps_attention_for_each_output_word(builtin_run, kernels):
    translator = translator_with(builtin_run, kernels)
    batch = encoded_test_batch(translator, builtin_run, n=3)
    for row, h in enumerate(
        greedy_decode(
            translator.model, batch.src, batch.src_lengths, 30, keep_attention=True
        )
    ):
        assert h.attention.shape == (len(h.tokens) + 1, batch.src.size(1))
        assert torch.all(h.attention[:, int(batch.src_lengths[row]) :] == 0)


@pytest.mark.slow
@pytest.mark.bf16
def test_bf16_decoding_agrees_with_fp32_on_training_sentences(builtin_run):
    sentences = [p.src for p in read_splits(builtin_run)["train"][:40]]
    fp32 = Translator.from_checkpoint(builtin_run).translate(sentences, beam_size=3)
    bf16 = Translator.from_checkpoint(builtin_run, precision="bf16")
    same = sum(a == b for a, b in zip(fp32, bf16.translate(sentences, beam_size=3)))
    assert same >= 32  # bfloat16 keeps 8 bits of mantissa: near-ties may flip


def test_fast_decoding_translates_as_the_reference(builtin_run):
    """The CPU kernels' step (weights reordered for oneDNN) against the
    reference model's, step by step and over whole greedy and beam
    searches, on the same checkpoint."""
    fast, plain = (translator_with(builtin_run, k) for k in ("auto", "reference"))
    assert type(fast.model.decoder).__name__ == "FastDecoder"
    assert type(plain.model.decoder).__name__ == "Decoder"
    batch = encoded_test_batch(fast, builtin_run)
    with torch.no_grad():
        states = [t.model.encode(batch.src, batch.src_lengths) for t in (fast, plain)]
        tokens = torch.full((batch.src.size(0),), SOS)
        for _ in range(4):
            results = [
                t.model.decoder.step(tokens, state, source)
                for t, (source, state) in zip((fast, plain), states)
            ]
            (fast_logits, fast_state, _), (logits, state, _) = results
            torch.testing.assert_close(fast_logits, logits, rtol=1e-4, atol=1e-4)
            for a, b in zip(fast_state, state):
                if a is not None:
                    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
            tokens = logits.argmax(-1)
            states = [(states[0][0], fast_state), (states[1][0], state)]
    searches = {}
    for name, translator in (("fast", fast), ("plain", plain)):
        model = translator.model
        searches[name] = [
            [h.tokens for h in greedy_decode(model, batch.src, batch.src_lengths, 30)],
            [h.tokens for h in beam_search(model, batch.src, batch.src_lengths, 4, 30)],
        ]
    assert searches["fast"] == searches["plain"]


def test_reordered_weights_follow_the_parameters(builtin_run):
    """The reordered weights are made once and kept while the parameters
    stay the same; after a fused Adam step (which does not bump the
    parameters' versions), a load_state_dict or an in-place change,
    decoding follows the new weights, with or without a call to eval()."""
    translator = translator_with(builtin_run, "auto")
    model, decoder = translator.model, translator.model.decoder
    with torch.no_grad():
        packed = decoder.decoding_weights()
        if packed is None:
            pytest.skip("no oneDNN in this build: the reference step only")
        assert packed.output.is_mkldnn
        assert decoder.decoding_weights() is packed  # kept
    tokens = [translator.segmenter(p.src) for p in read_splits(builtin_run)["test"]]
    batch = encoded_test_batch(translator, builtin_run)
    before = translator.translate_tokens(tokens)
    before_greedy = [
        h.tokens for h in greedy_decode(model, batch.src, batch.src_lengths, 30)
    ]
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05, fused=True)
    sum((p**2).sum() for p in model.parameters()).backward()  # shrink them all
    optimizer.step()
    # Straight to decoding, no eval() in between: the optimizer step is seen.
    after_greedy = [
        h.tokens for h in greedy_decode(model, batch.src, batch.src_lengths, 30)
    ]
    after = translator.translate_tokens(tokens)
    plain = translator_with(builtin_run, "reference")
    plain.model.load_state_dict(model.state_dict())
    plain_greedy = greedy_decode(plain.model, batch.src, batch.src_lengths, 30)
    assert after_greedy == [h.tokens for h in plain_greedy] != before_greedy
    assert plain.translate_tokens(tokens) == after != before
    # load_state_dict, and in-place changes, bump the versions
    model.load_state_dict(load_checkpoint(builtin_run)["model"])
    assert translator.translate_tokens(tokens) == before
    word = 5  # the first word after the specials
    with torch.no_grad():
        decoder.output_projection.bias[word] += 100
    assert all(
        h.tokens[:1] == [word]
        for h in greedy_decode(model, batch.src, batch.src_lengths, 30)
    )


def test_reordered_weights_only_where_they_apply(builtin_run):
    """Training, gradients on, and bf16 autocast keep the reference step;
    train() frees the reordered weights, eval() keeps them."""
    decoder = translator_with(builtin_run, "auto").model.decoder
    assert decoder.decoding_weights() is None  # gradients on
    with torch.no_grad():
        if decoder.decoding_weights() is None:
            pytest.skip("no oneDNN in this build: no reordered weights")
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert decoder.decoding_weights() is None
        decoder.train()
        assert decoder.decoding_weights() is None
        assert decoder._decoding is None  # freed
        decoder.eval()
        packed = decoder.decoding_weights()
        assert packed is not None
        decoder.eval()
        assert decoder.decoding_weights() is packed
