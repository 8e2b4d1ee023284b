"""Options that several commands share, each declared once here so that one
concept has one flag, one help text and one default everywhere."""

from __future__ import annotations

import argparse

# --side values: the sides of a run each names.
SIDES = {"src": ("src",), "tgt": ("tgt",), "both": ("src", "tgt")}


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes are one line, like every other error (exit status 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_run(parser, help: str = "run directory or checkpoint file") -> None:
    parser.add_argument("run", metavar="RUN", help=help)


def add_beam(parser) -> None:
    parser.add_argument("--beam", type=int, help="beam size (default: greedy)")


def add_precision(parser) -> None:
    parser.add_argument(
        "--precision",
        choices=["fp32", "bf16", "auto"],
        help="bf16: bfloat16 autocast, faster on CPUs with native bf16 (refused "
        "elsewhere); auto: bf16 where native, else fp32",
    )
