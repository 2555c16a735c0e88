"""The allocator's freed read buffers, kept for the next reads (glibc).

A process-wide setting, so it lives with the IO, not in the sans-IO core:
the connector calls :func:`keep_heap` before its first connection, and a
user driving the core from their own IO stack decides for their process.
"""

from __future__ import annotations

__all__ = ["HEAP_KEEP", "keep_heap"]

#: The size of the one allocation :func:`keep_heap` makes and frees.
#: glibc's malloc hands blocks of at least its mmap threshold (128 KiB at
#: first) straight to the kernel, and returns the heap's free top to it
#: once that top passes twice the threshold; freeing a mapped block raises
#: the threshold to the block's size.  A client's reads are up to 256 KiB,
#: and each read's body, the line it completes and the read itself are
#: freed together: about 520 KiB at the top, just over twice the threshold
#: a 256 KiB block leaves.  So the heap was given back and faulted in again
#: at every read: 83,000 page faults and a third of the client's CPU for a
#: 64 KB reply sent 4 characters at a time.  Freeing one block of this size
#: first keeps up to twice it (2 MiB) of free heap for the next reads.
HEAP_KEEP = 1024 * 1024

_heap_kept = False


def keep_heap() -> None:
    """Once per process: let the allocator keep freed read buffers for the
    next reads instead of returning them to the kernel (see HEAP_KEEP).
    Costs one allocation; elsewhere than glibc it changes nothing."""
    global _heap_kept  # noqa: PLW0603 - once per process, by design
    if not _heap_kept:
        _heap_kept = True
        # A block over the threshold is mapped, and calloc'd as this one is,
        # never touched: allocating and freeing it costs two system calls.
        block = bytes(HEAP_KEEP)
        del block
