"""seqembed on exactly the peers' split and scoring (../shared/peers).

    bash ../shared/peers/run_opennmt.sh    # writes the split to /tmp/peerdata
    python bench/vs_peers.py [--data /tmp/peerdata] [--minutes 10] [--set KEY=VALUE]

Trains seqembed's default config for a wall-clock budget on the split that
../shared/peers/prepare.py wrote (jieba-segmented Chinese, lowercased
regex-tokenised English), with its valid and test sets, then scores the test
set as the peer scripts do: sacrebleu on the tokenised text, --tokenize none.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

from seqembed.nmt.cpu.openmp import choose_wait_policy

WAIT_POLICY = choose_wait_policy()  # before torch loads OpenMP

import sacrebleu  # noqa: E402
import torch  # noqa: E402

from seqembed.config import load_config  # noqa: E402
from seqembed.data.corpus import Pair  # noqa: E402
from seqembed.nmt.evaluation import Translator  # noqa: E402
from seqembed.nmt.training import train  # noqa: E402


def read_pairs(data: Path, name: str) -> list[Pair]:
    zh = (data / f"{name}.zh").read_text(encoding="utf-8").splitlines()
    en = (data / f"{name}.en").read_text(encoding="utf-8").splitlines()
    return [Pair(z, e, i) for i, (z, e) in enumerate(zip(zh, en, strict=True), 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/peerdata"))
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-vs-peers"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override, e.g. model.input_feed=true for the peers' config",
    )
    args = parser.parse_args()
    if not (args.data / "test.zh").is_file():
        print(f"no peer split in {args.data}: run ../shared/peers/run_opennmt.sh")
        return 2
    torch.set_num_threads(args.threads)
    config = load_config(
        None,
        [
            "data.src_segmentation=pretokenized",  # prepare.py segmented it
            "data.tgt_tokenization=pretokenized",
            f"train.max_minutes={args.minutes}",
            f"train.threads={args.threads}",
            *args.set,
        ],
    )
    heldout = {name: read_pairs(args.data, name) for name in ("valid", "test")}
    started = time.monotonic()
    result = train(config, args.out, read_pairs(args.data, "train"), heldout=heldout)
    minutes = (time.monotonic() - started) / 60
    # ru_maxrss: the peak of this process so far, i.e. of the training.
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tokens_per_s = result.final_metrics["tgt_tokens_per_s"]
    references = [p.tgt for p in heldout["test"]]
    translator = Translator.from_checkpoint(args.out / "best.pt")
    print(
        f"\nseqembed, {' '.join(args.set) or 'default config'}, "
        f"{minutes:.1f} min wall clock "
        f"({result.epochs_done} full epochs, last epoch "
        f"{tokens_per_s:,.0f} tgt tok/s); peak RSS of the training {peak_mib:,.0f} MiB"
    )
    print("| decoding | BLEU | chrF | sent/s (decode only) |")
    print("|---|---|---|---|")
    for beam in (1, 5):
        started = time.perf_counter()
        hyps = translator.translate([p.src for p in heldout["test"]], beam_size=beam)
        rate = len(hyps) / (time.perf_counter() - started)
        bleu = sacrebleu.corpus_bleu(hyps, [references], tokenize="none", force=True)
        chrf = sacrebleu.corpus_chrf(hyps, [references])
        name = "greedy" if beam == 1 else f"beam {beam}"
        print(f"| {name} | {bleu.score:.1f} | {chrf.score:.1f} | {rate:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
