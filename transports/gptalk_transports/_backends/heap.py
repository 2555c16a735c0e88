"""The allocator's freed read buffers, kept for the next reads (glibc).

A process-wide setting, so it lives with the IO, not in the sans-IO core:
the connector calls :func:`keep_heap` before a connection, the recording
proxy as it starts, and a user driving the core from their own IO stack
decides for their process.

Why: a socket read allocates a buffer of the most it may take (256 KiB for
an asyncio transport) and shrinks it to what came.  glibc's malloc serves a
block of at least its mmap threshold (128 KiB at first) with ``mmap``, and
gives the heap's free top back to the kernel once that top passes twice the
threshold.  Each read's buffer, the body it carries and the line it
completes are freed together (about 520 KiB, just over twice the threshold
a 256 KiB block leaves), so the heap was given back and faulted in again at
nearly every read: 83,000 page faults, a third of the client's CPU, for a
64 KB reply sent 4 characters at a time; ``mmap``, ``mremap`` and
``munmap`` on every read through the recording proxy.  Freeing one mapped
block raises the threshold to that block's size, and the trim threshold to
twice it, for the rest of the process (mallopt(3)'s dynamic threshold):
the buffers then come from the heap, whose freed memory is reused.  What the
process keeps is up to twice the block of freed heap.  Any other allocator
just sees one short-lived allocation.
"""

from __future__ import annotations

__all__ = ["HEAP_KEEP", "keep_heap"]

#: Bytes of the block a client's connector frees once (see the module's
#: docstring): above every read buffer (256 KiB) with its body and line.
HEAP_KEEP = 1024 * 1024

_kept = 0  # the largest block freed so far


def keep_heap(up_to: int = HEAP_KEEP) -> None:
    """Let the allocator keep freed blocks below ``up_to`` bytes for the next
    reads instead of returning them to the kernel; once per size, per process.
    Costs one allocation the first time."""
    global _kept  # noqa: PLW0603 - once per process, by design
    if up_to > _kept:
        _kept = up_to
        # A block over the threshold is mapped, and calloc'd as this one is,
        # never touched: allocating and freeing it costs two system calls.
        block = bytes(up_to)
        del block
