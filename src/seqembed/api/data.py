"""The corpus that ships with seqembed, for a first run and for examples."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def builtin_corpus() -> Path:
    """The built-in corpus: 395 Chinese-English pairs written for seqembed in
    8 topics, a TSV in Tatoeba's layout (English TAB Chinese TAB topic).
    ``seqembed demo`` trains on it, with ``builtin_user_dict()``."""
    return _resource("builtin.tsv")


def builtin_user_dict() -> Path:
    """The jieba user dictionary for the built-in corpus' words."""
    return _resource("builtin_userdict.txt")


def _resource(name: str) -> Path:
    return Path(str(resources.files("seqembed") / "resources" / name))
