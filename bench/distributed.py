"""Training throughput: one process against `seqembed train --nproc N`, on
the same data, config and global batch, each a fresh process.

    python bench/distributed.py [--tsv PATH] [--epochs 2] [--rounds 2] [--nproc 2]

One process gets all the cores as threads; N processes get cores/N threads
each. Rounds alternate the two, so a machine that other work shares is shared
about equally by both. Reported: target tokens per second over the training
batches of the last epoch (from metrics.jsonl; validation not counted) and
the wall time of the whole command (start, data, every epoch, validation).
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

SETTINGS = ["--set", "model.emb_size=128", "--set", "model.hidden_size=256",
            "--set", "train.batch_size=64", "--set", "train.valid_bleu_max=50",
            "--set", "data.src_segmentation=char",
            "--set", "model.dropout=0"]  # fmt: skip


def one_run(tsv: str, epochs: int, nproc: int, cores: int) -> tuple[float, float]:
    threads = max(1, cores // nproc)
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": str(threads)}
    with tempfile.TemporaryDirectory() as folder:
        run_dir = Path(folder) / "run"
        command = [sys.executable, "-m", "seqembed", "--quiet", "train", tsv,
                   "--out", str(run_dir), "--epochs", str(epochs), *SETTINGS,
                   "--set", f"train.threads={threads}"]  # fmt: skip
        if nproc > 1:
            command += ["--nproc", str(nproc)]
        started = time.monotonic()
        subprocess.run(command, env=env, check=True, capture_output=True)
        wall = time.monotonic() - started
        last = (run_dir / "metrics.jsonl").read_text().splitlines()[-1]
        return json.loads(last)["tgt_tokens_per_s"], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tsv", default=None, help="default: the built-in corpus")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--nproc", type=int, default=2)
    args = parser.parse_args()
    if args.tsv is None:
        from seqembed.cli.demo import resource_path

        args.tsv = str(resource_path("builtin.tsv"))
    cores = os.cpu_count() or 1
    print(f"{cores} cores; load average {os.getloadavg()[0]:.1f} before")
    results: dict[int, list[tuple[float, float]]] = {1: [], args.nproc: []}
    for _ in range(args.rounds):
        for nproc in (1, args.nproc):
            results[nproc].append(one_run(args.tsv, args.epochs, nproc, cores))
            rate, wall = results[nproc][-1]
            print(f"  {nproc} process(es): {rate:,.0f} tgt tok/s, {wall:.1f} s")
    print(f"load average {os.getloadavg()[0]:.1f} after")
    print("processes  threads each  tgt tok/s (best)  wall s (best)")
    for nproc, runs in results.items():
        print(
            f"{nproc:>9}  {max(1, cores // nproc):>12}  "
            f"{max(r for r, _ in runs):>16,.0f}  {min(w for _, w in runs):>13.1f}"
        )


if __name__ == "__main__":
    main()
