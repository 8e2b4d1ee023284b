"""Tests for seqembed.data.download against a real HTTP server on 127.0.0.1.

No machine here reaches the internet, so each test builds a small zip shaped
like manythings.org's cmn-eng.zip and serves it from a local server that
counts the requests it gets.
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import subprocess
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from seqembed.data.download import (
    DATASET_DIRNAME,
    TSV_NAME,
    default_cache_dir,
    fetch_tatoeba,
)
from seqembed.errors import InputError

ATTRIBUTION = "CC-BY 2.0 (France) Attribution: tatoeba.org"
PAIRS = (
    f"Hi.\t嗨。\t{ATTRIBUTION} #538123 (CM) & #891077 (Martha)\n"
    f"Run.\t你用跑的。\t{ATTRIBUTION} #4008918 (JSakuragi) & #3748344 (egg0073)\n"
    f"Wait!\t等等！\t{ATTRIBUTION} #1744314 (belgavox) & #4970122 (wzhd)\n"
    f"I won!\t我赢了。\t{ATTRIBUTION} #2005192 (CK) & #5102367 (mirrorvan)\n"
).encode()
ABOUT = b"These are selected sentence pairs from the Tatoeba Project.\n"


def make_zip(members: dict[str, bytes], *, stored: bool = False) -> bytes:
    buffer = io.BytesIO()
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


GOOD_ZIP = make_zip({"cmn.txt": PAIRS, "_about.txt": ABOUT})


class LocalServer:
    """Serves ``routes[path] = (status, body, headers)``; records each request."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes, dict[str, str]]] = {}
        self.requests: list[tuple[str, str]] = []  # (path, User-Agent)
        self.httpd: ThreadingHTTPServer | None = None

    def serve(
        self, path: str, body: bytes, status: int = 200, headers: dict | None = None
    ) -> str:
        self.routes[path] = (status, body, headers or {})
        return self.url(path)

    def url(self, path: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{path}"


@pytest.fixture
def server():
    state = LocalServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the name http.server dispatches to
            state.requests.append((self.path, self.headers.get("User-Agent", "")))
            status, body, headers = state.routes.get(self.path, (404, b"no", {}))
            self.send_response(status)
            headers = {"Content-Length": str(len(body)), **headers}
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

    state.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.httpd.daemon_threads = True
    # A short poll interval: shutdown() waits up to one interval (0.5 s default).
    thread = threading.Thread(
        target=state.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    yield state
    state.httpd.shutdown()
    state.httpd.server_close()
    thread.join(timeout=5)


def dataset_files(cache: Path) -> set[str]:
    folder = cache / DATASET_DIRNAME
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def test_good_zip_is_extracted_byte_for_byte(server, tmp_path):
    url = server.serve("/cmn-eng.zip", GOOD_ZIP)
    tsv = fetch_tatoeba(cache_dir=tmp_path, url=url)

    assert tsv == tmp_path / DATASET_DIRNAME / TSV_NAME
    assert tsv.read_bytes() == PAIRS
    assert (tsv.parent / "ABOUT.txt").read_bytes() == ABOUT
    source = json.loads((tsv.parent / "SOURCE.json").read_text(encoding="utf-8"))
    assert source["url"] == url
    assert source["sha256"] == hashlib.sha256(GOOD_ZIP).hexdigest()
    assert source["lines"] == 4
    assert source["downloaded_utc"].endswith("+00:00")
    # No temporary zip or .part files left next to the results.
    assert dataset_files(tmp_path) == {TSV_NAME, "ABOUT.txt", "SOURCE.json"}
    # manythings.org refuses urllib's default agent.
    assert not server.requests[0][1].startswith("Python-urllib")


def test_second_call_makes_no_request(server, tmp_path):
    url = server.serve("/cmn-eng.zip", GOOD_ZIP)
    first = fetch_tatoeba(cache_dir=tmp_path, url=url)
    second = fetch_tatoeba(cache_dir=tmp_path, url=url)
    assert first == second
    assert len(server.requests) == 1


def test_force_downloads_again(server, tmp_path):
    url = server.serve("/cmn-eng.zip", GOOD_ZIP)
    fetch_tatoeba(cache_dir=tmp_path, url=url)
    newer = PAIRS + f"Go.\t走。\t{ATTRIBUTION} #1 (a) & #2 (b)\n".encode()
    server.serve("/cmn-eng.zip", make_zip({"cmn.txt": newer}))

    tsv = fetch_tatoeba(cache_dir=tmp_path, url=url, force=True)
    assert len(server.requests) == 2
    assert tsv.read_bytes() == newer
    # The new export has no _about.txt: don't keep the old one's licence text.
    assert dataset_files(tmp_path) == {TSV_NAME, "SOURCE.json"}


def test_matching_sha256_is_accepted(server, tmp_path):
    url = server.serve("/cmn-eng.zip", GOOD_ZIP)
    digest = hashlib.sha256(GOOD_ZIP).hexdigest().upper()
    assert fetch_tatoeba(cache_dir=tmp_path, url=url, sha256=digest).is_file()


def test_sha256_mismatch_raises_and_leaves_no_tsv(server, tmp_path):
    url = server.serve("/cmn-eng.zip", GOOD_ZIP)
    with pytest.raises(InputError, match="checksum"):
        fetch_tatoeba(cache_dir=tmp_path, url=url, sha256="0" * 64)
    assert dataset_files(tmp_path) == set()


def test_non_zip_body_raises_naming_url(server, tmp_path):
    url = server.serve("/cmn-eng.zip", b"<html>Please use a browser</html>")
    with pytest.raises(InputError) as caught:
        fetch_tatoeba(cache_dir=tmp_path, url=url)
    assert url in str(caught.value)
    assert dataset_files(tmp_path) == set()


def test_http_404_raises_naming_status(server, tmp_path):
    url = server.url("/missing.zip")
    with pytest.raises(InputError) as caught:
        fetch_tatoeba(cache_dir=tmp_path, url=url)
    assert "404" in str(caught.value)
    assert url in str(caught.value)
    assert dataset_files(tmp_path) == set()


def test_zip_without_txt_member_raises(server, tmp_path):
    url = server.serve("/cmn-eng.zip", make_zip({"_about.txt": ABOUT, "x.csv": b""}))
    with pytest.raises(InputError, match="cmn.txt"):
        fetch_tatoeba(cache_dir=tmp_path, url=url)
    assert dataset_files(tmp_path) == set()


def test_single_other_txt_member_is_used(server, tmp_path):
    url = server.serve("/z.zip", make_zip({"data/zho.txt": PAIRS, "_about.txt": b""}))
    assert fetch_tatoeba(cache_dir=tmp_path, url=url).read_bytes() == PAIRS


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (b"Hi.\t\xe5\x97\n\xff\xfe\n", "UTF-8"),
        (PAIRS + b"just one column\n", "2 tab-separated columns"),
        (b"\n  \n", "empty"),
    ],
    ids=["not-utf8", "one-column", "empty"],
)
def test_malformed_member_raises(server, tmp_path, member, message):
    url = server.serve("/cmn-eng.zip", make_zip({"cmn.txt": member}))
    with pytest.raises(InputError, match=message):
        fetch_tatoeba(cache_dir=tmp_path, url=url)
    assert dataset_files(tmp_path) == set()


def test_crc_mismatch_raises(server, tmp_path):
    # Stored (uncompressed), so flipping a byte of the text breaks only the CRC.
    damaged = make_zip({"cmn.txt": PAIRS}, stored=True).replace(b"Hi.", b"Ho.")
    url = server.serve("/cmn-eng.zip", damaged)
    with pytest.raises(InputError, match="corrupt|CRC"):
        fetch_tatoeba(cache_dir=tmp_path, url=url)
    assert dataset_files(tmp_path) == set()


def test_truncated_download_raises(server, tmp_path):
    headers = {"Content-Length": str(len(GOOD_ZIP) + 100)}
    url = server.serve("/cmn-eng.zip", GOOD_ZIP, headers=headers)
    with pytest.raises(InputError):
        fetch_tatoeba(cache_dir=tmp_path, url=url, timeout=5)
    assert dataset_files(tmp_path) == set()


def test_failed_forced_download_keeps_previous_tsv(server, tmp_path):
    url = server.serve("/cmn-eng.zip", GOOD_ZIP)
    tsv = fetch_tatoeba(cache_dir=tmp_path, url=url)
    server.serve("/cmn-eng.zip", b"not a zip")
    with pytest.raises(InputError):
        fetch_tatoeba(cache_dir=tmp_path, url=url, force=True)
    assert tsv.read_bytes() == PAIRS
    assert dataset_files(tmp_path) == {TSV_NAME, "ABOUT.txt", "SOURCE.json"}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_connection_refused_raises(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/cmn-eng.zip"
    with pytest.raises(InputError, match="cannot download"):
        fetch_tatoeba(cache_dir=tmp_path, url=url, timeout=5)
    assert dataset_files(tmp_path) == set()


def test_progress_ends_at_zip_size(server, tmp_path):
    url = server.serve("/cmn-eng.zip", GOOD_ZIP)
    calls: list[tuple[int, int | None]] = []
    fetch_tatoeba(
        cache_dir=tmp_path,
        url=url,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls[-1] == (len(GOOD_ZIP), len(GOOD_ZIP))
    done = [d for d, _ in calls]
    assert done == sorted(done)


def test_default_cache_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQEMBED_CACHE", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "mine"

    monkeypatch.delenv("SEQEMBED_CACHE")
    assert default_cache_dir() == tmp_path / "xdg" / "seqembed"

    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "seqembed"


def test_cli_data_tatoeba_end_to_end(server, tmp_path):
    def run_cli(url: str, cache: Path = tmp_path) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "seqembed", "data", "tatoeba"]
        command += ["--cache-dir", str(cache), "--url", url]
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    url = server.serve("/cmn-eng.zip", GOOD_ZIP)
    expected = f"{tmp_path / DATASET_DIRNAME / TSV_NAME}\n"
    first = run_cli(url)
    assert first.returncode == 0, first.stderr
    assert first.stdout == expected

    second = run_cli(url)
    assert second.returncode == 0, second.stderr
    assert second.stdout == expected
    assert len(server.requests) == 1

    # A fresh cache: the first one would answer without asking the server.
    missing = run_cli(server.url("/missing.zip"), cache=tmp_path / "empty")
    assert missing.returncode == 2
    errors = [
        x for x in missing.stderr.splitlines() if x.startswith("seqembed: error:")
    ]
    assert len(errors) == 1 and "404" in errors[0]
    assert "Traceback" not in missing.stderr
