"""Serving: throughput and latency of `seqembed serve` under an open-model
load, beside offline batch decoding of the same model in the same run.

    python bench/serve.py RUN [--duration 30] [--fractions 0.25,0.5,0.7,0.8,0.9,1,1.5]
                              [--max-requests 20000] [--set serve.KEY=VALUE]

1. Offline: RUN's test sentences (RUN/data/test.tsv) translated greedily in
   one call (Translator.translate, decode.batch_size a batch): sentences/s.
2. The server on a free loopback port (`python -m seqembed serve`),
   warmed up for --warmup seconds (30) at the offline rate; its resident
   memory (RSS) is read then.
3. For each rate (the fractions times the offline rate): requests of one
   test sentence each, arriving as a Poisson process (exponential gaps from
   a fixed seed, sent at their time whatever is still unanswered: an open
   model, so slow answers cannot slow the arrivals and hide themselves), for
   at most --duration seconds and --max-requests requests, then every answer
   is awaited (bounded by serve.timeout_s + 30 s). Latency counts from the
   scheduled arrival. Throughput: answered sentences / (last answer - first
   arrival).
4. Saturation: the best throughput of a rate answered without an error
   (past it the server refuses what it cannot take: 503 once
   serve.max_queue sentences are waiting). Then one more rate at half of
   it, for the latency target (p99 under 1 s there).
5. The server's RSS (with its model processes) at the end against after
   the warm-up; it is stopped with SIGTERM and must exit 0.

The client is a small HTTP/1.1 client on asyncio streams over keep-alive
connections, so that on a 2-core machine it takes as little of the CPU the
server needs as it can; its CPU time is printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from seqembed.nmt.cpu.openmp import choose_wait_policy

WAIT_POLICY = choose_wait_policy()  # before torch loads OpenMP; the server inherits it

from seqembed.data.prepare import read_splits  # noqa: E402
from seqembed.nmt.evaluation import Translator  # noqa: E402

SEED = 1


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def offline_rate(run: Path, sentences: list[str]) -> float:
    translator = Translator.from_checkpoint(run)
    translator.translate(sentences[:64], beam_size=1)  # warm-up
    started = time.perf_counter()
    translator.translate(sentences, beam_size=1)
    return len(sentences) / (time.perf_counter() - started)


# ------------------------------------------------------------------ server


class ServerProcess:
    def __init__(self, run: Path, settings: list[str]):
        command = [sys.executable, "-m", "seqembed", "serve", str(run), "--port", "0"]
        for setting in settings:
            command += ["--set", setting]
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        ready, self.address = threading.Event(), None

        def read():
            for line in self.process.stderr:
                self.lines.append(line.rstrip())
                if line.startswith("serving on http://"):
                    host, port = line.split()[2][len("http://") :].rsplit(":", 1)
                    self.address = (host, int(port))
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        ready.wait(600)
        if self.address is None:
            self.process.kill()
            sys.exit("server did not start:\n" + "\n".join(self.lines))

    def rss_mb(self) -> float:
        """Resident memory of the server and its model processes."""
        return sum(_rss_mb(pid) for pid in [self.process.pid, *self.children()])

    def children(self) -> list[int]:
        found = []
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():
            try:
                found += [int(p) for p in (task / "children").read_text().split()]
            except OSError:
                pass
        return found

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(300)


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


# ------------------------------------------------------------------ client


class Connections:
    """Keep-alive HTTP/1.1 connections to one address, opened as needed."""

    def __init__(self, address: tuple[str, int]):
        self.address = address
        self.idle: list = []

    async def post(self, path: str, body: dict) -> tuple[int, dict]:
        payload = json.dumps(body, ensure_ascii=False).encode()
        request = (
            f"POST {path} HTTP/1.1\r\nHost: {self.address[0]}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        if self.idle:
            try:  # the server may have closed an idle connection: then anew
                return await self._exchange(self.idle.pop(), request)
            except (OSError, asyncio.IncompleteReadError):
                pass
        return await self._exchange(await self._open(), request)

    async def _exchange(self, connection, request: bytes) -> tuple[int, dict]:
        reader, writer = connection
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {
            name.lower(): value
            for name, _, value in (line.partition(": ") for line in lines[1:])
        }
        data = await reader.readexactly(int(headers.get("content-length", 0)))
        if headers.get("connection", "").lower() == "close":
            writer.close()
        else:
            self.idle.append(connection)
        return status, json.loads(data) if data else {}

    async def _open(self):
        return await asyncio.open_connection(*self.address)

    def close(self):
        for _, writer in self.idle:
            writer.close()


async def one_rate(address, sentences, rate, duration, max_requests, timeout):
    """Poisson arrivals at ``rate`` per second; (latencies, errors, span)."""
    connections = Connections(address)
    rng = random.Random(SEED)
    n = min(max_requests, max(1, int(rate * duration)))
    gaps = [rng.expovariate(rate) for _ in range(n)]
    latencies: list[float] = []
    errors: dict[str, int] = {}
    done_at: list[float] = []

    async def request(i: int, scheduled: float):
        try:
            status, body = await connections.post(
                "/translate", {"text": sentences[i % len(sentences)]}
            )
        except (OSError, asyncio.IncompleteReadError, ValueError) as error:
            status, body = -1, {"error": type(error).__name__}
        finished = time.perf_counter()
        if status == 200 and len(body.get("translations", [])) == 1:
            latencies.append(finished - scheduled)
            done_at.append(finished)
        else:
            key = f"{status} {body.get('error', '')[:60]}"
            errors[key] = errors.get(key, 0) + 1

    start = time.perf_counter()
    tasks, when = [], start
    for i, gap in enumerate(gaps):
        when += gap
        delay = when - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(request(i, when)))
        if time.perf_counter() - start > duration:
            break
    finished, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    if pending:
        errors["no answer in time"] = len(pending)
    connections.close()
    span = (max(done_at) - start) if done_at else float("nan")
    return latencies, errors, span, len(tasks)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def measure(address, sentences, rate, args) -> dict:
    latencies, errors, span, sent = asyncio.run(
        one_rate(address, sentences, rate, args.duration, args.max_requests, 90)
    )
    row = {
        "offered": rate,
        "requests": sent,
        "answered": len(latencies),
        "throughput": len(latencies) / span if latencies else 0.0,
        "p50_ms": 1000 * percentile(latencies, 50),
        "p95_ms": 1000 * percentile(latencies, 95),
        "p99_ms": 1000 * percentile(latencies, 99),
        "errors": sum(errors.values()),
        "error_kinds": errors,
    }
    print(
        f"{rate:8.1f} {sent:7d} {row['throughput']:10.1f} {row['p50_ms']:8.0f} "
        f"{row['p95_ms']:8.0f} {row['p99_ms']:8.0f} {row['errors']:6d}",
        flush=True,
    )
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--fractions", default="0.25,0.5,0.7,0.8,0.9,1,1.5")
    parser.add_argument("--max-requests", type=int, default=20000)
    parser.add_argument(
        "--warmup", type=float, default=30.0, help="seconds at the offline rate"
    )
    parser.add_argument("--set", action="append", default=[], dest="settings")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    args.duration = min(args.duration, 30.0)  # each rate at most 30 s

    sentences = [p.src for p in read_splits(args.run, ("test",))["test"]]
    if not sentences:
        sys.exit(f"{args.run}: no data/test.tsv to take sentences from")
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; {WAIT_POLICY}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    offline = offline_rate(args.run, sentences)
    print(f"offline greedy decoding: {offline:.1f} sentences/s "
          f"({len(sentences)} test sentences, one call)")  # fmt: skip

    server = ServerProcess(args.run, args.settings)
    # Warm-up: --warmup seconds at the offline rate, so batches of many sizes
    # have been decoded before the memory is read (each new batch shape adds
    # a oneDNN kernel to its cache, up to 1,024 of them: docs/serve.md).
    asyncio.run(one_rate(server.address, sentences, offline, args.warmup, 10**6, 120))
    rss_warm = server.rss_mb()
    print(f"server RSS after warm-up: {rss_warm:.0f} MB")
    print(f"{'offered':>8} {'sent':>7} {'sent/s':>10} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'p99 ms':>8} {'errors':>6}")  # fmt: skip
    rows = []
    for fraction in (float(f) for f in args.fractions.split(",")):
        rows.append(measure(server.address, sentences, fraction * offline, args))
    # Saturation: the best rate answered in full. Past it the server sheds
    # what it cannot take (503 once serve.max_queue sentences wait).
    clean = [r for r in rows if r["errors"] == 0] or rows
    saturation = max(clean, key=lambda r: r["throughput"])
    half = measure(server.address, sentences, saturation["throughput"] / 2, args)
    rss_end = server.rss_mb()
    status = server.stop()
    client_cpu = resource.getrusage(resource.RUSAGE_SELF)
    ratio = saturation["throughput"] / offline
    print(f"saturation: {saturation['throughput']:.1f} sentences/s = {ratio:.0%} of "
          f"offline greedy ({saturation['errors']} errors)")  # fmt: skip
    print(f"half that rate ({half['offered']:.1f}/s): p99 {half['p99_ms']:.0f} ms, "
          f"{half['errors']} errors")  # fmt: skip
    change = (rss_end - rss_warm) / rss_warm
    print(f"server RSS: {rss_warm:.0f} MB after warm-up, {rss_end:.0f} MB at the end "
          f"({change:+.1%}); exit status {status} after SIGTERM")  # fmt: skip
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    cpu_s = client_cpu.ru_utime + client_cpu.ru_stime
    print(f"client CPU: {cpu_s:.1f} s; load average at end: {load}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "cpu": cpu_name(),
                    "offline": offline,
                    "rates": rows,
                    "half": half,
                    "ratio": ratio,
                    "rss_warm_mb": rss_warm,
                    "rss_end_mb": rss_end,
                    "exit_status": status,
                },
                indent=2,
            )
        )
    return 0 if status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
