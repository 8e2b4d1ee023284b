import dataclasses
import json
import logging

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


# ---------------------------------------------------------------- resume rule


def seed_config(*extra):
    return demo_config(seed_example=True, seed=7, extra=list(extra))


def test_resume_refuses_a_changed_setting_and_takes_those_it_may(tmp_path):
    from seqembed.errors import InputError

    train(seed_config("train.epochs=2"), tmp_path, seed_pairs())
    before = (tmp_path / "last.pt").read_bytes()
    with pytest.raises(InputError) as info:
        train(seed_config("train.epochs=3", "train.lr=0.01"), tmp_path, resume=True)
    message = str(info.value)
    assert message == (
        f"{tmp_path}: a resumed run keeps its settings: train.lr is 0.01 here but "
        "0.001 in the run (only train.epochs, train.max_minutes, train.precision, "
        "train.device, train.deterministic, decode.device may change on resume)"
    )
    assert (tmp_path / "last.pt").read_bytes() == before  # nothing trained
    result = train(
        seed_config("train.epochs=3", "train.max_minutes=5", "train.precision=auto"),
        tmp_path,
        resume=True,
    )
    assert result.epochs_done == 3
    saved = load_checkpoint(tmp_path / "last.pt")["config"]["train"]
    assert (saved["epochs"], saved["max_minutes"]) == (3, 5.0)
    assert saved["precision"] in ("fp32", "bf16")  # auto, resolved


def test_resume_config_names_every_key_that_differs():
    from seqembed.config import load_config
    from seqembed.errors import InputError
    from seqembed.nmt.resume import MAY_CHANGE, resume_config

    saved = load_config(None, ["train.epochs=3"])
    given = load_config(None, ["train.epochs=9", "train.seed=2", "model.dropout=0"])
    with pytest.raises(InputError) as info:
        resume_config(saved, given)
    assert "model.dropout is 0.0 here but 0.3 in the run; so do train.seed" in str(
        info.value
    )
    assert MAY_CHANGE == (
        "train.epochs",
        "train.max_minutes",
        "train.precision",
        "train.device",
        "train.deterministic",
        "decode.device",
    )
    ok = load_config(None, ["train.epochs=9", "train.max_minutes=2"])
    resumed = resume_config(saved, ok)
    assert (resumed.train.epochs, resumed.train.max_minutes) == (9, 2.0)


def test_resume_with_another_user_dictionary_is_refused(tmp_path):
    from seqembed.errors import InputError

    train(seed_config("train.epochs=1"), tmp_path, seed_pairs())
    with pytest.raises(InputError, match="the user dictionary given differs"):
        train(seed_config("train.epochs=2"), tmp_path, resume=True, user_dict="x 3")


def test_cli_resume_with_a_changed_setting_is_one_line(tmp_path):
    from helpers import assert_clean_error, seqembed

    from seqembed.cli.demo import SEED_EXAMPLE_SETTINGS

    corpus = tmp_path / "seed.tsv"
    corpus.write_text("".join(f"{en}\t{zh}\n" for zh, en in SEED_PAIRS))
    sets = [a for s in SEED_EXAMPLE_SETTINGS for a in ("--set", s)]
    run = tmp_path / "run"
    first = seqembed("train", corpus, "--out", run, *sets, "--epochs", "1")
    assert first.returncode == 0, first.stderr
    again = seqembed("--quiet", "train", "--out", run, "--resume", "--epochs", "2",
                     "--set", "train.lr=0.01")  # fmt: skip
    assert_clean_error(again, "train.lr is 0.01 here but 0.001 in the run")


def test_old_checkpoint_counters_resume_as_the_uninterrupted_run(tmp_path):
    """Counters saved as a dict by an older version, without the newer ones:
    read into the dataclass, missing ones at their start values."""
    from helpers import assert_same_state

    from seqembed.nmt.checkpoint import save_checkpoint
    from seqembed.nmt.session import Counters

    train(seed_config("train.epochs=3"), tmp_path / "straight", seed_pairs())
    train(seed_config("train.epochs=2"), tmp_path / "old", seed_pairs())
    state = load_checkpoint(tmp_path / "old" / "last.pt")
    for newer in (
        "epoch_loss_sum",
        "epoch_tokens",
        "skipped_steps",
        "nonfinite_in_row",
    ):
        del state["counters"][newer]
    save_checkpoint(state, tmp_path / "old" / "last.pt")
    train(seed_config("train.epochs=3"), tmp_path / "old", resume=True)
    assert_same_state(tmp_path / "old" / "last.pt", tmp_path / "straight" / "last.pt")
    counters = load_checkpoint(tmp_path / "old" / "last.pt")["counters"]
    assert set(counters) == {f.name for f in dataclasses.fields(Counters)}
    assert counters["epoch"] == 4 and counters["skipped_steps"] == 0
    assert Counters.from_dict({"epoch": 2, "gone": 1}) == Counters(epoch=2)


# ---------------------------------------------------------------- user_dict


def test_data_user_dict_in_the_config_is_read_by_train(builtin_run, tmp_path):
    from seqembed.cli.demo import builtin_pairs, resource_path

    path = resource_path("builtin_userdict.txt")
    extra = ["train.epochs=1", f"data.user_dict={path}"]
    config = demo_config(seed_example=False, seed=3, extra=extra)
    train(config, tmp_path, builtin_pairs())
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["user_dict"] == path.read_text(encoding="utf-8")
    # The same segmentation as the run given the dictionary's text.
    vocab = (tmp_path / "vocab.src.tsv").read_text(encoding="utf-8")
    assert vocab == (builtin_run / "vocab.src.tsv").read_text(encoding="utf-8")
    words = {line.split()[0] for line in path.read_text("utf-8").splitlines()}
    tokens = {line.split("\t")[0] for line in vocab.splitlines()}
    # words jieba's own dictionary does not segment out of this corpus
    assert {"一封", "下个"} <= words & tokens


def test_a_missing_user_dict_file_is_one_line(tmp_path):
    from seqembed.errors import InputError

    config = seed_config(f"data.user_dict={tmp_path / 'none.txt'}")
    with pytest.raises(InputError, match="none.txt: file not found"):
        train(config, tmp_path / "run", seed_pairs())


# ---------------------------------------------------------------- nothing to train


@pytest.mark.parametrize(
    "setting, message",
    [
        ("data.max_tokens=1", "no training pairs left: all 5 are longer than "
         "data.max_tokens=1"),
        ("vocab.min_freq=9", "the source vocabulary would hold only the special "
         "tokens: no source token occurs vocab.min_freq=9 times"),
        ("vocab.max_size=4", "vocab.max_size=4 leaves no room beside the 4 special "
         "tokens"),
        ("model.hidden_size=65536", "more than the"),
    ],
)  # fmt: skip
def test_settings_that_leave_nothing_to_train_fail_before_training(
    tmp_path, setting, message
):
    from seqembed.errors import InputError

    extra = [setting, "model.emb_size=65536"] if "hidden" in setting else [setting]
    with pytest.raises(InputError) as info:
        train(seed_config(*extra), tmp_path, seed_pairs())
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "last.pt").exists()


def test_held_out_splits_that_take_every_pair_are_one_line(tmp_path):
    from seqembed.data.corpus import Pair
    from seqembed.errors import InputError

    pairs = [Pair("你好", "hello", 1), Pair("再见", "goodbye", 2)]
    config = seed_config("data.heldout_fraction=0.5")
    with pytest.raises(InputError, match="the held-out splits took all 2 distinct"):
        train(config, tmp_path, pairs)


def test_a_cached_split_without_validation_pairs_names_the_keys(tmp_path):
    from seqembed.errors import InputError

    config = seed_config("data.cache_min_pairs=1", "data.tokenize_processes=1")
    with pytest.raises(InputError) as info:
        train(config, tmp_path, seed_pairs())
    assert "no validation pairs (data.valid_size=1000, data.heldout_fraction=0)" in (
        str(info.value)
    )
    assert "data.cache_min_pairs=1" in str(info.value)


def test_no_validation_pairs_warns_where_early_stopping_needs_them(tmp_path, caplog):
    train(seed_config("train.epochs=1", "train.patience=2"), tmp_path, seed_pairs())
    warnings = [r for r in caplog.records if "no validation pairs" in r.message]
    assert [r.levelname for r in warnings] == ["WARNING"]
    assert warnings[0].message == (
        "no validation pairs (data.valid_size=1000, data.heldout_fraction=0): "
        "early stopping (train.patience=2) and best.pt follow the bleu on the 5 "
        "training pairs instead"
    )
    caplog.clear()
    caplog.set_level(logging.INFO, logger="seqembed")
    train(seed_config("train.epochs=1"), tmp_path / "b", seed_pairs())  # patience 0
    levels = [r.levelname for r in caplog.records if "no validation" in r.message]
    assert levels == ["INFO"]


def test_train_checks_a_config_built_in_python(tmp_path):
    from seqembed.errors import InputError

    config = seed_config()
    bad = dataclasses.replace(config, train=dataclasses.replace(config.train, lr=0.0))
    with pytest.raises(InputError, match="train.lr must be > 0, got 0"):
        train(bad, tmp_path, seed_pairs())


def test_a_run_saved_under_wider_ranges_still_resumes_from_the_cli(tmp_path):
    """A run started when a range was wider (here a negative seed, refused
    now) resumes: its config.yaml and checkpoint are read with the ranges of
    their time, and only what is given again is checked against today's."""
    from seqembed.cli.main import main
    from seqembed.config import SAVED, from_dict, save_config
    from seqembed.nmt.checkpoint import save_checkpoint

    run = tmp_path / "run"
    train(seed_config("train.epochs=1"), run, seed_pairs())
    state = load_checkpoint(run / "last.pt")
    state["config"]["train"]["seed"] = -3
    save_checkpoint(state, run / "last.pt")
    save_config(from_dict(state["config"], SAVED), run / "config.yaml")
    assert main(["train", "--out-dir", str(run), "--resume", "--epochs", "2"]) == 0
    assert load_checkpoint(run / "last.pt")["counters"]["epoch"] == 3
    again = ["train", "--out-dir", str(run), "--resume", "--set", "train.seed=-4"]
    assert main(again) == 2  # train.seed must be >= 0 (one line, as ever)


def test_cli_user_dict_goes_into_the_config_and_the_checkpoint(tmp_path):
    from seqembed.cli.demo import SEED_EXAMPLE_SETTINGS
    from seqembed.cli.main import main
    from seqembed.config import read_run_config

    corpus = tmp_path / "seed.tsv"
    corpus.write_text("".join(f"{en}\t{zh}\n" for zh, en in SEED_PAIRS))
    words = tmp_path / "words.txt"
    words.write_text("自然语言 10\n", encoding="utf-8")
    sets = [a for s in SEED_EXAMPLE_SETTINGS for a in ("--set", s)]
    run = tmp_path / "run"
    argv = ["train", str(corpus), "--out-dir", str(run), *sets, "--epochs", "1",
            "--user-dict", str(words)]  # fmt: skip
    assert main(argv) == 0
    assert read_run_config(run / "config.yaml").data.user_dict == str(words)
    assert load_checkpoint(run / "last.pt")["user_dict"] == "自然语言 10\n"
    # Given again on resume it is the run's own; another one is refused.
    resume = ["train", "--out-dir", str(run), "--resume", "--epochs", "2"]
    assert main([*resume, "--user-dict", str(words)]) == 0
    assert main([*resume, "--user-dict", str(corpus)]) == 2
