"""Request bodies (pydantic): what each POST route accepts, for validation and
for the OpenAPI page at /docs. Unknown fields are refused, so a misspelled
one is a 422 that names it instead of being ignored."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Side = Literal["src", "tgt"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TranslateRequest(Strict):
    text: str | list[str] = Field(
        description="one sentence, or a list of them", examples=["今天天气很好"]
    )
    beam: int | None = Field(None, description="beam size (default: the run's)")
    model: str | None = Field(None, description="model id (default: the first)")


class OpenNMTSentence(BaseModel):
    """OpenNMT-py's shape: ``id`` names the model (an integer: the position
    of the run on the command line, from 0; or a model id)."""

    model_config = ConfigDict(extra="allow")  # its clients send more options
    src: str
    id: int | str = 0


class SentenceRequest(Strict):
    text: str = Field(examples=["今天天气很好"])
    model: str | None = None


class StatesRequest(SentenceRequest):
    k: int = Field(5, description="neighbours per word")


class SimilarityRequest(Strict):
    pairs: list[tuple[str, str]] = Field(examples=[[["天气", "今天"]]])
    side: Side = "src"
    model: str | None = None


class AnalogyRequest(Strict):
    positive: list[str] = Field(default_factory=list, examples=[["国王", "女人"]])
    negative: list[str] = Field(default_factory=list, examples=[["男人"]])
    side: Side = "src"
    k: int = 10
    model: str | None = None
