"""Start-up, shutdown, micro-batching and the security settings of the real
server process."""

from __future__ import annotations

import asyncio
import concurrent.futures
import shutil
import signal
import time

import httpx
import pytest
import torch
from conftest import Server, run_to_end, wait_until
from helpers import assert_clean_error

from seqembed.nmt.checkpoint import load_checkpoint
from seqembed.nmt.evaluation import Translator
from seqembed.serve.server import load_models


def test_an_unreadable_run_is_one_line_at_start_up(tmp_path, builtin_run):
    empty = tmp_path / "empty-run"
    empty.mkdir()
    result = run_to_end(builtin_run, empty, "--port", "0")
    assert_clean_error(result, str(empty), "no checkpoint")
    assert "serving on" not in result.stderr
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "best.pt").write_bytes(b"PK\x03\x04 not a zip")
    result = run_to_end(tmp_path / "broken", "--port", "0")
    assert_clean_error(result, "best.pt", "cannot read checkpoint")


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--device", "cuda"], ["--device cuda: no CUDA device here", "--device cpu"]),
        (["--set", "serve.max_btach=4"], ["unknown key 'serve.max_btach'"]),
        (["--set", "serve.max_batch=0"], ["serve.max_batch must be in 1..4096"]),
        (["--set", "serve.timeout_s=soon"], ["serve.timeout_s must be a number"]),
        (["--port", "70000"], ["--port 70000"]),
    ],
)
def test_bad_settings_are_one_line(builtin_run, args, fragments):
    assert_clean_error(run_to_end(builtin_run, *args), *fragments)


def test_two_runs_with_one_name_are_refused(builtin_run):
    assert_clean_error(run_to_end(builtin_run, builtin_run), "two runs are named")


def slow_request(server) -> httpx.Response:
    text = "今天天气很好，我们一起去学习中文。" * 10
    return server.post("/translate", {"text": [text] * 24, "beam": 5})


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopping_finishes_the_request_in_flight_and_exits_0(builtin_run, sig):
    server = Server(builtin_run)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(slow_request, server)
        wait_until(lambda: server.get("/health").json()["status"] == "ok")
        wait_until(lambda: _decoding(server))
        started = time.monotonic()
        server.process.send_signal(sig)
        answer = in_flight.result(timeout=300)
    assert answer.status_code == 200
    assert len(answer.json()["translations"]) == 24
    assert server.process.wait(300) == 0, "\n".join(server.lines)
    assert time.monotonic() - started < 300
    # Stopped: nothing listens there any more.
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/health", timeout=5)
    assert not any("Traceback" in line for line in server.lines)


def _decoding(server) -> bool:
    (worker,) = server.get("/health").json()["workers"].values()
    return worker["batches"] >= 1


def test_concurrent_requests_share_one_batch_and_keep_their_answers(builtin_run):
    """With a wide gathering window, requests sent together are decoded in
    one batch, and each still gets its own answers in its own order."""
    server = Server(
        builtin_run, "--set", "serve.max_wait_ms=1500", "--set", "serve.max_batch=64"
    )
    translator = Translator.from_checkpoint(builtin_run)
    requests = [
        ["今天天气很好"],
        ["我喜欢学习中文。", "你好"],
        ["机器翻译很有趣"],
        ["他们在北京工作", "妈妈做的晚饭很好吃", "老师"],
        ["明天会下雨吗"],
        ["我们一起去旅行吧"],
    ]

    async def send_all():
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
            calls = [client.post("/translate", json={"text": t}) for t in requests]
            return await asyncio.gather(*calls)

    try:
        before = server.get("/health").json()["workers"]
        answers = asyncio.run(send_all())
        after = server.get("/health").json()["workers"]
    finally:
        assert server.stop() == 0
    (name,) = after
    assert after[name]["batches"] - before[name]["batches"] == 1
    assert after[name]["largest_batch"] == sum(map(len, requests))
    assert after[name]["jobs"] - before[name]["jobs"] == len(requests)
    for texts, answer in zip(requests, answers):
        assert answer.status_code == 200
        assert answer.json()["translations"] == translator.translate(texts)


def test_cors_is_off_unless_asked_for(server, builtin_run):
    origin = {"origin": "http://example.test"}
    answer = server.client.get("/health", headers=origin)
    assert "access-control-allow-origin" not in answer.headers
    allowed = Server(builtin_run, "--cors", "http://example.test")
    try:
        answer = allowed.client.get("/health", headers=origin)
        assert answer.headers["access-control-allow-origin"] == "http://example.test"
        other = allowed.client.get("/health", headers={"origin": "http://evil.test"})
        assert "access-control-allow-origin" not in other.headers
    finally:
        assert allowed.stop() == 0


def test_another_address_than_loopback_is_warned_about(server, builtin_run):
    wide = Server(builtin_run, "--host", "0.0.0.0")
    try:
        assert wide.url.startswith("http://0.0.0.0:")
        warnings = [line for line in wide.lines if "reachable from other" in line]
        assert len(warnings) == 1
        port = wide.url.rsplit(":", 1)[1]
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=30)
        assert health.json()["status"] == "ok"
    finally:
        assert wide.stop() == 0
    assert not any("reachable" in line for line in server.lines)  # 127.0.0.1


def test_the_page_and_its_assets_come_from_the_server(server):
    page = server.get("/")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert "http" not in page.text.replace("http-equiv", "")  # no outside URL
    assert page.headers["x-content-type-options"] == "nosniff"
    plotly = server.get("/static/plotly.min.js")
    assert plotly.status_code == 200 and b"plotly" in plotly.content[:2000].lower()
    font = server.get("/static/cjk-font.otf")
    assert font.content[:4] == b"OTTO"  # an OpenType font with CFF outlines
    docs = server.get("/docs")
    assert docs.status_code == 200
    assert "/static-offline-docs/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()
    swagger = server.get("/static-offline-docs/swagger-ui-bundle.js")
    assert swagger.status_code == 200
    paths = server.get("/openapi.json").json()["paths"]
    for route in (
        "/health",
        "/models",
        "/translate",
        "/translator/translate",
        "/attention",
        "/states",
        "/neighbours",
        "/similarity",
        "/analogy",
        "/map",
        "/compare",
    ):
        assert route in paths


def test_serve_loads_the_checkpoint_asked_for(builtin_run, tmp_path):
    run = tmp_path / "older-best"
    shutil.copytree(builtin_run, run)
    shutil.copyfile(run / "last-2.pt", run / "best.pt")  # best: 2 epochs before
    weight = "encoder.embedding.weight"
    for which in ("best", "last"):
        (model,) = load_models([run], which)
        served = model.translator.model.state_dict()
        saved = load_checkpoint(run / f"{which}.pt")["model"]
        other = load_checkpoint(run / ("last.pt" if which == "best" else "best.pt"))
        assert torch.equal(served[weight], saved[weight])
        assert not torch.equal(served[weight], other["model"][weight])
