"""One worker thread per model: the only thread that runs it.

The event loop never runs torch. A request puts a job on its model's queue
and awaits a future; the worker answers it. Translation jobs waiting
together are decoded together (micro-batching)::

    queue:  [job 3 sentences] [job 1] [job 1] [job 2] [attention] ...
             \\____________ one batch: up to max_batch sentences ___/
                            or whatever came within max_wait_ms of the first

so under many concurrent clients each decoder call carries many sentences,
as offline batch decoding does, instead of one. Jobs with another beam size
are decoded as their own group of the same batch; other work (attention,
encoder states) runs between batches. A job whose request timed out is
dropped unstarted; one already decoding finishes and its answer is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from seqembed.serve import memory
from seqembed.serve.models import ServedModel, Translated

log = logging.getLogger(__name__)


class RequestTimeout(Exception):
    """The answer did not come within ``serve.timeout_s``."""


@dataclass
class _Job:
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    texts: list[str] = field(default_factory=list)  # a translation job
    beam: int = 1
    call: Callable[[ServedModel], Any] | None = None  # any other job

    def answer(self, value: Any = None, error: BaseException | None = None) -> None:
        self.loop.call_soon_threadsafe(_settle, self.future, value, error)


def _settle(future: asyncio.Future, value: Any, error: BaseException | None):
    if future.done():  # cancelled: the request timed out or went away
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


_STOP = object()
TRIM_AFTER_IDLE_S = 0.5  # a worker idle this long trims the heap (once)


class ModelWorker:
    """Owns one ``ServedModel``; ``translate`` and ``run`` are awaited from
    the event loop. ``stats``: batches decoded, sentences, the largest batch."""

    def __init__(self, model: ServedModel, max_batch: int, max_wait_ms: float):
        self.model = model
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000
        self.stats = {"batches": 0, "sentences": 0, "largest_batch": 0, "jobs": 0}
        self._queue: queue.Queue = queue.Queue()
        self._held: deque = deque()  # taken from the queue, not yet served
        self._thread = threading.Thread(
            target=self._serve, name=f"model-{model.id}", daemon=True
        )

    def start(self) -> ModelWorker:
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Finish the jobs queued before this call, then end the thread."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def queued(self) -> int:
        return self._queue.qsize() + len(self._held)

    async def translate(
        self, texts: list[str], beam: int, timeout: float
    ) -> list[Translated]:
        return await self._submit(
            _Job(*self._future(), texts=texts, beam=beam), timeout
        )

    async def run(self, call: Callable[[ServedModel], Any], timeout: float) -> Any:
        """``call(model)`` on the worker thread, between batches."""
        return await self._submit(_Job(*self._future(), call=call), timeout)

    @staticmethod
    def _future():
        loop = asyncio.get_running_loop()
        return loop.create_future(), loop

    async def _submit(self, job: _Job, timeout: float) -> Any:
        self._queue.put(job)
        try:
            return await asyncio.wait_for(job.future, timeout)
        except asyncio.TimeoutError:
            raise RequestTimeout(
                f"model {self.model.id} did not answer within {timeout:g} s "
                f"({self.queued()} jobs waiting)"
            ) from None

    # ------------------------------------------------------------ the thread

    def _next(self, timeout: float | None = None):
        if self._held:
            return self._held.popleft()
        if timeout is None:
            return self._queue.get()
        return (
            self._queue.get(timeout=timeout)
            if timeout > 0
            else self._queue.get_nowait()
        )

    def _serve(self) -> None:
        worked = False  # since the last trim
        while True:
            try:
                job = self._next(TRIM_AFTER_IDLE_S)
            except queue.Empty:  # idle: give the freed heap back, once
                if worked:
                    memory.trim()
                    worked = False
                continue
            if job is _STOP:
                return
            worked = True
            if job.future.done():  # timed out while waiting: not started
                continue
            if job.call is not None:
                self._call(job)
            else:
                self._translate(self._gather(job))

    def _gather(self, first: _Job) -> list[_Job]:
        """``first`` and the translation jobs that come within max_wait of
        it, up to max_batch sentences; anything else is held for later."""
        jobs, n = [first], len(first.texts)
        deadline = time.monotonic() + self.max_wait_s
        while n < self.max_batch:
            try:
                job = self._next(max(deadline - time.monotonic(), 0))
            except queue.Empty:
                break
            if (
                job is _STOP
                or job.call is not None
                or n + len(job.texts) > self.max_batch
            ):
                self._held.append(job)
                break
            if not job.future.done():
                jobs.append(job)
                n += len(job.texts)
        return jobs

    def _translate(self, jobs: list[_Job]) -> None:
        self.stats["batches"] += 1
        size = sum(len(job.texts) for job in jobs)
        self.stats["sentences"] += size
        self.stats["jobs"] += len(jobs)
        self.stats["largest_batch"] = max(self.stats["largest_batch"], size)
        for beam in sorted({job.beam for job in jobs}):
            group = [job for job in jobs if job.beam == beam]
            texts = [text for job in group for text in job.texts]
            try:
                results = self.model.translate(texts, beam, self.max_batch)
            except Exception as error:  # noqa: BLE001 - answered, not raised
                log.exception("model %s: a batch failed", self.model.id)
                for job in group:
                    job.answer(error=error)
                continue
            start = 0
            for job in group:
                job.answer(results[start : start + len(job.texts)])
                start += len(job.texts)

    def _call(self, job: _Job) -> None:
        self.stats["jobs"] += 1
        try:
            job.answer(job.call(self.model))
        except Exception as error:  # noqa: BLE001 - answered, not raised
            job.answer(error=error)
