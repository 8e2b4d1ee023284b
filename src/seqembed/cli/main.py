"""The entry point: the top parser, each command family registering its own
commands, logging, and a user's mistake as one line.

The CLI owns the terminal: progress bars and results go to stderr, and only
``translate`` (translations) and ``data`` (a path) print to stdout, so they
compose in shell pipelines. A user's mistake is one line on stderr with exit
status 2; ``--debug`` shows the traceback instead.

Every family module (``cli/train.py``, ``cli/translate.py``, ...) has one
``register(commands)`` and imports nothing heavy at the top, so building the
parser (``--help``, a usage mistake) loads no torch.
"""

from __future__ import annotations

import argparse
import logging
import sys

from seqembed import __version__
from seqembed.cli import (
    analysis,
    data,
    demo_command,
    export,
    report,
    serve,
    train,
    translate,
    visual,
)
from seqembed.cli.options import OneLineParser, add_global_flags, did_you_mean
from seqembed.cli.terminal import say
from seqembed.errors import InputError
from seqembed.nmt.cpu.openmp import choose_wait_policy

log = logging.getLogger("seqembed")

# In the order `seqembed --help` lists them.
FAMILIES = (
    demo_command,
    train,
    translate,
    data,
    analysis,
    export,
    visual,
    report,
    serve,
)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="seqembed",
        description="Train LSTM encoder-decoder translators and look inside "
        "their embeddings, every figure beside its chance level.",
        epilog="A file that --out, --out-dir or --hyp-out names is never "
        "overwritten without --force (train never overwrites a run: --resume "
        "continues it); the files a command keeps inside the run directory by "
        "default are rewritten. `seqembed COMMAND --help` explains each command "
        "with an example.",
    )
    parser.add_argument(
        "--version", action="version", version=f"seqembed {__version__}"
    )
    add_global_flags(parser)
    parser.commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND"
    )
    for family in FAMILIES:
        family.register(parser.commands)
    return parser


def _missing_glyphs_as_log_lines() -> None:
    """matplotlib warns with a source line and its repr of the character
    ("Glyph 128579 (\\N{UPSIDE-DOWN FACE}) missing from font(s) ..."); a user
    gets one plain line instead. Other warnings are shown as Python shows them."""
    import re
    import warnings

    glyph = re.compile(r"Glyph (\d+) \(.*\) missing from font\(s\) (.*?)\.?$")
    show = warnings.showwarning
    if getattr(show, "seqembed", False):  # main() ran before in this process
        return

    def showwarning(message, category, filename, lineno, file=None, line=None):
        found = glyph.match(str(message))
        if found is None:
            return show(message, category, filename, lineno, file, line)
        character, fonts = chr(int(found.group(1))), found.group(2)
        log.warning("no glyph for %s in %s: drawn as an empty box", character, fonts)

    showwarning.seqembed = True
    warnings.showwarning = showwarning


def _parse(parser, argv: list[str] | None):
    args, extras = parser.parse_known_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)  # for train --nproc
    # `translate RUN --beam 4 TEXT...`: argparse stops filling a nargs="*"
    # positional at the first option, so sentences after options come back here.
    if (
        extras
        and args.command == "translate"
        and not any(x.startswith("-") for x in extras)
    ):
        args.text += extras
    elif extras:
        command = parser.commands.choices[args.command]
        hint = _closest_flag(extras, [parser, command])
        command.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
    return args


def _closest_flag(extras: list[str], parsers) -> str:
    """'did you mean' for the first unknown flag, among the flags shown in
    the top parser's and the command's help."""
    flags = [
        flag
        for p in parsers
        for action in p._actions
        if action.help is not argparse.SUPPRESS
        for flag in action.option_strings
    ]
    for extra in extras:
        if extra.startswith("-"):
            return did_you_mean(extra.split("=", 1)[0], flags)
    return ""


def main(argv: list[str] | None = None) -> int:
    # Before anything imports torch: the commands import it when they run.
    choose_wait_policy()
    try:
        args = _parse(build_parser(), argv)
    except SystemExit as exit:  # --help, --version, a usage mistake
        return exit.code
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="seqembed: %(message)s",
        stream=sys.stderr,
    )
    _missing_glyphs_as_log_lines()
    try:
        return args.func(args)
    except InputError as error:
        if args.debug:
            raise
        say(f"seqembed: error: {error}")
        return 2
    except OSError as error:  # a full disk, a read-only or missing folder
        if args.debug:
            raise
        where = f"{error.filename}: " if error.filename else ""
        say(f"seqembed: error: {where}{error.strerror or error}")
        return 2
    except KeyboardInterrupt:
        say("seqembed: interrupted")
        return 130
