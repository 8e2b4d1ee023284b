"""The process that runs one model: the only place the server runs torch.

Why a process and not a thread: greedy decoding is a Python loop of small
torch calls, each of which gives up the GIL and must win it back. In one
process the event loop (HTTP parsing, JSON, validation) holds the GIL for a
good part of every millisecond under load, so each decoder step waited its
turn and both cores sat half idle (measured: the server reached 1.2 of its 2
cores and half of offline throughput). Here the decoder has a GIL of its own.

``run`` is the process's whole life: load the run, score its test split,
say ``ready``, then serve messages from ``jobs`` until ``stop``:

    ("translate", id, texts, beam)   a translation job (micro-batched)
    ("call", id, name, args)         ServedModel.attention / states
    ("cancel", id)                   its request timed out: drop it unstarted
    ("stop",)                        finish what is queued, then exit

Answers go to ``answers`` one message per batch (one hand-over to the
parent's reader thread, not one per request): ("answers", [(id, value,
error), ...], stats); ``error`` is ``(kind, message, field)`` or None
(exceptions are sent as text: not every exception survives pickling).

Micro-batching, as in ``serve.workers``' picture: the first translation job
waits up to max_wait for max_batch sentences, then whatever else is already
waiting is taken too, up to max_gather; the jobs are sorted by length and
decoded max_batch sentences at a time, each batch's requests answered as
soon as it is done.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import signal
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from seqembed.errors import InputError
from seqembed.serve import memory

log = logging.getLogger(__name__)

CALLS = ("attention", "states")  # what a "call" message may name
IDLE_S = 0.5  # idle this long: trim the heap (once), check the parent lives


@dataclass(frozen=True)
class Batching:
    max_batch: int
    max_wait_s: float
    max_gather: int


@dataclass
class _Job:
    id: int
    texts: list[str]
    beam: int


def run(checkpoint: str, device: str, batching: Batching, jobs, answers) -> None:
    """The child's entry point (``multiprocessing``, spawned)."""
    # Ctrl-C reaches the whole process group: the parent decides when this
    # process stops (after the requests in flight), not the keyboard.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="seqembed: %(message)s")
    from seqembed.serve.models import ServedModel

    try:
        model = ServedModel.load(checkpoint, device)
        bleu = model.score_test_split()
    except Exception as error:  # noqa: BLE001 - reported, then the end
        answers.put(("failed", describe(error)))
        return
    answers.put(("ready", bleu))
    _Loop(model, batching, jobs, answers).serve()


def describe(error: BaseException) -> tuple[str, str, str | None]:
    kind = "input" if isinstance(error, InputError) else type(error).__name__
    return kind, str(error), getattr(error, "field", None)


class _Loop:
    def __init__(self, model, batching: Batching, jobs, answers):
        self.model, self.batching = model, batching
        self.jobs, self.answers = jobs, answers
        self.held: deque = deque()  # read from the pipe, not yet served
        self.cancelled: set[int] = set()
        self.stats = {"batches": 0, "sentences": 0, "largest_batch": 0, "jobs": 0}

    def serve(self) -> None:
        worked = False  # since the last trim
        while True:
            try:
                message = self._next(IDLE_S)
            except queue.Empty:
                if worked:  # idle: give the freed heap back, once
                    memory.trim()
                    worked = False
                if not _parent_alive():
                    return
                continue
            worked = True
            kind = message[0]
            if kind == "stop":
                return
            if message[1] in self.cancelled:
                self.cancelled.discard(message[1])
            elif kind == "call":
                self._call(*message[1:])
            else:
                self._translate(self._gather(_Job(*message[1:])))

    def _next(self, timeout: float) -> tuple:
        """The next job or stop; cancel messages are noted on the way."""
        while True:
            if self.held:
                return self.held.popleft()
            jobs = self.jobs
            message = jobs.get(timeout=timeout) if timeout > 0 else jobs.get_nowait()
            if message[0] != "cancel":
                return message
            self.cancelled.add(message[1])
            if len(self.cancelled) > 100_000:  # ids answered before their cancel
                self.cancelled = set(sorted(self.cancelled)[50_000:])

    def _gather(self, first: _Job) -> list[_Job]:
        batching = self.batching
        jobs, n = [first], len(first.texts)
        deadline = time.monotonic() + batching.max_wait_s
        while n < batching.max_gather:
            wait = max(deadline - time.monotonic(), 0) if n < batching.max_batch else 0
            try:
                message = self._next(wait)
            except queue.Empty:
                break
            if message[0] != "translate" or n + len(message[2]) > batching.max_gather:
                self.held.append(message)
                break
            if message[1] in self.cancelled:
                self.cancelled.discard(message[1])
                continue
            jobs.append(_Job(*message[1:]))
            n += len(message[2])
        return jobs

    def _translate(self, jobs: list[_Job]) -> None:
        self.stats["jobs"] += len(jobs)
        for beam in sorted({job.beam for job in jobs}):
            group = [job for job in jobs if job.beam == beam]
            # Characters stand in for tokens: the order is the point, and
            # segmenting here would segment every sentence twice.
            group.sort(key=lambda job: max(map(len, job.texts), default=0))
            for batch in _batches(group, self.batching.max_batch):
                self._decode(batch, beam)

    def _decode(self, jobs: list[_Job], beam: int) -> None:
        texts = [text for job in jobs for text in job.texts]
        stats = self.stats
        stats["batches"] += 1
        stats["sentences"] += len(texts)
        stats["largest_batch"] = max(stats["largest_batch"], len(texts))
        try:
            results = self.model.translate(texts, beam, self.batching.max_batch)
        except Exception as error:  # noqa: BLE001 - answered, not raised
            log.exception("model %s: a batch failed", self.model.id)
            self._answer([(job.id, None, describe(error)) for job in jobs])
            return
        answers, start = [], 0
        for job in jobs:
            answers.append((job.id, results[start : start + len(job.texts)], None))
            start += len(job.texts)
        self._answer(answers)

    def _call(self, job_id: int, name: str, args: tuple) -> None:
        self.stats["jobs"] += 1
        try:
            if name not in CALLS:
                raise ValueError(f"no such call: {name}")
            value = getattr(self.model, name)(*args)
        except Exception as error:  # noqa: BLE001 - answered, not raised
            if not isinstance(error, InputError):
                log.exception("model %s: %s failed", self.model.id, name)
            self._answer([(job_id, None, describe(error))])
            return
        self._answer([(job_id, value, None)])

    def _answer(self, answers: list[tuple[int, Any, Any]]) -> None:
        self.answers.put(("answers", answers, dict(self.stats)))


def _batches(jobs: list[_Job], max_batch: int):
    """Consecutive jobs, up to max_batch sentences together (a job over it
    alone: the model splits it into batches of max_batch)."""
    batch, n = [], 0
    for job in jobs:
        if batch and n + len(job.texts) > max_batch:
            yield batch
            batch, n = [], 0
        batch.append(job)
        n += len(job.texts)
    if batch:
        yield batch


def _parent_alive() -> bool:
    parent = multiprocessing.parent_process()
    return parent is None or parent.is_alive()
