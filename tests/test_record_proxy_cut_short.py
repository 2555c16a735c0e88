"""A response the recording ended in its middle (the proxy stopped by a
signal, ``--chats N`` or the end of ``record_through_proxy``'s block while a
stream was still coming): its bytes did not end as their framing says and no
close ended them, so it is recorded as ``stopped``, not ``complete``.  As
``complete``, the replay server wrote its bytes and then kept the connection
open, and a client waited for the rest of the body until the idle timeout.
A response the upstream left open when the *client* went away stays
``complete`` (the server did not end it: a replay keeps it open too, as a
recording client's own read timeout does, see test_cassette_har_and_commands).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from urllib.parse import urlsplit

import anyio
import pytest

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_transports import (
    ServerStats,
    record_through_proxy_in_thread,
    serve_cassettes_in_thread,
    serve_in_thread,
)
from gptalk_transports._server.replay import DEFAULT_LIMITS

from .proxy_cases import proxy_to
from .replay_cases import anyio_backend  # noqa: F401 (a fixture: asyncio and trio)
from .test_record_proxy import by_hand
from .test_server_driver import blocking_exchange

STAMP = "2026-01-01T00:00:00Z"
REQUEST = f"GET {g.STREAM_PATH}?token=t HTTP/1.1\r\nhost: x\r\n\r\n".encode()
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
EVENT = b'1a\r\ndata: {"content": "one"}\n\n\r\n'  # one chunk, no last chunk after it


def _recorded(*reads: bytes, ended: bool = False) -> g.cassette.Interaction:
    """One stream exchange through the proxy's core: the upstream's reads
    (``b""``: its close); ``ended``: the proxy stopped with it open."""
    recorder = g.cassette.ProxyRecorder("http://up.example", host="up.example")
    conn = recorder.connection()
    conn.client_data(REQUEST, 0.0)
    for n, data in enumerate(reads):
        conn.upstream_data(data, 0.1 * (n + 1))
    if ended:
        conn.recording_ended()
    [item] = recorder.cassette(recorded_at=STAMP, redact=False).interactions
    return item


def test_a_stream_the_recording_ended_is_stopped_and_replays_to_a_close() -> None:
    item = _recorded(HEAD + EVENT, ended=True)
    assert item.response.end == "stopped"
    assert [e.data for e in item.response.events] == ['{"content": "one"}']
    cassette = g.cassette.Cassette(interactions=(item,), recorded_at=STAMP, origin="http://x")
    actions = g.cassette.ReplayServer([cassette], speed=0).connection().receive_data(REQUEST)
    assert b"".join(a.data for a in actions if isinstance(a, g.cassette.ReplayWrite)) == (
        HEAD + EVENT
    )
    assert isinstance(actions[-1], g.cassette.ReplayClose)


def test_other_responses_keep_their_end() -> None:
    whole = HEAD + EVENT + b"0\r\n\r\n"
    # Whole, on a kept-alive connection open at the end: no close replayed.
    assert _recorded(whole, ended=True).response.end == "complete"
    assert _recorded(whole).response.end == "complete"
    assert _recorded(HEAD + EVENT, b"").response.end == "closed"
    assert _recorded(HEAD + EVENT, b"", ended=True).response.end == "closed"
    # Cut short, the proxy still running: the client left, not the server.
    assert _recorded(HEAD + EVENT).response.end == "complete"


@contextmanager
def _half_a_stream() -> Iterator[tuple[str, threading.Event]]:
    """An upstream that answers a stream's head and first event, then holds
    the connection open until the block ends; ``(url, sent)``, ``sent`` set
    once the event went out."""
    listener = socket.create_server(("127.0.0.1", 0))
    sent, done = threading.Event(), threading.Event()

    def serve() -> None:
        sock, _ = listener.accept()
        with sock:
            seen = b""
            while b"\r\n\r\n" not in seen:
                seen += sock.recv(4096)
            sock.sendall(HEAD + EVENT)
            sent.set()
            done.wait(30)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", sent
    finally:
        done.set()
        thread.join(30)
        listener.close()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_proxy_stopped_mid_stream_records_a_cassette_that_replays_to_its_end(
    backend: str,
) -> None:
    # The client's socket closes only after the proxy stopped: closed first,
    # the proxy could see the client leave before its stop (a cut by the
    # client, which stays "complete"), as it did on a loaded machine.
    # (The proxy's block is the last context: it exits first.)
    with (
        _half_a_stream() as (upstream, sent),
        ExitStack() as client,
        record_through_proxy_in_thread(
            upstream, trust_env=False, redact=False, backend=backend
        ) as run,
    ):
        parts = urlsplit(run.url)
        c = client.enter_context(
            socket.create_connection((parts.hostname or "", parts.port or 0), timeout=20)
        )
        c.sendall(REQUEST)
        got = b""
        while b"one" not in got:
            got += c.recv(65536)
        assert sent.is_set()
        # The block ends (as a signal ends `gptalk record --listen`) with the
        # stream still open.
    assert run.cassette is not None
    [item] = run.cassette.interactions
    assert item.response.end == "stopped"
    with serve_cassettes_in_thread([run.cassette], speed=0) as url:
        # (Read to the close: a "complete" end left the connection open for
        # the 60 s idle timeout, past the read's own.)
        assert blocking_exchange(url, REQUEST) == HEAD + EVENT


def _closed_by_the_client(*reads: bytes, closed: bool = True) -> g.cassette.Interaction:
    """One stream exchange through the proxy's core, responses not followed
    (no chats counted), whose client closed its side (the proxy passing the
    close on; not if ``closed`` is False) before the upstream's ``reads``."""
    recorder = g.cassette.ProxyRecorder("http://up.example", host="up.example", count_chats=False)
    conn = recorder.connection()
    conn.client_data(REQUEST, 0.0)
    if closed:
        conn.client_closed()
    for n, data in enumerate(reads):
        conn.upstream_data(data, 0.1 * (n + 1))
    [item] = recorder.cassette(recorded_at=STAMP, redact=False).interactions
    return item


def test_the_upstreams_close_that_answers_the_clients_is_not_recorded() -> None:
    whole = HEAD + EVENT + b"0\r\n\r\n"
    # Whole, then the upstream's close, which answered the client's: the
    # upstream did not end the connection itself (replayed, a close there
    # would meet a client that keeps its connection).
    assert _closed_by_the_client(whole, b"").response.end == "complete"
    # Cut short by the close: as the upstream did it.
    assert _closed_by_the_client(HEAD + EVENT, b"").response.end == "closed"
    # The upstream's own close, the client still there: as before.
    assert _closed_by_the_client(whole, b"", closed=False).response.end == "closed"


def test_a_client_that_closes_after_its_chat_leaves_whole_exchanges() -> None:
    """http.client through the proxy (no chats counted: responses are not
    followed), one connection for a chat, closed after it: the proxy passes
    the close on, the reference server closes, and the exchanges stay
    ``complete`` (the stream was recorded ``closed``, so the replay server
    closed after it)."""
    stats = ServerStats()
    with (
        serve_in_thread(stats=stats) as upstream,
        record_through_proxy_in_thread(upstream, trust_env=False) as run,
    ):
        by_hand(run.url, "closed after")
        # The upstream closed its end of the connection (the proxy's close
        # passed on), then a second chat: the proxy has read the close by
        # the time it has served it.
        for _ in range(3000):
            if stats.active == 0:
                break
            threading.Event().wait(0.01)
        assert stats.active == 0
        by_hand(run.url, "another")
    assert run.cassette is not None
    first = [item for item in run.cassette.interactions if item.connection == 1]
    assert [item.kind for item in first] == ["login", "text", "stream"]
    assert [item.response.end for item in first] == ["complete"] * 3


@pytest.mark.anyio
@pytest.mark.parametrize("count_chats", [False, True], ids=["unfollowed", "followed"])
async def test_a_stream_cut_at_the_idle_timeout_after_a_half_close_is_stopped(
    count_chats: bool,
) -> None:
    # A client may half-close once it sent its last request and still wait
    # for the answer; the proxy waits for it within the idle timeout, then
    # closes, cutting a stream still coming: the proxy cut it (as its own
    # stop would), so "stopped", not "complete" (which replayed the bytes
    # and then kept the connection open).  The timeout is the mechanism
    # here, not a bound on the test: the upstream holds the stream open.
    limits = DEFAULT_LIMITS._replace(idle_timeout=0.2)
    with _half_a_stream() as (upstream, sent):
        async with proxy_to(upstream, limits=limits, count_chats=count_chats) as (url, recorder):
            parts = urlsplit(url)
            stream = await anyio.connect_tcp(parts.hostname or "", parts.port or 0)
            async with stream:
                await stream.send(REQUEST)
                got = b""
                with anyio.fail_after(30):
                    while b"one" not in got:
                        got += await stream.receive()
                    await stream.send_eof()
                    try:
                        while True:  # to the proxy's close
                            got += await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        pass
        assert sent.is_set()
    [item] = recorder.cassette(recorded_at=STAMP, redact=False).interactions
    assert item.response.wire == HEAD + EVENT
    assert item.response.end == "stopped"
