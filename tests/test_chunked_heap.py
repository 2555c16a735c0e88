"""The chunked decoder keeps the allocator's freed read buffers (keep_heap).

A client's reads made glibc give the heap's top back to the kernel and
fault it in again at nearly every read (see HEAP_KEEP).  What keep_heap
changes is measured in a fresh interpreter (the allocator's thresholds are
per process): blocks of read size freed and made again stop faulting.
"""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from gptalk_proto._chunked import HEAP_KEEP, ChunkedDecoder

_CYCLES = 200

_SCRIPT = f"""
import resource, sys
from gptalk_proto import _chunked
if sys.argv[1] != "keep":
    _chunked._heap_kept = True  # as if done: the allocator left as it was
_chunked.ChunkedDecoder()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
first = b"x" * (400 * 1024)  # mapped; freed, it sets the thresholds
del first
before = faults()
for _ in range({_CYCLES}):
    # A read, its body and a line, freed together once parsed (together
    # more than twice the largest block freed before).
    read = b"r" * (390 * 1024)
    body = read + b"b"
    line = body + b"l"
    del read, body, line
print(faults() - before)
"""


def _faults(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, mode],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)


@pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc",
    reason="the page faults measured are glibc's heap trimming",
)
def test_read_cycles_stop_faulting_the_heap_in() -> None:
    # Without: each cycle's blocks are given back and faulted in again
    # (3 x 98 pages of 4 KiB); with: the heap keeps them, next to no fault.
    without = _faults("plain")
    kept = _faults("keep")
    assert without > _CYCLES * 64
    assert kept < _CYCLES


def test_decoders_work_after_the_first() -> None:
    # keep_heap runs once per process; every decoder decodes alike.
    for _ in range(3):
        decoder = ChunkedDecoder()
        assert decoder.feed(b"5\r\nhello\r\n0\r\n\r\n") == b"hello"
        assert decoder.done
    assert HEAP_KEEP >= 2 * 256 * 1024
