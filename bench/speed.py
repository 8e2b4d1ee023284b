"""Speed: training throughput against this machine's matmul rate, decoding
speed, and peak memory, all measured in one process.

    python bench/speed.py [--tsv PATH] [--steps 200] [--threads 2] [--run RUN_DIR]

1. The machine's fp32 and bf16 matmul rate (GFLOP/s), measured here.
2. Training on the matched config of issue 6 (embeddings 256, hidden 512,
   1 layer, bidirectional encoder of 256 per direction, Luong "general"
   attention, 64 sentences a batch, Tatoeba data, or the peers' split with
   --peer-data), with and without Luong input feeding: target and
   source+target tokens per second, the FLOPs of a step counted from the
   shapes, and the fraction of the measured rate. For fp32 input feeding
   also the speed of a step that did nothing but its matrix products, each
   at the rate this machine reaches for its shape (the ceiling), and with
   --onmt-log the ratio to OpenNMT-py's steady state in that log. Each
   configuration times its --steps batches twice: the first pass includes
   one-time costs (oneDNN kernels built for each new row count, first-touch
   page faults), the second over the same batches is the steady state.
3. Decoding the test split of RUN_DIR (if given): BLEU, chrF, and sentences
   per second, greedy and beam 5, fp32 and bf16; decode time only, the FLOP
   ceiling of that decode (its counted FLOPs at the measured matmul rate),
   and `seqembed translate` as a whole process (start, model load, decode).
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

from seqembed.nmt.cpu.openmp import choose_wait_policy

WAIT_POLICY = choose_wait_policy()  # before torch loads OpenMP

import torch  # noqa: E402
from torch import nn  # noqa: E402

from seqembed.config import load_config  # noqa: E402
from seqembed.data.batches import collate, epoch_batches  # noqa: E402
from seqembed.data.corpus import SkipCounts, read_tsv  # noqa: E402
from seqembed.data.prepare import read_splits  # noqa: E402
from seqembed.data.vocab import PAD  # noqa: E402
from seqembed.nmt.cpu import onednn  # noqa: E402
from seqembed.nmt.evaluation import Translator, score  # noqa: E402
from seqembed.nmt.training import start_session, train_step  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vs_peers import read_pairs  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_TSV = HERE.parents[1] / "shared/data/tatoeba-cmn-eng/cmn-eng.tsv"
MATCHED = [
    "model.emb_size=256", "model.hidden_size=512", "model.num_layers=1",
    "model.bidirectional=true", "model.attention=luong", "model.luong_score=general",
    "model.dropout=0.2", "train.batch_size=64", "vocab.min_freq=2",
]  # fmt: skip


def matmul_gflops(
    dtype: torch.dtype, n: int = 2048, repeats: int = 20, library: str = "mkl"
) -> float:
    """The rate of an n x n x n product: torch.mm (MKL), or with library
    "onednn" oneDNN with the weight reordered in advance (onednn.py)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    if library == "onednn":
        packed = onednn.reorder(b, n)
        run = lambda: onednn.product(a, packed)  # noqa: E731
    else:
        run = lambda: a @ b  # noqa: E731
    for _ in range(3):
        run()
    started = time.perf_counter()
    for _ in range(repeats):
        run()
    return 2 * n**3 * repeats / (time.perf_counter() - started) / 1e9


def training_flops(batch, emb: int, hidden: int, vocab: int, input_feed: bool) -> float:
    """Matmul FLOPs of one training step: forward, and 2x forward for backward.

    Counted over the real tokens (padding is not work, and seqembed skips it
    where it can: the output projection, and with input feeding the whole
    decoder). Per source token: the bidirectional LSTM (2 directions of
    hidden/2) and the attention key projection. Per target token: the decoder
    LSTM, attention scores and context over the padded source, the combine
    layer and the output projection.
    """
    s = batch.src.size(1)
    src_tokens, tgt_tokens = batch.n_src_tokens, batch.n_tgt_tokens
    half = hidden // 2
    encoder = 2 * 4 * half * (emb + half) * 2 * src_tokens
    keys = hidden * hidden * 2 * src_tokens
    lstm_in = emb + (hidden if input_feed else 0)
    decoder = 4 * hidden * (lstm_in + hidden) * 2 * tgt_tokens
    attention = 2 * hidden * s * 2 * tgt_tokens
    combine = 2 * hidden * hidden * 2 * tgt_tokens
    output = hidden * vocab * 2 * tgt_tokens
    return 3.0 * (encoder + keys + decoder + attention + combine + output)


def input_feeding_gemms(batch, emb: int, hidden: int, vocab: int) -> list[tuple]:
    """The (m, k, n) matrix products of one input-feeding training step as
    seqembed runs it (model.py, input_feeding.py): forward, input gradients
    and weight gradients. The encoder's are those of an LSTM run layer by
    layer (input half for all positions at once, recurrent half per step)."""
    half, four_h = hidden // 2, 4 * hidden
    src_tokens, n_real = batch.n_src_tokens, batch.n_tgt_tokens
    lengths = (batch.tgt_out != PAD).sum(1)
    steps = [int((lengths > t).sum()) for t in range(int(lengths.max()))]
    src_steps = [int((batch.src_lengths > t).sum()) for t in range(batch.src.size(1))]
    gemms = []

    def linear(rows, k, n):  # forward, input gradient, weight gradient
        gemms.extend([(rows, k, n), (rows, n, k), (n, rows, k)])

    for _direction in range(2):
        linear(src_tokens, emb, 4 * half)
        for rows in src_steps:
            gemms.extend([(rows, half, 4 * half), (rows, 4 * half, half)])
        gemms.append((4 * half, src_tokens, half))
    linear(src_tokens, hidden, hidden)  # attention keys
    linear(n_real, emb, four_h)  # embedding half of the decoder gates
    for rows in steps:
        gemms.extend([(rows, 2 * hidden, four_h), (rows, 2 * hidden, hidden)])
        gemms.extend([(rows, hidden, 2 * hidden), (rows, four_h, 2 * hidden)])
    gemms.extend([(four_h, n_real, 2 * hidden), (hidden, n_real, 2 * hidden)])
    linear(n_real, hidden, vocab)  # output projection
    return gemms


def gemm_seconds(shapes: list[tuple], cache: dict) -> float:
    """Time of these products at this machine's measured rate for each shape
    (random fp32 matrices, best of 3, with torch.mm or oneDNN with the second
    matrix reordered in advance, whichever is faster): a lower bound for a
    step that does nothing but its matrix products."""
    total = 0.0
    for shape in shapes:
        if shape not in cache:
            m, k, n = shape
            a, b = torch.randn(m, k), torch.randn(k, n)
            packed = onednn.reorder(b.t(), m)
            best = float("inf")
            for run, right in ((torch.mm, b), (onednn.product, packed)):
                run(a, right)
                for _ in range(3):
                    started = time.perf_counter()
                    run(a, right)
                    best = min(best, time.perf_counter() - started)
            cache[shape] = best
        total += cache[shape]
    return total


def measure_training(
    pairs,
    input_feed: bool,
    steps: int,
    out: Path,
    precision: str = "fp32",
    extra: tuple[str, ...] = (),
) -> dict:
    config = load_config(
        None,
        [
            *MATCHED,
            f"model.input_feed={str(input_feed).lower()}",
            f"train.precision={precision}",
            *extra,
        ],
    )
    session = start_session(config, out, pairs, resume=False, user_dict=None)
    model = session.model.train()
    criterion = nn.CrossEntropyLoss(ignore_index=PAD, reduction="sum")
    src, tgt = session.train_src, session.train_tgt
    batches = epoch_batches([len(x) for x in src], [len(x) for x in tgt], 64, 1, 1)
    vocab = len(session.tgt_vocab)
    warmup = 10
    indices = batches[: steps + warmup]
    for index in indices[:warmup]:
        batch = collate([src[j] for j in index], [tgt[j] for j in index])
        train_step(model, batch, session.optimizer, criterion, config)

    def timed_pass():
        tgt_tokens = src_tokens = 0
        flops, measured = 0.0, []
        started = time.perf_counter()
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for index in indices[warmup:]:
            batch = collate([src[j] for j in index], [tgt[j] for j in index])
            train_step(model, batch, session.optimizer, criterion, config)
            measured.append(batch)
            tgt_tokens += batch.n_tgt_tokens
            src_tokens += batch.n_src_tokens
            flops += training_flops(batch, 256, 512, vocab, input_feed)
        seconds = time.perf_counter() - started
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
        return tgt_tokens, src_tokens, flops, seconds, faults, measured

    # The first pass pays one-time costs that a long run spreads thin: oneDNN
    # builds a kernel for each new row count (the output projection's rows
    # change every batch) and first-touch page faults at each new peak of
    # memory. The second pass over the same batches is the steady state, as
    # OpenNMT-py's progress reports after the first are.
    tgt_tokens, src_tokens, flops, seconds, faults, measured = timed_pass()
    steady_tgt, _, _, steady_seconds, _, _ = timed_pass()
    result = {
        "faults_per_step": faults / steps,
        "tgt_tok_s": tgt_tokens / seconds,
        "steady_tgt_tok_s": steady_tgt / steady_seconds,
        "all_tok_s": (tgt_tokens + src_tokens) / seconds,
        "gflops": flops / seconds / 1e9,
        "mflop_per_tgt_token": flops / tgt_tokens / 1e6,
        "gemm_floor_tok_s": None,
    }
    if input_feed and precision == "fp32":
        cache: dict = {}
        floor = sum(
            gemm_seconds(input_feeding_gemms(b, 256, 512, vocab), cache)
            for b in measured
        )
        result["gemm_floor_tok_s"] = tgt_tokens / floor
    return result


def decoding_flops(translator, tokens, beam: int, batch_size: int) -> tuple:
    """Decode ``tokens`` and count the model's matmul FLOPs: the encoder per
    source token, and per decoder row-step (one sentence, or one beam
    hypothesis, for one step; counted by wrapping the decoder's step)
    the LSTM, attention, combine layer and output projection. The word's
    share of the first LSTM layer's gates is counted as a product, although
    fp32 decoding looks it up (Decoder.decoding_weights), so the ceiling is
    that of the model's plain step."""
    model, config = translator.model, translator.config.model
    emb, hidden, half = config.emb_size, config.hidden_size, config.hidden_size // 2
    vocab = model.decoder.output_projection.out_features
    rows = []
    decoder = model.decoder
    step = decoder.step

    def counted_step(tokens, *args, **kwargs):
        rows.append(tokens.size(0))
        return step(tokens, *args, **kwargs)

    decoder.step = counted_step
    started = time.perf_counter()
    translator.translate_tokens(tokens, beam_size=beam, batch_size=batch_size)
    seconds = time.perf_counter() - started
    del decoder.step
    src_tokens = sum(len(t) for t in tokens)
    mean_src = src_tokens / len(tokens)
    lstm_in = emb + (hidden if model.decoder.input_feed else 0)
    per_row = 2 * 4 * hidden * (lstm_in + hidden) + 2 * hidden * vocab
    if model.decoder.attention is not None:
        per_row += 2 * 2 * hidden * hidden + 2 * 2 * hidden * mean_src
    encoder = (2 * 2 * 4 * half * (emb + half) + 2 * hidden * hidden) * src_tokens
    return encoder + per_row * sum(rows), seconds


def measure_decoding(run_dir: Path, threads: int, batch_size: int, rates: dict):
    """Rows of (precision, beam, BLEU, chrF, decode-only sent/s, FLOP ceiling
    sent/s at this machine's matmul rate, whole-process sent/s)."""
    test = read_splits(run_dir)["test"]
    references = [p.tgt for p in test]
    rows = []
    for precision in ("fp32", "bf16"):
        translator = Translator.from_checkpoint(
            run_dir / "best.pt", precision=precision
        )
        tokens = [translator.segmenter(p.src) for p in test]
        translator.translate_tokens(tokens[:batch_size], beam_size=1)  # warm up
        for beam in (1, 5):
            flops, decode_s = decoding_flops(translator, tokens, beam, batch_size)
            ceiling = len(test) * rates[precision] * 1e9 / flops
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "seqembed", "translate", str(run_dir),
                 "--beam", str(beam), "--precision", precision,
                 "--batch-size", str(batch_size)],
                input="".join(p.src + "\n" for p in test), text=True, check=True,
                capture_output=True,
                env={**os.environ, "OMP_NUM_THREADS": str(threads)},
            )  # fmt: skip
            process_s = time.perf_counter() - started
            scores = score(
                done.stdout.splitlines(), references, translator.config.data.lowercase
            )
            n = len(test)
            rows.append((precision, beam, scores.bleu, scores.chrf,
                         n / decode_s, ceiling, n / process_s))  # fmt: skip
    return rows


def opennmt_tgt_tokens_per_s(log: Path) -> float | None:
    """Mean target tokens/s of OpenNMT-py's progress reports after the first
    (as ../shared/peers/onmt_log_stats.py computes it)."""
    import re

    rates = [
        float(m.group(1))
        for m in re.finditer(r"\d+/\s*(\d+) tok/s", log.read_text(errors="replace"))
    ]
    return sum(rates[1:]) / len(rates[1:]) if len(rates) > 1 else None


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
        "--peer-data",
        type=Path,
        help="train on the peers' split instead of --tsv (the folder that "
        "../shared/peers/prepare.py writes, e.g. /tmp/peerdata)",
    )
    parser.add_argument(
        "--onmt-log",
        type=Path,
        help="OpenNMT-py's train.stdout from ../shared/peers/run_opennmt.sh, "
        "run just before on this machine: print training speed as a ratio to it",
    )
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
    fp32_mkl = matmul_gflops(torch.float32)
    fp32_dnn = matmul_gflops(torch.float32, library="onednn")
    fp32, bf16 = max(fp32_mkl, fp32_dnn), matmul_gflops(torch.bfloat16)
    print(f"OpenMP wait policy: {WAIT_POLICY}")
    print(f"matmul 2048x2048x2048, {args.threads} threads: fp32 {fp32_mkl:.0f} "
          f"GFLOP/s with torch.mm (MKL), {fp32_dnn:.0f} with oneDNN (weight "
          f"reordered), bf16 {bf16:.0f}; fractions below are of the fp32 "
          f"{fp32:.0f}")  # fmt: skip

    onmt = opennmt_tgt_tokens_per_s(args.onmt_log) if args.onmt_log else None
    if onmt:
        print(f"OpenNMT-py, steady state in {args.onmt_log}: {onmt:,.0f} tgt tok/s")

    if not args.no_training:
        extra: tuple[str, ...] = ()
        if args.peer_data:
            pairs = read_pairs(args.peer_data, "train")
            extra = ("data.src_segmentation=pretokenized",
                     "data.tgt_tokenization=pretokenized")  # fmt: skip
        else:
            pairs = read_tsv(args.tsv, 1, 0, 1000, SkipCounts())
        data = args.peer_data or args.tsv
        print(f"\ntraining on {data}, matched config, {args.steps} steps "
              "of 64 sentences:")  # fmt: skip
        print("| input feeding | precision | tgt tok/s | second pass, tgt tok/s "
              "| src+tgt tok/s | MFLOP/tgt token | GFLOP/s | of fp32 matmul rate "
              "| matrix products alone, tgt tok/s | vs OpenNMT-py (first / second "
              "pass) | page faults/step |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for input_feed in (False, True):
            for precision in args.precisions:
                m = measure_training(
                    pairs,
                    input_feed,
                    args.steps,
                    args.out / f"if-{input_feed}-{precision}",
                    precision,
                    extra,
                )
                floor = m["gemm_floor_tok_s"]
                floor = f"{floor:,.0f}" if floor else "-"
                ratio = "-"
                if onmt:
                    first, second = m["tgt_tok_s"], m["steady_tgt_tok_s"]
                    ratio = f"{first / onmt:.2f}x / {second / onmt:.2f}x"
                print(f"| {'yes' if input_feed else 'no'} | {precision} "
                      f"| {m['tgt_tok_s']:,.0f} | {m['steady_tgt_tok_s']:,.0f} "
                      f"| {m['all_tok_s']:,.0f} "
                      f"| {m['mflop_per_tgt_token']:.1f} | {m['gflops']:.0f} "
                      f"| {m['gflops'] / fp32:.0%} | {floor} | {ratio} "
                      f"| {m['faults_per_step']:,.0f} |",
                      flush=True)  # fmt: skip

    if args.run:
        print(f"\ndecoding the test split of {args.run}:")
        print("| precision | decoding | BLEU | chrF | sent/s, decode only "
              "| FLOP ceiling, sent/s | sent/s, whole process |")  # fmt: skip
        print("|---|---|---|---|---|---|---|")
        rates = {"fp32": fp32, "bf16": bf16}
        for precision, beam, bleu, chrf, decode, ceiling, process in measure_decoding(
            args.run, args.threads, args.batch_size, rates
        ):
            name = "greedy" if beam == 1 else f"beam {beam}"
            print(f"| {precision} | {name} | {bleu:.2f} | {chrf:.2f} | {decode:,.0f} "
                  f"| {ceiling:,.0f} | {process:,.0f} |", flush=True)  # fmt: skip
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this process: {peak_mb:,.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
