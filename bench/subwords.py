"""Word-level vs subword runs: the README's comparison table, from finished runs.

    python bench/subwords.py runs/tatoeba-word runs/tatoeba-sp-unigram ... [--beam 5]

For each run (its best.pt and its own RUN/data/test.tsv):

* BLEU and chrF of the test split, decoded from the checkpoint alone and
  scored on detokenised text (what ``seqembed evaluate`` prints);
* vocabulary sizes, and the <UNK> rate of the test split: the share of source
  and of target tokens (words or pieces, as the run tokenises) that its
  vocabulary maps to <UNK>, and the share of sentences with at least one;
* tokens per test sentence (pieces are more than words);
* training throughput from metrics.jsonl: target tokens per second in the
  batch loop (validation excluded), mean over the completed epochs, and the
  same as training pairs per second (tokens / mean target tokens per pair,
  each counted with its <EOS> as the loss counts it).

The runs' test splits are checked to be the same pairs (same data.split_seed).
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from seqembed.checkpoint import load_checkpoint  # noqa: E402
from seqembed.evaluation import Translator, score  # noqa: E402
from seqembed.prepare import read_splits  # noqa: E402
from seqembed.vocab import UNK  # noqa: E402


def unk_rates(vocab, sentences: list[list[str]]) -> tuple[float, float, float]:
    """(share of tokens that are <UNK>, share of sentences with one,
    tokens per sentence)."""
    ids = [vocab.encode(tokens) for tokens in sentences]
    n_tokens = sum(len(x) for x in ids)
    n_unk = sum(x.count(UNK) for x in ids)
    with_unk = sum(UNK in x for x in ids)
    return n_unk / n_tokens, with_unk / len(ids), n_tokens / len(ids)


def throughput(run: Path, translator: Translator) -> dict:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    metrics = [json.loads(line) for line in lines if line.strip()]
    # An epoch cut by the time budget is in the log too; its rate still counts.
    rates = [m["tgt_tokens_per_s"] for m in metrics]
    train = read_splits(run)["train"]
    tgt = [translator.tokenizer.tokenize(p.tgt) for p in train]
    per_pair = sum(len(t) + 1 for t in tgt) / len(tgt)
    mean_rate = sum(rates) / len(rates)
    return {
        "epochs": metrics[-1]["epoch"],
        "steps": metrics[-1]["step"],
        "minutes": metrics[-1]["elapsed_s"] / 60,
        "best_valid_bleu": max(m["valid_bleu"] for m in metrics),
        "tgt_tok_s": mean_rate,
        "pairs_s": mean_rate / per_pair,
    }


def measure(run: Path, beam: int) -> dict:
    state = load_checkpoint(run / "best.pt")
    translator = Translator.from_state(state)
    data = translator.config.data
    test = read_splits(run)["test"]
    src = [translator.segmenter(p.src) for p in test]
    tgt = [translator.tokenizer.tokenize(p.tgt) for p in test]
    started = time.monotonic()
    hypotheses = translator.translate([p.src for p in test], beam_size=beam)
    seconds = time.monotonic() - started
    scores = score(hypotheses, [p.tgt for p in test], data.lowercase)
    src_unk, src_sent, src_len = unk_rates(translator.src_vocab, src)
    tgt_unk, tgt_sent, tgt_len = unk_rates(translator.tgt_vocab, tgt)
    sides = {"src": data.src_segmentation, "tgt": data.tgt_tokenization}
    for side in ("src", "tgt"):
        if sides[side] == "sentencepiece":
            kind = getattr(data, f"{side}_sp_type")
            sides[side] = f"{kind} {getattr(data, f'{side}_sp_vocab_size')}"
    return {
        "run": str(run),
        "test": [(p.src, p.tgt) for p in test],
        "src": sides["src"],
        "tgt": sides["tgt"],
        "vocab_src": len(translator.src_vocab),
        "vocab_tgt": len(translator.tgt_vocab),
        "params": sum(t.numel() for t in state["model"].values()),
        "bleu": scores.bleu,
        "chrf": scores.chrf,
        "signature": scores.bleu_signature,
        "src_unk": src_unk,
        "tgt_unk": tgt_unk,
        "src_unk_sent": src_sent,
        "tgt_unk_sent": tgt_sent,
        "src_len": src_len,
        "tgt_len": tgt_len,
        "decode_s": seconds,
        "best_epoch": state["counters"]["epoch"] - 1,
        **throughput(run, translator),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--beam", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = [measure(run, args.beam) for run in args.runs]
    if any(row["test"] != rows[0]["test"] for row in rows):
        raise SystemExit("the runs' test splits differ: compare like with like")
    print(
        "| run | source | target | vocab src / tgt | params | epochs (best) "
        "| tgt tok/s | pairs/s | tokens per test sentence src / tgt "
        "| <UNK> src / tgt (sentences with one) | BLEU | chrF |"
    )
    print("|---" * 12 + "|")
    for r in rows:
        print(
            f"| {Path(r['run']).name} | {r['src']} | {r['tgt']} "
            f"| {r['vocab_src']:,} / {r['vocab_tgt']:,} | {r['params'] / 1e6:.2f}M "
            f"| {r['epochs']} ({r['best_epoch']}) | {r['tgt_tok_s']:,.0f} "
            f"| {r['pairs_s']:,.0f} | {r['src_len']:.1f} / {r['tgt_len']:.1f} "
            f"| {100 * r['src_unk']:.2f}% / {100 * r['tgt_unk']:.2f}% "
            f"({100 * r['src_unk_sent']:.1f}% / {100 * r['tgt_unk_sent']:.1f}%) "
            f"| {r['bleu']:.2f} | {r['chrf']:.2f} |"
        )
    n_pairs = len(rows[0]["test"])
    print(f"\nBLEU {rows[0]['signature']}; beam {args.beam}; {n_pairs} test pairs")
    if args.json:
        for row in rows:
            row.pop("test")
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
