"""GPU figures: training and decoding speed, the matmul rate, peak memory and
the BLEU of a short run, each printed with the GPU's name.

    python bench/gpu.py [--tsv PATH] [--budget 8] [--minutes 2] [--out DIR]

1. The GPU's measured bf16 and fp32 matrix-product rate (8192 x 8192; fp32
   without TF32, as PyTorch's default).
2. Training target tokens/s on the matched config of bench/speed.py and on
   the default model, at 64 sentences a batch and at 4k, 16k and 64k target
   tokens a batch, fp32 and bf16; with the FLOPs of a step estimated as 6 x
   the non-embedding parameters x the target tokens (the encoder's share
   counted as the decoder's), and the fraction of the matmul rate of that
   precision it reaches. Each row times the steps it gets in --budget
   seconds, after 3 warm-up steps.
3. BLEU and chrF on the test split after --minutes of default training
   (train.device=cuda, the default precision) on the shared Tatoeba data.
4. Decoding that run's test split (1,000 sentences in one batch), greedy and
   beam 5: sentences/s.
5. Peak GPU memory of this process.

Without CUDA it prints one line saying so and exits 0.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from seqembed.config import load_config
from seqembed.data.batches import collate, epoch_batches
from seqembed.data.corpus import SkipCounts, read_tsv
from seqembed.data.prepare import read_splits
from seqembed.nmt.evaluation import Translator, score
from seqembed.nmt.session import start_session
from seqembed.nmt.steps import train_step, training_loss
from seqembed.nmt.training import train

HERE = Path(__file__).resolve().parent
DEFAULT_TSV = HERE.parents[1] / "shared/data/tatoeba-cmn-eng/cmn-eng.tsv"
MATCHED = [
    "model.emb_size=256", "model.hidden_size=512", "model.num_layers=1",
    "model.bidirectional=true", "model.attention=luong", "model.luong_score=general",
    "model.dropout=0.2", "vocab.min_freq=2",
]  # fmt: skip
BATCHES = [("64 sentences", 0), ("4k tokens", 4096), ("16k tokens", 16384),
           ("64k tokens", 65536)]  # fmt: skip


# Where the figures are measured; a CPU dry run of this script sets "cpu".
DEVICE = "cuda"


def sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def say(name: str, text: str) -> None:
    print(f"[{name}] {text}", flush=True)


def matmul_rate(dtype: torch.dtype, budget: float) -> float:
    """TFLOP/s of an 8192 x 8192 product in ``dtype``, timed for ``budget``."""
    n = 8192
    a = torch.randn(n, n, device=DEVICE, dtype=dtype)
    b = torch.randn(n, n, device=DEVICE, dtype=dtype)
    a @ b  # warm-up: cuBLAS picks its kernel
    sync()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < budget:
        for _ in range(5):
            a @ b
        sync()
        count += 5
    return 2 * n**3 * count / (time.perf_counter() - start) / 1e12


def training_rate(session, precision: str, batch_tokens: int, budget: float):
    """(target tokens/s, steps) of training steps of one batch size."""
    config = session.config
    config = replace(config, train=replace(config.train, precision=precision))
    src, tgt = session.train_src, session.train_tgt
    batches = epoch_batches(
        src.lengths, tgt.lengths, 64, 1, 1, batch_tokens=batch_tokens
    )
    criterion = training_loss(0.0)
    model = session.model.train()

    def step(index) -> int:
        batch = collate([src[i] for i in index], [tgt[i] for i in index])
        train_step(model, batch.to(DEVICE), session.optimizer, criterion, config)
        return batch.n_tgt_tokens

    for index in batches[:3]:
        step(index)
    sync()
    tokens, steps, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < budget and steps < len(batches) - 3:
        tokens += step(batches[3 + steps])
        steps += 1
    sync()
    return tokens / (time.perf_counter() - start), steps


def print_training(name, pairs, out: Path, rates: dict, budget: float) -> None:
    for label, settings in (("matched config", MATCHED), ("default model", [])):
        config = load_config(None, [*settings, f"train.device={DEVICE}"])
        session = start_session(config, out / label.replace(" ", "-"), pairs,
                                False, None)  # fmt: skip
        model = session.model
        embedding = sum(w.numel() for w in model.embedding_tables().values())
        flops_per_token = 6 * (sum(p.numel() for p in model.parameters()) - embedding)
        for batch_label, batch_tokens in BATCHES:
            for precision in ("fp32", "bf16"):
                try:
                    rate, steps = training_rate(session, precision, batch_tokens,
                                                budget)  # fmt: skip
                except torch.OutOfMemoryError:
                    torch.cuda.empty_cache()
                    say(name, f"training, {label}, {batch_label}, {precision}: "
                              "out of memory")  # fmt: skip
                    continue
                fraction = rate * flops_per_token / (rates[precision] * 1e12)
                say(name, f"training, {label}, {batch_label}, {precision}: "
                          f"{rate:,.0f} target tokens/s ({steps} steps; ~"
                          f"{fraction:.1%} of the {precision} matmul "
                          "rate)")  # fmt: skip
        del session, model
        if DEVICE == "cuda":
            torch.cuda.empty_cache()


def print_quality_and_decoding(name, pairs, out: Path, minutes: float) -> None:
    run_dir = out / "default-run"
    config = load_config(
        None, [f"train.device={DEVICE}", f"train.max_minutes={minutes}"]
    )
    result = train(config, run_dir, pairs)
    test = read_splits(run_dir, ("test",))["test"]
    sources = [pair.src for pair in test]
    translator = Translator.from_checkpoint(run_dir / "best.pt", device=DEVICE)
    for beam in (1, 5):
        translator.translate(sources[:50], beam_size=beam)  # warm-up
        sync()
        start = time.perf_counter()
        hypotheses = translator.translate(sources, beam_size=beam, batch_size=1000)
        sync()
        seconds = time.perf_counter() - start
        scores = score(hypotheses, [p.tgt for p in test], config.data.lowercase)
        kind = "greedy" if beam == 1 else f"beam {beam}"
        say(name, f"after {minutes:g} min of default training "
                  f"({result.epochs_done} epochs): test BLEU {scores.bleu:.2f}, "
                  f"chrF {scores.chrf:.2f} ({kind})")  # fmt: skip
        say(name, f"decoding, {kind}, batch 1000: {len(sources) / seconds:,.0f} "
                  f"sentences/s (segmentation included)")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tsv", type=Path, default=DEFAULT_TSV)
    parser.add_argument("--budget", type=float, default=8.0,
                        help="seconds a training row, and per matmul rate")  # fmt: skip
    parser.add_argument("--minutes", type=float, default=2.0,
                        help="training time of the BLEU run")  # fmt: skip
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print(f"bench/gpu.py: no CUDA device here (torch {torch.__version__}); "
              "nothing measured")  # fmt: skip
        return 0
    if not args.tsv.is_file():
        print(f"bench/gpu.py: no Tatoeba data at {args.tsv}; give --tsv")
        return 1
    name = torch.cuda.get_device_name()
    props = torch.cuda.get_device_properties(0)
    say(name, f"{props.total_memory / 2**30:.1f} GiB, compute capability "
              f"{props.major}.{props.minor}, torch {torch.__version__}")  # fmt: skip
    rates = {"fp32": matmul_rate(torch.float32, args.budget / 2),
             "bf16": matmul_rate(torch.bfloat16, args.budget / 2)}  # fmt: skip
    for precision, rate in rates.items():
        say(name, f"matmul 8192x8192 {precision}: {rate:.1f} TFLOP/s")
    pairs = read_tsv(args.tsv, 1, 0, 1000, SkipCounts())
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch)
        print_training(name, pairs, out, rates, args.budget)
        print_quality_and_decoding(name, pairs, out, args.minutes)
    peak = torch.cuda.max_memory_allocated() / 2**30
    say(name, f"peak GPU memory: {peak:.2f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
