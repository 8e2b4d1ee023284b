"""The built-in data and the two demo experiments.

* ``builtin`` trains a small attention model on the corpus that ships with the
  package (raw Chinese, segmented by jieba with the shipped user dictionary).
* ``seed-example`` reproduces the design document's experiment: five
  pre-segmented pairs, 64-dimensional embeddings, one LSTM layer, no
  attention, 50 epochs of Adam, cross-entropy that ignores padding.

Both train through ``seqembed.train`` and analyse through ``seqembed.analyze``.
The built-in demo shows ``best.pt`` (else ``last.pt``), the model every command
uses by default; the seed example the final model, ``last.pt``, as the design.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from seqembed.analysis.run import DESIGN_PAIRS
from seqembed.api.data import builtin_corpus
from seqembed.api.data import builtin_user_dict as builtin_user_dict_path
from seqembed.api.progress import ProgressCallback
from seqembed.config import Config, load_config
from seqembed.data.corpus import Pair, SkipCounts, read_tsv
from seqembed.data.prepare import read_splits
from seqembed.errors import InputError
from seqembed.nmt.evaluation import Scores, score

# The design document's five pairs, segmented as it gives them.
SEED_PAIRS = [
    ("我 爱 自然 语言 处理", "I love natural language processing"),
    ("今天 天气 很 好", "Today weather is good"),
    ("人工 智能 改变 世界", "Artificial intelligence changes the world"),
    ("机器 学习 很 有趣", "Machine learning is interesting"),
    ("深度 学习 很 强大", "Deep learning is powerful"),
]

SEED_EXAMPLE_SETTINGS = [
    "data.src_segmentation=pretokenized",
    "data.tgt_tokenization=pretokenized",
    "data.lowercase=false",
    "data.heldout_fraction=0",  # five pairs: train on all, validate on them
    "vocab.min_freq=1",
    "model.emb_size=64",
    "model.hidden_size=128",
    "model.num_layers=1",
    "model.dropout=0",
    "model.bidirectional=false",
    "model.attention=none",
    "model.init=pytorch",  # nn.Embedding's N(0, 1) rows, as in the design
    "train.epochs=50",
    "train.batch_size=1",
    "train.lr=0.001",  # Adam's default
    "train.lr_schedule=none",
    "train.patience=0",  # all 50 epochs, as in the design
]

BUILTIN_SETTINGS = [
    "data.valid_size=30",
    "data.test_size=30",
    "vocab.min_freq=1",
    "model.emb_size=64",
    "model.hidden_size=128",
    "model.dropout=0.1",
    "model.attention=luong",
    "train.epochs=40",
    "train.batch_size=16",
    "train.lr=0.003",
    "train.patience=0",
    "train.lr_schedule=none",
]


def resource_path(name: str) -> Path:
    return Path(str(resources.files("seqembed") / "resources" / name))


def builtin_pairs() -> list[Pair]:
    """The built-in corpus: English TAB Chinese TAB topic, raw Chinese."""
    return read_tsv(resource_path("builtin.tsv"), 1, 0, 10_000, SkipCounts())


def builtin_user_dict() -> str:
    return resource_path("builtin_userdict.txt").read_text(encoding="utf-8")


def seed_pairs() -> list[Pair]:
    return [Pair(zh, en, line) for line, (zh, en) in enumerate(SEED_PAIRS, start=1)]


def demo_config(seed_example: bool, seed: int, extra: list[str] = ()) -> Config:
    settings = SEED_EXAMPLE_SETTINGS if seed_example else BUILTIN_SETTINGS
    return load_config(None, [*settings, f"train.seed={seed}", *extra])


# Demo sentences from the training data, then held-out test pairs.
SHOWN_TRAINING = ["我爱自然语言处理", "今天天气很好", "机器学习很有趣"]
SHOWN_HELD_OUT = 3


@dataclass
class DemoResult:
    run_dir: Path
    checkpoint: Path  # the model translated, scored and analysed
    final_loss: float
    # (source, translation, reference for held-out sentences or None)
    translations: list[tuple[str, str, str | None]]
    exact: int | None = None  # seed example: exact translations out of 5
    test_scores: Scores | None = None  # built-in: the held-out test split
    analysis: dict | None = None  # seqembed.analyze's result, as analysis.json
    report: Path | None = None  # RUN/report.html


def prepare_demo_dir(out: Path) -> None:
    """A demo run replaces an earlier demo run, and nothing else."""
    marker = out / ".seqembed-demo"
    if (out / "last.pt").exists():
        if not marker.exists():
            raise InputError(
                "already holds a run that is not a demo; choose another --out", out
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(
        "written by `seqembed demo`; the next demo may replace this run\n"
    )


def demo_analysis(seed_example: bool) -> dict:
    """``seqembed.analyze``'s arguments: the seed example analyses the
    design's 18 source words as the design does (top 8 pairs, its four
    groups, its six pairs); the built-in run both sides with the corpus's
    topic groups."""
    if seed_example:
        return dict(
            groups="design",
            pairs=list(DESIGN_PAIRS),
            side="src",
            top_n=8,
            alignment=False,  # 18 words: too few dictionary entries to test
        )
    return dict(groups="builtin", top_n=10)


def run_demo(
    out: Path,
    seed_example: bool,
    seed: int = 1,
    progress: ProgressCallback | None = None,
) -> DemoResult:
    """Train through ``seqembed.train``, then translate, score, analyse and
    report one model: ``best.pt`` (else ``last.pt``), the one every command
    uses by default; for the seed example the final model, as the design."""
    from seqembed.api.runs import load_run
    from seqembed.api.training import train

    prepare_demo_dir(out)
    if seed_example:
        trained = train(SEED_PAIRS, out, overrides=SEED_EXAMPLE_SETTINGS,
                        seed=seed, progress=progress)  # fmt: skip
        # Deliberately last.pt, not best.pt: the design translates and
        # analyses its model after all 50 epochs, and the seed example
        # reproduces the design (the demo's output says which model it is).
        run = load_run(out / "last.pt")
    else:
        run = trained = train(builtin_corpus(), out, overrides=BUILTIN_SETTINGS,
                              seed=seed, user_dict=builtin_user_dict_path(),
                              progress=progress)  # fmt: skip
    result = DemoResult(
        out, run.checkpoint, trained.training.final_metrics["train_loss"], []
    )
    if seed_example:
        sources = [zh for zh, _ in SEED_PAIRS]
        outputs = run.translate(sources)
        result.exact = sum(o == en for o, (_, en) in zip(outputs, SEED_PAIRS))
        result.translations = [(src, o, None) for src, o in zip(sources, outputs)]
    else:
        test = read_splits(out)["test"]
        outputs = run.translate([p.src for p in test])
        references = [p.tgt for p in test]
        result.test_scores = score(
            outputs, references, run.config.data.lowercase, interval=True
        )
        shown = zip(SHOWN_TRAINING, run.translate(SHOWN_TRAINING))
        result.translations = [(src, o, None) for src, o in shown]
        held_out = list(zip(test, outputs))[:SHOWN_HELD_OUT]
        result.translations += [(p.src, o, p.tgt) for p, o in held_out]
    result.analysis = _analyse(run, out, seed_example)
    result.report = _report(out, result.analysis)
    return result


def _analyse(run, out: Path, seed_example: bool) -> dict:
    """``seqembed.analyze`` on the demo's model; RUN/analysis/analysis.{json,md}."""
    from seqembed.api.analysis import analyze

    analysed = analyze(run, **demo_analysis(seed_example))
    analysed.save(out / "analysis")
    return analysed.data


def _report(out: Path, analysis: dict) -> Path:
    """RUN/report.html, of the model the analysis describes."""
    from seqembed.report.build import write_report

    return write_report(out / analysis["checkpoint"], analysis=analysis)
