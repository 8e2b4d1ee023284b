"""``seqembed demo``: the parser and what the demo shows on the terminal.

The experiments themselves (corpus, settings, training, analysis) are in
``cli.demo``, which imports torch; this module stays light so that building
the parser loads nothing heavy.
"""

from __future__ import annotations

import time
from pathlib import Path

from seqembed.cli.options import add_command, add_out_dir
from seqembed.cli.terminal import TrainingProgress, print_sections, say

# The analysis sections each demo prints (the rest is in RUN/analysis).
SEED_EXAMPLE_SECTIONS = (
    "what is above chance",
    "most similar pairs",
    "topic groups",
    "chosen pairs",
    "statistics",
    "outlier candidates",
    "movement from the initial vectors",
)
BUILTIN_SECTIONS = ("topic groups", "co-occurrence", "cross-lingual alignment")


def register(commands) -> None:
    demo = add_command(
        commands,
        "demo",
        "train on built-in data and translate",
        "Train a small attention model on the Chinese-English corpus that ships "
        "with seqembed (a few minutes on a laptop), translate training and "
        "held-out sentences, analyse the embeddings and write the HTML report. "
        "--seed-example instead reproduces the design document's experiment: "
        "5 pre-segmented pairs, no attention, 50 epochs. A demo replaces an "
        "earlier demo in the same folder, and nothing else.",
        "seqembed demo\nseqembed demo --seed-example --out-dir runs/seed",
    )
    add_out_dir(demo, "the run directory (default runs/demo or runs/seed-example)")
    demo.add_argument(
        "--seed-example",
        action="store_true",
        help="reproduce the design document's 5-pair experiment",
    )
    demo.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    from seqembed.cli.demo import prepare_demo_dir, run_demo

    started = time.monotonic()
    out = Path(
        args.out_dir or ("runs/seed-example" if args.seed_example else "runs/demo")
    )
    prepare_demo_dir(out)  # fails before any output if --out holds another run
    if args.seed_example:
        say(
            "The design document's experiment: 5 pre-segmented pairs, 64-dim "
            "embeddings, 1 LSTM layer, no attention, 50 epochs, Adam."
        )
    else:
        say("Built-in corpus: Chinese-English pairs written for seqembed, 8 topics.")
    result = run_demo(out, args.seed_example, args.seed, TrainingProgress())
    say(f"\nModel: {result.checkpoint} ({_which_model(args.seed_example)})")
    say("\nTranslations (greedy):")
    for source, output, reference in result.translations:
        seen = f"   [held out; reference: {reference}]" if reference else ""
        say(f"  {source}  ->  {output}{seen}")
    if args.seed_example:
        say(
            f"\n{result.exact}/5 translated exactly; final training loss "
            f"{result.final_loss:.4f}"
        )
    else:
        scores = result.test_scores
        say(
            f"\nHeld-out test ({scores.n_sentences} pairs never seen in training): "
            f"{scores.text('bleu')}, {scores.text('chrf')}, of "
            f"{result.checkpoint.name}. A corpus this small teaches the training "
            "sentences, not the language."
        )
    _print_demo_analysis(result.analysis, args.seed_example)
    say(f"\nReport (open it in a browser): {result.report}")
    say(
        f"\nRun directory: {out}  (last.pt, best.pt, config.yaml, vocab.*.tsv, "
        "metrics.jsonl, tensorboard/, embeddings/, data/, analysis/)"
    )
    say(f"Done in {time.monotonic() - started:.0f}s.")
    return 0


def _which_model(seed_example: bool) -> str:
    if seed_example:
        return (
            "the final model, after all 50 epochs: the design translates and "
            "analyses that one"
        )
    return "the best validation epoch, the model every command uses by default"


def _print_demo_analysis(analysis: dict, seed_example: bool) -> None:
    from seqembed.analysis.text import sections

    wanted = SEED_EXAMPLE_SECTIONS if seed_example else BUILTIN_SECTIONS
    chosen = [
        s
        for s in sections(analysis, verbose=False)
        if any(s.title.endswith(w) or s.title.startswith(w) for w in wanted)
    ]
    say(
        f"\nWhat the embeddings of {analysis['checkpoint']} learned, each figure "
        "beside its chance level:"
    )
    print_sections(chosen)
    for side, data in analysis["sides"].items():
        tests = data["findings"]["tests"]
        above = sum(t["above_chance"] for t in tests)
        say(
            f"{side}: {above} of {len(tests)} tests above chance "
            f"({data['findings']['correction']}-corrected, level "
            f"{data['findings']['alpha']})."
        )
    say(f"Full analysis: {analysis['run']}/analysis/analysis.md")
