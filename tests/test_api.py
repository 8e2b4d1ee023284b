"""The Python API as a notebook uses it: ``import seqembed`` and the example
of the README, on the demo run (the model ``seqembed demo`` trains) and on
the design document's seed example."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings

import jsonschema
import numpy as np
import pytest
import torch

import seqembed
from seqembed.analysis.run import builtin_groups, schema
from seqembed.cli.demo import SEED_PAIRS, builtin_pairs, builtin_user_dict, demo_config
from seqembed.data.batches import collate
from seqembed.nmt.training import train as train_loop
from seqembed.vectors.null import expected_top_scores


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """What ``seqembed demo`` trains: its config, seed 1, the built-in corpus."""
    run_dir = tmp_path_factory.mktemp("demo")
    config = demo_config(seed_example=False, seed=1)
    train_loop(config, run_dir, builtin_pairs(), user_dict=builtin_user_dict())
    return run_dir


@pytest.fixture(scope="module")
def run(demo_run):
    return seqembed.load_run(demo_run)


@pytest.mark.slow
def test_import_is_light_and_lists_the_api():
    code = (
        "import sys, seqembed\n"
        "assert 'torch' not in sys.modules, 'import seqembed loaded torch'\n"
        "print(' '.join(dir(seqembed)))\n"
        "from seqembed import Translator, load_run, UnknownWordError\n"
        "print(load_run.__module__, Translator.__module__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    names, modules = done.stdout.splitlines()
    expected = {"load_run", "train", "analyze", "plot_map", "EmbeddingTable",
                "UnknownWordError", "InputError", "Run", "AnalysisResult"}  # fmt: skip
    assert expected <= set(names.split())
    assert set(names.split()) == set(seqembed.__all__)
    assert modules == "seqembed.api.runs seqembed.nmt.evaluation"
    with pytest.raises(AttributeError, match="no attribute 'Translater'"):
        seqembed.Translater  # noqa: B018


@pytest.mark.slow
def test_the_readme_example_runs_on_the_demo_run(run, demo_run, tmp_path):
    """The README's ten lines, as written, with the demo corpus' words where
    the example's are not in its vocabulary (those raise UnknownWordError)."""
    assert isinstance(run, seqembed.Run) and run.path == demo_run
    assert isinstance(run.translate("今天天气很好"), str)
    assert run.translate("今天天气很好") == "today weather is good"  # a training pair
    many = run.translate(["我爱你。", "你好"], beam=5)
    assert isinstance(many, list) and len(many) == 2
    t = run.translate_detailed("量子计算机")
    assert t.unknown == ["量子", "计算机"] and t.text == run.translate("量子计算机")
    assert t.log_prob < 0 and t.attention.weights.shape == (len(t.tgt_tokens) + 1, 2)

    neighbours = run.src.most_similar("天气", topn=10)
    assert len(neighbours) == 10 and all(isinstance(c, float) for _, c in neighbours)
    for words in (["国王", "女人"], ["男人"]):
        with pytest.raises(seqembed.UnknownWordError, match="not in the src"):
            run.src.most_similar(positive=words)
    analogy = run.src.most_similar(positive=["今天", "晴天"], negative=["天气"])
    assert {"今天", "晴天", "天气"}.isdisjoint(w for w, _ in analogy)
    with pytest.raises(KeyError, match="'cat' is not in the tgt vocabulary"):
        run.tgt.doesnt_match(["cat", "dog", "car"])
    odd = run.tgt.doesnt_match(["rain", "snow", "cold", "computer"])
    unit = np.array(
        [run.tgt.vector(w, norm=True) for w in ["rain", "snow", "cold", "computer"]]
    )
    mean = unit.mean(axis=0)
    assert odd == ["rain", "snow", "cold", "computer"][int(np.argmin(unit @ mean))]
    with pytest.raises(KeyError, match="'猫'"):
        run.src.similarity("猫", "狗")
    assert -1 <= run.src.similarity("下雨", "下雪") <= 1
    assert run.src["天气"].shape == (64,) and "天气" in run.src
    assert "量子" not in run.src and "<UNK>" not in run.src
    before = run.initial.src.similarity("下雨", "下雪")
    assert before != pytest.approx(run.src.similarity("下雨", "下雪"), abs=1e-3)

    result = seqembed.analyze(run, groups="builtin")
    above = result.findings_above_chance()
    assert above and all(f.above_chance and f.p_adjusted <= 0.05 for f in above)
    path = result.to_json(tmp_path / "analysis.json")
    jsonschema.validate(json.loads(path.read_text(encoding="utf-8")), schema())
    fig = seqembed.plot_map(run, groups="builtin")
    assert type(fig).__name__ == "Figure"


@pytest.mark.slow
def test_translate_takes_a_str_or_a_list(run):
    sentence = "今天天气很好"
    one = run.translate(sentence)
    assert one == run.translate([sentence])[0] == run.translator.translate(sentence)
    assert "\n" not in one and len(one.split()) < len(sentence)  # not per character
    assert run.translate(("我爱你。", "")) == [run.translate("我爱你。"), ""]
    with pytest.raises(TypeError, match="str or a list of str"):
        run.translate([sentence, 3])
    with pytest.raises(TypeError, match="one sentence"):
        run.translate_detailed([sentence])


@pytest.mark.slow
@pytest.mark.parametrize("beam", [1, 5])
def test_translate_detailed_scores_the_translation_as_the_model_does(run, beam):
    t = run.translate_detailed("我们明天去北京", beam=beam)
    assert t.text == run.translate("我们明天去北京", beam=beam)
    assert t.beam_size == beam and t.src_tokens == ["我们", "明天", "去", "北京"]
    assert t.unknown == [w for w in t.src_tokens if w not in run.src]
    # The same log-probability from the training forward pass (teacher forcing).
    model, vocab = run.translator.model, run.translator.tgt_vocab
    src_ids = run.translator.src_vocab.encode(t.src_tokens)
    tgt_ids = [vocab.index[w] for w in t.tgt_tokens]
    batch = collate([src_ids], [tgt_ids])
    with torch.no_grad():
        logits = model.logits(batch.src, batch.src_lengths, batch.tgt_in)[0]
    log_probs = torch.log_softmax(logits, dim=-1)
    expected = log_probs[torch.arange(len(tgt_ids) + 1), batch.tgt_out[0]].sum()
    assert t.log_prob == pytest.approx(float(expected), abs=1e-4)
    weights = t.attention.weights
    assert t.attention.tgt_tokens == [*t.tgt_tokens, "<EOS>"]
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)
    assert t.attention.src_known == [w in run.src for w in t.src_tokens]


def test_translate_detailed_of_nothing_and_of_a_model_without_attention(seed_run):
    run = seqembed.load_run(seed_run)
    empty = run.translate_detailed("   ")
    assert (empty.text, empty.src_tokens, empty.attention) == ("", [], None)
    t = run.translate_detailed("今天 天气 很 好")
    assert t.text == "Today weather is good" and t.attention is None
    assert t.unknown == [] and t.log_prob < 0


def test_the_example_on_the_seed_example(seed_run):
    run = seqembed.load_run(seed_run / "last.pt")
    assert run.translate([zh for zh, _ in SEED_PAIRS]) == [en for _, en in SEED_PAIRS]
    assert run.translate("机器 学习 很 有趣") == "Machine learning is interesting"
    assert run.src.most_similar("学习", topn=3, chance=True)[0][2] == pytest.approx(
        expected_top_scores(1, len(run.src) - 1, 64)[0]
    )
    # The design's model barely moves its vectors: before and after agree.
    trained, initial = (
        run.src.similarity("机器", "学习"),
        run.initial.src.similarity("机器", "学习"),
    )
    assert trained == pytest.approx(initial, abs=0.05)
    pairs = [
        "我-爱",
        ("今天", "天气"),
        "天气-好",
        "机器,学习",
        "深度-学习",
        "人工-智能",
    ]
    result = seqembed.analyze(run, groups="design", pairs=pairs, side="src",
                              top_n=8, alignment=False)  # fmt: skip
    # What `seqembed demo --seed-example` reports: 0 of 23 tests above chance.
    assert result.findings_above_chance() == [] and len(result.findings) == 23
    assert {f.side for f in result.findings} == {"src"}
    subjects = [f.subject for f in result.findings]
    assert "pair 我-爱 cosine" in subjects and "pair 机器-学习 cosine" in subjects


@pytest.mark.slow
def test_tables_and_specials(run):
    full = run.tables(specials=True)
    assert full.src.index_to_key[:4] == ["<PAD>", "<SOS>", "<EOS>", "<UNK>"]
    assert len(full.src) == len(run.src) + 4
    assert run.out is not None and len(run.out) == len(run.tgt)
    np.testing.assert_array_equal(full.src["天气"], run.src["天气"])
    assert run.initial.tgt.dim == run.tgt.dim
    assert run.tables(initial=True).src.index_to_key == run.initial.src.index_to_key
    assert run.metrics()[-1]["epoch"] == 40 and "valid_bleu" in run.metrics()[0]


@pytest.mark.slow
def test_load_run_errors_are_one_line_input_errors(run, demo_run, tmp_path):
    with pytest.raises(seqembed.InputError, match="file not found"):
        seqembed.load_run(tmp_path / "nothing")
    with pytest.raises(seqembed.InputError, match="no checkpoint"):
        seqembed.load_run(tmp_path)
    with pytest.raises(seqembed.InputError, match="decode.beam_size must be > 0"):
        seqembed.load_run(demo_run, beam_size=0)
    with pytest.raises(seqembed.InputError, match="unknown key 'decode.beem_size'"):
        seqembed.load_run(demo_run, beem_size=4)
    five = seqembed.load_run(demo_run, beam_size=5)
    assert five.translate("我爱你。") == run.translate("我爱你。", beam=5)
    on_cpu = seqembed.load_run(demo_run, device="cpu")
    assert on_cpu.translate("我爱你。") == run.translate("我爱你。")
    if not torch.cuda.is_available():
        with pytest.raises(
            seqembed.InputError, match="--device cuda: no CUDA device here"
        ):
            seqembed.load_run(demo_run, device="cuda")
    events = []
    seqembed.load_run(demo_run, progress=events.append)
    assert [(e.stage, e.done, e.total) for e in events] == [
        ("load", 0, 1),
        ("load", 1, 1),
    ]


@pytest.mark.slow
def test_analyze_reports_progress_typed_findings_and_writes_files(run, tmp_path):
    events = []
    result = seqembed.analyze(
        run.path, side="tgt", contextual=False, movement=False,
        shaped_null_repeats=0, progress=events.append,
    )  # fmt: skip
    assert [e.message for e in events] == ["analysing tgt", "analysing alignment"]
    tests = result.data["sides"]["tgt"]["findings"]["tests"]
    tgt = [f for f in result.findings if f.side == "tgt"]
    assert [(f.subject, f.value, f.p_adjusted) for f in tgt] == [
        (t["subject"], t["value"], t["p_adjusted"]) for t in tests
    ]
    assert {f.verdict for f in tgt} <= {"above chance", "not above chance"}
    assert [f.side for f in result.findings if f.figure == "alignment"] == [
        "alignment"
    ] * len(result.data["alignment"]["findings"])
    assert "tgt:" in result.summary()
    json_path, md_path = result.save(tmp_path / "analysis")
    again = seqembed.AnalysisResult.from_json(json_path)
    assert again.findings == result.findings
    assert md_path.read_text(encoding="utf-8") == result.to_markdown()
    with pytest.raises(seqembed.InputError, match="unknown option 'top'"):
        seqembed.analyze(run, top=5)
    with pytest.raises(seqembed.InputError, match="side must be"):
        seqembed.analyze(run, side="left")
    with pytest.raises(seqembed.InputError, match="not a seqembed analysis"):
        (tmp_path / "x.json").write_text("{}", encoding="utf-8")
        seqembed.AnalysisResult.from_json(tmp_path / "x.json")


@pytest.mark.slow
def test_plot_map_draws_chinese_labels_and_colours_by_verdict(run, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph would warn
        fig = seqembed.plot_map(run, groups="builtin", method="pca")
        fig.savefig(tmp_path / "map.png")
    labels = {t.get_text() for t in fig.axes[0].texts} - {"<SOS>", "<EOS>", "<UNK>"}
    # Colouring by group labels the group members first: more than 40 of
    # them are in the demo's vocabulary, so every label is a member's.
    members = {w for words in builtin_groups().values() for w in words}
    assert "天气" in labels and len(labels) > 20
    assert labels <= members
    legend = {t.get_text() for t in fig.axes[0].get_legend().get_texts()}
    assert "weather" in legend
    assert (tmp_path / "map.png").stat().st_size > 10_000
    result = seqembed.analyze(run, contextual=False, movement=False, alignment=False)
    chance = seqembed.plot_map(run, color="chance", analysis=result, method="pca")
    legend = {t.get_text() for t in chance.axes[0].get_legend().get_texts()}
    assert any("above chance" in text for text in legend)
    with pytest.raises(seqembed.InputError, match="colouring by group needs"):
        seqembed.plot_map(run.path, color="group")


@pytest.mark.slow
def test_train_logs_reports_progress_and_never_prints(tmp_path, capfd):
    pairs = [(p.src, p.tgt) for p in builtin_pairs()[:120]]
    events = []
    run = seqembed.train(
        pairs, tmp_path / "new", epochs=2, progress=events.append,
        **{"model.emb_size": 16, "model.hidden_size": 32, "data.valid_size": 10,
           "data.test_size": 10, "vocab.min_freq": 1, "train.batch_size": 16},
    )  # fmt: skip
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert isinstance(run, seqembed.Run) and run.config.model.emb_size == 16
    assert (
        run.training.stopped_because == "epoch limit" and run.training.epochs_done == 2
    )
    epochs = [e for e in events if e.stage == "epoch"]
    assert [(e.done, e.total) for e in epochs] == [(1, 2), (2, 2)]
    assert epochs[-1].metrics == run.metrics()[-1]
    steps = [e for e in events if e.stage == "step"]
    assert steps and steps[-1].done == steps[-1].total
    assert isinstance(run.translate("我爱你。"), str)
    # resume: two more epochs, with the run's own settings
    again = seqembed.train(None, tmp_path / "new", resume=True, epochs=4)
    assert again.training.epochs_done == 4 and again.config.model.emb_size == 16


def test_train_refuses_bad_settings_by_name(tmp_path):
    tsv = seqembed.builtin_corpus()
    cases = [
        ({"model.colour": "red"}, "unknown key 'model.colour'"),
        ({"model.emb_size": "big"}, "model.emb_size must be int, got 'big'"),
        ({"train.epochs": 0}, "train.epochs must be > 0"),
    ]
    for settings, message in cases:
        with pytest.raises(seqembed.InputError, match=message):
            seqembed.train(tsv, tmp_path / "bad", **settings)
    with pytest.raises(seqembed.InputError, match="file not found"):
        seqembed.train(tmp_path / "missing.tsv", tmp_path / "bad")
    with pytest.raises(seqembed.InputError, match="two strings"):
        seqembed.train([("我", "I", "extra")], tmp_path / "bad")
    with pytest.raises(seqembed.InputError, match="nothing to resume"):
        seqembed.train(None, tmp_path / "bad", resume=True)
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_the_readme_example_as_written_on_a_short_tatoeba_run(tatoeba_tsv, tmp_path):
    """Every line of the README's example, word for word, on a Tatoeba run
    (a short one: the vocabulary, not the quality, is what the words need)."""
    # Small and short; words seen 4 times or more (国王: 8) keep the analysis
    # and the t-SNE map at about 3,000 words.
    small = {"model.emb_size": 32, "model.hidden_size": 64, "vocab.min_freq": 4,
             "train.valid_bleu_max": 50}  # fmt: skip
    new = seqembed.train(tatoeba_tsv, tmp_path / "zh-en", max_minutes=0.1,
                         **{"model.attention": "luong", **small})  # fmt: skip
    assert new.training.stopped_because == "time budget (0.1 min)"

    run = seqembed.load_run(tmp_path / "zh-en")
    assert isinstance(run.translate("今天天气很好"), str)
    assert len(run.translate(["我爱你。", "你好"], beam=5)) == 2
    t = run.translate_detailed("量子计算机")
    assert "量子" in t.unknown and t.attention is not None and t.log_prob < 0
    assert len(run.src.most_similar("天气", topn=10)) == 10
    analogy = run.src.most_similar(positive=["国王", "女人"], negative=["男人"])
    assert len(analogy) == 10
    assert run.tgt.doesnt_match(["cat", "dog", "car"]) in {"cat", "dog", "car"}
    assert -1 <= run.src.similarity("猫", "狗") <= 1
    assert run.src["天气"].shape == (32,) and "天气" in run.src
    assert -1 <= run.initial.src.similarity("猫", "狗") <= 1
    result = seqembed.analyze(run, groups="builtin")
    assert all(f.above_chance for f in result.findings_above_chance())
    result.to_json(tmp_path / "analysis.json")
    fig = seqembed.plot_map(run, groups="builtin")
    assert len(fig.axes[0].texts) > 0


def test_load_run_chooses_best_or_last_and_says_which(builtin_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(builtin_run, run_dir)
    shutil.copyfile(run_dir / "last-2.pt", run_dir / "best.pt")  # an older best
    best = seqembed.load_run(run_dir)
    last = seqembed.load_run(run_dir, checkpoint="last")
    assert best.checkpoint == run_dir / "best.pt"
    assert last.checkpoint == run_dir / "last.pt"
    assert best.checkpoint_line.startswith(f"{run_dir / 'best.pt'} (epoch 10 of 12")
    assert last.checkpoint_line.startswith(f"{run_dir / 'last.pt'} (epoch 12 of 12")
    assert not np.array_equal(best.src.vectors, last.src.vectors)
    # a file stands for itself, whichever checkpoint is asked for
    chosen = seqembed.load_run(run_dir / "best.pt", checkpoint="last")
    assert chosen.checkpoint == run_dir / "best.pt"
    (run_dir / "best.pt").unlink()  # no best.pt: best falls back to last.pt
    assert seqembed.load_run(run_dir).checkpoint == run_dir / "last.pt"
    with pytest.raises(seqembed.InputError, match="best or last"):
        seqembed.load_run(run_dir, checkpoint="newest")
    figure = seqembed.plot_map(run_dir, method="pca", checkpoint="last", labels=0)
    assert figure.axes
