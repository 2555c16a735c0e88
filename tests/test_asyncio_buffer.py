"""The asyncio backend's read buffer (``_Protocol.chunks``): what the
transport read, taken by ``receive_some`` a run of chunks at a time.

It is a list cut from the front (an empty one holds no block, where each
connection's deque held 528 bytes): every read must give what the deque's
one chunk at a time took, in order, however the transport cut the bytes.
"""

from __future__ import annotations

import asyncio
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptalk_transports._backends.asyncio import (
    MAX_BUFFERED,
    MAX_CHUNKS,
    RESUME_CHUNKS_BELOW,
    AsyncioStream,
    _Protocol,
)


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.paused = 0
        self.resumed = 0

    def pause_reading(self) -> None:
        self.paused += 1

    def resume_reading(self) -> None:
        self.resumed += 1

    def is_closing(self) -> bool:
        return False


def _reference(chunks: list[bytes], sizes: list[int]) -> list[bytes]:
    """The reads the deque gave: the first chunk, then whole chunks while
    they fit in ``size``, the part past ``size`` put back in front."""
    left = deque(chunks)
    out = []
    for size in sizes:
        if not left:
            break
        data = left.popleft()
        if left and len(data) < size:
            parts = [data]
            total = len(data)
            while left and total + len(left[0]) <= size:
                part = left.popleft()
                parts.append(part)
                total += len(part)
            data = b"".join(parts)
        if len(data) > size:
            left.appendleft(data[size:])
            data = data[:size]
        out.append(data)
    return out


def _reads(chunks: list[bytes], sizes: list[int]) -> tuple[list[bytes], _Protocol]:
    loop = asyncio.new_event_loop()
    try:
        protocol = _Protocol(loop)
        transport = _Transport()
        protocol.connection_made(transport)
        for chunk in chunks:
            protocol.data_received(chunk)
        stream = AsyncioStream(transport, protocol, "peer", None)
        out = []
        for size in sizes:
            if not protocol.chunks:
                break
            # Bytes are buffered, so the read returns without waiting: no
            # loop needs to run it.
            step = stream.receive_some(size, None)
            try:
                step.send(None)
            except StopIteration as done:
                out.append(done.value)
            else:  # pragma: no cover (a read that waited)
                step.close()
                raise AssertionError("a read with bytes buffered waited")
        return out, protocol
    finally:
        loop.close()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=60),
    st.lists(st.integers(min_value=1, max_value=200), min_size=1, max_size=80),
)
def test_reads_take_what_the_deque_took(chunks: list[bytes], sizes: list[int]) -> None:
    got, protocol = _reads(chunks, sizes)
    assert got == _reference(chunks, sizes)
    taken = sum(map(len, got))
    assert b"".join(got) == b"".join(chunks)[:taken]
    assert protocol.buffered == sum(map(len, chunks)) - taken
    assert b"".join(protocol.chunks) == b"".join(chunks)[taken:]


def test_a_trickle_of_tiny_chunks_is_read_in_runs() -> None:
    # 20,000 one-byte reads of the transport (a peer trickling bytes while
    # the client was busy): each read takes a run of them, in order, and the
    # whole is read back in size-sized pieces.
    chunks = [bytes([i % 251]) for i in range(20_000)]
    got, protocol = _reads(chunks, [4096] * 10)
    assert [len(piece) for piece in got] == [4096] * 4 + [20_000 - 4 * 4096]
    assert b"".join(got) == b"".join(chunks)
    assert protocol.chunks == []
    assert protocol.buffered == 0


def test_a_trickle_stops_reading_at_the_chunk_cap_not_the_byte_cap() -> None:
    # One-byte reads never reach MAX_BUFFERED's bytes before they cost far
    # more in objects: reading pauses past MAX_CHUNKS of them, once, and
    # resumes when a read takes them below RESUME_CHUNKS_BELOW.
    loop = asyncio.new_event_loop()
    try:
        protocol = _Protocol(loop)
        transport = _Transport()
        protocol.connection_made(transport)
        for _ in range(MAX_CHUNKS):
            protocol.data_received(b"x")
        assert transport.paused == 0
        protocol.data_received(b"x")
        assert transport.paused == 1
        for _ in range(100):  # what the kernel had on its way (paused once)
            protocol.data_received(b"x")
        assert transport.paused == 1
        held = MAX_CHUNKS + 101
        stream = AsyncioStream(transport, protocol, "peer", None)
        # A read that leaves too many chunks held does not resume.
        take = held - RESUME_CHUNKS_BELOW
        with pytest.raises(StopIteration) as done:
            stream.receive_some(take, None).send(None)
        assert done.value.value == b"x" * take
        assert transport.resumed == 0
        with pytest.raises(StopIteration) as done:
            stream.receive_some(1, None).send(None)
        assert done.value.value == b"x"
        assert len(protocol.chunks) == RESUME_CHUNKS_BELOW - 1
        assert transport.resumed == 1
        assert not protocol.paused
    finally:
        loop.close()


def test_past_the_cap_reading_pauses_and_resumes_below_the_low_mark() -> None:
    chunk = b"x" * (64 * 1024)
    count = MAX_BUFFERED // len(chunk) + 2
    got, protocol = _reads([chunk] * count, [256 * 1024] * count)
    assert b"".join(got) == chunk * count
    assert protocol.transport is not None
    assert protocol.transport.paused == 1  # type: ignore[attr-defined]
    assert protocol.transport.resumed == 1  # type: ignore[attr-defined]
    assert not protocol.paused
