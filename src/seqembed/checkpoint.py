"""Checkpoints: one self-describing file, written atomically, loaded safely.

A checkpoint is a dict of plain data and tensors, so ``torch.load`` reads it
with ``weights_only=True`` (no pickled code can run)::

    format, version       "seqembed-checkpoint", 1
    config                the resolved Config as a nested dict
    src_vocab, tgt_vocab  {"tokens": [...], "freqs": [...]}
    user_dict             jieba user dictionary text, or None
    model                 model state_dict
    initial_embeddings    {"src": (V_src, emb), "tgt": (V_tgt, emb),
                          "out": (V_tgt, hidden)} before training ("out", the
                          output projection's rows, from seqembed 0.1.1 on)
    optimizer, scheduler  state_dicts (absent in a weights-only export)
    counters              epoch, step, batch position, best metric, ...
    rng                   torch and Python RNG states
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from seqembed.config import Config, from_dict
from seqembed.errors import InputError
from seqembed.files import atomic_write
from seqembed.model import Seq2Seq
from seqembed.vocab import Vocab

FORMAT = "seqembed-checkpoint"
VERSION = 1


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write to a temp file in the same directory, fsync, then rename over
    ``path``: a crash leaves either the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format": FORMAT, "version": VERSION, **state}
    atomic_write(path, lambda out: torch.save(state, out))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint file (or a run directory's best one), safely."""
    path = resolve_checkpoint(Path(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise InputError(
            f"refused to load: not a plain-data checkpoint ({first})", path
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as error:
        raise InputError(
            f"cannot read checkpoint (truncated or corrupt?): {error}".splitlines()[0],
            path,
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise InputError("not a seqembed checkpoint", path)
    if state.get("version") != VERSION:
        raise InputError(
            f"checkpoint format version {state.get('version')} is not supported "
            f"(this seqembed reads version {VERSION})",
            path,
        )
    return state


def resolve_checkpoint(path: Path) -> Path:
    """A run directory stands for its best checkpoint (or its last one)."""
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                return path / name
        raise InputError("no checkpoint (best.pt or last.pt) in this directory", path)
    if not path.exists():
        raise InputError("file not found", path)
    return path


def restore_model(state: dict[str, Any]) -> tuple[Seq2Seq, Config, Vocab, Vocab]:
    """Rebuild the model, config and vocabularies from a checkpoint alone."""
    config = from_dict(state["config"], "checkpoint")
    src_vocab = Vocab.from_dict(state["src_vocab"])
    tgt_vocab = Vocab.from_dict(state["tgt_vocab"])
    model = Seq2Seq.from_config(config.model, len(src_vocab), len(tgt_vocab))
    model.load_state_dict(state["model"])
    model.eval()
    return model, config, src_vocab, tgt_vocab
