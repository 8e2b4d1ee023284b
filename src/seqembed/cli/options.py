"""Options that several commands share, each declared once here so that one
concept has one flag, one help text and one range everywhere; and the one
way a command is added (``add_command``): a help line, a description, an
example, the global flags, hidden old spellings.

Renamed flags keep their old name as a hidden alias (``alias``): accepted,
not shown in ``--help``, not offered by "did you mean".
"""

from __future__ import annotations

import argparse
import difflib
import textwrap

# --side values: the tables of a run each names.
SIDES = {"src": ("src",), "tgt": ("tgt",), "both": ("src", "tgt")}
SIDE_HELP = "src: the source (Chinese) embeddings, tgt: the target (English) ones"


def did_you_mean(word: str, names) -> str:
    """'; did you mean 'x'?' for the closest of ``names``, else ''."""
    close = difflib.get_close_matches(word, list(names), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes are one line, like every other error (exit status 2),
    and a mistyped choice or command gets the closest valid one."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def _check_value(self, action, value):
        if action.choices is None or value in action.choices:
            return
        if isinstance(action, argparse._SubParsersAction):
            shown = [choice.dest for choice in action._choices_actions]
        else:
            shown = [str(choice) for choice in action.choices]
        hint = did_you_mean(str(value), shown) or f" (choose from {', '.join(shown)})"
        raise argparse.ArgumentError(action, f"invalid choice: {value!r}{hint}")


def add_command(
    commands,
    name: str,
    summary: str,
    description: str,
    example: str,
    aliases: tuple[str, ...] = (),
):
    """A subcommand: ``summary`` in ``seqembed --help``, ``description`` and
    ``example`` in its own ``--help``; ``aliases`` are other spellings
    accepted but not listed."""
    parser = commands.add_parser(
        name,
        help=summary,
        description=textwrap.fill(description, 79),
        epilog="example:\n" + "\n".join(f"  {line}" for line in example.splitlines()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for other in aliases:
        commands._name_parser_map[other] = parser
    add_global_flags(parser, default=argparse.SUPPRESS)
    return parser


def add_global_flags(parser, default=False) -> None:
    """--quiet and --debug: before the command or anywhere after it (there
    they default to SUPPRESS so they do not undo one given before)."""
    parser.add_argument(
        "--quiet",
        action="store_true",
        default=default,
        help="warnings and errors only: no progress, no notes",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=default,
        help="show the traceback of an error",
    )


def alias(parser, action: argparse.Action, *names: str) -> None:
    """Old names of ``action``'s flag: accepted, hidden from help."""
    options = {"dest": action.dest, "help": argparse.SUPPRESS}
    options["default"] = argparse.SUPPRESS
    if action.nargs == 0:  # a switch: an old yes-flag means yes
        options["action"] = "store_true"
    else:
        options.update(type=action.type, choices=action.choices, metavar=action.metavar)
    parser.add_argument(*names, **options)


def bounded(low=None, high=None, *, above=False, below=False):
    """An argparse action that refuses numbers outside [low, high] (or the
    open interval where ``above``/``below``), naming the flag as typed."""
    if above and below:
        bound = f"between {low} and {high}, exclusive"
    elif low is not None and high is not None:
        bound = f"between {low} and {high}"
    elif low is not None:
        bound = f"above {low}" if above else f"at least {low}"
    else:
        bound = f"below {high}" if below else f"at most {high}"

    def outside(value) -> bool:
        if low is not None and (value <= low if above else value < low):
            return True
        return high is not None and (value >= high if below else value > high)

    class Bounded(argparse.Action):
        def __call__(self, parser, namespace, value, option_string=None):
            if outside(value):
                name = option_string or self.dest
                raise argparse.ArgumentError(
                    None, f"{name} must be {bound} (got {value})"
                )
            setattr(namespace, self.dest, value)

    Bounded.bound = bound
    return Bounded


def count(low: int = 1):
    """An integer flag's action: at least ``low``."""
    return bounded(low)


def add_run(parser, help: str = "run directory or checkpoint file") -> None:
    parser.add_argument("run", metavar="RUN", help=help)


def add_checkpoint(parser) -> None:
    """--checkpoint best|last: which file of a run directory a reading
    command uses (``nmt.checkpoint.CHECKPOINTS``; a .pt file given as RUN
    stands for itself)."""
    parser.add_argument(
        "--checkpoint",
        choices=("best", "last"),
        default="best",
        help="which checkpoint of a run directory: best (best.pt, falling back "
        "to last.pt when the run has none; the default) or last (last.pt)",
    )


def add_device(parser, default: str | None = None, what: str = "computes") -> None:
    """--device: where the model computes (``nmt.devices.resolve_device``
    checks it, so a device this machine lacks is one line)."""
    fallback = f"default {default}" if default else "default: the run's setting, auto"
    parser.add_argument(
        "--device",
        default=default,
        metavar="DEVICE",
        help=f"where the model {what}: auto (CUDA, else Apple's MPS, else the "
        f"CPU), cpu, cuda, cuda:N or mps ({fallback})",
    )


def add_beam(parser) -> None:
    parser.add_argument(
        "--beam",
        type=int,
        action=count(1),
        metavar="N",
        help="beam size (default: the run's decode.beam_size; 1 is greedy)",
    )


def add_precision(parser) -> None:
    parser.add_argument(
        "--precision",
        choices=["fp32", "bf16", "auto"],
        help="bf16: bfloat16 autocast, faster on CPUs with native bf16 (refused "
        "elsewhere); auto: bf16 where native, else fp32",
    )


def add_side(parser, default: str | None, extra: str = "", choices=tuple(SIDES)):
    """--side with the same choices everywhere (export adds ``out``)."""
    shown = f" (default {default})" if default else ""
    parser.add_argument(
        "--side",
        choices=choices,
        default=default,
        help=f"{SIDE_HELP}, both: the two{shown}{extra}",
    )


def add_min_freq(parser, default: int = 1) -> None:
    parser.add_argument(
        "--min-freq",
        type=int,
        action=count(0),
        default=default,
        metavar="N",
        help="only words seen at least N times in training (default %(default)s)",
    )


def add_specials(parser, default: bool) -> None:
    """--specials/--no-specials (<PAD>, <SOS>, <EOS>, <UNK>); the old
    ``--include-specials`` stays as a hidden yes."""
    action = parser.add_argument(
        "--specials",
        action=argparse.BooleanOptionalAction,
        default=default,
        help="include the special tokens <SOS>, <EOS>, <UNK> "
        f"(default: {'included' if default else 'left out'})",
    )
    alias(parser, action, "--include-specials")


def add_seed(parser, help: str) -> None:
    """--seed (the old --random-state stays as a hidden alias)."""
    action = parser.add_argument(
        "--seed", type=int, default=0, metavar="N", help=f"{help} (default 0)"
    )
    alias(parser, action, "--random-state")


def add_projection(parser, default: str | None, help: str) -> None:
    """--projection (the old plot --method stays as a hidden alias)."""
    from seqembed.report.projection import METHODS

    action = parser.add_argument(
        "--projection", choices=METHODS, default=default, help=help
    )
    alias(parser, action, "--method")


def add_out_file(parser, default: str) -> None:
    parser.add_argument(
        "--out",
        metavar="FILE",
        help=f"the file to write (default {default}); an existing one only "
        "with --force",
    )
    add_force(parser)


def add_out_dir(parser, help: str, dest: str = "out_dir") -> None:
    """--out-dir DIR (the old --out, where it named a folder, stays hidden)."""
    action = parser.add_argument("--out-dir", dest=dest, metavar="DIR", help=help)
    alias(parser, action, "--out")


def add_force(parser) -> None:
    parser.add_argument(
        "--force", action="store_true", help="overwrite files that exist"
    )
