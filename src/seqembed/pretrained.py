"""Pretrained word vectors as the starting point of the embedding tables.

(Work in progress: the readers follow in the next commit.)
"""

from __future__ import annotations

from pathlib import Path

from seqembed.config import Config
from seqembed.errors import InputError


def apply_pretrained(
    model, src_vocab, tgt_vocab, config: Config, run_dir: Path, resume: bool
) -> dict:
    """Initialise (and freeze) the embedding tables from the configured files."""
    if config.model.src_embeddings or config.model.tgt_embeddings:
        raise InputError("pretrained embeddings are not implemented yet")
    return {}
