"""One worker per model: a process of its own that runs it, and this side
of it, which the event loop awaits.

The event loop never runs torch. A request puts a job on its model's queue
and awaits a future; the model's process (``serve.model_process``, where
the GIL is its own) answers it, and a reader thread here settles the
future on the event loop::

    event loop --jobs--> [model process: gather, sort, decode] --answers-->
    reader thread --call_soon_threadsafe--> the request's future

Translation jobs waiting together are decoded together (micro-batching, up
to max_batch sentences a batch, max_gather sorted by length at once), so
under many concurrent clients each decoder call carries many sentences, as
offline batch decoding does. A job whose request timed out is cancelled:
dropped unstarted, or its answer dropped when it was already decoding.

More than max_queue sentences waiting for one model: a new request is
refused at once (``Busy``, 503) rather than queued behind work it would
time out waiting for, so an overload costs neither memory nor the answers
of the requests already accepted.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import queue
import threading
from typing import Any

from seqembed.errors import InputError
from seqembed.serve import memory, model_process
from seqembed.serve.models import ServedModel, Translated

log = logging.getLogger(__name__)


class RequestTimeout(Exception):
    """The answer did not come within ``serve.timeout_s``."""


class Busy(Exception):
    """More sentences are waiting for the model than ``serve.max_queue``."""


class ModelError(Exception):
    """The model's process failed a job (logged there with its traceback)."""


class ModelWorker:
    """Runs ``model``'s run in a process of its own; ``translate`` and
    ``run`` are awaited from the event loop. ``stats``: batches decoded,
    sentences, the largest batch, jobs (as the process last reported)."""

    def __init__(
        self,
        model: ServedModel,
        max_batch: int,
        max_wait_ms: float,
        max_gather: int | None = None,
        max_queue: int | None = None,
        device: str = "cpu",
    ):
        self.model = model
        self.max_queue = max_queue
        self.device = device
        self.batching = model_process.Batching(
            max_batch, max_wait_ms / 1000, max(max_gather or max_batch, max_batch)
        )
        self.stats = {"batches": 0, "sentences": 0, "largest_batch": 0, "jobs": 0}
        self.waiting = 0  # sentences asked for, not yet answered
        # Spawned, not forked: a fork of a process that has started torch's
        # and OpenMP's threads inherits their locks in whatever state.
        context = multiprocessing.get_context("spawn")
        self._jobs, self._answers = context.Queue(), context.Queue()
        self._process = context.Process(
            target=model_process.run,
            args=(
                str(model.checkpoint or model.run_dir),
                device,
                self.batching,
                self._jobs,
                self._answers,
            ),
            name=f"model-{model.id}",
            daemon=True,
        )
        self._pending: dict[int, tuple[asyncio.Future, int]] = {}  # event loop
        self._ids = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._ended = False  # the reader saw the process end
        self._reader = threading.Thread(
            target=self._read, name=f"answers-{model.id}", daemon=True
        )

    # ------------------------------------------------------------ lifecycle

    def start(self) -> ModelWorker:
        """Start the process; ``wait_ready`` waits for it to have loaded."""
        self._process.start()
        return self

    def wait_ready(self) -> None:
        """Block until the process has loaded the run and scored its test
        split (kept as the model's ``test_bleu``); an InputError if it
        could not."""
        while True:
            try:
                message = self._answers.get(timeout=1.0)
                break
            except queue.Empty:
                if not self._process.is_alive():
                    raise InputError(
                        f"model {self.model.id}: its process ended while loading "
                        f"(exit status {self._process.exitcode})"
                    ) from None
        if message[0] == "failed":
            _, text, _ = message[1]
            raise InputError(f"model {self.model.id}: {text}")
        self.model.test_bleu = message[1]
        self._reader.start()

    def stop(self, timeout: float | None = None) -> None:
        """Finish the jobs queued before this call, then end the process."""
        self._stopping = True
        if self._process.is_alive():
            self._jobs.put(("stop",))
            self._process.join(timeout)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)
        if self._reader.is_alive():
            self._reader.join(5)

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def queued(self) -> int:
        return len(self._pending)

    # ------------------------------------------------------------ jobs

    async def translate(
        self, texts: list[str], beam: int, timeout: float
    ) -> list[Translated]:
        if self.max_queue is not None and self.waiting + len(texts) > self.max_queue:
            raise Busy(
                f"model {self.model.id} is busy: {self.waiting} sentences are "
                f"waiting (serve.max_queue is {self.max_queue}); ask again later"
            )
        return await self._submit(("translate",), (texts, beam), len(texts), timeout)

    async def run(self, name: str, args: tuple, timeout: float) -> Any:
        """``ServedModel.NAME(*args)`` in the model's process, between
        batches (``name``: attention or states)."""
        return await self._submit(("call",), (name, args), 0, timeout)

    async def _submit(self, kind, payload, sentences: int, timeout: float) -> Any:
        if self._ended:
            raise ModelError(f"model {self.model.id}: its process has ended")
        self._loop = asyncio.get_running_loop()
        job_id = next(self._ids)
        future = self._loop.create_future()
        self._pending[job_id] = (future, sentences)
        self.waiting += sentences
        self._jobs.put(kind + (job_id,) + payload)
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            if self._forget(job_id):
                self._jobs.put(("cancel", job_id))
            raise RequestTimeout(
                f"model {self.model.id} did not answer within {timeout:g} s "
                f"({self.queued()} jobs waiting)"
            ) from None

    def _forget(self, job_id: int) -> bool:
        """Drop a job from the pending ones; False if it was not there."""
        found = self._pending.pop(job_id, None)
        if found is None:
            return False
        self.waiting -= found[1]
        return True

    # ------------------------------------------------------------ answers

    def _read(self) -> None:
        """The reader thread: each answer settled on the event loop; when
        answers stop for half a second, this process's heap trimmed (once),
        as the model's process trims its own: the requests and connections
        of a burst leave freed blocks between live ones."""
        worked = False
        while True:
            try:
                message = self._answers.get(timeout=0.5)
                worked = True
            except queue.Empty:
                if worked:
                    memory.trim()
                    worked = False
                if not self._process.is_alive():
                    self._ended = True
                    if self._loop is not None and not self._loop.is_closed():
                        self._loop.call_soon_threadsafe(self._fail_all)
                    return
                continue
            except (EOFError, OSError):
                return
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._settle, message)

    def _settle(self, message: tuple) -> None:
        _, answers, self.stats = message
        for job_id, value, error in answers:
            found = self._pending.get(job_id)
            self._forget(job_id)
            if found is None or found[0].done():  # timed out: nobody waits
                continue
            if error is None:
                found[0].set_result(value)
            else:
                found[0].set_exception(self._failure(*error))

    def _failure(self, kind: str, text: str, field: str | None) -> Exception:
        if kind == "input":
            failure = InputError(text)
            failure.field = field
            return failure
        return ModelError(f"model {self.model.id}: {kind}: {text}")

    def _fail_all(self) -> None:
        if self._stopping:
            return
        log.error(
            "model %s: its process ended (exit status %s)",
            self.model.id,
            self._process.exitcode,
        )
        for job_id in list(self._pending):
            future, _ = self._pending[job_id]
            self._forget(job_id)
            if not future.done():
                future.set_exception(
                    ModelError(f"model {self.model.id}: its process has ended")
                )
