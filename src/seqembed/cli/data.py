"""``seqembed data``: download a corpus into the cache; stdout: its path."""

from __future__ import annotations

import sys
from pathlib import Path

from seqembed.cli.options import add_command
from seqembed.cli.terminal import say


def register(commands) -> None:
    data = add_command(
        commands,
        "data",
        "download corpora",
        "Download a parallel corpus into the cache (once; later calls reuse "
        "it) and print the path of its TSV file on stdout, ready for "
        "`seqembed train`. tatoeba: the Mandarin-English sentence pairs of "
        "tatoeba.org as exported by manythings.org (CC-BY 2.0 FR).",
        "seqembed data tatoeba\n"
        'seqembed train "$(seqembed data tatoeba)" --out-dir runs/tatoeba',
    )
    data.add_argument(
        "name", choices=["tatoeba"], help="tatoeba: Mandarin-English export"
    )
    data.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="default $SEQEMBED_CACHE or ~/.cache/seqembed",
    )
    data.add_argument(
        "--url", default=None, help="download address (default: manythings.org)"
    )
    data.add_argument(
        "--force", action="store_true", help="download again, replacing the cache"
    )
    data.set_defaults(func=cmd_data)


def cmd_data(args) -> int:
    from seqembed.data.download import DEFAULT_TATOEBA_URL, fetch_tatoeba

    def progress(done: int, total: int | None) -> None:
        if sys.stderr.isatty():
            size = f"/{total / 1e6:.1f}" if total else ""
            print(f"\rdownloading {done / 1e6:.1f}{size} MB", end="", file=sys.stderr)

    path = fetch_tatoeba(
        cache_dir=Path(args.cache_dir) if args.cache_dir else None,
        url=DEFAULT_TATOEBA_URL if args.url is None else args.url,
        force=args.force,
        progress=progress,
    )
    if sys.stderr.isatty():
        say()
    print(path)
    return 0
