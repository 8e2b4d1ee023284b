"""Speed: training throughput against this machine's matmul rate, decoding
speed, and peak memory, all measured in one process.

    python bench/speed.py [--tsv PATH] [--steps 200] [--threads 2] [--run RUN_DIR]
                          [--kernels auto|reference] [--budget 60] [--minutes 9]
                          [--peer-data DIR --onmt-log LOG] [--json PATH]

0. The CPU (model name, ATen capability, native bf16 or not) and the OpenMP
   wait policy, printed first.
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

Never hangs: every line is flushed as it is printed; bf16 rows are skipped,
saying so, on a CPU without native bf16 (where a bf16 product runs ~30x
slower than fp32); and every measurement stops at its first check after
--budget seconds, or its share of what is left of --minutes if that is
less (a note says what it covered), so that a run with the defaults ends
within 10 minutes on any host.

Beside the wall-clock rates, CPU seconds (this process's, all threads; with
OMP_WAIT_POLICY=PASSIVE idle threads sleep rather than count) measure the
same work independently of what else runs on a shared host: compare those
there, and the wall-clock rates on an idle one.
"""

from __future__ import annotations

import argparse
import functools
import json
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
from seqembed.nmt.checkpoint import load_checkpoint  # noqa: E402
from seqembed.nmt.cpu import onednn  # noqa: E402
from seqembed.nmt.devices import cpu_info  # noqa: E402
from seqembed.nmt.evaluation import Translator, score  # noqa: E402
from seqembed.nmt.training import start_session, train_step  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer_logs import opennmt_tgt_tokens_per_s  # noqa: E402
from vs_peers import read_pairs  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_TSV = HERE.parents[1] / "shared/data/tatoeba-cmn-eng/cmn-eng.tsv"
MATCHED = [
    "model.emb_size=256", "model.hidden_size=512", "model.num_layers=1",
    "model.bidirectional=true", "model.attention=luong", "model.luong_score=general",
    "model.dropout=0.2", "train.batch_size=64", "vocab.min_freq=2",
    "train.device=cpu",  # a CPU benchmark, on a machine with a GPU too
]  # fmt: skip


def matmul_gflops(
    dtype: torch.dtype,
    n: int = 2048,
    repeats: int = 20,
    library: str = "mkl",
    budget: float = 10.0,
) -> float:
    """The rate of an n x n x n product: torch.mm (MKL), or with library
    "onednn" oneDNN with the weight reordered in advance (onednn.py). At
    most ``repeats`` products after a warm-up one, fewer where they take
    more than ``budget`` seconds in all."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    if library == "onednn":
        packed = onednn.reorder(b, n)
        run = lambda: onednn.product(a, packed)  # noqa: E731
    else:
        run = lambda: a @ b  # noqa: E731
    started = time.perf_counter()
    run()  # warm-up
    warm_up = time.perf_counter() - started
    if warm_up > budget / 2:  # one product is all there is time for
        return 2 * n**3 / warm_up / 1e9
    done, started = 0, time.perf_counter()
    while done < repeats and (done < 1 or time.perf_counter() - started < budget):
        run()
        done += 1
    return 2 * n**3 * done / (time.perf_counter() - started) / 1e9


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
    budget: float = 60.0,
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

    def run(index):
        batch = collate([src[j] for j in index], [tgt[j] for j in index])
        train_step(model, batch, session.optimizer, criterion, config)
        return batch

    _bounded(run, indices[:warmup], budget)

    def timed_pass(todo):
        started, cpu = time.perf_counter(), time.process_time()
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        measured = _bounded(run, todo, budget)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
        return measured, seconds, faults, cpu

    # The first pass pays one-time costs that a long run spreads thin: oneDNN
    # builds a kernel for each new row count (the output projection's rows
    # change every batch) and first-touch page faults at each new peak of
    # memory. The second pass over the same batches is the steady state, as
    # OpenNMT-py's progress reports after the first are.
    measured, seconds, faults, _ = timed_pass(indices[warmup:])
    steady, steady_seconds, _, steady_cpu = timed_pass(
        indices[warmup:][: len(measured)]
    )
    tgt_tokens = sum(b.n_tgt_tokens for b in measured)
    src_tokens = sum(b.n_src_tokens for b in measured)
    flops = sum(training_flops(b, 256, 512, vocab, input_feed) for b in measured)
    result = {
        "steps": len(measured),
        "steady_steps": len(steady),
        "faults_per_step": faults / len(measured),
        "tgt_tok_s": tgt_tokens / seconds,
        "steady_tgt_tok_s": sum(b.n_tgt_tokens for b in steady) / steady_seconds,
        "steady_tgt_tok_cpu_s": sum(b.n_tgt_tokens for b in steady) / steady_cpu,
        "all_tok_s": (tgt_tokens + src_tokens) / seconds,
        "gflops": flops / seconds / 1e9,
        "mflop_per_tgt_token": flops / tgt_tokens / 1e6,
        "gemm_floor_tok_s": None,
    }
    if input_feed and precision == "fp32":
        result["gemm_floor_tok_s"] = _gemm_floor(measured, vocab, budget)
    return result


class Deadline:
    """The run's clock: each measurement may take ``budget`` seconds, or
    its share of the time left of ``minutes`` where that is less."""

    def __init__(self, minutes: float, budget: float):
        self.end = time.perf_counter() + 60 * minutes
        self.budget = budget

    def left(self) -> float:
        return self.end - time.perf_counter()

    def share(self, measurements: int) -> float:
        """Seconds for each of the next ``measurements`` (at least 1)."""
        return max(1.0, min(self.budget, self.left() / max(measurements, 1)))


# Below this many seconds left, a configuration is skipped (saying so):
# starting a training session alone reads and segments the corpus.
ENOUGH_LEFT = 45.0


def _bounded(run, items: list, budget: float) -> list:
    """``run(item)`` for each item until ``budget`` seconds have passed
    (at least one); the results of those that ran."""
    results, started = [], time.perf_counter()
    for item in items:
        if results and time.perf_counter() - started > budget:
            break
        results.append(run(item))
    return results


def _gemm_floor(batches, vocab: int, budget: float) -> float:
    """Target tokens/s of steps that did nothing but their matrix products,
    over the first of ``batches`` that ``budget`` seconds can measure."""
    cache: dict = {}

    def floor(batch):
        return batch.n_tgt_tokens, gemm_seconds(
            input_feeding_gemms(batch, 256, 512, vocab), cache
        )

    timed = _bounded(floor, batches, budget)
    return sum(tokens for tokens, _ in timed) / sum(seconds for _, seconds in timed)


def decoding_flops(translator, tokens, beam: int, batch_size: int) -> tuple:
    """Decode ``tokens`` and count the model's matmul FLOPs: the encoder per
    source token, and per decoder row-step (one sentence, or one beam
    hypothesis, for one step; counted by wrapping the decoder's step)
    the LSTM, attention, combine layer and output projection. The word's
    share of the first LSTM layer's gates is counted as a product, although
    fp32 decoding with the CPU kernels looks it up (nmt.cpu.decoder), so the
    ceiling is that of the model's plain step. Returns the FLOPs, seconds,
    CPU seconds and translations (token lists)."""
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
    started, cpu = time.perf_counter(), time.process_time()
    outputs = translator.translate_tokens(tokens, beam_size=beam, batch_size=batch_size)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    del decoder.step
    src_tokens = sum(len(t) for t in tokens)
    mean_src = src_tokens / len(tokens)
    lstm_in = emb + (hidden if model.decoder.input_feed else 0)
    per_row = 2 * 4 * hidden * (lstm_in + hidden) + 2 * hidden * vocab
    if model.decoder.attention is not None:
        per_row += 2 * 2 * hidden * hidden + 2 * 2 * hidden * mean_src
    encoder = (2 * 2 * 4 * half * (emb + half) + 2 * hidden * hidden) * src_tokens
    return encoder + per_row * sum(rows), seconds, cpu, outputs


def load_translator(run_dir: Path, precision: str, kernels: str | None):
    """The run's best model; ``kernels`` overrides the run's model.kernels."""
    state = load_checkpoint(run_dir / "best.pt")
    if kernels is not None:
        state["config"]["model"]["kernels"] = kernels
    return Translator.from_state(state, device="cpu", precision=precision)


def measure_decoding(
    run_dir: Path,
    threads: int,
    batch_size: int,
    rates: dict,
    precisions: list[str],
    kernels: str | None,
    deadline: Deadline,
    max_sentences: int | None = None,
):
    """Rows of (precision, beam, sentences, BLEU, chrF, decode-only sent/s
    and sent per CPU-second, FLOP ceiling sent/s at this machine's matmul
    rate, whole-process sent/s or None). Each row decodes the test split's
    sentences by length, shortest first, one batch at a time, until its
    budget (``deadline``) is spent: the batches are those ``Translator``
    makes of the whole split."""
    test = read_splits(run_dir)["test"][:max_sentences]
    rows = []
    for precision in precisions:
        translator = load_translator(run_dir, precision, kernels)
        tokens = [translator.segmenter(p.src) for p in test]
        # Translator's own order (a stable sort by length), cut into its batches
        order = sorted(range(len(test)), key=lambda i: len(tokens[i]))
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        translator.translate_tokens(tokens[:batch_size], beam_size=1)  # warm up
        for beam in (1, 5):
            rows_left = 2 * (len(precisions) - precisions.index(precision)) - beam // 5
            budget = deadline.share(2 * rows_left)
            decode = functools.partial(
                _decode_batch, translator, tokens, beam, batch_size
            )
            done = _bounded(decode, batches, budget)
            index = [i for batch in batches[: len(done)] for i in batch]
            flops = sum(f for f, _, _, _ in done)
            decode_s = sum(seconds for _, seconds, _, _ in done)
            cpu_s = sum(cpu for _, _, cpu, _ in done)
            outputs = [words for *_, translated in done for words in translated]
            hypotheses = [translator.tokenizer.detokenize(w) for w in outputs]
            references = [test[i].tgt for i in index]
            scores = score(hypotheses, references, translator.config.data.lowercase)
            n = len(index)
            ceiling = n * rates[precision] * 1e9 / flops
            process = None
            if kernels is None:  # `seqembed translate` runs the run's own kernels
                sources = [test[i].src for i in index]
                process = whole_process(run_dir, sources, beam, precision, threads,
                                        batch_size, budget)  # fmt: skip
            rows.append((precision, beam, n, scores.bleu, scores.chrf, n / decode_s,
                         n / cpu_s, ceiling, process))  # fmt: skip
    return rows


def _decode_batch(translator, tokens, beam, batch_size, index):
    return decoding_flops(translator, [tokens[i] for i in index], beam, batch_size)


def whole_process(run_dir, sources, beam, precision, threads, batch_size, budget):
    """Sentences/s of `seqembed translate` on ``sources`` as a whole process
    (start, model load, decode); None where it takes over ``budget`` (or
    20) seconds."""
    started = time.perf_counter()
    try:
        subprocess.run(
            [sys.executable, "-m", "seqembed", "translate", str(run_dir),
             "--beam", str(beam), "--precision", precision,
             "--batch-size", str(batch_size)],
            input="".join(src + "\n" for src in sources), text=True, check=True,
            capture_output=True, timeout=max(budget, 20),
            env={**os.environ, "OMP_NUM_THREADS": str(threads)},
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return None
    return len(sources) / (time.perf_counter() - started)


def parse_args():
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
        help="precisions to measure (train.precision, decode.precision); bf16 "
        "is skipped on a CPU without native bf16",
    )
    parser.add_argument(
        "--kernels",
        choices=["auto", "reference"],
        help="model.kernels for training and decoding (default: auto for "
        "training, the run's own for decoding)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=60.0,
        help="seconds any one measurement may take (default 60): it stops at "
        "its first check after that, and says what it covered",
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=9.0,
        help="the whole run's time (default 9): measurements get shorter "
        "budgets, or are skipped, to end within it",
    )
    parser.add_argument(
        "--sentences", type=int, help="decode at most this many test sentences"
    )
    parser.add_argument(
        "--json",
        type=Path,
        help="also write the figures to this file (the CPU, the matmul rates, "
        "OpenNMT-py's and the training rows), for bench/side_by_side.py",
    )
    return parser.parse_args()


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)  # every line as it is printed
    args = parse_args()
    if not args.tsv.is_file() and not args.peer_data and not args.no_training:
        print(f"Tatoeba TSV not found: {args.tsv}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    info = cpu_info()
    print(f"CPU: {info.describe()}")
    print(f"OpenMP wait policy: {WAIT_POLICY}")
    precisions = list(args.precisions)
    if "bf16" in precisions and not info.native_bf16:
        precisions.remove("bf16")
        print(f"bf16 rows skipped: no native bfloat16 on this CPU ({info.capability})")
    deadline = Deadline(args.minutes, args.budget)
    rates = print_matmul_rates(args.threads, "bf16" in precisions, args.budget)
    # what is left to measure: 4 parts a training configuration (warm-up,
    # two passes, the products' floor), 2 a decoding row (in and as a process)
    training = 0 if args.no_training else 2 * len(precisions)
    decoding = 2 * len(precisions) if args.run else 0
    figures = {"cpu": info.describe(), "wait_policy": WAIT_POLICY, "matmul": rates}
    if training:
        onmt, rows = print_training(
            args, precisions, rates["fp32"], deadline, 2 * decoding
        )
        figures.update(opennmt_tgt_tok_s=onmt, training=rows)
    if decoding:
        print_decoding(args, precisions, rates, deadline)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this process: {peak_mb:,.0f} MB")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
    return 0


def print_matmul_rates(threads: int, bf16: bool, budget: float) -> dict:
    bound = min(budget, 10.0)  # each rate: a few seconds are plenty
    fp32_mkl = matmul_gflops(torch.float32, budget=bound)
    fp32_dnn = matmul_gflops(torch.float32, library="onednn", budget=bound)
    rates = {"fp32": max(fp32_mkl, fp32_dnn), "fp32_mkl": fp32_mkl,
             "fp32_onednn": fp32_dnn}  # fmt: skip
    line = (f"matmul 2048x2048x2048, {threads} threads: fp32 {fp32_mkl:.0f} "
            f"GFLOP/s with torch.mm (MKL), {fp32_dnn:.0f} with oneDNN (weight "
            "reordered)")  # fmt: skip
    if bf16:
        rates["bf16"] = matmul_gflops(torch.bfloat16, budget=bound)
        line += f", bf16 {rates['bf16']:.0f}"
    print(f"{line}; fractions below are of the fp32 {rates['fp32']:.0f}")
    return rates


def print_training(
    args, precisions: list[str], fp32_rate: float, deadline: Deadline, after: int
) -> tuple[float | None, list[dict]]:
    """The training table; ``after``: the measurements that follow it.
    Returns OpenNMT-py's rate (None without --onmt-log) and the rows."""
    onmt = opennmt_tgt_tokens_per_s(args.onmt_log) if args.onmt_log else None
    if onmt:
        print(f"OpenNMT-py, steady state in {args.onmt_log}: {onmt:,.0f} tgt tok/s")
    extra: tuple[str, ...] = ()
    if args.peer_data:
        pairs = read_pairs(args.peer_data, "train")
        extra = ("data.src_segmentation=pretokenized",
                 "data.tgt_tokenization=pretokenized")  # fmt: skip
    else:
        pairs = read_tsv(args.tsv, 1, 0, 1000, SkipCounts())
    if args.kernels:
        extra += (f"model.kernels={args.kernels}",)
    data = args.peer_data or args.tsv
    print(f"\ntraining on {data}, matched config, {args.steps} steps "
          f"of 64 sentences, kernels {args.kernels or 'auto'}:")  # fmt: skip
    print("| input feeding | precision | tgt tok/s | second pass, tgt tok/s "
          "| second pass, tgt tok per CPU-second | src+tgt tok/s "
          "| MFLOP/tgt token | GFLOP/s | of fp32 matmul rate "
          "| matrix products alone, tgt tok/s | vs OpenNMT-py (first / second "
          "pass) | page faults/step |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    notes, rows = [], []
    configurations = [(f, p) for f in (False, True) for p in precisions]
    for done, (input_feed, precision) in enumerate(configurations):
        if deadline.left() < ENOUGH_LEFT:
            notes.append(f"input feeding {input_feed}, {precision}: skipped, "
                         f"the --minutes limit is near")  # fmt: skip
            continue
        budget = deadline.share(4 * (len(configurations) - done) + after)
        out = args.out / f"if-{input_feed}-{precision}"
        m = measure_training(pairs, input_feed, args.steps, out, precision,
                             extra, budget)  # fmt: skip
        rows.append({"input_feed": input_feed, "precision": precision, **m})
        floor = m["gemm_floor_tok_s"]
        floor = f"{floor:,.0f}" if floor else "-"
        ratio = "-"
        if onmt:
            first, second = m["tgt_tok_s"], m["steady_tgt_tok_s"]
            ratio = f"{first / onmt:.2f}x / {second / onmt:.2f}x"
        print(f"| {'yes' if input_feed else 'no'} | {precision} "
              f"| {m['tgt_tok_s']:,.0f} | {m['steady_tgt_tok_s']:,.0f} "
              f"| {m['steady_tgt_tok_cpu_s']:,.0f} "
              f"| {m['all_tok_s']:,.0f} "
              f"| {m['mflop_per_tgt_token']:.1f} | {m['gflops']:.0f} "
              f"| {m['gflops'] / fp32_rate:.0%} | {floor} | {ratio} "
              f"| {m['faults_per_step']:,.0f} |")  # fmt: skip
        if m["steps"] < args.steps or m["steady_steps"] < m["steps"]:
            notes.append(f"input feeding {input_feed}, {precision}: the budget "
                         f"cut the passes to {m['steps']} and "
                         f"{m['steady_steps']} steps")  # fmt: skip
    for note in notes:
        print(f"note: {note}")
    return onmt, rows


def print_decoding(
    args, precisions: list[str], rates: dict, deadline: Deadline
) -> None:
    kernels = f"kernels {args.kernels}" if args.kernels else "the run's kernels"
    print(f"\ndecoding the test split of {args.run}, {kernels}:")
    print("| precision | decoding | sentences | BLEU | chrF | sent/s, decode only "
          "| sent per CPU-second | FLOP ceiling, sent/s "
          "| sent/s, whole process |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    rows = measure_decoding(
        args.run, args.threads, args.batch_size, rates, precisions, args.kernels,
        deadline, args.sentences,
    )  # fmt: skip
    for precision, beam, n, bleu, chrf, decode, cpu, ceiling, process in rows:
        name = "greedy" if beam == 1 else f"beam {beam}"
        process = f"{process:,.0f}" if process else "-"
        print(f"| {precision} | {name} | {n} | {bleu:.2f} | {chrf:.2f} "
              f"| {decode:,.0f} | {cpu:,.0f} | {ceiling:,.0f} "
              f"| {process} |")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
