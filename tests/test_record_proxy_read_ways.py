"""The splice tee's two ways of reading the upstream (Linux): a read after a
small one goes into memory with one ``read`` (a short chat's reads: no pipe,
no ``splice``), a read after a large one is spliced into the pipe (a large
reply's bytes never in Python's memory).  Each upstream read is still one
recorded chunk and reaches the client before the next read, whichever way
it went; and the way of each read follows from the size of the one before.

Upstreams here are gated where a test needs to know what one read can see:
each piece is sent only once the client holds every byte before it.
"""

from __future__ import annotations

import itertools
import os
import random
import stat
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field

import anyio
import anyio.abc
import pytest

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_transports._server import proxy as proxy_module
from gptalk_transports._server import proxy_splice
from gptalk_transports._server.spool import CAN_SPLICE, WRITE_HERE_BELOW

from . import test_adv_proxy_tee as hostile
from .proxy_cases import proxy_in_front_of

pytestmark = pytest.mark.skipif(not CAN_SPLICE, reason="splice and tee are Linux's")

HUGE = 8 * 1024 * 1024


class _Ways:
    """``proxy_splice``'s ``os``, noting per tee each upstream read (way and
    size), and each read out of a pipe; the rest is ``os``'s own."""

    def __init__(self) -> None:
        self.current: object = None  # the tee whose callback runs
        self.reads: dict[int, list[tuple[str, int]]] = {}
        self.pipe_reads = 0

    def __getattr__(self, name: str) -> object:
        return getattr(os, name)

    def _note(self, way: str, size: int) -> None:
        self.reads.setdefault(id(self.current), []).append((way, size))

    def read(self, fd: int, size: int) -> bytes:
        data = os.read(fd, size)
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            self.pipe_reads += 1
        elif data:
            self._note("read", len(data))
        return data

    def splice(self, src: int, dst: int, size: int, **kwargs: int) -> int:
        moved = os.splice(src, dst, size, **kwargs)
        if stat.S_ISSOCK(os.fstat(src).st_mode) and moved:
            self._note("splice", moved)
        return moved


def _note_ways(monkeypatch: pytest.MonkeyPatch, noted: _Ways) -> None:
    """The splice tee runs, with ``noted`` as its ``os`` and told which tee
    each upstream read is for."""
    monkeypatch.setattr(proxy_module, "SPLICE", True)
    monkeypatch.setattr(proxy_splice, "os", noted)
    real = proxy_splice._SpliceTee._readable

    def readable(self: proxy_splice._SpliceTee) -> None:
        noted.current = self
        real(self)

    monkeypatch.setattr(proxy_splice._SpliceTee, "_readable", readable)


@pytest.fixture
def ways(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Ways]:
    """The splice tee runs (and ran, afterwards), its reads noted."""
    noted = _Ways()
    _note_ways(monkeypatch, noted)
    yield noted
    assert noted.reads  # the splice tee read the upstream


def _follows_the_rule(reads: list[tuple[str, int]]) -> None:
    """A tee's first read goes into memory; each next one is spliced exactly
    when the one before was WRITE_HERE_BELOW bytes or more."""
    assert reads[0][0] == "read"
    for (_, before), (way, _) in itertools.pairwise(reads):
        assert way == ("splice" if before >= WRITE_HERE_BELOW else "read")


@dataclass
class _Session:
    """One client connection's replies (each a list of pieces, the first
    its head) and the gate between them: the upstream sends a piece only
    once the client holds every byte sent before it."""

    replies: list[list[bytes]]
    held: int = 0
    sent: int = 0
    waiting: list[anyio.Event] = field(default_factory=list)

    async def gate(self) -> None:
        while self.held < self.sent:
            event = anyio.Event()
            self.waiting.append(event)
            await event.wait()

    def took(self, size: int) -> None:
        self.held += size
        while self.waiting:
            self.waiting.pop().set()


def _reply(*pieces: bytes) -> list[bytes]:
    size = sum(map(len, pieces))
    return [b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size, *pieces]


async def _run(sessions: list[_Session]) -> g.cassette.Cassette:
    """Every session at once through one proxy (kept-alive connections,
    one request at a time each): each client gets its replies exactly."""

    async def upstream(stream: anyio.abc.ByteStream) -> None:
        async with stream:
            got = b""
            while True:
                while b"\r\n\r\n" not in got:
                    try:
                        got += await stream.receive()
                    except anyio.EndOfStream:
                        return
                head, _, got = got.partition(b"\r\n\r\n")
                _, number, index = head.split(b" ")[1].decode().split("/")
                session = sessions[int(number)]
                for piece in session.replies[int(index)]:
                    await session.gate()
                    await stream.send(piece)
                    session.sent += len(piece)

    async def client(number: int, address: tuple[str, int]) -> None:
        session = sessions[number]
        async with await anyio.connect_tcp(*address) as stream:
            for index, reply in enumerate(session.replies):
                await stream.send(b"GET /%d/%d HTTP/1.1\r\nhost: h\r\n\r\n" % (number, index))
                want, got = b"".join(reply), b""
                while len(got) < len(want):
                    data = await stream.receive()
                    got += data
                    session.took(len(data))
                assert got == want

    async with proxy_in_front_of(upstream) as (run, address), anyio.create_task_group() as group:
        for number in range(len(sessions)):
            group.start_soon(client, number, address)
    assert run.cassette is not None
    return run.cassette


def _check(cassette: g.cassette.Cassette, sessions: list[_Session], ways: _Ways) -> None:
    """Each reply recorded exactly, each tee's reads by the rule, and each
    tee's reads the last of its session's recorded chunks (the stream may
    have read the first before the tee began)."""
    chunks: dict[str, list[bytes]] = {}
    for item in cassette.interactions:
        recorded = [chunk.data for chunk in item.response.chunks]
        _, number, index = item.request.target.split("/")
        assert b"".join(recorded) == b"".join(sessions[int(number)].replies[int(index)])
        chunks.setdefault(number, []).extend(recorded)
    assert len(cassette.interactions) == sum(len(s.replies) for s in sessions)
    sizes = sorted([len(c) for c in session] for session in chunks.values())
    for reads in ways.reads.values():
        _follows_the_rule(reads)
        read_sizes = [size for _, size in reads]
        assert any(s[len(s) - len(read_sizes) :] == read_sizes for s in sizes)


def test_short_replies_go_by_one_read_each_never_through_a_pipe(ways: _Ways) -> None:
    """A kept-alive connection's short chats (a head, an event, the end:
    each piece its own read, gated): every upstream read is one ``read``
    into memory; nothing is spliced, nothing read out of a pipe."""
    replies = [_reply(b"data: %d\n\n" % i, b"data: [DONE]\n\n") for i in range(12)]
    sessions = [_Session(replies)]
    cassette = anyio.run(_run, sessions, backend="asyncio")
    _check(cassette, sessions, ways)
    [reads] = ways.reads.values()
    assert {way for way, _ in reads} == {"read"}
    assert len(reads) >= 2 * len(replies)  # (the stream may have read the first head)
    assert ways.pipe_reads == 0


def test_a_small_read_then_a_huge_one_on_one_response(ways: _Ways) -> None:
    """A reply's head (small), then 8 MB sent at once: read into memory
    until a read is large, spliced from then on, every byte recorded as
    read; the next short reply goes into memory again (the huge one's last
    piece is small, and gated)."""
    rng = random.Random(11)
    huge = rng.randbytes(HUGE)
    replies = [_reply(huge, b"tail"), _reply(b"short")]
    sessions = [_Session(replies)]
    cassette = anyio.run(_run, sessions, backend="asyncio")
    _check(cassette, sessions, ways)
    [reads] = ways.reads.values()
    spliced = [size for way, size in reads if way == "splice"]
    assert spliced  # the huge piece went through the pipe
    assert [way for way, _ in reads[-2:]] == ["read", "read"]  # the short reply's


def test_concurrent_sessions_each_read_their_own_way(ways: _Ways) -> None:
    """Sessions at once through one proxy: short chats, a huge reply after
    a short one, a huge one first: each tee follows the rule on its own
    reads, and every reply is recorded exactly under its request."""
    rng = random.Random(12)
    sessions = [
        _Session([_reply(b"data: a\n\n", b"data: [DONE]\n\n") for _ in range(6)]),
        _Session([_reply(b"x"), _reply(rng.randbytes(3 * 1024 * 1024)), _reply(b"y")]),
        _Session([_reply(rng.randbytes(2 * 1024 * 1024), b"end"), _reply(b"z")]),
        _Session([_reply(b"data: b\n\n") for _ in range(4)]),
    ]
    cassette = anyio.run(_run, sessions, backend="asyncio")
    _check(cassette, sessions, ways)
    assert len(ways.reads) == len(sessions)
    assert any(way == "splice" for reads in ways.reads.values() for way, _ in reads)


async def _cut_mid_large(stream: anyio.abc.ByteStream) -> None:
    await hostile._head(stream)
    await stream.send(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % HUGE)
    await stream.send(random.Random(13).randbytes(3 * 1024 * 1024))  # then closes


def test_an_upstream_that_closes_mid_body_while_spliced(ways: _Ways) -> None:
    """The upstream closes 3 MB into an 8 MB body: the client gets every
    byte it sent, then the end; the next client is served."""
    got, reply, text = anyio.run(hostile._served, _cut_mid_large, hostile._reads_all)
    assert len(got) > 3 * 1024 * 1024
    assert reply.endswith(b"\r\n\r\nok")
    cassette = g.cassette.Cassette.loads(text)
    assert "/second" in [item.request.target for item in cassette.interactions]
    for reads in ways.reads.values():
        _follows_the_rule(reads)
    assert any(way == "splice" for reads in ways.reads.values() for way, _ in reads)


async def _sends_huge(stream: anyio.abc.ByteStream) -> None:
    await hostile._head(stream)
    await stream.send(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % HUGE)
    with suppress(anyio.BrokenResourceError, OSError):
        await stream.send(b"q" * HUGE)


def test_a_client_gone_mid_huge_reply(ways: _Ways) -> None:
    """The client leaves 100 KB into an 8 MB reply: the exchange ends
    (no read after it), the next client is served and recorded."""
    got, reply, text = anyio.run(hostile._served, _sends_huge, hostile._leaves_mid_stream)
    assert len(got) >= 100_000
    assert reply.endswith(b"\r\n\r\nok")
    assert "/second" in text
    for reads in ways.reads.values():
        _follows_the_rule(reads)
