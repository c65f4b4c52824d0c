"""Large blocks (a scrape's family buffers) get mappings of their own, returned when freed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from netwatch.mallocpolicy import MMAP_THRESHOLD_BYTES

# In a fresh interpreter: the test session's own heap may hold a free chunk big enough for the
# buffer, which glibc would rightly reuse whatever the threshold.
PROBE = """
import ctypes, ctypes.util, sys
sys.path.insert(0, {root!r})
from netwatch.mallocpolicy import MMAP_THRESHOLD_BYTES, cap_heap_growth

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
try:
    libc.mallinfo2.restype = MallInfo2
except AttributeError:
    print("skip"); sys.exit()
mapped = lambda: libc.mallinfo2().hblkhd
# Freeing a mapped block raises glibc's dynamic threshold to its size: without the cap, the next
# buffers below 8 MiB would come from the heap and stay there.
big = bytearray(8 << 20)
del big
if {cap}:
    assert cap_heap_growth()
before = mapped()
buffer = bytearray(4 * MMAP_THRESHOLD_BYTES)
during = mapped()
del buffer
print(during - before, mapped() - before)
"""


def mapped_growth(cap: bool) -> tuple[int, int]:
    """(mapped bytes while a 1 MiB buffer lives, after it is freed) in a fresh interpreter."""
    root = str(Path(__file__).resolve().parents[2])
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(root=root, cap=cap)], capture_output=True, text=True, check=True
    ).stdout.split()
    if out == ["skip"]:
        pytest.skip("not glibc")
    return int(out[0]), int(out[1])


def test_a_large_buffer_is_mapped_and_given_back_even_after_bigger_ones_were_freed() -> None:
    during, after = mapped_growth(cap=True)
    assert during >= 4 * MMAP_THRESHOLD_BYTES, "the buffer came from the heap"
    assert after < MMAP_THRESHOLD_BYTES, "its mapping went back to the system"


def test_without_the_cap_that_buffer_would_have_stayed_on_the_heap() -> None:
    during, _ = mapped_growth(cap=False)
    assert during < 4 * MMAP_THRESHOLD_BYTES, "glibc's dynamic threshold no longer behaves as the fix assumes"
