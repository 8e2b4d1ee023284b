"""OpenMP wait policies, idle and next to busy processes (seqembed/openmp.py).

    python bench/wait_policy.py [--steps 60] [--spins 1000,30000] [--tsv PATH]

Trains the matched config of bench/speed.py (fp32, Luong input feeding, 2
threads) for --steps steps in a fresh process per policy, so that libgomp
reads the policy when torch loads it:

* OMP_WAIT_POLICY=PASSIVE: idle threads sleep at once;
* GOMP_SPINCOUNT=N for each N of --spins (libgomp spins ~100,000 times a
  millisecond: 1000 is seqembed's short spin, ~10 us; 30000 ~300 us);
* GOMP_SPINCOUNT=300000: libgomp's own default (no policy set), ~3 ms;

each on an idle machine, with one busy process (a Python loop) and with two.
Each figure is printed as it is measured, then the table of target tokens
per second, and each policy's ratio to PASSIVE in the same condition. Run it
on an otherwise quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from seqembed.nmt.cpu.openmp import SHORT_SPIN

HERE = Path(__file__).resolve().parent
LIBGOMP_DEFAULT = 300000


def policies(spins: list[int]) -> dict[str, dict]:
    """PASSIVE, each spin count, and libgomp's default, by name."""
    named = {"OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"}}
    for count in [*spins, LIBGOMP_DEFAULT]:
        name = f"GOMP_SPINCOUNT={count}"
        if count == LIBGOMP_DEFAULT:
            name += " (libgomp default)"
        elif str(count) == SHORT_SPIN:
            name += " (seqembed)"
        named[name] = {"GOMP_SPINCOUNT": str(count)}
    return named


BUSY_LOOP = "while True: pass"


def child(steps: int, tsv: Path) -> None:
    """In the fresh process: train and print the result as JSON."""
    sys.path.insert(0, str(HERE))
    import speed  # imports torch, which reads the policy now

    from seqembed.data.corpus import SkipCounts, read_tsv

    speed.torch.set_num_threads(2)
    pairs = read_tsv(tsv, 1, 0, 1000, SkipCounts())
    out = Path("runs/bench-wait-policy")
    result = speed.measure_training(pairs, True, steps, out)
    print(json.dumps({"tgt_tok_s": result["tgt_tok_s"]}))


def measure(policy: dict, steps: int, tsv: Path) -> float:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}  # fmt: skip
    env.update(policy)
    command = [sys.executable, __file__, "--child", "--steps", str(steps),
               "--tsv", str(tsv)]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr.strip().splitlines()[-1])
    return json.loads(done.stdout.strip().splitlines()[-1])["tgt_tok_s"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--spins", default=SHORT_SPIN,
                        help="spin counts to compare, comma-separated")  # fmt: skip
    parser.add_argument("--tsv", type=Path, default=HERE.parents[1]
                        / "shared/data/tatoeba-cmn-eng/cmn-eng.tsv")  # fmt: skip
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.tsv.is_file():
        print(f"Tatoeba TSV not found: {args.tsv}", file=sys.stderr)
        return 2
    if args.child:
        child(args.steps, args.tsv)
        return 0
    try:
        named = policies([int(count) for count in args.spins.split(",")])
    except ValueError:
        parser.error(f"--spins {args.spins}: give whole numbers, comma-separated")
    print(f"fp32 input feeding, matched config, 2 threads, {args.steps} steps, "
          "target tokens/s (ratio to PASSIVE in the same condition):")  # fmt: skip
    rows = {name: [] for name in named}
    for n_busy in (0, 1, 2):
        busy = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP])
                for _ in range(n_busy)]  # fmt: skip
        try:
            for name, policy in named.items():
                rows[name].append(measure(policy, args.steps, args.tsv))
                print(f"  {n_busy} busy, {name}: {rows[name][-1]:,.0f}", flush=True)
        finally:
            for process in busy:
                process.kill()
    print("| policy | idle | 1 busy process | 2 busy processes |")
    print("|---|---|---|---|")
    passive = rows["OMP_WAIT_POLICY=PASSIVE"]
    for name, speeds in rows.items():
        cells = [f"{s:,.0f} ({s / p:.2f}x)" for s, p in zip(speeds, passive)]
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
