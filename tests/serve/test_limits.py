"""Bad requests get JSON answers with the right status and the field to
blame, never a 500 or a traceback; a model that takes too long gets 503
while its worker goes on serving."""

from __future__ import annotations

import concurrent.futures
import socket

import pytest
from conftest import Server, wait_until

from seqembed.nmt.checkpoint import load_checkpoint


def assert_error(answer, status: int, field: str | None = None, *fragments):
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["status"] == status and "Traceback" not in body["error"]
    assert body.get("field") == field
    for fragment in fragments:
        assert fragment in body["error"]


def raw(server, data: bytes, headers: dict):
    return server.client.post("/translate", content=data, headers=headers)


def test_invalid_json_is_400(server):
    answer = raw(server, b'{"text": ', {"content-type": "application/json"})
    assert_error(answer, 400, None, "not valid JSON")


def test_a_body_over_max_body_is_413_with_or_without_its_length(server):
    big = b'{"text": "' + b"a" * 1_000_001 + b'"}'
    assert_error(raw(server, big, {"content-type": "application/json"}), 413)

    def chunks():  # no Content-Length: the server counts what arrives
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    answer = server.client.post(
        "/translate", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in answer.request.headers
    assert_error(answer, 413, None, "serve.max_body")


def test_too_many_sentences_or_too_long_a_sentence_is_422(server, builtin_run):
    assert_error(
        server.post("/translate", {"text": ["好"] * 257}),
        422,
        "text",
        "serve.max_sentences",
    )
    limit = load_checkpoint(builtin_run)["config"]["data"]["max_chars"]
    answer = server.post("/translate", {"text": ["好", "好" * (limit + 1)]})
    assert_error(answer, 422, "text[1]", "data.max_chars")
    answer = server.post("/attention", {"text": "好" * (limit + 1)})
    assert_error(answer, 422, "text", "data.max_chars")


def test_a_beam_outside_its_range_is_422(server):
    for beam in (0, 11, -1):
        assert_error(
            server.post("/translate", {"text": "你好", "beam": beam}), 422, "beam"
        )


def test_unknown_models_routes_and_words_are_404(server):
    assert_error(
        server.post("/translate", {"text": "你好", "model": "nope"}), 404, "model"
    )
    # Model ids are looked up, never joined to a path.
    assert_error(
        server.get("/neighbours", word="好", model="../../etc/passwd"), 404, "model"
    )
    assert_error(server.get("/no/such/route"), 404, None, "no such route")
    assert_error(server.get("/static/../pyproject.toml"), 404)
    assert_error(
        server.get("/neighbours", word="不在词表里"), 404, "word", "不在词表里"
    )
    answer = server.post("/similarity", {"pairs": [["好", "不在词表里"]]})
    assert_error(answer, 404, "pairs[0][1]")


def test_fields_of_the_wrong_shape_are_422_naming_them(server):
    assert_error(server.post("/translate", {"txt": "你好"}), 422, "text", "required")
    answer = server.post("/translate", {"text": "你好", "bean": 5})
    assert_error(answer, 422, "bean", "unknown field")
    assert_error(server.post("/translate", {"text": 5}), 422, "text")
    assert_error(server.post("/translate", [1, 2]), 422, "body")
    assert_error(server.get("/neighbours", word="好", k=0), 422, "k")
    assert_error(server.get("/neighbours", word="好", side="both"), 422, "side")
    assert_error(server.get("/translate"), 405, None, "method not allowed")


@pytest.fixture(scope="module")
def slow_server(builtin_run):
    # One sentence per batch: each long sentence then costs its encoder's
    # 340 steps however soon the model ends its translation, so a job of 256
    # takes seconds on any CPU (batched, a model that stops at once can
    # answer within 0.5 s on a fast one).
    started = Server(
        builtin_run, "--set", "serve.timeout_s=0.5", "--set", "serve.max_batch=1"
    )
    yield started
    assert started.stop() == 0, "\n".join(started.lines)


# Sentences that take the built-in model seconds to decode, one at a time.
LONG_JOB = {"text": ["今天天气很好，我们一起去学习中文。" * 20] * 256, "beam": 10}


def busy(server) -> bool:
    (worker,) = server.get("/health").json()["workers"].values()
    return worker["batches"] >= 1


def test_a_request_waiting_too_long_is_503_and_the_worker_goes_on(slow_server):
    with concurrent.futures.ThreadPoolExecutor(7) as pool:
        slow = [pool.submit(slow_server.post, "/translate", LONG_JOB) for _ in range(6)]
        # The long jobs are decoding or queued: the next one waits behind them.
        wait_until(lambda: busy(slow_server))
        queued = pool.submit(slow_server.post, "/translate", {"text": "你好"})
        assert_error(queued.result(), 503, None, "did not answer within 0.5 s")
        for job in slow:
            assert_error(job.result(), 503)

    def answered():
        answer = slow_server.post("/translate", {"text": "你好"})
        return answer if answer.status_code == 200 else None

    assert wait_until(answered, timeout=300, every=0.5).json()["translations"]
    assert slow_server.get("/health").json()["status"] == "ok"


def test_the_port_is_bound_before_the_models_load(builtin_run):
    from conftest import run_to_end

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_to_end(builtin_run, "--port", port)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"seqembed: error: cannot listen on 127.0.0.1:{port}: the port is in use"
    ]
