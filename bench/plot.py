"""t-SNE time for a large embedding table: openTSNE with 1 and 2 threads,
and optionally scikit-learn, as ``seqembed plot`` runs them.

    python bench/plot.py [--words 5000] [--dim 256] [--threads 1 2]
                         [--sklearn] [--pca]

The issue's figure is 30,000 x 256 (``--words 30000``): openTSNE 48 s with
one thread against 234 s for scikit-learn with two. The default is smaller so
a run takes about a minute. Rows are Gaussian with a few high-variance
directions (a trained table's shape; t-SNE's cost hardly depends on it).
Each measurement runs in a fresh process, with OMP/BLAS pools limited to the
thread count; the machine may be shared, so the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from seqembed.nmt.cpu.openmp import choose_wait_policy

WAIT_POLICY = choose_wait_policy()  # before torch loads OpenMP


def synthetic_vectors(n_words: int, dim: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    spread = np.ones(dim)
    spread[:8] = 3.0
    return (rng.standard_normal((n_words, dim)) * spread).astype(np.float32)


def measure(method: str, n_words: int, dim: int, threads: int) -> dict:
    """One projection, timed (run in a child process)."""
    from seqembed.report.projection import Projection

    vectors = synthetic_vectors(n_words, dim)
    large_from = 0 if method == "opentsne" else 10**9
    name = "pca" if method == "pca" else "tsne"
    projection = Projection(name, n_jobs=threads, large_from=large_from)
    started = time.perf_counter()
    projection.fit(vectors)
    return {
        "method": projection.method_,
        "threads": threads,
        "seconds": time.perf_counter() - started,
    }


def in_child(method: str, n_words: int, dim: int, threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    code = (
        "import json, sys; sys.path.insert(0, 'bench'); import plot; "
        f"print(json.dumps(plot.measure({method!r}, {n_words}, {dim}, {threads})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env
    )
    if result.returncode != 0:
        raise SystemExit(result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=5000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--sklearn", action="store_true", help="scikit-learn too")
    parser.add_argument("--pca", action="store_true", help="PCA too")
    args = parser.parse_args()

    methods = ["opentsne"] + ["sklearn"] * args.sklearn + ["pca"] * args.pca
    print(f"{args.words:,} x {args.dim}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    for method in methods:
        for threads in args.threads:
            row = in_child(method, args.words, args.dim, threads)
            print(f"  {row['method']:<22} {threads} thread(s)  {row['seconds']:7.1f} s",
                  flush=True)  # fmt: skip
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
