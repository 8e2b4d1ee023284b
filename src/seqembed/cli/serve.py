"""Command-line wiring for the server: ``seqembed serve RUN [RUN ...]``.

``register(commands)`` adds the command to the CLI's sub-parsers. Until it is
wired into ``seqembed.cli.main``, ``python -m seqembed.cli.serve RUN ...``
runs the same command on its own.
"""

from __future__ import annotations

import logging
import sys

from seqembed.cli.options import add_checkpoint, add_command, add_device


def register(commands) -> None:
    """Register the serve command."""
    serve = add_command(
        commands,
        "serve",
        "serve runs over HTTP: translation, attention, embeddings, and an "
        "explorer page",
        "Load each run once and serve it over HTTP with FastAPI on uvicorn: "
        "translation (micro-batched across concurrent requests, and "
        "OpenNMT-py's request shape at /translator/translate), attention, "
        "encoder states, neighbours beside their chance levels, the embedding "
        "map, a compare view, and an offline explorer page at /. Binds "
        "127.0.0.1 unless --host says otherwise; API documentation at /docs.",
        "seqembed serve runs/demo\n"
        "curl -s localhost:8000/translate -H 'content-type: application/json' "
        '-d \'{"text": "今天天气很好"}\'',
    )
    serve.add_argument(
        "runs",
        nargs="+",
        metavar="RUN",
        help="run directories (or checkpoints); a model's id is its folder's name",
    )
    add_checkpoint(serve)
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1: this machine only)",
    )
    serve.add_argument(
        "--port", type=int, default=8000, help="port (default 8000; 0: any free one)"
    )
    add_device(serve, "auto", "translates")
    serve.add_argument(
        "--cors",
        metavar="ORIGIN",
        help="let pages from ORIGIN call the API (default: no CORS headers)",
    )
    serve.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="serve.KEY=VALUE",
        help="a server setting, e.g. serve.max_batch=32 (repeatable; see "
        "docs/serve.md)",
    )
    serve.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    from seqembed.serve.server import check_device, serve
    from seqembed.serve.settings import serve_settings

    settings = serve_settings(args.set)
    check_device(args.device)
    # uvicorn's start-up lines at INFO say nothing the line below does not.
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)

    def ready(url: str) -> None:
        print(
            f"serving on {url} (explorer {url}/, API docs {url}/docs; Ctrl-C stops)",
            file=sys.stderr,
            flush=True,
        )

    return serve(
        args.runs,
        host=args.host,
        port=args.port,
        settings=settings,
        cors=args.cors,
        device=args.device,
        on_ready=ready,
        checkpoint=args.checkpoint,
    )
