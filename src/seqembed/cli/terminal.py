"""What the CLI shows on the terminal: one-line messages, rich tables and the
training progress bar. Everything here writes to stderr, so stdout carries
only results (translations, paths) and composes in shell pipelines."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys


def say(text: str = "") -> None:
    """One line on stderr, after whatever stdout holds so far."""
    sys.stdout.flush()  # keep stdout and stderr lines in order on one terminal
    print(text, file=sys.stderr, flush=True)


def note(text: str) -> None:
    """A line of the command's own, as the log's lines look."""
    say(f"seqembed: {text}")


def note_checkpoint(line: str, quiet: bool, terminal_only: bool = False) -> None:
    """ "checkpoint: runs/x/best.pt (epoch 12 of 12, ...)" before a command's
    results, so every output says which model it comes from; not with
    --quiet, and with ``terminal_only`` only when stderr is a terminal (a
    pipeline that reads translate's stderr keeps just its word notes)."""
    if quiet or (terminal_only and not sys.stderr.isatty()):
        return
    note(f"checkpoint: {line}")


def console():
    from rich.console import Console

    columns = shutil.get_terminal_size((120, 40)).columns
    return Console(stderr=True, highlight=False, width=max(100, columns))


def print_sections(sections, to=None) -> None:
    """Analysis sections (``analysis.text.Section``) as titled rich tables."""
    from rich.table import Table

    to = to or console()
    for section in sections:
        to.print(f"\n[bold]{section.title}[/bold]")
        if section.text:
            to.print(section.text)
        if section.columns:
            table = Table(show_edge=False, pad_edge=False, box=None)
            for column in section.columns:
                table.add_column(column, overflow="fold")
            for row in section.rows:
                table.add_row(*[str(cell) for cell in row])
            to.print(table)


@contextlib.contextmanager
def progress(message: str, quiet: bool = False):
    """A spinner with ``message`` and the seconds so far, on a terminal only:
    nothing when stderr is piped or with --quiet. Log lines print above it.
    Yields ``step(part)``, which shows "message: part" (a no-op elsewhere)."""
    if quiet or not sys.stderr.isatty():
        yield lambda part: None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console(),
        transient=True,
    )
    stderr = sys.stderr
    with bar:  # rich now holds sys.stderr: route the log's lines through it
        handlers = [
            h
            for h in logging.getLogger().handlers
            if isinstance(h, logging.StreamHandler) and h.stream is stderr
        ]
        for handler in handlers:
            handler.setStream(sys.stderr)
        task = bar.add_task(message, total=None)

        def step(part: str) -> None:
            bar.update(task, description=f"{message}: {part}")
            bar.refresh()  # now, not at the next tick: a part may be short

        try:
            yield step
        finally:
            for handler in handlers:
                handler.setStream(stderr)


class TrainingProgress:
    """``seqembed.train``'s progress callback on the terminal: a tqdm bar per
    epoch (loss, target tokens/s, ETA), opened at its first batch (a resumed
    epoch's bar starts where the run stopped), and a line per validated
    epoch."""

    def __init__(self):
        self.bar = None
        self.epoch = None

    def __call__(self, event) -> None:
        if event.stage == "step":
            self._step(event)
        elif event.stage == "epoch":
            self._close()
            say(event.message)

    def _step(self, event) -> None:
        numbers = event.metrics
        if self.bar is None or numbers["epoch"] != self.epoch:
            from tqdm import tqdm

            self._close()
            self.epoch = numbers["epoch"]
            self.bar = tqdm(
                total=event.total,
                initial=event.done - 1,
                desc=f"epoch {numbers['epoch']}/{numbers['epochs']}",
                unit="batch",
                leave=False,
                file=sys.stderr,
                dynamic_ncols=True,
                disable=None if not os.environ.get("SEQEMBED_PROGRESS") else False,
            )
        self.bar.update(1)
        self.bar.set_postfix(
            loss=f"{numbers['loss']:.3f}",
            tok_s=f"{numbers['tgt_tokens_per_s']:,.0f}",
            refresh=False,
        )

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
