"""seqembed against OpenNMT-py on this host, in alternating rounds.

    python bench/side_by_side.py [--rounds 3] [--onmt-seconds 180] [--steps 200]
                                 [--modes native avx2] [--passive]
                                 [--data /tmp/peerdata] [--venv /tmp/peers-venv]

One pair (OpenNMT-py's training for --onmt-seconds, its steady state read
from its own log; then `bench/speed.py`'s training rows on the same split,
fp32, with and without input feeding) says less than it seems on a shared
cloud host: run an hour apart, pairs on one 2-core machine have moved by a
quarter. So this runs --rounds pairs per mode, the two tools in turns
(OpenNMT-py first in odd rounds, seqembed first in even ones, so that a
host that drifts one way favours neither), and prints every pair's ratios
and then, per mode, their median and range, and what bounds the ratios:
each tool's whole training step as a share of the machine's fp32 matmul
rate (the step's counted FLOPs, `bench/speed.py`'s, at its measured rate),
beside the share that input feeding would need for 2x and 1.5x OpenNMT-py.
``--summarize`` prints all of it again from the files of a finished run in
--out, running nothing.

Modes: ``native``, and ``avx2``, which restricts PyTorch, MKL and oneDNN to
the kernels of a CPU without AVX-512 (``ATEN_CPU_CAPABILITY=avx2
MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2``, for both tools).
The default is both where the CPU has AVX-512, native alone elsewhere.

Each tool runs at its own default: OpenNMT-py with its script's
``OMP_WAIT_POLICY=PASSIVE``, seqembed with its short spin
(``GOMP_SPINCOUNT=1000``); ``--passive`` runs seqembed with PASSIVE too.

Needs OpenNMT-py in --venv, as ../shared/peers/run_opennmt.sh installs it
(run that once, e.g. ``BUDGET_S=60 bash ../shared/peers/run_opennmt.sh``),
and the split it writes (made here from --tsv if --data has none). Every
line is printed as it is measured; with the defaults a round takes about
9 minutes, a mode about 26.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from peer_logs import opennmt_tgt_tokens_per_s  # noqa: E402

PEERS = HERE.parents[1] / "shared/peers"
DEFAULT_TSV = HERE.parents[1] / "shared/data/tatoeba-cmn-eng/cmn-eng.tsv"

AVX2_ONLY = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
}
# what ../shared/peers/run_opennmt.sh sets for OpenNMT-py
ONMT_ENV = {
    "OMP_NUM_THREADS": "2",
    "MKL_NUM_THREADS": "2",
    "PYTHONWARNINGS": "ignore",
    "OMP_WAIT_POLICY": "PASSIVE",
    "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1",
}
# the ratios summarised per mode: (speed.py row, pass) -> label
RATIOS = {
    (False, "tgt_tok_s"): "no input feeding, first pass",
    (False, "steady_tgt_tok_s"): "no input feeding, second pass",
    (True, "tgt_tok_s"): "input feeding, first pass",
    (True, "steady_tgt_tok_s"): "input feeding, second pass",
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--onmt-seconds", type=int, default=180,
        help="OpenNMT-py's training budget a round (its first progress "
        "report, at step 50, is left out of its steady state)",
    )  # fmt: skip
    parser.add_argument(
        "--steps", type=int, default=200,
        help="seqembed's steps a configuration, timed twice (bench/speed.py)",
    )  # fmt: skip
    parser.add_argument("--modes", nargs="+", choices=["native", "avx2"])
    parser.add_argument(
        "--passive", action="store_true",
        help="seqembed with OMP_WAIT_POLICY=PASSIVE too (default: its own spin)",
    )  # fmt: skip
    parser.add_argument("--tsv", type=Path, default=DEFAULT_TSV)
    parser.add_argument("--data", type=Path, default=Path("/tmp/peerdata"))
    parser.add_argument(
        "--venv", type=Path, default=Path(os.environ.get("VENV", "/tmp/peers-venv"))
    )
    parser.add_argument("--out", type=Path, default=Path("runs/side-by-side"))
    parser.add_argument(
        "--summarize", action="store_true",
        help="print the rounds already in --out and their summary; run nothing",
    )  # fmt: skip
    return parser.parse_args()


def has_avx512() -> bool:
    try:
        return " avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def cpu_model() -> str:
    """The CPU's model name, family and model, as lscpu shows them."""
    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        return "unknown CPU"
    return (f"{fields.get('model name', '?')}, family {fields.get('cpu family', '?')} "
            f"model {fields.get('model', '?')}, {os.cpu_count()} CPUs")  # fmt: skip


def prepare_opennmt(args) -> Path:
    """OpenNMT-py's config and vocabularies under --out, once; its config."""
    onmt_train = args.venv / "bin/onmt_train"
    if not onmt_train.exists():
        raise SystemExit(
            f"error: OpenNMT-py is not installed in {args.venv}: run "
            f"`BUDGET_S=60 bash {PEERS}/run_opennmt.sh` once (it installs it), "
            "or pass --venv"
        )
    python = str(args.venv / "bin/python")
    if not (args.data / "train.zh").exists():
        if not args.tsv.is_file():
            raise SystemExit(f"error: no split in {args.data} and no TSV at {args.tsv}")
        prepare = [python, str(PEERS / "prepare.py"), str(args.tsv), str(args.data)]
        subprocess.run(prepare, check=True)
    work = (args.out / "opennmt").resolve()
    work.mkdir(parents=True, exist_ok=True)
    template = (PEERS / "opennmt/lstm.yaml.in").read_text()
    config = work / "lstm.yaml"
    data = str(args.data.resolve())
    config.write_text(template.replace("@DATA@", data).replace("@WORK@", str(work)))
    if not (work / "vocab.en").exists():
        with open(work / "vocab.log", "w") as log:
            subprocess.run(
                [str(args.venv / "bin/onmt_build_vocab"), "-config", str(config),
                 "-n_sample", "-1"],
                stdout=log, stderr=subprocess.STDOUT, check=True,
                env={**os.environ, **ONMT_ENV},
            )  # fmt: skip
    return config


def run_opennmt(args, config: Path, mode_env: dict, log: Path) -> None:
    """OpenNMT-py's training for --onmt-seconds, then interrupted (as the
    peer script's `timeout -s INT`); its progress reports go to ``log``."""
    for checkpoint in config.parent.glob("model_step_*.pt"):
        checkpoint.unlink()
    env = {**os.environ, **ONMT_ENV, **mode_env}
    with open(log, "w") as out:
        process = subprocess.Popen(
            [str(args.venv / "bin/onmt_train"), "-config", str(config)],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        try:
            process.wait(timeout=args.onmt_seconds)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def run_seqembed(args, mode_env: dict, figures: Path) -> None:
    """bench/speed.py's fp32 training rows (its --json figures)."""
    env = {**os.environ, **mode_env}
    if args.passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    command = [
        sys.executable, str(HERE / "speed.py"), "--peer-data", str(args.data),
        "--precisions", "fp32", "--steps", str(args.steps), "--minutes", "8",
        "--out", str(args.out / "seqembed"), "--json", str(figures),
    ]  # fmt: skip
    with open(figures.with_suffix(".log"), "w") as log:
        subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                       check=True)  # fmt: skip


def round_files(out: Path, mode: str, number: int) -> tuple[Path, Path]:
    """A round's OpenNMT-py log and seqembed figures under ``out``."""
    return out / f"{mode}-{number}-opennmt.log", out / f"{mode}-{number}-seqembed.json"


def one_round(args, config: Path, mode: str, number: int) -> dict:
    """One pair, OpenNMT-py first in odd rounds: seqembed's figures with
    OpenNMT-py's steady state added."""
    mode_env = AVX2_ONLY if mode == "avx2" else {}
    onmt_log, figures = round_files(args.out, mode, number)
    if number % 2:
        run_opennmt(args, config, mode_env, onmt_log)
        run_seqembed(args, mode_env, figures)
    else:
        run_seqembed(args, mode_env, figures)
        run_opennmt(args, config, mode_env, onmt_log)
    return read_round(args.out, mode, number)


def read_round(out: Path, mode: str, number: int) -> dict:
    """A finished round from its files: seqembed's figures with OpenNMT-py's
    steady state added."""
    onmt_log, figures = round_files(out, mode, number)
    onmt = opennmt_tgt_tokens_per_s(onmt_log)
    if not onmt:
        raise SystemExit(f"error: {onmt_log}: fewer than two progress reports")
    return {**json.loads(figures.read_text()), "opennmt_tgt_tok_s": onmt}


def finished_rounds(out: Path) -> dict[str, list[dict]]:
    """Every round of every mode whose two files are in ``out``, in order."""
    results = {}
    for mode in ("native", "avx2"):
        number = 1
        while all(path.exists() for path in round_files(out, mode, number)):
            results.setdefault(mode, []).append(read_round(out, mode, number))
            number += 1
    return results


def ratios(result: dict) -> dict:
    onmt = result["opennmt_tgt_tok_s"]
    rows = {row["input_feed"]: row for row in result["training"]}
    return {
        label: rows[feed][key] / onmt
        for (feed, key), label in RATIOS.items()
        if feed in rows
    }


def print_header() -> None:
    print("\n| mode | round | first | OpenNMT-py tgt tok/s | seqembed no input "
          "feeding, first / second pass | input feeding, first / second pass | "
          + " | ".join(f"{label} vs OpenNMT-py" for label in RATIOS.values())
          + " | matmul 2048^3 MKL / oneDNN, GFLOP/s |")  # fmt: skip
    print("|---" * (7 + len(RATIOS)) + "|", flush=True)


def print_round(mode: str, number: int, result: dict) -> None:
    rows = {row["input_feed"]: row for row in result["training"]}
    first = "OpenNMT-py" if number % 2 else "seqembed"
    cells = [f"{result['opennmt_tgt_tok_s']:,.0f}"]
    for feed in (False, True):
        row = rows.get(feed)
        cells.append(
            f"{row['tgt_tok_s']:,.0f} / {row['steady_tgt_tok_s']:,.0f}" if row else "-"
        )
    found = ratios(result)
    cells += [f"{found.get(label, 0):.2f}x" for label in RATIOS.values()]
    matmul = result["matmul"]
    cells.append(f"{matmul['fp32_mkl']:.0f} / {matmul['fp32_onednn']:.0f}")
    print(f"| {mode} | {number} | {first} | " + " | ".join(cells) + " |", flush=True)


def print_summary(mode: str, results: list[dict]) -> None:
    print(f"\n{mode}, {len(results)} rounds: median (range) against OpenNMT-py")
    per_round = [ratios(r) for r in results]
    for label in RATIOS.values():
        values = [found[label] for found in per_round if label in found]
        if values:
            print(f"- {label}: {statistics.median(values):.2f}x "
                  f"({min(values):.2f}-{max(values):.2f}x)")  # fmt: skip
    onmt = [r["opennmt_tgt_tok_s"] for r in results]
    print(f"- OpenNMT-py: {statistics.median(onmt):,.0f} target tokens/s "
          f"({min(onmt):,.0f}-{max(onmt):,.0f})", flush=True)  # fmt: skip
    print_bounds(results)


def matmul_shares(result: dict) -> dict:
    """Each training step, second pass, as a share of the round's fp32 matmul
    rate (GFLOP/s of its counted FLOPs over the 2048^3 rate), and the share
    input feeding would need for 2x and 1.5x OpenNMT-py. OpenNMT-py trains
    the input-feeding model on the same batches, so its FLOPs per target
    token are that row's."""
    rate = result["matmul"]["fp32"] * 1e3  # MFLOP/s
    rows = {row["input_feed"]: row for row in result["training"]}
    if True not in rows:
        return {}
    feed, onmt = rows[True], result["opennmt_tgt_tok_s"]

    def share(row, tokens_per_s):
        return row["mflop_per_tgt_token"] * tokens_per_s / rate

    shares = {"OpenNMT-py": share(feed, onmt)}
    if False in rows:
        no_feed = rows[False]
        shares["seqembed, no input feeding"] = share(
            no_feed, no_feed["steady_tgt_tok_s"]
        )
    shares["seqembed, input feeding"] = share(feed, feed["steady_tgt_tok_s"])
    if feed.get("gemm_floor_tok_s"):
        shares["its matrix products alone"] = share(feed, feed["gemm_floor_tok_s"])
    shares["input feeding at 2x OpenNMT-py"] = share(feed, 2 * onmt)
    shares["input feeding at 1.5x OpenNMT-py"] = share(feed, 1.5 * onmt)
    return shares


def print_bounds(results: list[dict]) -> None:
    per_round = [matmul_shares(r) for r in results]
    print("- the whole step (second pass) as a share of the fp32 matmul rate, "
          "median (range):")  # fmt: skip
    for label in per_round[0]:
        values = [found[label] for found in per_round if label in found]
        print(f"  - {label}: {statistics.median(values):.0%} "
              f"({min(values):.0%}-{max(values):.0%})", flush=True)  # fmt: skip


def main() -> int:
    args = parse_args()
    if args.summarize:
        return summarize(args.out)
    modes = args.modes or (["native", "avx2"] if has_avx512() else ["native"])
    args.out.mkdir(parents=True, exist_ok=True)
    config = prepare_opennmt(args)
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {cpu_model()}")
    print(
        f"{args.rounds} rounds a mode ({', '.join(modes)}): OpenNMT-py "
        f"{args.onmt_seconds} s, seqembed {args.steps} steps a configuration "
        f"(seqembed's OpenMP: {'PASSIVE' if args.passive else 'its default'})"
    )
    print_header()
    results = {mode: [] for mode in modes}
    for mode in modes:
        for number in range(1, args.rounds + 1):
            result = one_round(args, config, mode, number)
            results[mode].append(result)
            print_round(mode, number, result)
    for mode in modes:
        print_summary(mode, results[mode])
    return 0


def summarize(out: Path) -> int:
    """The table and summaries of the rounds already in ``out``."""
    results = finished_rounds(out)
    if not results:
        raise SystemExit(f"error: {out}: no finished round (MODE-N-opennmt.log "
                         "and MODE-N-seqembed.json)")  # fmt: skip
    print_header()
    for mode, rounds in results.items():
        for number, result in enumerate(rounds, 1):
            print_round(mode, number, result)
    for mode, rounds in results.items():
        print_summary(mode, rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
