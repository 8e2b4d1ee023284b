"""Large corpora (issue 7): peak memory, tokenisation time and training speed
on a generated corpus of millions of pairs, against the 27k-pair Tatoeba file.

    python bench/large_corpus.py --pairs 5000000 [--steps 150]

The corpus is generated into /tmp from Tatoeba's sentences: each pair joins
three random Tatoeba pairs, source with source and target with target (27k^3
combinations, so deduplication and the leak-free split keep nearly all of
them, and no word is invented: the vocabulary is Tatoeba's). Both sides are
written pre-tokenised (jieba and Moses run once on Tatoeba's 27k sentences,
not on the millions), so tokenisation here measures the cache's machinery:
reading, counting, encoding, the process pool. Every run uses the same
``vocab.max_size`` and one torch thread, so the model is the same size and
tokens/s compares the data path, not the softmax.

Every measurement runs in a fresh process (``--phase``). The training phase
goes through what ``seqembed train CORPUS`` calls (``corpus.Corpus`` and
``training.train``), and notes peak RSS (ru_maxrss) at the log lines that end
each step: the split written to RUN/data, the token cache built, the model
made, then after the training steps.
"""

from __future__ import annotations

import argparse
import json
import logging
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
    "vocab.max_size=4000",
    "train.threads=1",
    "train.epochs=1",
    "train.valid_bleu_max=100",
]
# The log line that ends each step of training's setup (see ``Marks``).
STEPS = {"split": "split:", "cache": "token cache:", "model": "model:"}


def peak_mib(children: bool = False) -> float:
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


def tatoeba_tokens() -> list[tuple[str, str]]:
    """Tatoeba's pairs as (English, Chinese), Moses- and jieba-tokenised."""
    from seqembed.data.segment import ChineseSegmenter, EnglishTokenizer

    jieba, moses = ChineseSegmenter("jieba"), EnglishTokenizer("moses", True)
    pairs = []
    for line in TATOEBA.read_text(encoding="utf-8-sig").splitlines():
        en, zh = line.split("\t")[:2]
        pairs.append((" ".join(moses.tokenize(en)), " ".join(jieba(zh))))
    return pairs


def generate(n_pairs: int, out: Path) -> None:
    """``n_pairs`` lines of English TAB segmented Chinese: three random
    Tatoeba pairs joined."""
    base = tatoeba_tokens()
    rng = random.Random(0)
    with open(out, "w", encoding="utf-8") as handle:
        for _ in range(n_pairs):
            three = [rng.choice(base) for _ in range(3)]
            en = " ".join(en for en, _ in three)
            zh = " ".join(zh for _, zh in three)
            handle.write(f"{en}\t{zh}\n")


def tatoeba_pretokenized(out: Path) -> None:
    with open(out, "w", encoding="utf-8") as handle:
        for en, zh in tatoeba_tokens():
            handle.write(f"{en}\t{zh}\n")


class Marks(logging.Handler):
    """Time and peak RSS when each of ``STEPS``' log lines is written."""

    def __init__(self, started: float):
        super().__init__(logging.INFO)
        self.started, self.at = started, {}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        for step, start in STEPS.items():
            if message.startswith(start) and step not in self.at:
                seconds = time.monotonic() - self.started
                self.at[step] = (round(seconds, 1), round(peak_mib()))


def phase_train(corpus: Path, run_dir: Path, steps: int, extra: list[str]) -> dict:
    """Read, split, tokenise (cache or lists) and train ``steps`` steps, as
    ``seqembed train CORPUS`` does."""
    from seqembed.config import load_config
    from seqembed.data.corpus import Corpus
    from seqembed.nmt.training import train

    config = load_config(None, [*SETTINGS, *extra])
    started = time.monotonic()
    marks = Marks(started)
    logger = logging.getLogger("seqembed")
    logger.setLevel(logging.INFO)
    logger.addHandler(marks)
    logger.addHandler(logging.StreamHandler())  # to the log, for progress
    steps_at = []

    class Clock:  # step times; tokens from the loop's running tokens/s
        def epoch_start(self, epoch, epochs, n_batches, done):
            steps_at.append((time.monotonic(), 0.0))

        def step(self, loss, tgt_tokens_per_s):
            now = time.monotonic()
            steps_at.append((now, tgt_tokens_per_s * (now - steps_at[0][0])))

        def epoch_end(self, metrics):
            pass

    data = config.data
    train(
        config,
        run_dir,
        Corpus((corpus,), data.src_column, data.tgt_column, data.max_chars),
        reporter=Clock(),
        stop_requested=lambda: len(steps_at) > steps,
    )
    warm = len(steps_at) // 4  # the first quarter is warm-up
    (t0, k0), (t1, k1) = steps_at[warm], steps_at[-1]
    vocab = {
        side: sum(1 for _ in open(run_dir / f"vocab.{side}.tsv", encoding="utf-8"))
        for side in ("src", "tgt")
    }
    return {
        "train_pairs": sum(1 for _ in open(run_dir / "data" / "train.tsv", "rb")),
        "vocab_lines": vocab,
        "seconds_and_peak_mib_at": marks.at,
        "steps": len(steps_at) - 1,
        "steady_tgt_tokens_per_s": round((k1 - k0) / (t1 - t0)),
        "seconds": round(time.monotonic() - started, 1),
        "peak_mib": round(peak_mib()),
        "peak_mib_workers": round(peak_mib(children=True)),
        "rss_mib_at_end": rss_now(),
    }


def rss_now() -> dict:
    """Resident memory now: anonymous (the process's own) and file-backed
    (mapped files: pages the kernel can drop)."""
    status = Path("/proc/self/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in status if line.startswith("Rss"))
    return {k: round(int(v.split()[0]) / 1024) for k, v in fields.items()}


def phase_tokenize(run_dir: Path, processes: int) -> dict:
    """The cache alone, from the run's train.tsv, with ``processes`` workers."""
    from seqembed.config import load_config
    from seqembed.data.token_cache import build_cache

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


def fresh(log: Path, *args: str) -> dict:
    """A phase in a fresh process; its log lines go to ``log``."""
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, __file__, "--phase", *args]
    with open(log, "ab") as stderr:
        output = subprocess.run(command, env=env, check=True, stdout=-1, stderr=stderr)
    result = json.loads(output.stdout.decode().strip().splitlines()[-1])
    result["loadavg_after"] = Path("/proc/loadavg").read_text().split()[:3]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5_000_000)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--work", type=Path, default=Path("/tmp/seqembed-large"))
    parser.add_argument(
        "--tokenize-processes", default="1,2", help="cache builds to time alone"
    )
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
    log = work / f"log-{args.pairs}.txt"
    large, small = work / f"corpus3-{args.pairs}.tsv", work / "tatoeba.tsv"
    if not large.exists():
        started = time.monotonic()
        generate(args.pairs, large)
        print(f"generated {large} in {time.monotonic() - started:.0f} s")
    if not small.exists():
        tatoeba_pretokenized(small)
    results = {"loadavg_before": Path("/proc/loadavg").read_text().split()[:3]}
    print("load average before:", *results["loadavg_before"], flush=True)
    for name, corpus, extra in (
        ("tatoeba_27k_lists", small, []),
        ("tatoeba_27k_cache", small, ["data.cache_min_pairs=1"]),
        (f"generated_{args.pairs}", large, []),
    ):
        run_dir = work / f"run-{name}"
        subprocess.run(["rm", "-rf", str(run_dir)], check=True)
        results[name] = fresh(
            log, "train", str(corpus), str(run_dir), str(args.steps), *extra
        )
        print(name, json.dumps(results[name]), flush=True)
    for processes in map(int, args.tokenize_processes.split(",")):
        run_dir = work / f"run-generated_{args.pairs}"
        results[f"tokenize_{processes}"] = fresh(
            log, "tokenize", str(run_dir), str(processes)
        )
        print(f"tokenize {processes}", json.dumps(results[f"tokenize_{processes}"]))
    (work / f"results-{args.pairs}.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
