"""Start-up and shutdown: bind, load, serve, stop cleanly.

``serve`` runs in this order, so whatever can fail fails before anyone is
told the server is up::

    bind the port       taken or not allowed: an InputError, nothing loaded
    load every run      unreadable: an InputError naming it
    start the workers   one process per model: loads the run again and
                        scores its test split (the BLEU of GET /models)
    uvicorn starts      then on_ready(url): the CLI prints "serving on ..."
    SIGTERM / Ctrl-C    stop accepting, finish the requests in flight (up
                        to serve.graceful_s), stop the workers, return 0
"""

from __future__ import annotations

import contextlib
import errno
import gc
import ipaddress
import logging
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from seqembed.errors import InputError
from seqembed.nmt.checkpoint import resolve_checkpoint
from seqembed.serve.models import ServedModel
from seqembed.serve.settings import ServeSettings

log = logging.getLogger(__name__)


def serve(
    runs: list[str | Path],
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: ServeSettings | None = None,
    cors: str | None = None,
    device: str = "auto",
    on_ready: Callable[[str], None] = lambda url: None,
    checkpoint: str = "best",
) -> int:
    """Serve ``runs`` until SIGTERM or SIGINT; returns the exit status (0).
    ``checkpoint``: which file of each run directory, "best" or "last"."""
    import uvicorn

    from seqembed.serve.app import create_app
    from seqembed.serve.registry import Registry

    settings = settings or ServeSettings()
    check_device(device)  # before the port is bound
    if not is_loopback(host):
        log.warning(
            "binding %s: the server is reachable from other machines, and it "
            "has no authentication",
            host,
        )
    sock = bind(host, port)
    try:
        models = load_models(runs, checkpoint)
        # What loading made (jieba's dictionary, vocabularies) lives as long
        # as the server: out of the collector's sight, so a full collection
        # does not walk a million objects while a request waits.
        gc.collect()
        gc.freeze()
        registry = Registry.start(models, settings, device)
        for model in models:
            if model.test_bleu is not None:
                log.info("%s: test BLEU %.2f (greedy)", model.id, model.test_bleu)
        app = create_app(registry, cors)
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=settings.graceful_s,
            lifespan="on",
        )
        bound_host, bound_port = sock.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        server = _Server(config, lambda: on_ready(f"http://{shown}:{bound_port}"))
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0


def check_device(device: str) -> None:
    """A device this machine has, or the one-line error of ``--device``."""
    from seqembed.nmt.devices import resolve_device

    resolve_device(device, "--device")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or an InputError naming the address."""
    if not 0 <= port <= 65535:
        raise InputError(f"--port {port}: must be in 0..65535")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )[0]
    except socket.gaierror as error:
        raise InputError(f"--host {host}: {error.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as error:
        sock.close()
        reason = (
            "the port is in use" if error.errno == errno.EADDRINUSE else error.strerror
        )
        raise InputError(f"cannot listen on {host}:{port}: {reason}") from None
    sock.set_inheritable(True)
    return sock


def load_models(runs: list[str | Path], which: str = "best") -> list[ServedModel]:
    """Every run (its ``which`` checkpoint), checked for a checkpoint and a
    unique name before any is loaded, so a mistake in the last one costs no
    loading time. These copies stay on the CPU and answer table queries;
    each run's worker process loads the one that translates."""
    if not runs:
        raise InputError("give at least one run directory to serve")
    checkpoints: dict[str, Path] = {}
    for run in runs:
        checkpoint = resolve_checkpoint(Path(run), which)
        name = checkpoint.parent.name
        if name in checkpoints:
            raise InputError(
                f"two runs are named {name!r} (a model's id is its folder's "
                "name): rename one",
                run,
            )
        checkpoints[name] = checkpoint
    return [ServedModel.load(path) for path in checkpoints.values()]


class _Server:
    """uvicorn's Server, told when it is up, and stopped by SIGTERM or
    SIGINT without re-raising the signal after a clean shutdown (uvicorn
    re-raises it, which would end the process with status 130 or 143)."""

    def __new__(cls, config, ready: Callable[[], None]):
        import uvicorn

        class Server(uvicorn.Server):
            async def startup(self, sockets=None):
                await super().startup(sockets)
                if self.started:
                    ready()

            @contextlib.contextmanager
            def capture_signals(self):
                if threading.current_thread() is not threading.main_thread():
                    yield
                    return
                handled = (signal.SIGINT, signal.SIGTERM)
                previous = {sig: signal.signal(sig, self._stop) for sig in handled}
                try:
                    yield
                finally:
                    for sig, handler in previous.items():
                        signal.signal(sig, handler)

            def _stop(self, sig, frame):
                if self.should_exit and sig == signal.SIGINT:
                    self.force_exit = True  # a second Ctrl-C: do not wait
                self.should_exit = True

        return Server(config)
