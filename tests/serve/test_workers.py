"""Each model runs in a process of its own: a full queue is refused at once
(503, Retry-After), batches gathered under a backlog are decoded sorted by
length and still answer each request in its own order, and a model process
that dies makes the server say so instead of hanging."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import time
from pathlib import Path

import httpx
from conftest import Server, wait_until
from test_limits import LONG_JOB, assert_error

from seqembed.nmt.evaluation import Translator


def model_processes(server) -> list[int]:
    """The server's model processes (spawned by multiprocessing; its
    resource tracker, the other child, is left out)."""
    found = []
    for task in Path(f"/proc/{server.process.pid}/task").iterdir():
        for pid in (task / "children").read_text().split():
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"spawn_main" in command:
                found.append(int(pid))
    return found


def queued(server) -> int:
    (worker,) = server.get("/health").json()["workers"].values()
    return worker["queued"]


def test_a_request_beyond_max_queue_is_refused_at_once(builtin_run):
    server = Server(
        builtin_run,
        *("--set", "serve.max_batch=1", "--set", "serve.max_queue=300"),
    )
    try:
        with httpx.Client(base_url=server.url, timeout=120) as other:
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                long_job = pool.submit(other.post, "/translate", json=LONG_JOB)
                wait_until(lambda: queued(server) >= 1)
                started = time.monotonic()
                refused = server.post("/translate", {"text": ["你好"] * 100})
                took = time.monotonic() - started
                assert_error(refused, 503, None, "busy", "serve.max_queue is 300")
                assert refused.headers["retry-after"] == "1"
                assert took < 2.0  # refused, not queued until the timeout
                # What fits is still taken: 256 + 44 sentences = 300.
                fits = server.post("/translate", {"text": ["你好"] * 44})
                accepted = long_job.result()
        # Neither the accepted job nor the one that fitted lost anything.
        assert accepted.status_code == 200
        assert len(accepted.json()["translations"]) == 256
        assert fits.status_code == 200
        assert len(fits.json()["translations"]) == 44
        # Answered: their places in the queue are free again.
        again = server.post("/translate", {"text": ["你好"] * 100})
        assert again.status_code == 200
    finally:
        assert server.stop() == 0, "\n".join(server.lines)


def test_a_backlog_is_decoded_in_sorted_batches_each_request_its_answers(
    builtin_run,
):
    server = Server(
        builtin_run,
        *("--set", "serve.max_batch=2", "--set", "serve.max_wait_ms=1500"),
    )
    requests = [
        ["今天天气很好，我们一起去学习中文吧"],
        ["你好"],
        ["我喜欢学习中文。", "老师"],
        ["他们在北京工作", "妈妈做的晚饭很好吃"],
        ["明天会下雨吗"],
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
    translator = Translator.from_checkpoint(builtin_run)
    for texts, answer in zip(requests, answers):
        assert answer.status_code == 200
        assert answer.json()["translations"] == translator.translate(texts)
    (name,) = after
    sentences = sum(map(len, requests))
    assert after[name]["sentences"] - before[name]["sentences"] == sentences
    # Batches of at most 2 sentences: 8 sentences make at least 4.
    assert after[name]["batches"] - before[name]["batches"] >= 4
    assert after[name]["largest_batch"] <= 2


def test_a_model_process_that_dies_is_reported_not_waited_for(builtin_run):
    server = Server(builtin_run)
    try:
        assert server.post("/translate", {"text": "你好"}).status_code == 200
        (child,) = model_processes(server)
        os.kill(child, signal.SIGKILL)

        def degraded():
            return server.get("/health").json()["status"] == "degraded"

        wait_until(degraded, 30)
        started = time.monotonic()
        answer = server.post("/translate", {"text": "你好"})
        assert_error(answer, 500, None, "its process has ended")
        assert time.monotonic() - started < 5
        assert server.get("/models").status_code == 200  # tables still served
    finally:
        assert server.stop() == 0, "\n".join(server.lines)
    assert not any("Traceback" in line for line in server.lines)
