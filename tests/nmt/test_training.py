import json

import pytest
import torch

from seqembed.cli.demo import SEED_PAIRS, demo_config, seed_pairs
from seqembed.nmt.checkpoint import load_checkpoint
from seqembed.nmt.evaluation import Translator
from seqembed.nmt.training import train


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 3, 4, 5])
def test_seed_example_learns_all_five_pairs_for_every_seed(tmp_path, seed):
    result = train(demo_config(seed_example=True, seed=seed), tmp_path, seed_pairs())
    metrics = [
        json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()
    ]
    assert len(metrics) == 50
    assert metrics[0]["train_loss"] > 1.0
    assert result.final_metrics["train_loss"] < 0.1
    translator = Translator.from_checkpoint(tmp_path / "last.pt")
    assert translator.translate([zh for zh, _ in SEED_PAIRS]) == [
        en for _, en in SEED_PAIRS
    ]


@pytest.mark.slow
@pytest.mark.bf16
def test_bf16_autocast_training_learns_the_seed_example_and_keeps_fp32_weights(
    tmp_path,
):
    config = demo_config(seed_example=True, seed=2, extra=["train.precision=bf16"])
    result = train(config, tmp_path, seed_pairs())
    assert result.final_metrics["train_loss"] < 0.2
    state = load_checkpoint(tmp_path / "last.pt")
    assert all(
        t.dtype == torch.float32
        for t in state["model"].values()
        if t.is_floating_point()
    )
    translator = Translator.from_checkpoint(tmp_path / "last.pt")
    outputs = translator.translate([zh for zh, _ in SEED_PAIRS])
    assert sum(o == en for o, (_, en) in zip(outputs, SEED_PAIRS)) >= 4


def test_seed_run_directory_holds_everything(seed_run):
    names = {p.name for p in seed_run.iterdir()}
    assert {
        "last.pt",
        "best.pt",
        "config.yaml",
        "vocab.src.tsv",
        "vocab.tgt.tsv",
        "metrics.jsonl",
        "tensorboard",
        "embeddings",
        "data",
    } <= names
    assert len(list((seed_run / "embeddings").glob("epoch-*.pt"))) == 51
    assert list((seed_run / "tensorboard").glob("events.out.tfevents.*"))


def test_checkpoint_is_plain_data_with_initial_embeddings(seed_run):
    state = torch.load(seed_run / "last.pt", weights_only=True)
    assert state["config"]["model"]["emb_size"] == 64
    initial, trained = (
        state["initial_embeddings"]["src"],
        state["model"]["encoder.embedding.weight"],
    )
    assert initial.shape == trained.shape == (len(state["src_vocab"]["tokens"]), 64)
    assert not torch.equal(initial, trained)
    assert torch.all(initial[0] == 0)
    assert state["counters"]["epoch"] == 51


@pytest.mark.slow
def test_save_load_gives_the_same_translations(builtin_run, tmp_path):
    translator = Translator.from_checkpoint(builtin_run / "best.pt")
    sentences = ["我爱自然语言处理", "今天天气很好", "我们明天去北京", ""]
    before = translator.translate(sentences, beam_size=3)
    reloaded = Translator.from_checkpoint(builtin_run)
    assert reloaded.translate(sentences, beam_size=3) == before
    assert reloaded.translate(sentences) == translator.translate(sentences)


@pytest.mark.slow
def test_resume_continues_to_the_same_parameters(tmp_path):
    config = demo_config(seed_example=True, seed=7, extra=["train.epochs=6"])
    train(config, tmp_path / "straight", seed_pairs())
    short = demo_config(seed_example=True, seed=7, extra=["train.epochs=3"])
    train(short, tmp_path / "resumed", seed_pairs())
    train(config, tmp_path / "resumed", resume=True)
    straight = load_checkpoint(tmp_path / "straight" / "last.pt")["model"]
    resumed = load_checkpoint(tmp_path / "resumed" / "last.pt")["model"]
    for name in straight:
        assert torch.equal(straight[name], resumed[name]), name


def test_validation_leaves_dropout_on_for_training(tmp_path):
    """Validation decodes in eval mode; training must get its dropout back."""
    from seqembed.nmt.training import start_session, validate

    config = demo_config(seed_example=True, seed=1, extra=["model.dropout=0.5"])
    session = start_session(config, tmp_path, seed_pairs(), False, None)
    session.model.train()
    validate(session)
    assert session.model.training
    assert all(m.training for m in session.model.modules())


def test_skipped_training_pairs_leave_pairs_and_tokens_aligned():
    """Without a validation split, validation BLEU uses the training pairs:
    their references must stay aligned with their tokens after skips."""
    from seqembed.data.corpus import Pair, SkipCounts
    from seqembed.data.prepare import tokenize_splits
    from seqembed.data.segment import ChineseSegmenter, EnglishTokenizer

    config = demo_config(seed_example=True, seed=1, extra=["data.max_tokens=3"])
    pairs = [Pair("我 爱 你", "I love you", 1), Pair("一 二 三 四", "one", 2),
             Pair("好", "good", 3)]  # fmt: skip
    skips = SkipCounts()
    split = tokenize_splits(
        {"train": pairs}, config, ChineseSegmenter("pretokenized"),
        EnglishTokenizer("pretokenized", False), skips,
    )["train"]  # fmt: skip
    assert skips.summary() == "skipped 1 line: 1 too long"
    assert [p.tgt for p in split.pairs] == ["I love you", "good"]
    assert split.tgt == [["I", "love", "you"], ["good"]]


def test_clip_gradients_equals_clip_grad_norm():
    from torch import nn

    from seqembed.nmt.training import clip_gradients

    for scale in (0.01, 0.1, 100.0, float("nan")):
        torch.manual_seed(0)
        models = [nn.Sequential(nn.Linear(50, 40), nn.Linear(40, 3)) for _ in "ab"]
        models[1].load_state_dict(models[0].state_dict())
        x = torch.randn(8, 50)
        for model in models:
            (model(x).sum() * scale).backward()
        expected = float(nn.utils.clip_grad_norm_(models[0].parameters(), 5.0))
        norm = clip_gradients(models[1], 5.0)
        if scale != scale:  # nan: the step is skipped, the gradients dropped
            assert norm != norm and expected != expected
            continue
        assert norm == expected
        assert (expected > 5.0) == (scale == 100.0)  # both sides of the limit
        for a, b in zip(models[0].parameters(), models[1].parameters()):
            assert torch.equal(a.grad, b.grad)
