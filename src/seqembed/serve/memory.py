"""Give the heap's free pages back to the system when a worker goes idle.

Decoding batches of every size from many threads leaves glibc's heaps
(one arena per thread) holding freed blocks scattered between live ones;
without a trim a long-running server's resident memory creeps up with each
new peak. ``malloc_trim(0)`` walks every arena and returns whole free pages
(glibc >= 2.8); a worker calls it once its queue has been empty for half a
second, so it never delays a request that is waiting.
"""

from __future__ import annotations

import ctypes
import functools
import platform


@functools.cache
def _malloc_trim():
    if platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def trim() -> bool:
    """Return free heap pages to the system; False where that is not glibc."""
    function = _malloc_trim()
    return bool(function and function(0))
