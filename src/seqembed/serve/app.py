"""The FastAPI app: routes over the loaded models, nothing else.

Each route checks its request (limits, model, beam), hands the work to the
model's worker (anything that runs the model) or to the analysis threads
(table look-ups and projections), and awaits it within serve.timeout_s.
Model ids are looked up in a dict; no request value is ever part of a path.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import FastAPI, Query
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from seqembed import __version__
from seqembed.serve import compare as pictures
from seqembed.serve import explore
from seqembed.serve.http import (
    ApiError,
    BodyLimit,
    SecurityHeaders,
    install_error_handlers,
)
from seqembed.serve.models import ServedModel
from seqembed.serve.page import add_page_routes
from seqembed.serve.schemas import (
    AnalogyRequest,
    OpenNMTSentence,
    SentenceRequest,
    SimilarityRequest,
    StatesRequest,
    TranslateRequest,
)
from seqembed.serve.settings import ServeSettings
from seqembed.serve.workers import ModelWorker, RequestTimeout

log = logging.getLogger(__name__)

Side = Literal["src", "tgt"]
Method = Literal["tsne", "pca"]


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
    def start(cls, models: list[ServedModel], settings: ServeSettings) -> Registry:
        registry = cls(settings)
        for model in models:
            worker = ModelWorker(model, settings.max_batch, settings.max_wait_ms)
            registry.entries[model.id] = Entry(
                model, worker.start(), explore.Spaces(model)
            )
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
        try:
            return await self._within(asyncio.wrap_future(self.pictures[key]))
        except ApiError:
            raise
        except Exception:
            del self.pictures[key]  # an error is not cached
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


def create_app(registry: Registry, cors: str | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await asyncio.get_running_loop().run_in_executor(None, registry.stop)

    from fastapi_offline import FastAPIOffline

    app = FastAPIOffline(
        title="seqembed",
        version=__version__,
        description="Translate with seqembed models and explore their "
        "embeddings, every figure beside its chance level.",
        lifespan=lifespan,
        redoc_url=None,
    )
    install_error_handlers(app)
    add_model_routes(app, registry)
    add_embedding_routes(app, registry)
    add_page_routes(app)
    app.add_middleware(BodyLimit, max_body=registry.settings.max_body)
    if cors:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=[cors],
            allow_methods=["GET", "POST"],
            allow_headers=["content-type"],
        )
    app.add_middleware(SecurityHeaders)
    return app


# ---------------------------------------------------------------- the models


def add_model_routes(app: FastAPI, registry: Registry) -> None:
    settings = registry.settings

    @app.get("/health")
    async def health() -> dict:
        """ok, and each loaded model's worker and its batches so far."""
        workers = {
            model_id: {"alive": e.worker.alive, "queued": e.worker.queued()}
            | e.worker.stats
            for model_id, e in registry.entries.items()
        }
        ok = all(w["alive"] for w in workers.values())
        return {"status": "ok" if ok else "degraded", "models": list(workers)} | {
            "workers": workers
        }

    @app.get("/models")
    async def models() -> dict:
        """Each model: id, languages, vocabulary sizes, attention, BLEU."""
        return {"models": [e.model.info() for e in registry.entries.values()]}

    @app.post("/translate")
    async def translate(request: TranslateRequest) -> dict:
        """Translate one sentence or a list; answers are in input order."""
        entry = registry.entry(request.model)
        texts = [request.text] if isinstance(request.text, str) else request.text
        check_sentences(texts, entry.model, settings, "text")
        beam = check_beam(request.beam, entry.model, settings)
        found = await entry.worker.translate(texts, beam, settings.timeout_s)
        return {
            "model": entry.model.id,
            "beam": beam,
            "translations": [t.translation for t in found],
            "tokens": [t.tokens for t in found],
            "unknown": [t.unknown for t in found],
            "scores": [round(t.score, 5) for t in found],
        }

    @app.post("/translator/translate")
    async def translate_opennmt(request: list[OpenNMTSentence]):
        """OpenNMT-py's request and answer shape (``onmt_server``)."""
        try:
            return [await _opennmt(registry, request)]
        except ApiError as error:  # answered in its shape too
            body = {"error": str(error), "status": "error", "field": error.field}
            return JSONResponse(body, status_code=error.status)

    @app.post("/attention")
    async def attention(request: SentenceRequest) -> dict:
        """Greedy translation with the attention weights (rows: target steps)."""
        entry = registry.entry(request.model)
        check_sentences([request.text], entry.model, settings, "text")
        if not entry.model.has_attention:
            raise ApiError(422, f"model {entry.model.id} has no attention", "model")
        found = await entry.worker.run(
            lambda model: model.attention(request.text), settings.timeout_s
        )
        return {"model": entry.model.id} | found

    @app.post("/states")
    async def states(request: StatesRequest) -> dict:
        """The encoder's state of each word in this sentence: the words whose
        mean training state is nearest it, the word's static neighbours and
        its self-similarity over the training data."""
        entry = registry.entry(request.model)
        check_sentences([request.text], entry.model, settings, "text")
        k = check_k(request.k, settings)
        n = settings.states_sentences
        found = await entry.worker.run(
            lambda model: model.states(request.text, k, n), settings.timeout_s
        )
        return {"model": entry.model.id} | found


async def _opennmt(registry: Registry, request: list[OpenNMTSentence]) -> list:
    settings = registry.settings
    ids = list(registry.entries)
    groups: dict[str, list[int]] = {}
    for n, sentence in enumerate(request):
        model_id = sentence.id
        if isinstance(model_id, int):
            if not 0 <= model_id < len(ids):
                raise ApiError(404, f"no model number {model_id}", f"[{n}].id")
            model_id = ids[model_id]
        registry.entry(model_id, f"[{n}].id")
        groups.setdefault(model_id, []).append(n)
    if len(request) > settings.max_sentences:
        raise ApiError(
            422,
            f"{len(request)} sentences, more than serve.max_sentences "
            f"({settings.max_sentences})",
            "body",
        )
    answers: list[dict] = [{} for _ in request]
    for model_id, rows in groups.items():
        entry = registry.entry(model_id)
        texts = [request[n].src for n in rows]
        check_sentences(texts, entry.model, settings, "src", rows)
        beam = check_beam(None, entry.model, settings)
        found = await entry.worker.translate(texts, beam, settings.timeout_s)
        for n, result in zip(rows, found):
            answers[n] = {
                "src": request[n].src,
                "tgt": result.translation,
                "n_best": 1,
                "pred_score": round(result.score, 5),
            }
    return answers


def check_sentences(texts, model, settings, name, rows=None) -> None:
    if not texts:
        raise ApiError(422, "no sentences", name)
    if len(texts) > settings.max_sentences:
        raise ApiError(
            422,
            f"{len(texts)} sentences, more than serve.max_sentences "
            f"({settings.max_sentences})",
            name,
        )
    limit = model.config.data.max_chars
    for n, text in enumerate(texts):
        if len(text) > limit:
            where = f"[{rows[n]}].{name}" if rows else f"{name}[{n}]"
            if rows is None and len(texts) == 1:
                where = name
            raise ApiError(
                422,
                f"{len(text)} characters, more than data.max_chars ({limit}) "
                f"of model {model.id}",
                where,
            )


def check_beam(beam: int | None, model: ServedModel, settings: ServeSettings) -> int:
    beam = model.config.decode.beam_size if beam is None else beam
    if not 1 <= beam <= settings.max_beam:
        raise ApiError(
            422, f"beam must be in 1..{settings.max_beam}, got {beam}", "beam"
        )
    return beam


def check_k(k: int, settings: ServeSettings) -> int:
    if not 1 <= k <= settings.max_k:
        raise ApiError(422, f"k must be in 1..{settings.max_k}, got {k}", "k")
    return k


# ---------------------------------------------------------------- embeddings


def add_embedding_routes(app: FastAPI, registry: Registry) -> None:
    settings = registry.settings

    @app.get("/neighbours")
    async def neighbours(
        word: str,
        side: Side = "src",
        k: int = 10,
        model: str | None = None,
    ) -> dict:
        """A word's nearest words: cosine now and before training, the chance
        cosine at each rank, and how stable each neighbour is."""
        entry = registry.entry(model)
        k = check_k(k, settings)
        return await registry.analyse(explore.neighbours, entry.spaces, side, word, k)

    @app.post("/similarity")
    async def similarity(request: SimilarityRequest) -> dict:
        """Cosine of word pairs, before and after training, with p_random."""
        entry = registry.entry(request.model)
        if len(request.pairs) > settings.max_sentences:
            raise ApiError(422, "too many pairs (serve.max_sentences)", "pairs")
        pairs = [list(p) for p in request.pairs]
        return await registry.analyse(
            explore.similarity, entry.spaces, request.side, pairs
        )

    @app.post("/analogy")
    async def analogy(request: AnalogyRequest) -> dict:
        """gensim's most_similar(positive=..., negative=...)."""
        entry = registry.entry(request.model)
        if not request.positive and not request.negative:
            raise ApiError(422, "give positive or negative words", "positive")
        k = check_k(request.k, settings)
        return await registry.analyse(
            explore.analogy,
            entry.spaces,
            request.side,
            request.positive,
            request.negative,
            k,
        )

    @app.get("/map")
    async def embedding_map(
        side: Side = "src", method: Method = "tsne", model: str | None = None
    ) -> dict:
        """2-D positions of a side's most frequent words and their nearest
        neighbours (computed once per model, side and method)."""
        entry = registry.entry(model)
        key = ("map", entry.model.id, side, method)
        return await registry.picture(
            key,
            pictures.embedding_map,
            entry.model,
            side,
            settings.map_words,
            method,
        )

    @app.get("/compare")
    async def compare(
        model: str | None = None,
        other: str | None = Query(
            None, description="a second model; none: the first before training"
        ),
        side: Side = "src",
        method: Method = "tsne",
    ) -> dict:
        """The same words in two spaces: which moved most, whose neighbours
        changed."""
        first = registry.entry(model)
        second = registry.entry(other, "other") if other is not None else None
        if second is None and side not in first.model.initial:
            raise ApiError(
                422, f"model {first.model.id} kept no initial {side} table", "side"
            )
        key = ("compare", first.model.id, other, side, method)
        return await registry.picture(
            key,
            pictures.compare,
            first.model,
            second.model if second else None,
            side,
            settings.compare_words,
            method,
        )
