"""Large corpora (issue 7): peak memory, tokenisation time and training speed
on a generated corpus of millions of pairs, against the 27k-pair Tatoeba file.

    python bench/large_corpus.py --pairs 5000000 [--steps 200]

The corpus is generated into /tmp from Tatoeba's sentences: each pair joins
two random Tatoeba pairs and a random number on both sides (so deduplication
and the leak-free split keep nearly all of them). Both sides are written
pre-tokenised (jieba and Moses run once on Tatoeba's 27k sentences, not on the
millions), so tokenisation here measures the cache's machinery: reading,
counting, encoding, the process pool. Every measurement runs in a fresh
process (``--phase``), so peak RSS (ru_maxrss) is that phase's alone.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TATOEBA = ROOT.parent / "shared" / "data" / "tatoeba-cmn-eng" / "cmn-eng.tsv"
SETTINGS = [
    "data.src_segmentation=pretokenized",
    "data.tgt_tokenization=pretokenized",
    "train.epochs=1",
    "train.valid_bleu_max=100",
]


def peak_mib(children: bool = False) -> float:
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


def generate(n_pairs: int, out: Path) -> None:
    """``n_pairs`` lines of English TAB segmented Chinese, from Tatoeba."""
    from seqembed.segment import ChineseSegmenter, EnglishTokenizer

    jieba, moses = ChineseSegmenter("jieba"), EnglishTokenizer("moses", True)
    base = []
    for line in TATOEBA.read_text(encoding="utf-8-sig").splitlines():
        en, zh = line.split("\t")[:2]
        base.append((" ".join(moses.tokenize(en)), " ".join(jieba(zh))))
    rng = random.Random(0)
    with open(out, "w", encoding="utf-8") as handle:
        for _ in range(n_pairs):
            (en1, zh1), (en2, zh2) = rng.choice(base), rng.choice(base)
            number = rng.randrange(10**6)
            handle.write(f"{en1} {en2} {number}\t{zh1} {zh2} {number}\n")


def tatoeba_pretokenized(out: Path) -> None:
    from seqembed.segment import ChineseSegmenter, EnglishTokenizer

    jieba, moses = ChineseSegmenter("jieba"), EnglishTokenizer("moses", True)
    with open(out, "w", encoding="utf-8") as handle:
        for line in TATOEBA.read_text(encoding="utf-8-sig").splitlines():
            en, zh = line.split("\t")[:2]
            handle.write(f"{' '.join(moses.tokenize(en))}\t{' '.join(jieba(zh))}\n")


def phase_train(corpus: Path, run_dir: Path, steps: int, extra: list[str]) -> dict:
    """Read, split, tokenise (cache or lists) and train ``steps`` steps."""
    from seqembed.config import load_config
    from seqembed.corpus import SkipCounts, read_tsv
    from seqembed.training import train

    config = load_config(None, [*SETTINGS, *extra])
    started = time.monotonic()
    pairs = read_tsv(corpus, 1, 0, 10_000, SkipCounts())
    read_s, read_peak = time.monotonic() - started, peak_mib()
    marks = []

    class Clock:  # step times; tokens from the loop's running tokens/s
        def epoch_start(self, epoch, epochs, n_batches, done):
            marks.append(("start", time.monotonic(), 0.0))

        def step(self, loss, tgt_tokens_per_s):
            now = time.monotonic()
            marks.append(("step", now, tgt_tokens_per_s * (now - marks[0][1])))

        def epoch_end(self, metrics):
            pass

    train(
        config,
        run_dir,
        pairs,
        reporter=Clock(),
        stop_requested=lambda: len(marks) > steps,
    )
    steps_done = [m for m in marks if m[0] == "step"]
    warm = len(steps_done) // 4  # the first quarter is warm-up
    (_, t0, k0), (_, t1, k1) = steps_done[warm], steps_done[-1]
    return {
        "pairs_read": len(pairs),
        "read_s": round(read_s, 1),
        "peak_mib_after_read": round(read_peak),
        "setup_s": round(marks[0][1] - started - read_s, 1),
        "steps": len(steps_done),
        "steady_tgt_tokens_per_s": round((k1 - k0) / (t1 - t0)),
        "peak_mib": round(peak_mib()),
        "peak_mib_workers": round(peak_mib(children=True)),
    }


def phase_tokenize(run_dir: Path, processes: int) -> dict:
    """The cache alone, from the run's train.tsv, with ``processes`` workers."""
    from seqembed.config import load_config
    from seqembed.token_cache import build_cache

    config = load_config(None, SETTINGS)
    started = time.monotonic()
    cache = build_cache(
        run_dir / "data" / "train.tsv",
        run_dir / f"cache-bench-{processes}",
        config,
        None,
        {},
        processes,
    )
    return {
        "processes": processes,
        "pairs": len(cache.src),
        "seconds": round(time.monotonic() - started, 1),
        "peak_mib": round(peak_mib()),
        "peak_mib_workers": round(peak_mib(children=True)),
    }


def fresh(*args: str) -> dict:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    command = [sys.executable, __file__, "--phase", *args]
    output = subprocess.run(command, env=env, check=True, capture_output=True)
    return json.loads(output.stdout.decode().strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5_000_000)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--work", type=Path, default=Path("/tmp/seqembed-large"))
    parser.add_argument("--phase", nargs="*")
    args = parser.parse_args()
    if args.phase:
        name, *rest = args.phase
        if name == "train":
            result = phase_train(Path(rest[0]), Path(rest[1]), int(rest[2]), rest[3:])
        else:
            result = phase_tokenize(Path(rest[0]), int(rest[1]))
        print(json.dumps(result))
        return

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    large, small = work / f"corpus-{args.pairs}.tsv", work / "tatoeba.tsv"
    if not large.exists():
        started = time.monotonic()
        generate(args.pairs, large)
        print(f"generated {large} in {time.monotonic() - started:.0f} s")
    if not small.exists():
        tatoeba_pretokenized(small)
    results = {}
    for name, corpus, extra in (
        ("tatoeba_27k_lists", small, []),
        ("tatoeba_27k_cache", small, ["data.cache_min_pairs=1"]),
        ("large_cache", large, ["data.cache_min_pairs=1"]),
    ):
        run_dir = work / f"run-{name}"
        subprocess.run(["rm", "-rf", str(run_dir)], check=True)
        results[name] = fresh(
            "train", str(corpus), str(run_dir), str(args.steps), *extra
        )
        print(name, json.dumps(results[name]), flush=True)
    for processes in (1, 2):
        run_dir = work / "run-large_cache"
        results[f"tokenize_{processes}"] = fresh(
            "tokenize", str(run_dir), str(processes)
        )
        print(f"tokenize {processes}", json.dumps(results[f"tokenize_{processes}"]))
    (work / f"results-{args.pairs}.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
