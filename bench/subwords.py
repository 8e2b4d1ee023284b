"""Word-level vs subword runs: the README's comparison table, from finished runs.

    python bench/subwords.py runs/tatoeba-word runs/tatoeba-sp-unigram ... [--beams 1 5]

For each run (its best.pt and its own RUN/data/test.tsv):

* BLEU and chrF of the test split, decoded greedily and with beam 5 from the
  checkpoint alone and scored on detokenised text (what ``seqembed evaluate``
  prints);
* vocabulary sizes, and the <UNK> rate of the test split: the share of source
  and of target tokens (words or pieces, as the run tokenises) that its
  vocabulary maps to <UNK>, and the share of sentences with at least one;
* tokens per test sentence (pieces are more than words);
* training steps (batches of 64 pairs) done in the budget, and epochs;
* training throughput from metrics.jsonl: target tokens per second in the
  batch loop (validation excluded), mean over the epochs, and the
  same as training pairs per second (tokens / mean target tokens per pair,
  each counted with its <EOS> as the loss counts it).

The runs' test splits are checked to be the same pairs (same data.split_seed).
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from seqembed.nmt.cpu.openmp import choose_wait_policy

WAIT_POLICY = choose_wait_policy()  # before torch loads OpenMP

import torch  # noqa: E402

from seqembed.data.prepare import read_splits  # noqa: E402
from seqembed.data.vocab import UNK  # noqa: E402
from seqembed.nmt.checkpoint import load_checkpoint  # noqa: E402
from seqembed.nmt.evaluation import Translator, score  # noqa: E402


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
    # Epoch 1 is complete in any run worth comparing: its steps are an epoch.
    return {
        "epochs": metrics[-1]["step"] / metrics[0]["step"],
        "steps": metrics[-1]["step"],
        "minutes": metrics[-1]["elapsed_s"] / 60,
        "best_valid_bleu": max(m["valid_bleu"] for m in metrics),
        "tgt_tok_s": mean_rate,
        "pairs_s": mean_rate / per_pair,
    }


def measure(run: Path, beams: list[int]) -> dict:
    state = load_checkpoint(run / "best.pt")
    translator = Translator.from_state(state)
    data = translator.config.data
    test = read_splits(run)["test"]
    src = [translator.segmenter(p.src) for p in test]
    tgt = [translator.tokenizer.tokenize(p.tgt) for p in test]
    scores, seconds = {}, {}
    for beam in beams:
        started = time.monotonic()
        hypotheses = translator.translate([p.src for p in test], beam_size=beam)
        seconds[beam] = time.monotonic() - started
        scores[beam] = score(hypotheses, [p.tgt for p in test], data.lowercase)
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
        "bleu": {beam: s.bleu for beam, s in scores.items()},
        "chrf": {beam: s.chrf for beam, s in scores.items()},
        "signature": scores[beams[0]].bleu_signature,
        "src_unk": src_unk,
        "tgt_unk": tgt_unk,
        "src_unk_sent": src_sent,
        "tgt_unk_sent": tgt_sent,
        "src_len": src_len,
        "tgt_len": tgt_len,
        "decode_s": seconds,
        **throughput(run, translator),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = [measure(run, args.beams) for run in args.runs]
    if any(row["test"] != rows[0]["test"] for row in rows):
        raise SystemExit("the runs' test splits differ: compare like with like")
    scored = " | ".join(f"BLEU / chrF beam {beam}" for beam in args.beams)
    print(
        "| run | source | target | vocab src / tgt | params | steps (epochs) "
        "| tgt tok/s | pairs/s | tokens per test sentence src / tgt "
        f"| <UNK> src / tgt (sentences with one) | {scored} |"
    )
    print("|---" * (10 + len(args.beams)) + "|")
    for r in rows:
        scores = " | ".join(
            f"{r['bleu'][beam]:.2f} / {r['chrf'][beam]:.2f}" for beam in args.beams
        )
        print(
            f"| {Path(r['run']).name} | {r['src']} | {r['tgt']} "
            f"| {r['vocab_src']:,} / {r['vocab_tgt']:,} | {r['params'] / 1e6:.2f}M "
            f"| {r['steps']:,} ({r['epochs']:.1f}) | {r['tgt_tok_s']:,.0f} "
            f"| {r['pairs_s']:,.0f} | {r['src_len']:.1f} / {r['tgt_len']:.1f} "
            f"| {100 * r['src_unk']:.2f}% / {100 * r['tgt_unk']:.2f}% "
            f"({100 * r['src_unk_sent']:.1f}% / {100 * r['tgt_unk_sent']:.1f}%) "
            f"| {scores} |"
        )
    n_pairs = len(rows[0]["test"])
    print(f"\nBLEU {rows[0]['signature']}; {n_pairs} test pairs")
    if args.json:
        for row in rows:
            row.pop("test")
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
