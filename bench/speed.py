"""Speed: training throughput against this machine's matmul rate, decoding
speed, and peak memory, all measured in one process.

    python bench/speed.py [--tsv PATH] [--steps 200] [--threads 2] [--run RUN_DIR]

1. The machine's fp32 and bf16 matmul rate (GFLOP/s), measured here.
2. Training on the matched config of issue 6 (embeddings 256, hidden 512,
   1 layer, bidirectional encoder of 256 per direction, Luong "general"
   attention, 64 sentences a batch, Tatoeba data), with and without Luong
   input feeding: target and source+target tokens per second, the FLOPs of a
   step counted from the shapes, and the fraction of the measured rate.
3. Decoding the test split of RUN_DIR (default: a model trained here for the
   timing only, if none is given): sentences per second, greedy and beam 5,
   fp32 and bf16; decode time only, and `seqembed translate` as a whole
   process (start, model load, decode).
4. Peak resident memory of this process.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from seqembed.config import load_config  # noqa: E402
from seqembed.corpus import SkipCounts, read_tsv  # noqa: E402
from seqembed.data import collate, epoch_batches  # noqa: E402
from seqembed.evaluation import Translator  # noqa: E402
from seqembed.training import read_splits, start_session, train_step  # noqa: E402
from seqembed.vocab import PAD  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_TSV = HERE.parents[1] / "shared/data/tatoeba-cmn-eng/cmn-eng.tsv"
MATCHED = [
    "model.emb_size=256", "model.hidden_size=512", "model.num_layers=1",
    "model.bidirectional=true", "model.attention=luong", "model.luong_score=general",
    "model.dropout=0.2", "train.batch_size=64", "vocab.min_freq=2",
]  # fmt: skip


def matmul_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 20) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - started) / 1e9


def training_flops(batch, emb: int, hidden: int, vocab: int, input_feed: bool) -> float:
    """Matmul FLOPs of one training step: forward, and 2x forward for backward.

    Per source token: the bidirectional LSTM (2 directions of hidden/2) and the
    attention key projection. Per target step (padded steps count: they are
    computed): the decoder LSTM, attention scores and context over the padded
    source, the combine layer and the output projection.
    """
    b, s = batch.src.shape
    t = batch.tgt_in.size(1)
    half = hidden // 2
    encoder = 2 * 4 * half * (emb + half) * 2 * b * s
    keys = hidden * hidden * 2 * b * s
    lstm_in = emb + (hidden if input_feed else 0)
    decoder = 4 * hidden * (lstm_in + hidden) * 2 * b * t
    attention = 2 * hidden * s * 2 * b * t
    combine = 2 * hidden * hidden * 2 * b * t
    output = hidden * vocab * 2 * b * t
    return 3.0 * (encoder + keys + decoder + attention + combine + output)


def measure_training(
    pairs, input_feed: bool, steps: int, out: Path, precision: str = "fp32"
) -> dict:
    config = load_config(
        None,
        [
            *MATCHED,
            f"model.input_feed={str(input_feed).lower()}",
            f"train.precision={precision}",
        ],
    )
    session = start_session(config, out, pairs, resume=False, user_dict=None)
    model = session.model.train()
    criterion = nn.CrossEntropyLoss(ignore_index=PAD, reduction="sum")
    src, tgt = session.train_src, session.train_tgt
    batches = epoch_batches([len(x) for x in src], [len(x) for x in tgt], 64, 1, 1)
    tgt_tokens = src_tokens = 0
    flops = 0.0
    warmup = 10
    for i, index in enumerate(batches[: steps + warmup]):
        if i == warmup:
            started = time.perf_counter()
        batch = collate([src[j] for j in index], [tgt[j] for j in index])
        train_step(model, batch, session.optimizer, criterion, config)
        if i >= warmup:
            tgt_tokens += batch.n_tgt_tokens
            src_tokens += batch.n_src_tokens
            flops += training_flops(batch, 256, 512, len(session.tgt_vocab), input_feed)
    seconds = time.perf_counter() - started
    return {
        "tgt_tok_s": tgt_tokens / seconds,
        "all_tok_s": (tgt_tokens + src_tokens) / seconds,
        "gflops": flops / seconds / 1e9,
        "mflop_per_tgt_token": flops / tgt_tokens / 1e6,
    }


def measure_decoding(run_dir: Path, threads: int, batch_size: int) -> list[tuple]:
    test = read_splits(run_dir)["test"]
    rows = []
    for precision in ("fp32", "bf16"):
        translator = Translator.from_checkpoint(
            run_dir / "best.pt", precision=precision
        )
        tokens = [translator.segmenter(p.src) for p in test]
        for beam in (1, 5):
            started = time.perf_counter()
            translator.translate_tokens(tokens, beam_size=beam, batch_size=batch_size)
            decode_s = time.perf_counter() - started
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "seqembed", "translate", str(run_dir),
                 "--beam", str(beam), "--precision", precision,
                 "--batch-size", str(batch_size)],
                input="".join(p.src + "\n" for p in test), text=True, check=True,
                capture_output=True,
                env={**os.environ, "OMP_NUM_THREADS": str(threads)},
            )  # fmt: skip
            process_s = time.perf_counter() - started
            rows.append((precision, beam, len(test) / decode_s, len(test) / process_s))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tsv", type=Path, default=DEFAULT_TSV)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--run", type=Path, help="trained run to decode with")
    parser.add_argument("--batch-size", type=int, default=256, help="decoding batch")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-speed"))
    parser.add_argument("--no-training", action="store_true", help="decoding only")
    parser.add_argument(
        "--precisions",
        nargs="+",
        default=["fp32", "bf16"],
        choices=["fp32", "bf16"],
        help="training precisions to measure (train.precision)",
    )
    args = parser.parse_args()
    if not args.tsv.is_file():
        print(f"Tatoeba TSV not found: {args.tsv}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    fp32, bf16 = matmul_gflops(torch.float32), matmul_gflops(torch.bfloat16)
    print(f"matmul, {args.threads} threads: fp32 {fp32:.0f} GFLOP/s, bf16 {bf16:.0f}")

    if not args.no_training:
        pairs = read_tsv(args.tsv, 1, 0, 1000, SkipCounts())
        print(f"\ntraining, matched config, {args.steps} steps of 64 sentences:")
        print("| input feeding | precision | tgt tok/s | src+tgt tok/s "
              "| MFLOP/tgt token | GFLOP/s | of fp32 matmul rate |")  # fmt: skip
        print("|---|---|---|---|---|---|---|")
        for input_feed in (False, True):
            for precision in args.precisions:
                m = measure_training(
                    pairs,
                    input_feed,
                    args.steps,
                    args.out / f"if-{input_feed}-{precision}",
                    precision,
                )
                print(f"| {'yes' if input_feed else 'no'} | {precision} "
                      f"| {m['tgt_tok_s']:,.0f} | {m['all_tok_s']:,.0f} "
                      f"| {m['mflop_per_tgt_token']:.1f} | {m['gflops']:.0f} "
                      f"| {m['gflops'] / fp32:.0%} |", flush=True)  # fmt: skip

    if args.run:
        print(f"\ndecoding the test split of {args.run}:")
        print("| precision | decoding | sent/s, decode only | sent/s, whole process |")
        print("|---|---|---|---|")
        for precision, beam, decode, process in measure_decoding(
            args.run, args.threads, args.batch_size
        ):
            name = "greedy" if beam == 1 else f"beam {beam}"
            print(f"| {precision} | {name} | {decode:,.0f} | {process:,.0f} |")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this process: {peak_mb:,.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
