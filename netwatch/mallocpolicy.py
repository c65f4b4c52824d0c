"""Keep the C heap from growing with every large /metrics scrape (glibc only; elsewhere a no-op).

A scrape writes each family's samples into one growing buffer: about 165 MB in all at 1.1 M series
(``benchmarks/soak.py``). glibc serves a block below its mmap threshold from the heap, and raises
that threshold (up to 32 MB) every time a mapped block is freed, so after the first scrapes every
buffer came from the heap. Freed there, between long-lived blocks, that memory was kept: in the
soak the C heap grew from 46 to 318 MB in six minutes, well above what was in use, while Python's
own blocks stayed at 7.7–8.1 million. A fixed threshold serves every block of 256 KiB or more
from its own mapping, which goes back to the system when it is freed: the same soak's heap then
grew 40 → 156 MB, about what was in use.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3
"""glibc's mallopt parameter number (malloc.h); setting it also switches the dynamic threshold off."""
MMAP_THRESHOLD_BYTES = 256 * 1024


def cap_heap_growth() -> bool:
    """Serve large blocks from their own mappings from now on; False where that is not glibc."""
    try:
        # The process's own symbols: libc's, without find_library's ldconfig subprocess at start.
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    if not done:
        log.debug("mallopt(M_MMAP_THRESHOLD) refused; the C heap keeps glibc's dynamic threshold")
    return done
