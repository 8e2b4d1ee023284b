"""The real server in a subprocess on a free loopback port, talked to over
real HTTP (httpx); fixtures for the runs it serves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from seqembed.nmt.checkpoint import load_checkpoint, save_checkpoint
from seqembed.nmt.model import Seq2Seq

httpx = pytest.importorskip("httpx", reason="httpx not installed (.[test])")
pytest.importorskip("fastapi", reason="fastapi not installed (.[test])")

# `seqembed serve` once the command is wired into cli/main.py; until then
# the module runs the same command on its own.
SERVE = [sys.executable, "-m", "seqembed", "serve"]


class Server:
    """``seqembed serve ARGS --port 0``: waits for "serving on URL"; every
    stderr line is kept in ``lines``."""

    def __init__(self, *args, timeout: float = 180):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
        command = [*SERVE, *map(str, args)]
        if "--port" not in args:
            command += ["--port", "0"]
        self.process = subprocess.Popen(
            command, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        self.lines: list[str] = []
        self.url = None
        ready = threading.Event()

        def read():
            for line in self.process.stderr:
                self.lines.append(line.rstrip("\n"))
                if line.startswith("serving on "):
                    self.url = line.split()[2]
                    ready.set()
            ready.set()  # the process ended

        threading.Thread(target=read, daemon=True).start()
        ready.wait(timeout)
        if self.url is None:
            self.stop()
            raise AssertionError("server did not start:\n" + "\n".join(self.lines))
        self.client = httpx.Client(base_url=self.url, timeout=120)

    def stop(self, sig=signal.SIGTERM, timeout: float = 120) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()

    def get(self, path, **params):
        return self.client.get(path, params=params)

    def post(self, path, body):
        return self.client.post(path, json=body)


def run_to_end(*args, timeout: float = 180) -> subprocess.CompletedProcess:
    """A serve command expected to stop by itself (a start-up error)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.run(
        [*SERVE, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def wait_until(condition, timeout: float = 60, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not met in time")


@pytest.fixture(scope="session")
def rotated_run(builtin_run, tmp_path_factory) -> tuple[Path, np.ndarray]:
    """A copy of the built-in run whose embedding tables are turned by one
    random orthogonal matrix: the same geometry in other coordinates."""
    state = load_checkpoint(builtin_run)
    dim = state["model"][Seq2Seq.EMBEDDING_WEIGHTS["src"]].shape[1]
    q, _ = np.linalg.qr(np.random.default_rng(7).standard_normal((dim, dim)))
    rotation = torch.from_numpy(q.astype(np.float32))
    for kind in ("src", "tgt"):
        name = Seq2Seq.EMBEDDING_WEIGHTS[kind]
        state["model"][name] = state["model"][name] @ rotation
    state = {k: v for k, v in state.items() if k not in ("format", "version")}
    run = tmp_path_factory.mktemp("rotated") / "rotated"
    save_checkpoint(state, run / "best.pt")
    return run, q


@pytest.fixture(scope="module")
def server(builtin_run, rotated_run):
    """The built-in run and its rotated copy, default settings."""
    started = Server(builtin_run, rotated_run[0])
    yield started
    assert started.stop() == 0, "\n".join(started.lines)
