"""The server's settings: one frozen dataclass, each value's range beside it.

They come from ``--set serve.KEY=VALUE`` on the command line (the run's own
config stays as it was trained: ``data.max_chars`` limits the length of a
sentence, ``decode`` the decoding). A misspelled key or a value out of range
is an ``InputError`` that names the key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import yaml

from seqembed.errors import InputError


def _range(default, low, high, meaning: str):
    return field(default=default, metadata={"range": (low, high), "help": meaning})


@dataclass(frozen=True)
class ServeSettings:
    # A worker decodes at most this many sentences at once, gathered from
    # the requests waiting for its model (micro-batching); offline decoding's
    # default batch (decode.batch_size) too.
    max_batch: int = _range(256, 1, 4096, "sentences per decoding batch")
    # How long a worker waits for more requests before decoding a batch that
    # is not full: a little latency when idle buys throughput under load.
    max_wait_ms: float = _range(5.0, 0.0, 10_000.0, "wait to fill a batch")
    # Under a backlog a worker takes up to this many waiting sentences at
    # once and decodes them sorted by length, max_batch at a time.
    max_gather: int = _range(1024, 1, 1_000_000, "sentences sorted together")
    # More sentences than this waiting for a model: a new request gets 503
    # at once instead of a place in a queue it would time out in.
    max_queue: int = _range(4096, 1, 10_000_000, "sentences waiting per model")
    max_body: int = _range(1_000_000, 64, 1_000_000_000, "request body bytes")
    max_sentences: int = _range(256, 1, 100_000, "sentences per request")
    # A request not answered in this time gets 503; the worker keeps going.
    timeout_s: float = _range(30.0, 0.001, 86_400.0, "answer within seconds")
    max_beam: int = _range(10, 1, 256, "largest beam size a request may ask for")
    max_k: int = _range(100, 1, 10_000, "most neighbours a request may ask for")
    # /map places this many of a side's most frequent words (t-SNE).
    map_words: int = _range(2000, 2, 100_000, "words on the embedding map")
    compare_words: int = _range(500, 2, 100_000, "words in the compare view")
    # Shutdown waits this long for the requests in flight to finish.
    graceful_s: float = _range(30.0, 0.0, 3600.0, "seconds to finish on stop")
    # Sentences of the training split encoded once for /states (the
    # self-similarity figures and the contextual neighbours).
    states_sentences: int = _range(5000, 1, 10_000_000, "sentences for /states")

    def __post_init__(self):
        for item in dataclasses.fields(self):
            low, high = item.metadata["range"]
            value = getattr(self, item.name)
            if not low <= value <= high:
                raise InputError(
                    f"serve.{item.name} must be in {low:g}..{high:g}, got {value:g}"
                )


def serve_settings(overrides: list[str] = ()) -> ServeSettings:
    """Defaults <- ``serve.KEY=VALUE`` overrides (values read as YAML)."""
    known = {item.name: item for item in dataclasses.fields(ServeSettings)}
    values = {}
    for text in overrides:
        dotted, _, raw = text.partition("=")
        section, _, key = dotted.strip().partition(".")
        if not _ or section != "serve":
            raise InputError(f"--set expects serve.KEY=VALUE, got {text!r}")
        if key not in known:
            raise InputError(
                f"--set {text}: unknown key 'serve.{key}' (known: {', '.join(known)})"
            )
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        whole = known[key].type in ("int", int)
        ok = isinstance(value, int if whole else (int, float))
        if not ok or isinstance(value, bool):
            kind = "an integer" if whole else "a number"
            raise InputError(f"serve.{key} must be {kind}, got {raw!r}")
        value = value if whole else float(value)
        values[key] = value
    return ServeSettings(**values)
