"""The loaded models, their workers, and the threads for table queries.

Model ids are looked up in a dict (``Registry.entry``); no request value is
ever part of a path.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from seqembed.serve import explore
from seqembed.serve.http import ApiError
from seqembed.serve.models import ServedModel
from seqembed.serve.settings import ServeSettings
from seqembed.serve.workers import ModelWorker, RequestTimeout


@dataclass
class Entry:
    model: ServedModel
    worker: ModelWorker
    spaces: explore.Spaces


@dataclass
class Registry:
    """The loaded models by id (command-line order), and the shared pieces."""

    settings: ServeSettings
    entries: dict[str, Entry] = field(default_factory=dict)
    analysis: concurrent.futures.ThreadPoolExecutor = field(
        default_factory=lambda: concurrent.futures.ThreadPoolExecutor(
            2, thread_name_prefix="analysis"
        )
    )
    # Projections by (route, model, ...): a handful of keys at most.
    pictures: dict[tuple, concurrent.futures.Future] = field(default_factory=dict)

    @classmethod
    def start(
        cls, models: list[ServedModel], settings: ServeSettings, device: str = "cpu"
    ) -> Registry:
        """A worker process per model, started together and waited for:
        each loads its run on ``device`` and scores its test split."""
        registry = cls(settings)
        for model in models:
            worker = ModelWorker(
                model,
                settings.max_batch,
                settings.max_wait_ms,
                settings.max_gather,
                settings.max_queue,
                device,
            )
            registry.entries[model.id] = Entry(
                model, worker.start(), explore.Spaces(model)
            )
        try:
            for entry in registry.entries.values():
                entry.worker.wait_ready()
        except BaseException:
            registry.stop()
            raise
        return registry

    def stop(self) -> None:
        for entry in self.entries.values():
            entry.worker.stop(self.settings.graceful_s)
        self.analysis.shutdown(wait=False, cancel_futures=True)

    def entry(self, model_id: str | None, field_name: str = "model") -> Entry:
        if model_id is None:
            return next(iter(self.entries.values()))
        found = self.entries.get(model_id)
        if found is None:
            known = ", ".join(self.entries)
            raise ApiError(404, f"no model {model_id!r} (loaded: {known})", field_name)
        return found

    async def analyse(self, function, *args) -> Any:
        """``function(*args)`` on an analysis thread, within the timeout."""
        loop = asyncio.get_running_loop()
        job = loop.run_in_executor(self.analysis, function, *args)
        return await self._within(asyncio.shield(job))

    async def picture(self, key: tuple, function, *args) -> Any:
        """Computed once per key; a request that times out leaves it going,
        so a later one finds it done."""
        if key not in self.pictures:
            self.pictures[key] = self.analysis.submit(function, *args)
        job = self.pictures[key]
        try:
            # shield: a request that times out must not cancel the job
            return await self._within(asyncio.shield(asyncio.wrap_future(job)))
        except Exception:
            if job.done() and job.exception() is not None:
                self.pictures.pop(key, None)  # an error is not cached
            raise

    async def _within(self, awaitable) -> Any:
        timeout = self.settings.timeout_s
        try:
            return await asyncio.wait_for(awaitable, timeout)
        except asyncio.TimeoutError:
            raise RequestTimeout(
                f"no answer within serve.timeout_s ({timeout:g} s); it is still "
                "being computed, ask again later"
            ) from None


async def registry(request: Request) -> Registry:
    """The app's registry (a FastAPI dependency). Async on purpose: FastAPI
    runs a plain ``def`` dependency on its thread pool, a thread hop (and a
    turn of the GIL) for every request."""
    return request.app.state.registry


# A route's parameter ``served: Served`` is the app's registry.
Served = Annotated[Registry, Depends(registry)]
