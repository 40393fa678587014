"""Give the C heap's free pages back to the operating system after a burst of big
temporaries (recovery's sorts and concatenations over every key of a collection).

Why this is needed: glibc's malloc serves a large block from its own mapping only while the
block is above a threshold that it *raises* each time such a mapping is freed, so after
recovery frees its first temporary, the next ones of that size come from the main heap —
and free pages in the middle of the heap stay resident until ``malloc_trim``. Measured on a
1M-row FLOAT16 collection: 25 MiB of the 46 MiB an open added were such freed pages (the
rest is the live-key index and each row's ``deleted_at``), the difference between 1.27x and
1.17x the vectors' raw bytes for a loaded FLAT collection (benchmarks/bench_vectors.py).

``malloc_trim`` returns whole free pages only (it cannot move live blocks), costs a walk of
the heap's free lists (well under a millisecond here), and exists in glibc alone: elsewhere
(musl, macOS) this is a no-op, which is correct, only less frugal.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable


def _find_malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        fn = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


_MALLOC_TRIM = _find_malloc_trim()


def release_free_pages() -> bool:
    """Return the C heap's free pages to the OS; False where the allocator cannot."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True
