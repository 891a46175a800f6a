"""How the process's C allocator treats the large buffers a publish makes and drops."""

from __future__ import annotations

import ctypes
import functools
import os


@functools.cache
def give_back_freed_memory() -> None:
    """glibc only, once per process: blocks of 256 KB or more get their own mappings,
    and a heap top of 256 KB or more free is returned to the system.

    A publish makes and drops many buffers of a few MB (the web copy's pieces, the text
    part, the feed entries, the database's values); under glibc's sliding threshold
    (up to 32 MB) they come from the heap, and the RSS they leave in its holes adds to
    the next phase's instead of being reused. Measured on the 10,000-paper send
    (tests/bench/bench_huge.py): peak RSS 308 -> 293 MB, the same CPU time. (The same
    as MALLOC_MMAP_THRESHOLD_=262144 MALLOC_TRIM_THRESHOLD_=262144 in the environment.)"""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return
        libc = ctypes.CDLL(None)  # this process's own C library: glibc, as just asked
    except (AttributeError, ValueError, OSError):  # no confstr / no glibc
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h
    libc.mallopt(m_mmap_threshold, 256 * 1024)
    libc.mallopt(m_trim_threshold, 256 * 1024)
