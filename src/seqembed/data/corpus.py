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
from array import array
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from seqembed.data.segment import normalize
from seqembed.errors import InputError
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
    return _non_empty(
        list(iter_tsv(path, src_column, tgt_column, max_chars, skips)), path, skips
    )


def read_aligned(
    src_path: Path, tgt_path: Path, max_chars: int, skips: SkipCounts
) -> list[Pair]:
    return _non_empty(
        list(iter_aligned(src_path, tgt_path, max_chars, skips)), src_path, skips
    )


def iter_tsv(
    path: Path, src_column: int, tgt_column: int, max_chars: int, skips: SkipCounts
) -> Iterator[Pair]:
    """``read_tsv``'s pairs one at a time, with the same checks and skips."""
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
        pair = _usable(columns[src_column], columns[tgt_column], number, max_chars)
        if isinstance(pair, str):
            skips.add(pair)
        else:
            yield pair


def iter_aligned(
    src_path: Path, tgt_path: Path, max_chars: int, skips: SkipCounts
) -> Iterator[Pair]:
    """``read_aligned``'s pairs one at a time. Files of different lengths are
    found when the shorter one ends; a caller that reads the corpus twice
    (``prepare.split_corpus``) hears of it before writing anything."""
    src_lines, tgt_lines = iter_lines(src_path), iter_lines(tgt_path)
    for src, tgt in zip_longest(src_lines, tgt_lines):
        if src is None or tgt is None:
            if src is None:  # the target file goes on
                n_src, n_tgt = tgt[0] - 1, _last_number(tgt_lines, tgt[0])
            else:
                n_src, n_tgt = _last_number(src_lines, src[0]), src[0] - 1
            raise InputError(
                f"has {n_src} lines but {tgt_path} has {n_tgt}; "
                "source and target files must be line-aligned",
                src_path,
            )
        pair = _usable(src[1], tgt[1], src[0], max_chars)
        if isinstance(pair, str):
            skips.add(pair)
        else:
            yield pair


def _last_number(lines: Iterator[tuple[int, str]], number: int) -> int:
    """The number of the last of ``lines``, after ``number`` were read."""
    last = deque(lines, maxlen=1)
    return last[0][0] if last else number


def _usable(src: str, tgt: str, number: int, max_chars: int) -> Pair | str:
    """The pair, or the reason it is skipped."""
    if not src.strip() or not tgt.strip():
        return "empty"
    if len(src) > max_chars or len(tgt) > max_chars:
        return "too long"
    # Inner whitespace (tabs included) collapses to one space, so the pair
    # can be written back as TSV.
    return Pair(" ".join(src.split()), " ".join(tgt.split()), number)


def _non_empty(pairs: list[Pair], path: Path, skips: SkipCounts) -> list[Pair]:
    if not pairs:
        raise no_pairs(path, skips)
    return pairs


def no_pairs(path: Path, skips: SkipCounts) -> InputError:
    why = f"; {skips.summary()}" if skips.total else ""
    return InputError(f"no usable sentence pairs (the corpus is empty{why})", path)


@dataclass(frozen=True)
class Corpus:
    """A corpus on disk, read as a stream each time it is iterated (so a
    corpus of millions of pairs is never a list): one TSV file, or a source
    and a target file, line-aligned."""

    paths: tuple[Path, ...]
    src_column: int = 1
    tgt_column: int = 0
    max_chars: int = 10**9

    def read(self, skips: SkipCounts) -> Iterator[Pair]:
        """Every usable pair; ``InputError`` at the end if there is none."""
        if len(self.paths) == 2:
            pairs = iter_aligned(*self.paths, self.max_chars, skips)
        else:
            path, src, tgt = self.paths[0], self.src_column, self.tgt_column
            pairs = iter_tsv(path, src, tgt, self.max_chars, skips)
        empty = True
        for pair in pairs:
            empty = False
            yield pair
        if empty:
            raise no_pairs(self.paths[0], skips)


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

    This is the definition; ``prepare.split_corpus`` computes the same split
    with ``hash_keys``, ``first_occurrences`` and ``split_groups`` without
    holding the pairs (``tests/test_corpus_stream.py`` checks they agree).
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


# ------------------------------------------- the same split, over hashes
#
# For a corpus of millions of pairs, ``split_corpus`` in ``prepare`` does what
# ``split_pairs(deduplicate(pairs))`` does without holding the pairs: one pass
# keeps four 8-byte hashes a pair (32 bytes, where a ``Pair`` and its
# normalised strings take hundreds), numpy deduplicates and scipy finds the
# groups, and a second pass writes each pair to its side.
#
# Python's ``hash`` is 64 bits (salted per process, so only equality within
# one pass is used). Two different strings share a hash with probability about
# n^2 / 2^65 for n pairs: 7e-7 at 5 million pairs. A collision of pair keys
# would drop a pair as a duplicate, so a second hash of each pair, of another
# string, checks them (8 bytes a pair more) and settles a collision. A
# collision of sentence keys joins two groups: the split stays leak-free and
# differs from ``split_pairs``' only in that; it is left as it is.

SIDES = ("train", "valid", "test")  # the codes 0, 1, 2 of ``split_groups``


@dataclass
class PairKeys:
    """Per pair, in corpus order: hashes of the normalised pair (what
    ``deduplicate`` compares) and of the lowercased source and target (what
    ``split_pairs`` groups by)."""

    pair: np.ndarray  # int64
    pair_check: np.ndarray  # another hash of the pair, for collisions
    src: np.ndarray
    tgt: np.ndarray


def hash_keys(pairs: Iterable[Pair]) -> PairKeys:
    keys = {name: array("q") for name in ("pair", "pair_check", "src", "tgt")}
    for pair in pairs:
        src, tgt = normalize(pair.src), normalize(pair.tgt)
        keys["pair"].append(hash((src, tgt)))
        # A string of its own: independent of the hashes of src and tgt.
        keys["pair_check"].append(hash(f"{src}\t{tgt}"))
        keys["src"].append(hash(src.lower()))
        keys["tgt"].append(hash(tgt.lower()))
    return PairKeys(**{name: np.frombuffer(a, np.int64) for name, a in keys.items()})


def first_occurrences(keys: np.ndarray, check: np.ndarray) -> np.ndarray:
    """True at the first pair of each key: ``deduplicate``'s choice. Pairs
    with one key and different ``check`` hashes are different pairs (a
    64-bit collision); then the two hashes together are the key."""
    keep = np.zeros(len(keys), dtype=bool)
    if not len(keys):
        return keep
    order = np.argsort(keys, kind="stable")  # stable: the first comes first
    same_key = keys[order[1:]] == keys[order[:-1]]
    if np.any(same_key & (check[order[1:]] != check[order[:-1]])):
        both = np.stack([keys, check], axis=1)
        _, first = np.unique(both, axis=0, return_index=True)
    else:
        first = order[np.concatenate([[True], ~same_key])]
    keep[first] = True
    return keep


def split_groups(
    src_keys: np.ndarray,
    tgt_keys: np.ndarray,
    valid_size: int,
    test_size: int,
    seed: int,
) -> np.ndarray:
    """``split_pairs`` over the keys of deduplicated pairs: the side of each
    pair as a code into ``SIDES``.

    A group is a connected component of the graph that joins each pair to the
    first pair with its source and to the first with its target; its root is
    its smallest index, as union-find's is. The roots are shuffled with
    ``random.Random(seed)`` exactly as ``split_pairs`` shuffles them."""
    n = len(src_keys)
    index = np.arange(n, dtype=np.int32)
    firsts = []  # (2n,) the first pair with each pair's source, then target
    for keys in (src_keys, tgt_keys):
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        firsts.append(first[inverse.reshape(-1)].astype(np.int32))
    edges = (np.tile(index, 2), np.concatenate(firsts))
    del firsts
    graph = coo_matrix((np.ones(2 * n, dtype=np.int8), edges), shape=(n, n))
    del edges
    _, labels = connected_components(graph, directed=False)
    del graph
    _, smallest = np.unique(labels, return_index=True)
    roots = smallest[labels]  # (n,) each pair's group root
    del labels
    sizes = np.bincount(roots, minlength=n)  # a group's size at its root
    order = array("q", np.flatnonzero(sizes).astype(np.int64).tobytes())
    random.Random(seed).shuffle(order)  # the same swaps as on a list

    need = [0, valid_size, test_size]
    side_of_root = np.zeros(n, dtype=np.int8)
    for root in order:
        if not (need[1] or need[2]):
            break  # nothing fits any more: the rest is train
        size = int(sizes[root])
        for side in (2, 1):  # test, then valid
            if size <= need[side]:
                side_of_root[root] = side
                need[side] -= size
                break
    return side_of_root[roots]


def heldout_size(n_pairs: int, wanted: int, fraction: float) -> int:
    return min(wanted, int(n_pairs * fraction))


def write_tsv(pairs: list[Pair], path: Path) -> None:
    """Write pairs in Tatoeba's layout (target TAB source), readable by evaluate."""
    with open(path, "w", encoding="utf-8") as handle:
        for pair in pairs:
            handle.write(f"{pair.tgt}\t{pair.src}\n")
