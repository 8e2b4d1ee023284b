"""Embedding analysis at scale: all statistics, the top-100 pairs and the
outliers of a 30,000 x 256 table in under 10 s and under 2 GB peak RSS.

    python bench/analysis.py [--words 30000] [--dim 256] [--threads 2]
                             [--top-n 100] [--profile]

The table is synthetic but shaped like a trained one: Gaussian rows with a
common mean direction and a few high-variance directions, norms that grow
with a Zipfian training frequency. Each measurement runs in a fresh process
(peak RSS is per process), in three setups:

    core        EmbeddingAnalysis(top_n=100).fit(table)            <- the target
    +initial    ... .fit(table, initial=untrained table)
    +groups/co  ... .fit(table, initial, 20 groups, 20,000 sentences)

Each setup prints the whole ``fit`` (wall time and the process's peak RSS, and
the RSS before ``fit`` began), then the same work part by part in another
fresh process. The shape-matched null (19 more passes over all pairs by
default) is switched off in the timed ``fit``; its cost per repeat is timed on
its own.
The machine may be shared: the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import resource
import subprocess
import sys
import time
from pathlib import Path

from seqembed.nmt.cpu.openmp import choose_wait_policy

WAIT_POLICY = choose_wait_policy()  # before torch loads OpenMP

import numpy as np  # noqa: E402
import torch  # noqa: E402

from seqembed.analysis import cohesion, norms, pairs  # noqa: E402
from seqembed.analysis.embedding import EmbeddingAnalysis  # noqa: E402
from seqembed.analysis.similarity import scan_pairs  # noqa: E402
from seqembed.vectors.table import EmbeddingTable  # noqa: E402

TARGET_SECONDS = 10.0
TARGET_RSS_GB = 2.0
SETUPS = ("core", "+initial", "+groups/co")


# ------------------------------------------------------------ the data


def synthetic_table(n_words: int, dim: int, seed: int) -> EmbeddingTable:
    """Trained-looking rows: a shared mean direction, 8 directions with 3x the
    spread, norms rising with log frequency; frequencies Zipfian."""
    rng = np.random.default_rng(seed)
    freqs = np.maximum(1, (200_000 / np.arange(1, n_words + 1) ** 1.1).astype(int))
    basis, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    spread = np.ones(dim)
    spread[:8] = 3.0
    vectors = (rng.standard_normal((n_words, dim)) * spread) @ basis.T
    vectors += 1.5 * basis[:, -1]  # common direction
    vectors *= (0.5 + 0.1 * np.log1p(freqs))[:, None]
    tokens = [f"w{i}" for i in range(n_words)]
    return EmbeddingTable(tokens, vectors.astype(np.float32), freqs)


def initial_table(table: EmbeddingTable, seed: int) -> EmbeddingTable:
    """Untrained N(0, 1) rows, as nn.Embedding starts."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal(table.vectors.shape, dtype=np.float32)
    return EmbeddingTable(table.tokens, vectors, table.freqs)


def groups_and_sentences(table: EmbeddingTable, seed: int):
    """20 groups of 10 words; 20,000 sentences of 4-15 words drawn by frequency."""
    rng = np.random.default_rng(seed)
    n_words = len(table)
    groups = {
        f"group{g}": [table.tokens[i] for i in rng.choice(n_words, 10, replace=False)]
        for g in range(20)
    }
    weights = table.freqs / table.freqs.sum()
    lengths = rng.integers(4, 16, size=20_000)
    drawn = rng.choice(n_words, size=int(lengths.sum()), p=weights)
    sentences, start = [], 0
    for length in lengths:
        sentences.append([table.tokens[i] for i in drawn[start : start + length]])
        start += length
    return groups, sentences


def inputs(setup: str, n_words: int, dim: int) -> dict:
    table = synthetic_table(n_words, dim, seed=0)
    kwargs = {"table": table}
    if setup != "core":
        kwargs["initial"] = initial_table(table, seed=1)
    if setup == "+groups/co":
        kwargs["groups"], kwargs["sentences"] = groups_and_sentences(table, seed=2)
    return kwargs


# ------------------------------------------------------ child processes


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB


def run_fit(setup: str, n_words: int, dim: int, top_n: int) -> dict:
    kwargs = inputs(setup, n_words, dim)
    before = peak_rss_gb()
    started = time.perf_counter()
    # The shaped null (19 more passes over all pairs by default) is timed on
    # its own below: the target covers statistics, top pairs and outliers.
    analysis = EmbeddingAnalysis(
        top_n=top_n, shaped_null_repeats=0, random_state=0
    ).fit(**kwargs)
    seconds = time.perf_counter() - started
    n_pairs = len(analysis.result_["similar_pairs"]["pairs"])
    return {"fit": seconds, "rss_before": before, "rss": peak_rss_gb(), "n": n_pairs}


def run_parts(setup: str, n_words: int, dim: int, top_n: int) -> dict:
    """The steps of ``EmbeddingAnalysis.fit`` one by one (same calls)."""
    kwargs = inputs(setup, n_words, dim)
    table, initial = kwargs["table"], kwargs.get("initial")
    rng = np.random.default_rng(0)
    times = {}

    def timed(name, function, *args):
        started = time.perf_counter()
        value = function(*args)
        times[name] = times.get(name, 0.0) + time.perf_counter() - started
        return value

    bins, matched = timed("frequency bins", cohesion.frequency_bins, table.freqs)
    scan = timed("scan", scan_pairs, table.unit_vectors(), top_n)
    initial_scan = None
    if initial is not None:
        initial_scan = timed("scan", scan_pairs, initial.unit_vectors(), top_n)
    timed(
        "similar pairs",
        pairs.similar_pairs,
        table,
        initial,
        scan,
        initial_scan,
        0,
        rng,
    )
    timed("statistics", norms.statistics, table, scan, initial_scan, initial)
    timed("outliers", norms.outliers, table, initial, 2.0, 3.5, rng)
    if initial is not None:
        timed("movement", norms.movement, table, initial, rng)
    if "groups" in kwargs:
        timed(
            "groups",
            cohesion.group_cohesion,
            table,
            initial,
            kwargs["groups"],
            bins,
            matched,
            1000,
            rng,
        )
        timed(
            "co-occurrence",
            cohesion.cooccurrence,
            table,
            initial,
            kwargs["sentences"],
            bins,
            matched,
            20_000,
            rng,
        )
    if setup == "core":
        # Not in the target: one shape-matched repeat, for its cost (fit draws
        # SHAPED_REPEATS of them unless told otherwise).
        timed("(shaped null, 1 repeat)", pairs.shaped_top_scores, table, top_n, 1, rng)
    return {"parts": times, "rss": peak_rss_gb()}


def child(args) -> None:
    torch.set_num_threads(args.threads)
    run = run_fit if args.child == "fit" else run_parts
    if args.profile and args.child == "fit":
        profiler = cProfile.Profile()
        result = profiler.runcall(run, args.setup, args.words, args.dim, args.top_n)
        stats = pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative")
        stats.print_stats(25)
    else:
        result = run(args.setup, args.words, args.dim, args.top_n)
    result["threads"] = torch.get_num_threads()
    print(json.dumps(result))


def matmul_gflops(n_words: int, dim: int, threads: int) -> float:
    """This machine's fp32 rate, now, on one block of the scan's products."""
    torch.set_num_threads(threads)
    block = torch.randn(2048, dim)
    rows = torch.randn(n_words, dim)
    block @ rows.T
    started = time.perf_counter()
    for _ in range(3):
        block @ rows.T
    return 3 * 2 * 2048 * n_words * dim / (time.perf_counter() - started) / 1e9


def in_fresh_process(mode: str, setup: str, args) -> dict:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        mode,
        "--setup",
        setup,
        "--words",
        str(args.words),
        "--dim",
        str(args.dim),
        "--threads",
        str(args.threads),
        "--top-n",
        str(args.top_n),
    ] + (["--profile"] if args.profile else [])
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    if args.profile and done.stderr:
        print(done.stderr, file=sys.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------ the report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--words", type=int, default=30_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--top-n", type=int, default=100)
    parser.add_argument(
        "--setups", nargs="+", choices=SETUPS, default=list(SETUPS), metavar="SETUP"
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile each fit (to stderr)"
    )
    parser.add_argument("--child", choices=("fit", "parts"), help=argparse.SUPPRESS)
    parser.add_argument("--setup", choices=SETUPS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0

    print(f"table {args.words:,} x {args.dim}, top {args.top_n} pairs")
    print("load average before: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    rate = matmul_gflops(args.words, args.dim, args.threads)
    flops = args.words * (args.words - 1) / 2 * 2 * args.dim  # one pass, i < j
    print(
        f"fp32 matmul now: {rate:.0f} GFLOP/s; one all-pairs scan is "
        f"{flops / 1e9:.0f} GFLOP, at least {flops / 1e9 / rate:.1f} s"
    )
    met = True
    for setup in args.setups:
        fit = in_fresh_process("fit", setup, args)
        parts = in_fresh_process("parts", setup, args)
        ok = fit["fit"] < TARGET_SECONDS and fit["rss"] < TARGET_RSS_GB
        if setup == "core":
            met = ok
        print(
            f"\n{setup}: fit {fit['fit']:.2f} s, peak RSS {fit['rss']:.2f} GB "
            f"({fit['rss_before']:.2f} GB before fit), torch threads "
            f"{fit['threads']}, {fit['n']} pairs listed"
            + (f"  -> target {'met' if ok else 'MISSED'}" if setup == "core" else "")
        )
        for name, seconds in parts["parts"].items():
            print(f"    {name:<26} {seconds:6.2f} s")
        print(f"    {'sum of parts':<26} {sum(parts['parts'].values()):6.2f} s")
    print("\nload average after: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(
        f"target (core, < {TARGET_SECONDS:g} s and < {TARGET_RSS_GB:g} GB): "
        + ("met" if met else "MISSED")
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
