"""The built-in data and the two demo experiments.

* ``builtin`` trains a small attention model on the corpus that ships with the
  package (raw Chinese, segmented by jieba with the shipped user dictionary).
* ``seed-example`` reproduces the design document's experiment: five
  pre-segmented pairs, 64-dimensional embeddings, one LSTM layer, no
  attention, 50 epochs of Adam, cross-entropy that ignores padding.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from seqembed.config import Config, load_config
from seqembed.corpus import Pair, SkipCounts, read_tsv

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
