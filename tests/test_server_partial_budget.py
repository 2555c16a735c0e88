"""The server-wide budget on partial requests, over loopback, at each of our
servers (the reference server, the replay server, the recording proxy: one
driver), on asyncio and trio.

Each connection may hold a request while it arrives (up to 2 MiB at the
replay server and the proxy), and a server serves 4096 connections: without
a bound across connections, a client holding every slot with a request it
never finishes made a server hold gigabytes.  Here the budget is 1 MiB, and
24 connections each send 128 KiB of a request they never finish (3 MiB in
all): the server holds at most the budget of them (counted, and measured
with tracemalloc), sheds the rest, the largest first, with a 503, and a
well-behaved client's chat goes through meanwhile.  Each wait is for a count
the server keeps, with a safety timeout.
"""

from __future__ import annotations

import gc
import socket
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from urllib.parse import urlsplit

import anyio
import anyio.abc
import pytest

import gptalk_proto as g
import gptalk_proto.server
from gptalk_transports import AsyncClient, ServerStats, load_cassette, serve_in_background
from gptalk_transports._server import proxy as proxy_module
from gptalk_transports._server.budget import SHED_RESPONSE
from gptalk_transports._server.driver import Limits, in_background
from gptalk_transports._server.replay import _no_delay, serve_replay

from .console import listening
from .proxy_cases import proxy_to
from .replay_cases import (
    CASSETTES,
    anyio_backend,  # noqa: F401 (a fixture: asyncio and trio)
)
from .test_record_proxy_cut_short import EVENT as CUT_EVENT
from .test_record_proxy_cut_short import HEAD as CUT_HEAD
from .test_record_proxy_cut_short import REQUEST as CUT_REQUEST
from .test_record_proxy_cut_short import _half_a_stream
from .test_replay_server_core import recorded_token, token_of, wire

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

#: Seconds any one wait for the server may take before the test fails.
SAFETY = 30.0
BUDGET = 1024 * 1024
#: Bytes each hostile connection sends of a request it never finishes.
PIECE = 128 * 1024
HOSTILES = 24
#: What tracemalloc may see beyond the budget once the server settled: the
#: held connections' objects and buffers' slack, not another piece each.
SLACK = 512 * 1024
#: A request head promising a body (under every server's body cap) that
#: never comes whole.
HEAD = b"POST /api/chatgpt/chatapi/text HTTP/1.1\r\nhost: x\r\ncontent-length: 1000000\r\n\r\n"
#: Deadlines no test here reaches: the budget, not a 408, must bound them.
LIMITS = Limits(
    header_timeout=600.0,
    request_timeout=600.0,
    min_rate=None,
    min_rate_grace=0.0,
    idle_timeout=600.0,
    max_partial_bytes=BUDGET,
)
PLAIN = CASSETTES / "plain-chat.json"
#: A request a well-behaved client sends in two writes, the first before
#: the hostile ones fill the budget (404 at the reference server and through
#: the proxy, 409 at the replay server: it matches no step).
SMALL = b"GET /nowhere HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"

Chat = Callable[[str], Awaitable[None]]


@asynccontextmanager
async def reference(stats: ServerStats, budget: int) -> AsyncIterator[tuple[str, Chat]]:
    async def chat(url: str) -> None:
        async with AsyncClient(url) as client:
            assert await client.chat("still there?") == g.server.expected_reply("still there?")

    async with serve_in_background(
        header_timeout=600.0,
        request_timeout=600.0,
        min_rate=None,
        idle_timeout=600.0,
        max_partial_bytes=budget,
        stats=stats,
    ) as url:
        yield url, chat


def _play_plain(url: str) -> None:
    """plain-chat.json played whole over a blocking socket, tokens swapped."""
    cassette = load_cassette(PLAIN)
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "", parts.port or 0), SAFETY) as sock:
        swap: dict[bytes, bytes] = {}
        for item in cassette.interactions:
            sock.sendall(wire(item, swap))
            got = b""
            while len(got) < len(item.response.wire) and (data := sock.recv(65536)):
                got += data
            if item.kind in ("login", "text"):
                swap[recorded_token(item)] = token_of(got)
                got = got.replace(token_of(got), recorded_token(item))
            assert got == item.response.wire


@asynccontextmanager
async def replay(stats: ServerStats, budget: int) -> AsyncIterator[tuple[str, Chat]]:
    server = g.cassette.ReplayServer([load_cassette(PLAIN)], speed=0)

    async def chat(url: str) -> None:
        await anyio.to_thread.run_sync(_play_plain, url)

    limits = LIMITS._replace(max_partial_bytes=budget)
    async with in_background(
        lambda task_status: serve_replay(
            server, limits=limits, stats=stats, task_status=task_status
        )
    ) as url:
        yield url, chat
    assert server.all_played


@asynccontextmanager
async def proxy(stats: ServerStats, budget: int) -> AsyncIterator[tuple[str, Chat]]:
    limits = LIMITS._replace(max_partial_bytes=budget)
    async with serve_in_background() as upstream:

        async def chat_through(url: str) -> None:
            async with AsyncClient(url, trust_env=False) as client:
                reply = await client.chat("still there?")
                assert reply == g.server.expected_reply("still there?")

        async with proxy_to(upstream, limits=limits, stats=stats) as (url, _):
            yield url, chat_through


SERVERS = {"reference": reference, "replay": replay, "proxy": proxy}


async def until(condition: Callable[[], bool]) -> None:
    """Wait (a safety timeout, not a bound) until the server's counts say so."""
    with anyio.fail_after(SAFETY):
        while not condition():
            await anyio.sleep(0.005)


async def to_the_close(stream: anyio.abc.SocketStream) -> bytes:
    """What ``stream`` gets until the server closes it (a safety timeout)."""
    answer = b""
    with anyio.fail_after(SAFETY):
        try:
            while True:
                answer += await stream.receive()
        except anyio.EndOfStream:
            pass
    return answer


async def connect(url: str) -> anyio.abc.SocketStream:
    parts = urlsplit(url)
    return await anyio.connect_tcp(parts.hostname or "", parts.port or 0)


@pytest.mark.parametrize("kind", list(SERVERS))
async def test_partial_requests_are_held_within_the_budget(kind: str) -> None:
    stats = ServerStats()
    piece = HEAD + b"x" * (PIECE - len(HEAD))
    hostiles: list[anyio.abc.SocketStream] = []
    half = len(SMALL) // 2
    async with SERVERS[kind](stats, BUDGET) as (url, chat):
        await chat(url)  # a first chat: the server's own start-up is in the baseline
        # Half a request, held while the budget fills: the least of the
        # holders, it is never the one shed.
        small = await connect(url)
        await small.send(SMALL[:half])
        await until(lambda: stats.partial_bytes == half)
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            try:
                for _ in range(HOSTILES):
                    stream = await connect(url)
                    hostiles.append(stream)
                    await stream.send(piece)

                # Every piece is read: held whole, or its connection shed (and gone).
                def settled() -> bool:
                    held = HOSTILES - stats.shed
                    return stats.partial_bytes == held * PIECE + half and stats.active == held + 1

                await until(settled)
                gc.collect()
                grown = tracemalloc.get_traced_memory()[0] - before
                assert stats.partial_bytes <= BUDGET
                assert stats.shed >= HOSTILES - BUDGET // PIECE
                assert grown < BUDGET + SLACK, (grown, stats)
                # The budget is full: a well-behaved client is served anyway,
                # and the one that sent half a request gets its answer.
                assert stats.partial_bytes > BUDGET - PIECE
                await chat(url)
                await small.send(SMALL[half:])
                answer = b""
                with anyio.fail_after(SAFETY):
                    try:
                        while True:  # "connection: close": to its end
                            answer += await small.receive()
                    except anyio.EndOfStream:
                        pass
                assert answer.startswith((b"HTTP/1.1 404 ", b"HTTP/1.1 409 ")), answer
            finally:
                for stream in [small, *hostiles]:
                    await stream.aclose()
        finally:
            tracemalloc.stop()


@pytest.mark.parametrize("kind", list(SERVERS))
async def test_a_connection_past_the_budget_gets_a_503(kind: str) -> None:
    # One connection alone, the last byte past the budget: every byte it
    # sent is read when it is shed, so the 503 and the close reach it.
    stats = ServerStats()
    budget = 64 * 1024
    async with SERVERS[kind](stats, budget) as (url, chat):
        stream = await connect(url)
        async with stream:
            await stream.send(HEAD + b"x" * (budget - len(HEAD)))
            await until(lambda: stats.partial_bytes == budget)
            await stream.send(b"x")
            answer = await to_the_close(stream)
        assert answer.startswith(b"HTTP/1.1 503 ")
        if kind != "reference":
            assert answer == SHED_RESPONSE
        assert (stats.shed, stats.partial_bytes) == (1, 0)
        await chat(url)


async def test_the_proxy_counts_a_partial_request_while_it_tees_a_response() -> None:
    # Once a request went upstream, the proxy reads the client's next bytes
    # as they come (on asyncio, in the transport's callback): a partial
    # request there is counted, and shed, too.  Responses are not followed
    # here (a response may be in flight): it is closed without a 503.
    stats = ServerStats()
    budget = 64 * 1024
    async with proxy(stats, budget) as (url, chat):
        stream = await connect(url)
        async with stream:
            await stream.send(b"GET /nowhere HTTP/1.1\r\nhost: x\r\n\r\n")
            answer = b""
            while b"\r\n\r\n" not in answer:
                answer += await stream.receive()
            head, _, body = answer.partition(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            while len(body) < length:
                body += await stream.receive()
            assert head.startswith(b"HTTP/1.1 404 ")
            await stream.send(HEAD + b"x" * (budget - len(HEAD)))
            await until(lambda: stats.partial_bytes == budget)
            await stream.send(b"x")
            with (
                anyio.fail_after(SAFETY),
                pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)),
            ):
                await stream.receive()  # closed: nothing comes
        assert (stats.shed, stats.partial_bytes) == (1, 0)
        await chat(url)


def test_serve_takes_the_budget_on_its_command_line() -> None:
    # One byte past it, in one write: shed at the read of that last byte,
    # when every byte was read, so the 503 and the close reach the client.
    budget = 64 * 1024
    with listening("serve", "--max-partial-bytes", str(budget)) as (_, url):
        parts = urlsplit(url)
        with socket.create_connection((parts.hostname or "", parts.port or 0), SAFETY) as sock:
            sock.sendall(HEAD + b"x" * (budget + 1 - len(HEAD)))
            answer = b""
            while data := sock.recv(65536):
                answer += data
    assert answer.startswith(b"HTTP/1.1 503 ")
    assert b"partial requests" in answer


async def test_the_replay_server_answers_a_whole_request_before_it_sheds() -> None:
    # One read: a whole login, then the start of a request past the budget.
    # The login matched (its session moved past it): it is answered, and
    # only then is the connection shed (a 503 for the rest), as at the
    # reference server and the proxy.  Answered with the 503 alone, its
    # step was skipped: the client's retry of it, as the 503 asks, matched
    # nothing in its session (a 409).
    stats = ServerStats()
    budget = 4096
    server = g.cassette.ReplayServer([load_cassette(PLAIN)], speed=0)
    login = load_cassette(PLAIN).interactions[0]
    assert login.kind == "login"
    limits = LIMITS._replace(max_partial_bytes=budget)
    async with in_background(
        lambda task_status: serve_replay(
            server, limits=limits, stats=stats, task_status=task_status
        )
    ) as url:
        stream = await connect(url)
        async with stream:
            await stream.send(wire(login) + HEAD + b"x" * budget)
            answer = await to_the_close(stream)
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
        assert answer.endswith(SHED_RESPONSE)
        assert len(answer) == len(login.response.wire) + len(SHED_RESPONSE)
        assert server.played() == 1
        assert (stats.shed, stats.partial_bytes) == (1, 0)


async def test_the_reference_server_answers_a_whole_request_before_it_sheds() -> None:
    # As the replay server above: one read, a whole request, then the start
    # of one past the budget.  The first is answered whole (no partial
    # request is held while a response is written), then the 503 follows
    # it, never inside it (the driver's `answering`).
    stats = ServerStats()
    budget = 4096
    async with reference(stats, budget) as (url, _):
        stream = await connect(url)
        async with stream:
            await stream.send(b"GET /nowhere HTTP/1.1\r\nhost: x\r\n\r\n" + HEAD + b"x" * budget)
            answer = await to_the_close(stream)
    head, _, rest = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404 "), answer[:200]
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    assert rest[length:].startswith(b"HTTP/1.1 503 "), rest[:200]
    assert b"partial requests" in rest[length:]
    assert (stats.shed, stats.partial_bytes) == (1, 0)


@pytest.mark.parametrize("count_chats", [False, True], ids=["unfollowed", "followed"])
async def test_a_stream_the_budget_cut_is_recorded_stopped(count_chats: bool) -> None:
    # A stream in flight through the proxy when its connection is shed (its
    # client's next request, begun, went past the budget): the proxy, not
    # the upstream or the client, cut it.  Recorded "complete", the replay
    # server wrote its bytes and kept the connection open (a client waited
    # for the rest until the idle timeout); "stopped", as when the proxy
    # stops with it in flight (test_record_proxy_cut_short).
    budget = 64 * 1024
    stats = ServerStats()
    limits = LIMITS._replace(max_partial_bytes=budget)
    with _half_a_stream() as (upstream, sent):
        async with proxy_to(upstream, limits=limits, count_chats=count_chats, stats=stats) as (
            url,
            recorder,
        ):
            stream = await connect(url)
            async with stream:
                await stream.send(CUT_REQUEST)
                got = b""
                with anyio.fail_after(SAFETY):
                    while b"one" not in got:
                        got += await stream.receive()
                await stream.send(HEAD + b"x" * (budget + 1 - len(HEAD)))
                await until(lambda: stats.shed == 1)
        assert sent.is_set()
    [item] = recorder.cassette(recorded_at="2026-01-01T00:00:00Z", redact=False).interactions
    assert item.response.wire == CUT_HEAD + CUT_EVENT
    assert item.response.end == "stopped"


#: The response of the shed-mid-response test, and its last part, which
#: the upstream sends only once the proxy read the rest: one upstream read
#: (or a few) far larger than what the proxy's small send buffer and the
#: client's small receive buffer take.
LONG_TAIL = 48 * 1024
LONG_RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (
    1024 + LONG_TAIL,
    b"z" * (1024 + LONG_TAIL),
)
#: The kernel's buffers on the way (set before the connect at the client,
#: at accept at the proxy): a few KiB each.
SMALL_BUFFER = 4096


@contextmanager
def _answer_in_two(read_first: threading.Event) -> Iterator[str]:
    """An upstream that answers one request with LONG_RESPONSE: all but its
    last LONG_TAIL bytes, then, once ``read_first`` is set, those; and keeps
    the connection open until the block ends.  Yields its URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve() -> None:
        sock, _ = listener.accept()
        with sock, suppress(OSError):  # the proxy may close it mid-answer
            seen = b""
            while b"\r\n\r\n" not in seen:
                seen += sock.recv(4096)
            sock.sendall(LONG_RESPONSE[:-LONG_TAIL])
            read_first.wait(SAFETY)
            sock.sendall(LONG_RESPONSE[-LONG_TAIL:])
            done.wait(SAFETY)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        done.set()
        thread.join(SAFETY)
        listener.close()


async def test_a_connection_shed_mid_response_is_closed_without_a_503(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The proxy follows responses (--chats): past a whole response the
    # core has none pending, and a shed connection gets a 503.  On trio
    # each upstream read goes to the client in a write that waits for the
    # client: the core has read the response's end (none pending) while its
    # last bytes still wait to go out.  Shed then, the 503 was written after
    # part of the response (the stream corrupt); a response begun and not
    # written whole now only closes.  The client stops reading once the
    # core has read the response's end, and only then sends a request past
    # the budget.
    budget = 64 * 1024
    stats = ServerStats()
    limits = LIMITS._replace(max_partial_bytes=budget)
    read_first, read_whole = threading.Event(), threading.Event()
    real = g.cassette.ProxyConnection.upstream_data
    read = 0

    def upstream_data(self: g.cassette.ProxyConnection, data: bytes, t: float) -> bytes:
        nonlocal read
        out = real(self, data, t)
        read += len(data)
        if read >= len(LONG_RESPONSE) - LONG_TAIL:
            read_first.set()
        if data and self.follows_responses and not self.pending:
            read_whole.set()  # the core has read the response's end
        return out

    monkeypatch.setattr(g.cassette.ProxyConnection, "upstream_data", upstream_data)

    def small_send_buffer(stream: anyio.abc.ByteStream) -> None:
        # (trio's listener; asyncio's own buffers every write it takes.)
        _no_delay(stream)
        raw = stream.extra(anyio.abc.SocketAttribute.raw_socket)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)

    monkeypatch.setattr(proxy_module, "_no_delay", small_send_buffer)

    def client(url: str) -> bytes:
        parts = urlsplit(url)
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)  # before connect
            sock.settimeout(SAFETY)
            sock.connect((parts.hostname or "", parts.port or 0))
            sock.sendall(b"GET /long HTTP/1.1\r\nhost: x\r\n\r\n")
            got = b""
            while not read_whole.is_set():
                got += sock.recv(1024)
            # As in test_a_connection_past_the_budget_gets_a_503: the last
            # byte alone, so every byte is read when it is shed.
            sock.sendall(HEAD + b"x" * (budget - len(HEAD)))
            deadline = time.monotonic() + SAFETY  # a safety net, not a bound
            while stats.partial_bytes != budget and time.monotonic() < deadline:
                time.sleep(0.005)
            sock.sendall(b"x")
            while data := sock.recv(65536):
                got += data
        return got

    with _answer_in_two(read_first) as upstream:
        async with proxy_to(upstream, limits=limits, count_chats=True, stats=stats) as (url, _):
            got = await anyio.to_thread.run_sync(client, url)
    assert stats.shed == 1
    # The response, whole or cut by the close, and a 503 only after it whole.
    whole = got == LONG_RESPONSE + SHED_RESPONSE
    assert whole or got == LONG_RESPONSE[: len(got)], (len(got), got[-200:])
