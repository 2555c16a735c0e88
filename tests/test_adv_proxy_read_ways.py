"""Adversarial cases for the splice tee's two ways of reading the upstream
(see test_record_proxy_read_ways): reads of WRITE_HERE_BELOW - 1,
WRITE_HERE_BELOW and more bytes alternating on kept-alive connections, an
upstream reset while its reads go into memory, a client whose socket is
full after a small read when a huge reply comes.  Besides the way of each
read and the recorded chunks, every upstream read is checked to come only
once the client was handed all of the read before (nothing left in the
pipe, nothing in its transport), and no pipe or socket is left open.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import struct
from collections.abc import Iterator

import anyio
import anyio.abc
import pytest

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_transports._server import proxy_splice
from gptalk_transports._server.spool import CAN_SPLICE, WRITE_HERE_BELOW

from . import test_adv_proxy_tee as hostile
from .proxy_cases import proxy_in_front_of
from .test_record_proxy_read_ways import (
    _check,
    _follows_the_rule,
    _note_ways,
    _reply,
    _run,
    _Session,
    _Ways,
)

pytestmark = pytest.mark.skipif(not CAN_SPLICE, reason="splice and tee are Linux's")

W = WRITE_HERE_BELOW


class _StrictWays(_Ways):
    """:class:`_Ways`, also checking the tee rule at each upstream read:
    the client was handed every byte of the read before (none left in the
    pipe for it, none in its transport's buffer)."""

    def __init__(self) -> None:
        super().__init__()
        self.checked = 0
        # (Counted, not asserted: the loop logs a callback's error and goes on.)
        self.broken = 0
        self.resets = 0  # upstream reads that failed (a reset)

    def _rule(self, fd: int) -> None:
        tee = self.current
        if isinstance(tee, proxy_splice._SpliceTee) and fd == tee._up:
            self.broken += bool(tee._left or tee._client.get_write_buffer_size())
            self.checked += 1

    def read(self, fd: int, size: int) -> bytes:
        self._rule(fd)
        try:
            return super().read(fd, size)
        except ConnectionError:
            self.resets += 1
            raise

    def splice(self, src: int, dst: int, size: int, **kwargs: int) -> int:
        self._rule(src)
        return super().splice(src, dst, size, **kwargs)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def ways(monkeypatch: pytest.MonkeyPatch) -> Iterator[_StrictWays]:
    """The splice tee runs, its reads noted and checked; no fd left open."""
    noted = _StrictWays()
    _note_ways(monkeypatch, noted)
    before = _open_fds()
    yield noted
    assert noted.reads  # the splice tee read the upstream
    assert noted.checked >= sum(map(len, noted.reads.values()))
    assert noted.broken == 0  # each read reached the client before the next
    assert _open_fds() == before  # pipes and sockets all closed


_SIZES = [W - 1, W, 1, W - 1, W + 1, W - 1, 2 * W, 7, W, W - 1, 300_000, 5]


def test_reads_at_the_threshold_alternate_on_kept_alive_connections(ways: _StrictWays) -> None:
    """Pieces of W - 1, W, W + 1 bytes and more, each sent once the client
    holds the ones before, several replies on one connection, three
    sessions at once: each tee's reads follow the rule (the way of each
    from the size of the one before) and are the recorded chunks."""
    rng = random.Random(21)
    sessions = []
    for number in range(3):
        sizes = _SIZES[number:] + _SIZES[:number]
        replies = [
            _reply(*(rng.randbytes(size) for size in sizes[i : i + 4])) for i in range(0, 12, 4)
        ]
        sessions.append(_Session(replies))
    cassette = anyio.run(_run, sessions, backend="asyncio")
    _check(cassette, sessions, ways)
    assert len(ways.reads) == len(sessions)
    for reads in ways.reads.values():
        assert {"read", "splice"} <= {way for way, _ in reads}


async def _resets_after_a_small_read(stream: anyio.abc.ByteStream) -> None:
    await hostile._head(stream)
    await stream.send(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n" + b"r" * 1000)
    # A reset, not a close: the tee's next read (into memory) fails.
    sock = stream.extra(anyio.abc.SocketAttribute.raw_socket)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await stream.aclose()


async def _reads_some(stream: anyio.abc.ByteStream) -> bytes:
    await stream.send(b"GET /first HTTP/1.1\r\nhost: h\r\n\r\n")
    got = b""
    try:
        while True:
            got += await stream.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
        return got


def test_an_upstream_reset_while_read_into_memory(ways: _StrictWays) -> None:
    """The upstream resets after a small read: the client gets what came
    before it, then the end; the proxy serves the next client, and no pipe
    or socket is left open."""
    got, reply, text = anyio.run(hostile._served, _resets_after_a_small_read, _reads_some)
    assert reply.endswith(b"\r\n\r\nok")
    assert "/second" in text
    # (Linux reads what came before a reset first.)
    assert got == b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n" + b"r" * 1000
    # The reset met by the tee's read into memory (or, had the tee not yet
    # begun, by the stream's own transport: a race the tee won every time here).
    assert ways.resets <= 1
    for reads in ways.reads.values():
        _follows_the_rule(reads)
        assert {way for way, _ in reads} == {"read"}


def test_a_client_full_after_a_small_read_then_a_huge_reply(
    ways: _StrictWays, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client reads a short reply, then stops reading while a huge one
    comes (8 MB at once): the first read of it goes into memory, waits in
    the client's transport, and no upstream read is made until the client,
    reading again once the tee waits for it, took it; then spliced.  Every
    byte recorded as read."""
    waits = 0
    stalled = anyio.Event()
    real = proxy_splice._SpliceTee._wait_for_client

    def waiting(self: proxy_splice._SpliceTee) -> None:
        nonlocal waits
        waits += 1
        stalled.set()
        real(self)

    monkeypatch.setattr(proxy_splice._SpliceTee, "_wait_for_client", waiting)
    huge = random.Random(22).randbytes(8 * 1024 * 1024)
    replies = [_reply(b"short"), _reply(huge), _reply(b"after")]

    async def upstream(stream: anyio.abc.ByteStream) -> None:
        async with stream:
            for reply in replies:
                await hostile._head(stream)
                await stream.send(b"".join(reply))

    async def run() -> g.cassette.Cassette:
        async with (
            proxy_in_front_of(upstream) as (proxy, address),
            await anyio.connect_tcp(*address) as client,
        ):
            for index, reply in enumerate(replies):
                await client.send(b"GET /0/%d HTTP/1.1\r\nhost: h\r\n\r\n" % index)
                if index == 1:
                    await stalled.wait()  # the tee waits for this client
                want, got = b"".join(reply), b""
                while len(got) < len(want):
                    got += await client.receive()
                assert got == want
        assert asyncio.all_tasks() == {asyncio.current_task()}  # the proxy's all ended
        assert proxy.cassette is not None
        return proxy.cassette

    cassette = anyio.run(run, backend="asyncio")
    _check(cassette, [_Session(replies)], ways)
    assert waits >= 1
    assert any(way == "splice" for reads in ways.reads.values() for way, _ in reads)
