"""The routes that run a model: translate (ours and OpenNMT-py's shape),
attention, encoder states; and health and the list of models.

Each checks its request (limits, model, beam), hands the work to the model's
worker and awaits the answer within serve.timeout_s.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from seqembed.serve.http import ApiError
from seqembed.serve.models import ServedModel
from seqembed.serve.registry import Registry, Served
from seqembed.serve.schemas import (
    OpenNMTSentence,
    SentenceRequest,
    StatesRequest,
    TranslateRequest,
)
from seqembed.serve.settings import ServeSettings

router = APIRouter()


@router.get("/health")
async def health(served: Served) -> dict:
    """ok, and each loaded model's worker and its batches so far."""
    workers = {
        model_id: {"alive": e.worker.alive, "queued": e.worker.queued()}
        | e.worker.stats
        for model_id, e in served.entries.items()
    }
    ok = all(w["alive"] for w in workers.values())
    status = "ok" if ok else "degraded"
    return {"status": status, "models": list(workers), "workers": workers}


@router.get("/models")
async def models(served: Served) -> dict:
    """Each model: id, languages, vocabulary sizes, attention, BLEU."""
    return {"models": [e.model.info() for e in served.entries.values()]}


@router.post("/translate")
async def translate(body: TranslateRequest, served: Served) -> dict:
    """Translate one sentence or a list; answers are in input order."""
    settings, entry = served.settings, served.entry(body.model)
    texts = [body.text] if isinstance(body.text, str) else body.text
    check_sentences(texts, entry.model, settings, "text")
    beam = check_beam(body.beam, entry.model, settings)
    found = await entry.worker.translate(texts, beam, settings.timeout_s)
    return {
        "model": entry.model.id,
        "beam": beam,
        "translations": [t.translation for t in found],
        "tokens": [t.tokens for t in found],
        "unknown": [t.unknown for t in found],
        "scores": [round(t.score, 5) for t in found],
    }


@router.post("/translator/translate")
async def translate_opennmt(body: list[OpenNMTSentence], served: Served):
    """OpenNMT-py's request and answer shape (``onmt_server``)."""
    try:
        return [await _opennmt(served, body)]
    except ApiError as error:  # answered in its shape too
        answer = {"error": str(error), "status": "error", "field": error.field}
        return JSONResponse(answer, status_code=error.status)


@router.post("/attention")
async def attention(body: SentenceRequest, served: Served) -> dict:
    """Greedy translation with the attention weights (rows: target steps)."""
    settings, entry = served.settings, served.entry(body.model)
    check_sentences([body.text], entry.model, settings, "text")
    if not entry.model.has_attention:
        raise ApiError(422, f"model {entry.model.id} has no attention", "model")
    found = await entry.worker.run("attention", (body.text,), settings.timeout_s)
    return {"model": entry.model.id} | found


@router.post("/states")
async def states(body: StatesRequest, served: Served) -> dict:
    """The encoder's state of each word in this sentence: the words whose
    mean training state is nearest it, the word's static neighbours and its
    self-similarity over the training data."""
    settings, entry = served.settings, served.entry(body.model)
    check_sentences([body.text], entry.model, settings, "text")
    k = check_k(body.k, settings)
    n = settings.states_sentences
    found = await entry.worker.run("states", (body.text, k, n), settings.timeout_s)
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
