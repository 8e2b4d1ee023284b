"""Reading a large pretrained-vector file for a training vocabulary.

    python bench/pretrained.py [--words 400000] [--dim 300] [--vocab 30000]
                               [--dir DIR] [--gensim]

Writes a synthetic word2vec text file, the same without a header (GloVe's
layout) and a word2vec binary file (400,000 x 300 is GloVe 6B's size: about
1.2 GB of text), then, each in a fresh process, times ``load_into`` for a
vocabulary of ``--vocab`` words of which 5/6 are in the file (exact or by
case) and reports the peak resident memory, and the memory before the load
(the imports: torch for seqembed). ``--gensim`` also times gensim's
``KeyedVectors.load_word2vec_format``, which keeps every row.

Measured 2026-11-24 on the shared 2-core CPU (load average 5.5 while it ran,
so the times are pessimistic), 400,000 x 300, vocabulary 30,000:

| format | MB | seqembed s | peak RSS MB (before) | gensim s | gensim RSS MB (before) |
|---|---|---|---|---|---|
| word2vec text | 1,103 | 6.2 | 372 (265) | 142.6 | 625 (105) |
| GloVe text | 1,103 | 6.2 | 372 (265) | 109.2 | 625 (105) |
| word2vec binary | 484 | 1.8 | 373 (265) | 3.0 | 625 (105) |
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from seqembed.nmt.cpu.openmp import choose_wait_policy

WAIT_POLICY = choose_wait_policy()  # before torch loads OpenMP
os.environ.setdefault("OMP_NUM_THREADS", "1")


def file_words(n: int) -> list[str]:
    # Mixed case, digits and Chinese, as real files have.
    return [f"w{i}" if i % 3 else f"W{i}\u5b57" for i in range(n)]


def vocab_words(n_words: int, size: int) -> list[str]:
    """5/6 of the vocabulary in the file (a third of those by case only)."""
    present = [w.lower() for w in file_words(n_words)[: size * 5 // 6]]
    return present + [f"absent{i}" for i in range(size - len(present))]


def write_files(folder: Path, n_words: int, dim: int) -> dict[str, Path]:
    import numpy as np

    rng = np.random.default_rng(0)
    words = file_words(n_words)
    paths = {
        "word2vec": folder / "vectors.txt",
        "glove": folder / "vectors.glove.txt",
        "word2vec-binary": folder / "vectors.bin",
    }
    row_format = " ".join(["%.6g"] * dim) + "\n"
    with (
        open(paths["word2vec"], "w", encoding="utf-8") as text,
        open(paths["glove"], "w", encoding="utf-8") as glove,
        open(paths["word2vec-binary"], "wb") as binary,
    ):
        text.write(f"{n_words} {dim}\n")
        binary.write(f"{n_words} {dim}\n".encode())
        for start in range(0, n_words, 4096):
            block = rng.standard_normal((min(4096, n_words - start), dim))
            block = block.astype(np.float32)
            rows = [
                f"{w} " + row_format % tuple(r)
                for w, r in zip(words[start:], block.tolist())
            ]
            text.writelines(rows)
            glove.writelines(rows)
            for w, r in zip(words[start:], block):
                binary.write(w.encode() + b" " + r.tobytes() + b"\n")
    return paths


def measure(path: str, format: str, n_words: int, vocab: int, dim: int) -> dict:
    """One load (run in a child process)."""
    import resource

    from torch import nn

    from seqembed.data.vocab import SPECIALS, Vocab
    from seqembed.nmt.pretrained import load_into

    words = vocab_words(n_words, vocab)
    table = Vocab(list(SPECIALS) + words, [0] * 4 + [1] * len(words))
    embedding = nn.Embedding(len(table), dim, padding_idx=0)
    before = rss_mb()
    started = time.perf_counter()
    coverage = load_into(embedding.weight, table, Path(path), format)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(peak_mb),
        "before_mb": before,
        "found": len(coverage.found),
        "by_case": len(coverage.by_case),
    }


def measure_gensim(path: str, format: str) -> dict:
    import resource

    from gensim.models import KeyedVectors

    before = rss_mb()
    started = time.perf_counter()
    KeyedVectors.load_word2vec_format(
        path, binary=format == "word2vec-binary", no_header=format == "glove"
    )
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(peak_mb),
        "before_mb": before,
    }


def rss_mb() -> int:
    """Resident memory now (Linux), after the imports and before the load."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024)
    return -1


def in_child(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=400_000)
    parser.add_argument("--dim", type=int, default=300)
    parser.add_argument("--vocab", type=int, default=30_000)
    parser.add_argument("--dir", help="keep the generated files here")
    parser.add_argument("--gensim", action="store_true")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, path, format, *numbers = args.child
        if kind == "gensim":
            result = measure_gensim(path, format)
        else:
            result = measure(path, format, *map(int, numbers))
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory() as temp:
        folder = Path(args.dir or temp)
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        paths = write_files(folder, args.words, args.dim)
        print(
            f"wrote {args.words:,} x {args.dim} in {time.perf_counter() - started:.0f}s"
        )
        print(f"load avg {os.getloadavg()[0]:.2f}")
        print(
            "| format | file MB | seqembed s | peak RSS MB (before) | found "
            "| gensim s | gensim peak RSS MB (before) |"
        )
        print("|---|---|---|---|---|---|---|")
        for format, path in paths.items():
            numbers = map(str, (args.words, args.vocab, args.dim))
            ours = in_child("seqembed", str(path), format, *numbers)
            theirs = in_child("gensim", str(path), format) if args.gensim else {}
            size = path.stat().st_size / 1e6
            print(
                f"| {format} | {size:,.0f} | {ours['seconds']} | {ours['peak_rss_mb']}"
                f" ({ours['before_mb']})"
                f" | {ours['found']:,} ({ours['by_case']:,} by case) "
                f"| {theirs.get('seconds', '')} | {theirs.get('peak_rss_mb', '')}"
                f" ({theirs.get('before_mb', '')}) |"
            )


if __name__ == "__main__":
    main()
