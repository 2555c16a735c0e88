"""The connector keeps the allocator's freed read buffers (keep_heap).

A client's reads made glibc give the heap's top back to the kernel and
fault it in again at nearly every read (see HEAP_KEEP).  What keep_heap
changes is measured in a fresh interpreter (the allocator's thresholds are
per process): blocks of read size freed and made again stop faulting.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import pytest

from gptalk_transports._backends import heap
from gptalk_transports._backends.heap import HEAP_KEEP, keep_heap
from gptalk_transports._config import Origin
from gptalk_transports._exceptions import TransportError
from gptalk_transports._sync import connector

from .fresh_interpreter import count_in_fresh_interpreter

_CYCLES = 200

_SCRIPT = f"""
import resource, sys
from gptalk_transports._backends import heap
if sys.argv[1] == "keep":
    heap.keep_heap()
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


@pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc",
    reason="the page faults measured are glibc's heap trimming",
)
def test_read_cycles_stop_faulting_the_heap_in(tmp_path: Path) -> None:
    # Without: each cycle's blocks are given back and faulted in again
    # (3 x 98 pages of 4 KiB); with: the heap keeps them, next to no fault.
    count_in_fresh_interpreter(_SCRIPT, "plain", tmp_path)  # fills the bytecode cache
    without = count_in_fresh_interpreter(_SCRIPT, "plain", tmp_path)
    kept = count_in_fresh_interpreter(_SCRIPT, "keep", tmp_path)
    assert without > _CYCLES * 64
    assert kept < _CYCLES


def test_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # A block is made once per larger size; later calls cost a test.
    made: list[int] = []
    monkeypatch.setattr(heap, "_kept", 0)

    def counted(size: int) -> bytes:
        made.append(size)
        return b""

    monkeypatch.setattr(heap, "bytes", counted, raising=False)
    for _ in range(3):
        keep_heap()
    keep_heap(HEAP_KEEP // 2)  # below what was kept: nothing to do
    keep_heap(4 * HEAP_KEEP)  # the recording proxy's, larger
    assert made == [HEAP_KEEP, 4 * HEAP_KEEP]
    assert HEAP_KEEP >= 2 * 256 * 1024


def test_the_connector_keeps_the_heap(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every client connection is made through the connector, which asks for
    # it before its first connection (even one that fails).
    calls: list[int] = []
    monkeypatch.setattr(connector, "keep_heap", lambda: calls.append(1))
    origin = Origin.parse("http://127.0.0.1:9")
    with pytest.raises(TransportError):
        connector.SyncConnector("sync", origin).connect(2.0)
    assert calls == [1]
