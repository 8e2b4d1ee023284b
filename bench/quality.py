"""Quality bar: train on the shared Tatoeba data, report test BLEU/chrF.

Trains the documented default config twice, with attention (Luong, the
default) and without (the design document's plain encoder-decoder), each for a
wall-clock budget, then decodes the test split greedily and with beam 5.

    python bench/quality.py [--tsv PATH] [--minutes-each 14] [--out runs/bench]

Two BLEU figures are printed:
* sacrebleu's default: 13a tokenisation of the detokenised output against the
  raw reference, case-insensitive (the model is trained on lowercased text);
* "peer-style", as ../shared/peers scores OpenNMT-py and JoeyNMT: both sides
  lowercased and split by the regex tokeniser of peers/prepare.py, then
  ``--tokenize none``.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from pathlib import Path

from seqembed.nmt.cpu.openmp import choose_wait_policy

WAIT_POLICY = choose_wait_policy()  # before torch loads OpenMP

import sacrebleu  # noqa: E402
import torch  # noqa: E402

from seqembed.config import load_config  # noqa: E402
from seqembed.data.corpus import SkipCounts, read_tsv  # noqa: E402
from seqembed.data.prepare import read_splits  # noqa: E402
from seqembed.data.segment import normalize  # noqa: E402
from seqembed.nmt.evaluation import Translator, score  # noqa: E402
from seqembed.nmt.training import train  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_TSV = HERE.parents[1] / "shared/data/tatoeba-cmn-eng/cmn-eng.tsv"
# The tokeniser of ../shared/peers/prepare.py, for peer-style scores.
PEER_TOKEN = re.compile(r"[a-z0-9]+(?:['\-.,][a-z0-9]+)*|[^\sa-z0-9]")


def peer_tokens(text: str) -> str:
    return " ".join(PEER_TOKEN.findall(normalize(text).lower()))


def evaluate(run_dir: Path, beam: int) -> dict:
    translator = Translator.from_checkpoint(run_dir / "best.pt")
    test = read_splits(run_dir)["test"]
    started = time.perf_counter()
    hyps = translator.translate([p.src for p in test], beam_size=beam)
    seconds = time.perf_counter() - started
    refs = [p.tgt for p in test]
    scores = score(hyps, refs, lowercase=True)
    peer = sacrebleu.corpus_bleu(
        [peer_tokens(h) for h in hyps],
        [[peer_tokens(r) for r in refs]],
        tokenize="none",
        force=True,  # tokenised on purpose, as the peers are scored
    )
    return {
        "bleu": scores.bleu,
        "chrf": scores.chrf,
        "peer_bleu": round(peer.score, 2),
        "sent_per_s": len(test) / seconds,
        "n": len(test),
        "signature": scores.bleu_signature,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tsv", type=Path, default=DEFAULT_TSV)
    parser.add_argument("--minutes-each", type=float, default=14.0)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-quality"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", choices=["luong", "none"], help="train one variant")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if not args.tsv.is_file():
        print(f"Tatoeba TSV not found: {args.tsv}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    pairs = read_tsv(args.tsv, 1, 0, 1000, SkipCounts())
    rows = []
    for attention in [args.only] if args.only else ["luong", "none"]:
        run_dir = args.out / f"attention-{attention}"
        config = load_config(
            None,
            [
                f"model.attention={attention}",
                f"train.max_minutes={args.minutes_each}",
                f"train.threads={args.threads}",
            ],
        )
        started = time.monotonic()
        result = train(config, run_dir, pairs)
        minutes = (time.monotonic() - started) / 60
        tokens_per_s = result.final_metrics.get("tgt_tokens_per_s", 0.0)
        for beam in (1, 5):
            figures = evaluate(run_dir, beam)
            rows.append(
                (attention, beam, result.epochs_done, minutes, tokens_per_s, figures)
            )

    print(
        f"\nTatoeba cmn->eng, test split of {rows[0][5]['n']} pairs; "
        f"sacrebleu {rows[0][5]['signature']}"
    )
    print(
        "| attention | decoding | epochs | train min | tgt tok/s | BLEU | chrF "
        "| peer-style BLEU | sent/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for attention, beam, epochs, minutes, tps, f in rows:
        decoding = "greedy" if beam == 1 else f"beam {beam}"
        print(
            f"| {attention} | {decoding} | {epochs} | {minutes:.1f} | {tps:,.0f} | "
            f"{f['bleu']:.1f} | {f['chrf']:.1f} | {f['peer_bleu']:.1f} | "
            f"{f['sent_per_s']:.0f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
