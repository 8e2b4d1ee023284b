"""Download the Tatoeba Mandarin-English export into a user cache, verified.

The export is manythings.org's ``cmn-eng.zip``; it holds ``cmn.txt`` (English TAB
Chinese TAB attribution, UTF-8) and ``_about.txt`` (licence: CC-BY 2.0 FR). The
cache keeps the parts we need as plain files:

    <cache>/tatoeba-cmn-eng/
        cmn-eng.tsv    the pairs, byte for byte as in the zip (BOM removed)
        ABOUT.txt      the export's _about.txt: licence and attribution
        SOURCE.json    url, sha256 of the zip, download time (UTC), line count

``cmn-eng.tsv`` is written last and atomically, so its presence means the whole
download succeeded; that is what makes a second call free of network access.
"""

from __future__ import annotations

import codecs
import hashlib
import http.client
import json
import logging
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from seqembed.errors import InputError
from seqembed.files import atomic_write

logger = logging.getLogger(__name__)

DEFAULT_TATOEBA_URL = "https://www.manythings.org/anki/cmn-eng.zip"
DATASET_DIRNAME = "tatoeba-cmn-eng"
TSV_NAME = "cmn-eng.tsv"

# manythings.org answers 403 to urllib's default "Python-urllib/3.x" agent.
_USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
_CHUNK_BYTES = 1 << 16
_MEMBER_NAME = "cmn.txt"
_ABOUT_NAME = "_about.txt"
_LINES_TO_CHECK = 100
# cmn.txt is a few MB; a member far larger means a wrong URL, not a bigger corpus.
_MAX_MEMBER_BYTES = 1 << 30
# What zipfile raises for a damaged archive; NotImplementedError is an unknown
# compression method, RuntimeError an encrypted member.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    EOFError,
    zlib.error,
    NotImplementedError,
    RuntimeError,
)

Progress = Callable[[int, int | None], None]


def default_cache_dir() -> Path:
    """``$SEQEMBED_CACHE``, else ``$XDG_CACHE_HOME/seqembed``, else ``~/.cache``."""
    if os.environ.get("SEQEMBED_CACHE"):
        return Path(os.environ["SEQEMBED_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "seqembed"
    return Path.home() / ".cache" / "seqembed"


def fetch_tatoeba(
    cache_dir: Path | None = None,
    url: str = DEFAULT_TATOEBA_URL,
    sha256: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
    timeout: float = 60.0,
) -> Path:
    """Return the path of the cached Tatoeba TSV, downloading it if needed.

    ``progress(bytes_so_far, total_or_None)`` is called as the zip arrives.
    Raises ``InputError`` for anything that goes wrong on the way; a failure
    leaves neither a partial TSV nor temporary files behind (a previously
    cached TSV stays as it was).
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    dataset_dir = cache_dir / DATASET_DIRNAME
    tsv_path = dataset_dir / TSV_NAME
    if tsv_path.is_file() and not force:
        logger.debug("Tatoeba already cached at %s", tsv_path)
        return tsv_path

    try:
        dataset_dir.mkdir(parents=True, exist_ok=True)
        # Same directory as the targets, so os.replace never crosses filesystems.
        fd, tmp_name = tempfile.mkstemp(dir=dataset_dir, suffix=".zip.part")
    except OSError as err:
        raise InputError(f"cannot use the cache directory: {err}") from err
    zip_path = Path(tmp_name)
    try:
        logger.info("downloading %s", url)
        with os.fdopen(fd, "wb") as out:
            digest = _download(url, out, timeout=timeout, progress=progress)
        if sha256 is not None and digest != sha256.strip().lower():
            raise InputError(
                f"checksum mismatch for {url}: expected sha256 {sha256}, got {digest}"
            )
        data, about, source = _extract(zip_path, url, digest)
        _install(dataset_dir, data, about, source)
    finally:
        zip_path.unlink(missing_ok=True)
    logger.info("extracted %d lines to %s", source["lines"], tsv_path)
    return tsv_path


def _extract(zip_path: Path, url: str, digest: str) -> tuple[bytes, bytes | None, dict]:
    """The checked pairs, the export's _about.txt (or None), and the record
    for SOURCE.json."""
    member, data, about = _read_zip(zip_path, url=url)
    # A BOM would glue itself to the first English sentence.
    data = data.removeprefix(codecs.BOM_UTF8)
    source = {
        "url": url,
        "sha256": digest,
        "member": member,
        "downloaded_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "lines": _check_tsv(data, member=member, url=url),
    }
    return data, about, source


def _install(dataset_dir: Path, data: bytes, about: bytes | None, source: dict) -> None:
    """ABOUT.txt, SOURCE.json and, last, the TSV: its existence is the
    "download complete" marker."""
    about_path = dataset_dir / "ABOUT.txt"
    if about is not None:
        _atomic_write(about_path, about)
    else:
        about_path.unlink(missing_ok=True)  # don't keep another export's licence
    record = json.dumps(source, indent=2, ensure_ascii=False) + "\n"
    _atomic_write(dataset_dir / "SOURCE.json", record.encode("utf-8"))
    _atomic_write(dataset_dir / TSV_NAME, data)


def _download(
    url: str, out: BinaryIO, *, timeout: float, progress: Progress | None
) -> str:
    """Stream ``url`` into ``out``; return the sha256 hex digest of the body."""
    try:
        request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    except ValueError as err:  # not a URL at all
        raise InputError(f"cannot download {url!r}: {err}") from err
    digest = hashlib.sha256()
    n_bytes = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if progress is not None:
                progress(0, total)
            while chunk := response.read(_CHUNK_BYTES):
                out.write(chunk)
                digest.update(chunk)
                n_bytes += len(chunk)
                if progress is not None:
                    progress(n_bytes, total)
    except urllib.error.HTTPError as err:
        err.close()
        raise InputError(f"HTTP {err.code} {err.reason} from {url}") from err
    except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
        reason = getattr(err, "reason", None) or err
        raise InputError(f"cannot download {url}: {reason}") from err
    if total is not None and n_bytes != total:
        raise InputError(f"download of {url} stopped at {n_bytes} of {total} bytes")
    return digest.hexdigest()


def _read_zip(zip_path: Path, *, url: str) -> tuple[str, bytes, bytes | None]:
    """Return (member name, member bytes, _about.txt bytes or None)."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            corrupt = archive.testzip()  # reads every member and checks its CRC
            if corrupt is not None:
                raise InputError(f"zip from {url} is corrupt: bad CRC in {corrupt}")
            names = [n for n in archive.namelist() if not n.endswith("/")]
            member = _find_member(names, url=url)
            if archive.getinfo(member).file_size > _MAX_MEMBER_BYTES:
                raise InputError(f"{member} in the zip from {url} is implausibly large")
            data = archive.read(member)
            about = [n for n in names if PurePosixPath(n).name == _ABOUT_NAME]
            about_data = archive.read(about[0]) if about else None
    except _ZIP_ERRORS as err:
        raise InputError(f"{url} did not give a valid zip file: {err}") from err
    return member, data, about_data


def _find_member(names: list[str], *, url: str) -> str:
    """``cmn.txt``, else the one ``*.txt`` that is not ``_about.txt``."""
    exact = [n for n in names if PurePosixPath(n).name == _MEMBER_NAME]
    if exact:
        return exact[0]
    texts = [
        n
        for n in names
        if n.lower().endswith(".txt") and PurePosixPath(n).name != _ABOUT_NAME
    ]
    if len(texts) == 1:
        return texts[0]
    raise InputError(
        f"zip from {url} has no single {_MEMBER_NAME} or other .txt member "
        f"(members: {', '.join(names) or 'none'})"
    )


def _check_tsv(data: bytes, *, member: str, url: str) -> int:
    """Check UTF-8 and the tab layout; return the number of non-blank lines."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise InputError(
            f"not UTF-8 (in the zip from {url})", path=member, line=line
        ) from err
    lines = text.split("\n")
    non_blank = [(i, line) for i, line in enumerate(lines, start=1) if line.strip()]
    if not non_blank:
        raise InputError(f"is empty (in the zip from {url})", path=member)
    for number, line in non_blank[:_LINES_TO_CHECK]:
        n_columns = line.count("\t") + 1
        if n_columns < 2:
            raise InputError(
                f"expected at least 2 tab-separated columns, found {n_columns} "
                f"(in the zip from {url})",
                path=member,
                line=number,
            )
    return len(non_blank)


def _atomic_write(path: Path, data: bytes) -> None:
    try:
        atomic_write(path, lambda out: out.write(data))
    except OSError as err:
        raise InputError(f"cannot write: {err}", path=path) from err
