"""Pretrained word vectors as the starting point of the embedding tables.

``apply_pretrained`` (called by training right after the model is built, so
``initial_embeddings`` records the pretrained rows) reads each configured file
(``seqembed.vectors.wordvectors``: word2vec text or binary, GloVe), copies the rows of
the vocabulary's words into the embedding table, and freezes the table if
asked. A vocabulary word takes the row with its spelling, else one that
differs only in case. Words the file lacks keep their random initialisation;
``<PAD>`` always stays zero. The coverage (words found and missing, with their
training frequencies) is logged and written to ``RUN/pretrained.json``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from seqembed.config import Config, ModelConfig
from seqembed.data.vocab import PAD, SPECIALS, Vocab
from seqembed.errors import InputError
from seqembed.files import atomic_write
from seqembed.nmt import distributed
from seqembed.vectors.export import word2vec_token
from seqembed.vectors.wordvectors import read_vectors, sniff

if TYPE_CHECKING:
    from seqembed.nmt.model import Seq2Seq

log = logging.getLogger(__name__)

COVERAGE_FILE = "pretrained.json"


@dataclass
class Coverage:
    """Which vocabulary words a file gave a vector, and how much of the
    training text they make up (frequencies from the vocabulary)."""

    side: str
    path: str
    format: str
    dim: int
    file_rows: int
    found: list[tuple[str, int]]  # (word, training frequency), specials apart
    missing: list[tuple[str, int]]  # most frequent first: random init kept
    by_case: dict[str, str]  # word -> the file's word, when only case differed
    specials: list[str]  # special tokens the file had (never <PAD>)
    frozen: bool = False
    seconds: float = 0.0

    @property
    def words(self) -> int:
        return len(self.found) + len(self.missing)

    @property
    def tokens(self) -> int:
        return self.tokens_found + sum(freq for _, freq in self.missing)

    @property
    def tokens_found(self) -> int:
        return sum(freq for _, freq in self.found)

    @property
    def word_coverage(self) -> float:
        return 100.0 * len(self.found) / max(self.words, 1)

    @property
    def token_coverage(self) -> float:
        return 100.0 * self.tokens_found / max(self.tokens, 1)

    def to_dict(self) -> dict:
        counts = {
            "words": self.words,
            "words_found": len(self.found),
            "tokens": self.tokens,
            "tokens_found": self.tokens_found,
            "word_coverage": round(self.word_coverage, 2),
            "token_coverage": round(self.token_coverage, 2),
        }
        fields = asdict(self)
        for name in ("found", "missing"):  # {"word": frequency, ...}, in order
            fields[name] = dict(fields[name])
        return {**counts, **fields}

    def summary(self, top: int = 10) -> list[str]:
        """A few lines for a person: counts, then the most frequent misses."""
        lines = [
            f"{self.side} embeddings: {self.path} ({self.format}, {self.dim}-dim, "
            f"{self.file_rows:,} rows, {self.seconds:.1f}s)"
            + (", frozen" if self.frozen else ""),
            f"  found {len(self.found):,} of {self.words:,} words "
            f"({self.word_coverage:.1f}%), {self.token_coverage:.1f}% of the "
            f"training tokens"
            + (f"; {len(self.by_case):,} by case alone" if self.by_case else "")
            + (f"; specials {' '.join(self.specials)}" if self.specials else ""),
        ]
        if self.missing:
            shown = ", ".join(f"{w} ({f:,})" for w, f in self.missing[:top])
            lines.append(f"  random init kept, most frequent first: {shown}")
        return lines


class _Lookup:
    """Vocabulary ids by a file's word: exactly, else ignoring case."""

    def __init__(self, vocab: Vocab):
        self.exact: dict[str, int] = {}
        self.folded: dict[str, list[int]] = {}
        for i, token in enumerate(vocab.tokens):
            if i == PAD:
                continue
            for key in dict.fromkeys((token, word2vec_token(token))):
                self.exact.setdefault(key, i)
                self.folded.setdefault(key.casefold(), []).append(i)

    def wants(self, token: str) -> bool:
        return token in self.exact or token.casefold() in self.folded

    def assign(self, tokens: list[str]) -> tuple[dict[int, int], set[int]]:
        """{vocabulary id: row} (an exact match wins over an earlier row that
        differs in case only), and the ids matched by case alone."""
        exact, by_case = {}, {}
        for row, token in enumerate(tokens):
            if token in self.exact:
                exact.setdefault(self.exact[token], row)
            for i in self.folded.get(token.casefold(), ()):
                by_case.setdefault(i, row)
        return {**by_case, **exact}, set(by_case) - set(exact)


def load_into(
    weight: torch.Tensor,
    vocab: Vocab,
    path: Path,
    format: str = "auto",
    side: str = "",
) -> Coverage:
    """Copy the file's vectors into the rows of ``weight`` (n_words, dim) of
    the vocabulary words it has."""
    info = sniff(path, format)
    if info.dim != weight.size(1):
        raise InputError(
            f"the vectors are {info.dim}-dimensional but the model's embeddings "
            f"{weight.size(1)} (set model.emb_size: {info.dim})",
            path,
        )
    lookup = _Lookup(vocab)
    vectors = read_vectors(info, keep=lookup.wants)
    assigned, case_only = lookup.assign(vectors.table.tokens)
    ids = sorted(assigned)
    with torch.no_grad():
        rows = vectors.table.vectors[[assigned[i] for i in ids]]
        weight[ids] = torch.from_numpy(rows).to(weight.device, weight.dtype)
    words = range(len(SPECIALS), len(vocab))
    pairs = [(vocab.tokens[i], vocab.freqs[i]) for i in words]
    missing = [pairs[i - len(SPECIALS)] for i in words if i not in assigned]
    tokens = vectors.table.tokens
    return Coverage(
        side=side,
        path=str(path),
        format=info.format,
        dim=info.dim,
        file_rows=vectors.n_rows,
        found=[pairs[i - len(SPECIALS)] for i in words if i in assigned],
        missing=sorted(missing, key=lambda pair: -pair[1]),
        by_case={vocab.tokens[i]: tokens[assigned[i]] for i in sorted(case_only)},
        specials=[SPECIALS[i] for i in ids if i < len(SPECIALS)],
        seconds=vectors.seconds,
    )


def check_files(config: ModelConfig) -> None:
    """Fail early (before the corpus is read) on a missing or unreadable file
    or a width other than ``emb_size``."""
    for path in (config.src_embeddings, config.tgt_embeddings):
        if path:
            info = sniff(Path(path), config.embeddings_format)
            if info.dim != config.emb_size:
                raise InputError(
                    f"the vectors are {info.dim}-dimensional but model.emb_size "
                    f"is {config.emb_size} (set model.emb_size: {info.dim})",
                    path,
                )


def apply_pretrained(
    model: Seq2Seq,
    src_vocab: Vocab,
    tgt_vocab: Vocab,
    config: Config,
    run_dir: Path,
    resume: bool = False,
) -> dict[str, Coverage]:
    """Initialise the embedding tables of a new ``model`` from the configured
    files, and freeze them if asked. Logs the coverage and writes it to
    ``run_dir/pretrained.json``. With ``resume`` the checkpoint already holds
    the vectors: only the freezing is set again."""
    settings = config.model
    tables = model.embedding_tables()
    sides = {
        "src": (settings.src_embeddings, tables["src"], src_vocab),
        "tgt": (settings.tgt_embeddings, tables["tgt"], tgt_vocab),
    }
    coverages = {}
    for side, (path, weight, vocab) in sides.items():
        if not path:
            continue
        if not resume:
            if distributed.is_main():
                log.info("reading %s embeddings from %s", side, path)
            file_format = settings.embeddings_format
            coverage = load_into(weight, vocab, Path(path), file_format, side)
            coverage.frozen = settings.freeze_embeddings
            coverages[side] = coverage
            if distributed.is_main():
                for line in coverage.summary():
                    log.info("%s", line)
        if settings.freeze_embeddings:
            # No gradient, so Adam, clipping and DDP leave the table alone.
            weight.requires_grad_(False)
    if coverages and distributed.is_main():
        text = json.dumps(
            {side: c.to_dict() for side, c in coverages.items()},
            ensure_ascii=False,
            indent=1,
        )
        atomic_write(run_dir / COVERAGE_FILE, lambda out: out.write(text.encode()))
    return coverages
