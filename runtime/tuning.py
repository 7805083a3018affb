"""Process tuning shared by the agent and the server: how the C allocator treats 1 MiB chunks.

Every chunk is a fresh ~1 MiB buffer (read from the file, received by libzmq). glibc
serves such sizes with mmap/munmap once its adaptive threshold drifts, and each new
mapping costs 256 page faults that zero the pages: measured on the 200 MB benchmark,
that alone swings a backup between ~230 and ~450 MB/s from run to run (the kernel time
doubles). Fixed thresholds keep the buffers on the heap, reused; the memory kept is
bounded by the peak in use (the credit window), not by the file size.
"""

from __future__ import annotations

import ctypes
import ctypes.util

import structlog

log = structlog.get_logger()

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 64 * 1024 * 1024
TRIM_THRESHOLD = 256 * 1024 * 1024


def tune_malloc() -> bool:
    """Fix glibc's mmap/trim thresholds; a no-op (False) with another C library."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        libc = None
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    ok = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    log.debug("process.malloc_tuned", ok=ok)
    return ok
