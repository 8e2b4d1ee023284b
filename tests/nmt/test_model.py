import pytest
import torch
from torch import nn

from seqembed.config import ModelConfig
from seqembed.data.batches import collate
from seqembed.data.vocab import PAD
from seqembed.nmt.model import Seq2Seq

SRC = [[5, 6, 7, 8, 9], [10, 11], [12, 13, 14]]
TGT = [[4, 5, 6], [7, 8, 9, 10, 11], [12]]


def make(attention="luong", bidirectional=True, input_feed=False, num_layers=1, **kw):
    torch.manual_seed(0)
    config = ModelConfig(
        emb_size=16,
        hidden_size=24,
        num_layers=num_layers,
        dropout=0.0,
        bidirectional=bidirectional,
        attention=attention,
        input_feed=input_feed,
        **kw,
    )
    return Seq2Seq.from_config(config, 20, 15).eval()


ALL = [
    dict(attention="none", bidirectional=False),
    dict(attention="none", bidirectional=True, num_layers=2),
    dict(attention="luong"),
    dict(attention="luong", luong_score="dot"),
    dict(attention="luong", input_feed=True),
    dict(attention="bahdanau", num_layers=2),
]


@pytest.mark.parametrize("kw", ALL)
def test_logit_shapes(kw):
    batch = collate(SRC, TGT)
    logits = make(**kw)(batch.src, batch.src_lengths, batch.tgt_in)
    assert logits.shape == (3, batch.tgt_in.size(1), 15)


def test_embeddings_use_padding_index_zero():
    model = make()
    for embedding in (model.encoder.embedding, model.decoder.embedding):
        assert embedding.padding_idx == PAD
        assert torch.all(embedding.weight[PAD] == 0)


@pytest.mark.parametrize("kw", ALL)
def test_packing_matches_no_packing(kw):
    """A sentence encoded alone equals the same sentence inside a padded batch,
    and the decoder's output for it does not depend on the padding."""
    model = make(**kw)
    batch = collate(SRC, TGT)
    with torch.no_grad():
        together = model(batch.src, batch.src_lengths, batch.tgt_in)
        for row in range(len(SRC)):
            alone = collate([SRC[row]], [TGT[row]])
            single = model(alone.src, alone.src_lengths, alone.tgt_in)
            steps = len(TGT[row]) + 1
            torch.testing.assert_close(
                together[row, :steps], single[0, :steps], atol=1e-5, rtol=1e-5
            )


@pytest.mark.parametrize("kw", [k for k in ALL if k["attention"] != "none"])
def test_attention_gives_padding_no_weight(kw):
    model = make(**kw)
    batch = collate(SRC, TGT)
    with torch.no_grad():
        source, state = model.encode(batch.src, batch.src_lengths)
        _, _, weights = model.decoder.step(batch.tgt_in[:, 0], state, source)
    assert weights.shape == (3, 5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3))
    assert torch.all(weights[~source.src_mask] == 0)


@pytest.mark.parametrize("kw", [dict(attention="none"), dict(attention="luong")])
def test_parallel_decoder_equals_step_by_step(kw):
    model = make(**kw)
    batch = collate(SRC, TGT)
    with torch.no_grad():
        fused = model(batch.src, batch.src_lengths, batch.tgt_in)
        source, state = model.encode(batch.src, batch.src_lengths)
        steps = []
        for t in range(batch.tgt_in.size(1)):
            logits, state, _ = model.decoder.step(batch.tgt_in[:, t], state, source)
            steps.append(logits)
    torch.testing.assert_close(fused, torch.stack(steps, 1), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kw", ALL)
def test_a_batch_can_be_overfitted(kw):
    model = make(**kw).train()
    batch = collate(SRC, TGT)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    criterion = nn.CrossEntropyLoss(ignore_index=PAD)
    for _ in range(250):
        optimizer.zero_grad()
        logits = model(batch.src, batch.src_lengths, batch.tgt_in)
        loss = criterion(logits.reshape(-1, 15), batch.tgt_out.reshape(-1))
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05


def test_bidirectional_final_state_has_decoder_size():
    model = make(attention="none", bidirectional=True, num_layers=2)
    batch = collate(SRC, TGT)
    source, (h, c, feed) = model.encode(batch.src, batch.src_lengths)
    assert h.shape == c.shape == (2, 3, 24)
    assert source.memory.shape == (3, 5, 24)
    assert feed is None


@pytest.mark.parametrize("kw", ALL)
def test_training_step_path_equals_decoding_path(kw):
    """With gradients on, decoder steps go through torch.lstm_cell; without,
    through nn.LSTM. Both must compute the same function."""
    model = make(**kw)  # eval mode: no dropout
    batch = collate(SRC, TGT)
    source, state = model.encode(batch.src, batch.src_lengths)
    with torch.enable_grad():
        cell, cell_state, _ = model.decoder.step(batch.tgt_in[:, 0], state, source)
    with torch.no_grad():
        fused, fused_state, _ = model.decoder.step(batch.tgt_in[:, 0], state, source)
    torch.testing.assert_close(cell, fused, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cell_state[0], fused_state[0], atol=1e-5, rtol=1e-5)
