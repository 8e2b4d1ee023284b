"""Read parallel text, skip what cannot be used, deduplicate, split leak-free.

Two layouts are read:

* one TSV file, one pair a line, with the source and target in chosen columns
  (Tatoeba: ``English<TAB>Chinese<TAB>attribution``; extra columns ignored);
* two line-aligned files, source and target.

A problem that makes the file unusable (missing file, bad encoding, a line
with too few columns, files of different lengths) is an ``InputError`` naming
the file and line. A pair that is merely unusable (a blank or over-long line)
is skipped and counted in ``SkipCounts``.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from seqembed.errors import InputError
from seqembed.segment import normalize
from seqembed.textfile import iter_lines


@dataclass(frozen=True)
class Pair:
    src: str
    tgt: str
    line: int  # 1-based line number in the input, for messages


@dataclass
class SkipCounts:
    reasons: Counter = field(default_factory=Counter)

    def add(self, reason: str) -> None:
        self.reasons[reason] += 1

    @property
    def total(self) -> int:
        return sum(self.reasons.values())

    def summary(self) -> str:
        """``skipped 3 lines: 2 too long, 1 empty`` (or an empty string)."""
        if not self.total:
            return ""
        parts = ", ".join(f"{n} {reason}" for reason, n in self.reasons.most_common())
        noun = "line" if self.total == 1 else "lines"
        return f"skipped {self.total} {noun}: {parts}"


def read_tsv(
    path: Path, src_column: int, tgt_column: int, max_chars: int, skips: SkipCounts
) -> list[Pair]:
    pairs = []
    needed = max(src_column, tgt_column) + 1
    for number, text in iter_lines(path):
        if not text.strip():
            skips.add("empty")
            continue
        columns = text.split("\t")
        if len(columns) < needed:
            raise InputError(
                f"expected at least {needed} tab-separated columns, found "
                f"{len(columns)}",
                path,
                number,
            )
        _append(
            pairs, columns[src_column], columns[tgt_column], number, max_chars, skips
        )
    return _non_empty(pairs, path, skips)


def read_aligned(
    src_path: Path, tgt_path: Path, max_chars: int, skips: SkipCounts
) -> list[Pair]:
    src_lines = list(iter_lines(src_path))
    tgt_lines = list(iter_lines(tgt_path))
    if len(src_lines) != len(tgt_lines):
        raise InputError(
            f"has {len(src_lines)} lines but {tgt_path} has {len(tgt_lines)}; "
            "source and target files must be line-aligned",
            src_path,
        )
    pairs = []
    for (number, src), (_, tgt) in zip(src_lines, tgt_lines):
        _append(pairs, src, tgt, number, max_chars, skips)
    return _non_empty(pairs, src_path, skips)


def _append(pairs, src, tgt, number, max_chars, skips) -> None:
    if not src.strip() or not tgt.strip():
        skips.add("empty")
    elif len(src) > max_chars or len(tgt) > max_chars:
        skips.add("too long")
    else:
        # Inner whitespace (tabs included) collapses to one space, so the pair
        # can be written back as TSV.
        pairs.append(Pair(" ".join(src.split()), " ".join(tgt.split()), number))


def _non_empty(pairs: list[Pair], path: Path, skips: SkipCounts) -> list[Pair]:
    if not pairs:
        why = f"; {skips.summary()}" if skips.total else ""
        raise InputError(f"no usable sentence pairs (the corpus is empty{why})", path)
    return pairs


def deduplicate(pairs: list[Pair]) -> list[Pair]:
    """Drop exact repeats of a (source, target) pair, keeping the first."""
    seen = set()
    unique = []
    for pair in pairs:
        key = (normalize(pair.src), normalize(pair.tgt))
        if key not in seen:
            seen.add(key)
            unique.append(pair)
    return unique


def split_pairs(
    pairs: list[Pair], valid_size: int, test_size: int, seed: int
) -> dict[str, list[Pair]]:
    """Deterministic train/valid/test split with no sentence on two sides.

    Pairs that share a source or a target sentence (after normalisation and
    lowercasing) are joined into one group by union-find, and whole groups go
    to one side. Groups are shuffled with ``seed``; test, then valid, are filled
    with whole groups up to their size; the rest is train. Each side keeps the
    corpus order.
    """
    parent = list(range(len(pairs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_seen: dict[tuple[str, str], int] = {}
    for i, pair in enumerate(pairs):
        for key in (
            ("src", normalize(pair.src).lower()),
            ("tgt", normalize(pair.tgt).lower()),
        ):
            j = first_seen.setdefault(key, i)
            root_i, root_j = find(i), find(j)
            if root_i != root_j:
                parent[max(root_i, root_j)] = min(root_i, root_j)
    groups: dict[int, list[int]] = {}
    for i in range(len(pairs)):
        groups.setdefault(find(i), []).append(i)
    order = sorted(groups)
    random.Random(seed).shuffle(order)

    need = {"test": test_size, "valid": valid_size}
    side_of = {}
    for root in order:
        members = groups[root]
        side = "train"
        for name in ("test", "valid"):
            if 0 < len(members) <= need[name]:
                side = name
                need[name] -= len(members)
                break
        for i in members:
            side_of[i] = side
    return {
        name: [pair for i, pair in enumerate(pairs) if side_of[i] == name]
        for name in ("train", "valid", "test")
    }


def heldout_size(n_pairs: int, wanted: int, fraction: float) -> int:
    return min(wanted, int(n_pairs * fraction))


def write_tsv(pairs: list[Pair], path: Path) -> None:
    """Write pairs in Tatoeba's layout (target TAB source), readable by evaluate."""
    with open(path, "w", encoding="utf-8") as handle:
        for pair in pairs:
            handle.write(f"{pair.tgt}\t{pair.src}\n")
