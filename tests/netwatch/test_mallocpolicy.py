"""Large blocks (a scrape's family buffers) get mappings of their own, returned when freed."""

from __future__ import annotations

import ctypes
import ctypes.util

import pytest

from netwatch.mallocpolicy import MMAP_THRESHOLD_BYTES, cap_heap_growth


class MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def mapped_bytes() -> int:
    """Bytes glibc serves from mappings of their own (``hblkhd``)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    return int(libc.mallinfo2().hblkhd)


def test_a_large_buffer_is_mapped_and_given_back_even_after_bigger_ones_were_freed() -> None:
    try:
        mapped_bytes()
    except (OSError, AttributeError):
        pytest.skip("not glibc")
    # Freeing a mapped block raises glibc's dynamic threshold to its size: without the cap, the
    # next buffers below 8 MiB would come from the heap and stay there.
    big = bytearray(8 << 20)
    del big
    assert cap_heap_growth()
    before = mapped_bytes()
    buffer = bytearray(4 * MMAP_THRESHOLD_BYTES)
    during = mapped_bytes()
    del buffer
    after = mapped_bytes()
    assert during - before >= 4 * MMAP_THRESHOLD_BYTES, "the buffer came from the heap"
    assert after - before < MMAP_THRESHOLD_BYTES, "its mapping went back to the system"
