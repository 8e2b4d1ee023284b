"""Checkpoints: one self-describing file, written atomically, loaded safely.

A checkpoint is a dict of plain data and tensors, so ``torch.load`` reads it
with ``weights_only=True`` (no pickled code can run)::

    format, version       "seqembed-checkpoint", 1
    config                the resolved Config as a nested dict
    src_vocab, tgt_vocab  {"tokens": [...], "freqs": [...]}
    user_dict             jieba user dictionary text, or None
    subword_models        {"src"/"tgt": SentencePiece model proto (bytes)} for
                          the sides that use subwords; {} or absent otherwise
    model                 model state_dict
    initial_embeddings    {"src": (V_src, emb), "tgt": (V_tgt, emb),
                          "out": (V_tgt, hidden)} before training ("out", the
                          output projection's rows, from seqembed 0.1.1 on)
    optimizer, scheduler  state_dicts (absent in a weights-only export)
    counters              epoch, step, batch position, best metric, ...
    rng                   torch and Python RNG states

A run keeps its newest ``keep`` checkpoints (``train.keep_last``) under
numbered names, newest first, and ``best.pt`` beside them::

    last.pt  last-1.pt  last-2.pt  ...  best.pt

``--resume`` takes the newest of them that loads; a truncated or corrupt one
is renamed ``*.bad`` with a warning, and the next older one is used.
"""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from seqembed.config import Config, from_dict
from seqembed.data.vocab import Vocab
from seqembed.errors import InputError
from seqembed.files import atomic_write
from seqembed.nmt.build import build_model
from seqembed.nmt.model import Seq2Seq
from seqembed.vectors.table import EmbeddingTable

log = logging.getLogger(__name__)


class CorruptCheckpoint(InputError):
    """The file cannot be read back (truncated, damaged): resume may fall
    back to an older one. A refused or newer-format file is not this."""


FORMAT = "seqembed-checkpoint"
VERSION = 1


def save_checkpoint(state: dict[str, Any], path: Path, keep: int = 1) -> None:
    """Write to a temp file in the same directory, fsync, then rename over
    ``path``: a crash leaves either the old file or the new one, never half.

    With ``keep`` > 1 the older files move down one number first
    (``last.pt`` -> ``last-1.pt`` ...), after the new file is safely on disk,
    so a failed save (a full disk) leaves every older checkpoint as it was.
    An ``OSError`` names ``path`` and says that."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format": FORMAT, "version": VERSION, **state}
    # Serialise in memory first: torch.save turns a failing write (ENOSPC)
    # into a RuntimeError without the cause; our own write keeps the OSError.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    try:
        atomic_write(
            path,
            lambda out: out.write(buffer.getbuffer()),
            before_replace=lambda: _shift_older(path, keep),
        )
    except OSError as error:
        raise OSError(
            error.errno,
            f"cannot save the checkpoint ({error.strerror or error}); "
            "the previous checkpoints are as they were",
            str(path),
        ) from error


def numbered(path: Path, number: int) -> Path:
    """``last.pt``, 2 -> ``last-2.pt`` (0 is ``path`` itself)."""
    return path if number == 0 else path.with_name(f"{path.stem}-{number}.pt")


def _shift_older(path: Path, keep: int) -> None:
    # Oldest first, so a crash between two renames leaves a gap, never a
    # newer file under an older number.
    for number in range(keep - 1, 0, -1):
        newer = numbered(path, number - 1)
        if newer.exists():
            os.replace(newer, numbered(path, number))


def kept_checkpoints(run_dir: Path, name: str = "last.pt") -> list[Path]:
    """``last.pt``, ``last-1.pt``, ... as they exist in ``run_dir``, newest first."""
    stem = Path(name).stem
    pattern = re.compile(rf"{re.escape(stem)}(?:-(\d+))?\.pt")
    found = []
    for path in Path(run_dir).glob(f"{stem}*.pt"):
        match = pattern.fullmatch(path.name)
        if match:
            found.append((int(match.group(1) or 0), path))
    return [path for _, path in sorted(found)]


def load_latest_checkpoint(run_dir: Path) -> tuple[dict[str, Any], Path]:
    """The newest kept checkpoint that loads (for ``--resume``).

    One that does not load is renamed ``NAME.bad`` (kept for a look, out of
    the rotation) with a warning, and the next older one is tried."""
    candidates = kept_checkpoints(run_dir)
    if not candidates:
        raise InputError("nothing to resume: no last.pt in the run directory", run_dir)
    problems = []
    for path in candidates:
        try:
            return load_checkpoint(path), path
        except CorruptCheckpoint as error:
            problems.append(str(error))
            bad = path.with_name(path.name + ".bad")
            os.replace(path, bad)
            log.warning("%s; renamed it %s, trying an older one", error, bad.name)
    raise InputError(
        f"no checkpoint left to resume from: {'; '.join(problems)}", run_dir
    )


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint file (or a run directory's best one), safely."""
    path = resolve_checkpoint(Path(path))
    try:
        # weights_only: tensors and plain containers only. A pickle that names
        # any other global (os.system, a class) is refused before it runs.
        _check_container(path)
        with warnings.catch_warnings():  # "pickle protocol 4" and the like
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise InputError(
            "refused to load: the file holds Python objects other than tensors "
            f"and plain data, which could run code ({_unsupported(error)})",
            path,
        ) from None
    except InputError:
        raise
    except Exception as error:  # whatever damaged bytes make torch raise
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise CorruptCheckpoint(
            "cannot read checkpoint (truncated or corrupt?): "
            f"{first or type(error).__name__}",
            path,
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise InputError("not a seqembed checkpoint", path)
    if state.get("version") != VERSION:
        raise InputError(
            f"checkpoint format version {state.get('version')!r} is not supported "
            f"(this seqembed reads version {VERSION}; a newer seqembed wrote it?)",
            path,
        )
    return state


def _check_container(path: Path) -> None:
    """A whole torch zip with every CRC right; nothing else is unpickled at
    all (seqembed has only ever written torch's zip format). torch.load
    itself does not check the CRC32 that torch.save writes for each record,
    so a flipped byte in a tensor would load silently."""
    with open(path, "rb") as handle:
        head = handle.read(2)
    if not head:
        raise EOFError("the file is empty")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
        if damaged is not None:
            raise zipfile.BadZipFile(f"checksum mismatch in {damaged}")
    elif head == b"PK":
        raise zipfile.BadZipFile("the zip's directory at its end is missing")
    else:
        kind = "a bare pickle, not read" if head[0] == 0x80 else "not torch's format"
        raise CorruptCheckpoint(f"not a checkpoint file ({kind})", path)


def _unsupported(error: Exception) -> str:
    """torch's long message, cut to the global it refused."""
    text = " ".join(str(error).split())
    match = re.search(r"GLOBAL (\S+)", text)
    if match:
        return f"it names {match.group(1)}"
    match = re.search(
        r"WeightsUnpickler error: (.+?)(?: Check the documentation|$)", text
    )
    return match.group(1) if match else text[:120]


# Which checkpoint a run directory stands for: every command reads the same.
CHECKPOINTS = {"best": ("best.pt", "last.pt"), "last": ("last.pt",)}


def resolve_checkpoint(path: Path, which: str = "best") -> Path:
    """A run directory stands for its best checkpoint, falling back to its
    last one (``which="best"``, every command's default), or for its last
    one (``which="last"``); a file stands for itself."""
    path = Path(path)
    if which not in CHECKPOINTS:
        raise InputError(f"--checkpoint must be best or last, not {which!r}")
    if path.is_dir():
        for name in CHECKPOINTS[which]:
            if (path / name).is_file():
                return path / name
        names = " or ".join(CHECKPOINTS[which])
        raise InputError(f"no checkpoint ({names}) in this directory", path)
    if not path.exists():
        raise InputError("file not found", path)
    return path


def restore_model(
    state: dict[str, Any], device: torch.device | str = "cpu"
) -> tuple[Seq2Seq, Config, Vocab, Vocab]:
    """Rebuild the model (on ``device``), config and vocabularies from a
    checkpoint alone; it was loaded onto the CPU (``load_checkpoint``),
    wherever it was trained."""
    config = from_dict(state["config"], "checkpoint")
    src_vocab = Vocab.from_dict(state["src_vocab"])
    tgt_vocab = Vocab.from_dict(state["tgt_vocab"])
    model = build_model(config.model, len(src_vocab), len(tgt_vocab), device)
    model.load_state_dict(state["model"])
    model.eval()
    return model, config, src_vocab, tgt_vocab


def load_tables(
    state: dict[str, Any], initial: bool = False
) -> dict[str, EmbeddingTable]:
    """The src/tgt/out tables (``Seq2Seq.EMBEDDING_WEIGHTS``) of a loaded
    checkpoint; ``initial``: the untrained values saved at the start of
    training, where present."""
    src_vocab, tgt_vocab = state["src_vocab"], state["tgt_vocab"]
    vocab_of = {"src": src_vocab, "tgt": tgt_vocab, "out": tgt_vocab}
    tables = {}
    for kind, name in Seq2Seq.EMBEDDING_WEIGHTS.items():
        if initial:
            weight = state.get("initial_embeddings", {}).get(kind)
        else:
            weight = state["model"].get(name)
        if weight is None:
            continue
        vocab = vocab_of[kind]
        tables[kind] = EmbeddingTable(
            list(vocab["tokens"]), weight.float().numpy(), vocab["freqs"], kind
        )
    return tables


def describe_checkpoint(path: Path, state: dict[str, Any]) -> str:
    """``runs/x/best.pt (epoch 12 of 12, valid BLEU 11.3)``: the file every
    output names at its top, and how far its model had trained. The score is
    the run's ``metrics.jsonl`` line of the checkpoint's step, where the
    folder has one (a checkpoint copied elsewhere shows the epoch only)."""
    counters = state.get("counters", {})
    done, position = int(counters.get("epoch", 1)) - 1, counters.get("position", 0)
    total = state.get("config", {}).get("train", {}).get("epochs")
    of = f" of {total}" if total else ""
    if position:  # saved mid-epoch (--max-minutes, Ctrl-C)
        parts = [f"epoch {done + 1}{of}, batch {position}"]
    elif done:
        parts = [f"epoch {done}{of}"]
    else:
        parts = ["before the first epoch"]
    bleu = _validation_bleu(Path(path).parent, counters.get("step"))
    if bleu is not None:
        parts.append(f"valid BLEU {bleu:.1f}")
    return f"{path} ({', '.join(parts)})"


def _validation_bleu(run_dir: Path, step: int | None) -> float | None:
    """The validation BLEU that ``metrics.jsonl`` logged at ``step``."""
    try:
        lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for line in reversed(lines):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash: the others still say
        if isinstance(row, dict) and row.get("step") == step and step is not None:
            bleu = row.get("valid_bleu")
            return float(bleu) if isinstance(bleu, (int, float)) else None
    return None
