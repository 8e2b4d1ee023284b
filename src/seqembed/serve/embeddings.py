"""The routes over a model's embedding tables: neighbours, similarity,
analogy, the map and the compare view. They run on the analysis threads
(``Registry.analyse``), never on a model's worker; the map and the compare
view are computed once per key (``Registry.picture``).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query

from seqembed.serve import compare as pictures
from seqembed.serve import explore
from seqembed.serve.http import ApiError
from seqembed.serve.registry import Served
from seqembed.serve.schemas import AnalogyRequest, SimilarityRequest
from seqembed.serve.translation import check_k

Side = Literal["src", "tgt"]
Method = Literal["tsne", "pca"]
router = APIRouter()


@router.get("/neighbours")
async def neighbours(
    served: Served,
    word: str,
    side: Side = "src",
    k: int = 10,
    model: str | None = None,
) -> dict:
    """A word's nearest words: cosine now and before training, the chance
    cosine at each rank, and how stable each neighbour is."""
    entry = served.entry(model)
    k = check_k(k, served.settings)
    return await served.analyse(explore.neighbours, entry.spaces, side, word, k)


@router.post("/similarity")
async def similarity(body: SimilarityRequest, served: Served) -> dict:
    """Cosine of word pairs, before and after training, with p_random."""
    entry = served.entry(body.model)
    if len(body.pairs) > served.settings.max_sentences:
        raise ApiError(422, "too many pairs (serve.max_sentences)", "pairs")
    pairs = [list(p) for p in body.pairs]
    return await served.analyse(explore.similarity, entry.spaces, body.side, pairs)


@router.post("/analogy")
async def analogy(body: AnalogyRequest, served: Served) -> dict:
    """gensim's most_similar(positive=..., negative=...)."""
    entry = served.entry(body.model)
    if not body.positive and not body.negative:
        raise ApiError(422, "give positive or negative words", "positive")
    k = check_k(body.k, served.settings)
    return await served.analyse(
        explore.analogy, entry.spaces, body.side, body.positive, body.negative, k
    )


@router.get("/map")
async def embedding_map(
    served: Served,
    side: Side = "src",
    method: Method = "tsne",
    model: str | None = None,
) -> dict:
    """2-D positions of a side's most frequent words and their nearest
    neighbours (computed once per model, side and method)."""
    entry = served.entry(model)
    key = ("map", entry.model.id, side, method)
    words = served.settings.map_words
    return await served.picture(
        key, pictures.embedding_map, entry.model, side, words, method
    )


@router.get("/compare")
async def compare(
    served: Served,
    model: str | None = None,
    other: str | None = Query(
        None, description="a second model; none: the first before training"
    ),
    side: Side = "src",
    method: Method = "tsne",
) -> dict:
    """The same words in two spaces: which moved most, whose neighbours
    changed."""
    first = served.entry(model)
    second = served.entry(other, "other").model if other is not None else None
    if second is None and side not in first.model.initial:
        raise ApiError(
            422, f"model {first.model.id} kept no initial {side} table", "side"
        )
    key = ("compare", first.model.id, other, side, method)
    words = served.settings.compare_words
    return await served.picture(
        key, pictures.compare, first.model, second, side, words, method
    )
