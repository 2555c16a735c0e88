"""The recording proxy's splice tee (Linux: ``splice`` and ``tee``, the
bytes never in Python's memory) against its portable tee: the same reads,
recorded as the same chunks, and the same tee and flow control.  Each proxy
test runs both ways on asyncio and checks which tee ran."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable, Iterator

import anyio
import anyio.abc
import pytest

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_transports._server import proxy as proxy_module
from gptalk_transports._server import proxy_run, proxy_splice, spool
from gptalk_transports._server.spool import CAN_SPLICE, FileChunkStore, make_pipe

from . import test_adv_proxy_tee as hostile
from . import test_record_proxy, test_record_proxy_tee
from .proxy_cases import Upstream, proxy_in_front_of
from .test_record_proxy_spool import DictStore

needs_splice = pytest.mark.skipif(not CAN_SPLICE, reason="splice and tee are Linux's")


@pytest.fixture(params=["splice", "portable"])
def tee_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The proxy's tee on asyncio: splice (where it runs), or the portable
    one; afterwards, the splice tee ran exactly when it was asked for."""
    if request.param == "splice" and not CAN_SPLICE:
        pytest.skip("splice and tee are Linux's")
    used = [0]
    real = proxy_splice.splice_on_asyncio

    async def counted(*args: object, **kwargs: object) -> None:
        used[0] += 1
        await real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(proxy_module, "splice_on_asyncio", counted)
    monkeypatch.setattr(proxy_module, "SPLICE", request.param == "splice")
    yield request.param
    assert (used[0] > 0) == (request.param == "splice")


HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\nconnection: close\r\n\r\n"


def _record(
    pieces: list[bytes],
    *,
    gated: bool,
    client_waits: float = 0.0,
    whole: bool = True,
    read_once: Callable[[], bool] | None = None,
) -> tuple[bytes, list[bytes], list[float]]:
    """An upstream sends HEAD + ``pieces`` (then closes) through the proxy;
    ``gated``: each piece only once the client holds the one before.  The
    client waits ``client_waits`` seconds before reading, or, with
    ``read_once``, until it says so (an event the proxy's side saw: not
    bound by time); ``whole``: it got every byte sent.  Returns what the
    client got, and the recorded chunks and their times."""
    body = b"".join(pieces)
    held = [0]
    events: list[anyio.Event] = []

    async def upstream(stream: anyio.abc.ByteStream) -> None:
        async with stream:
            while b"\r\n\r\n" not in (await stream.receive()):
                pass
            await stream.send(HEAD)
            sent = len(HEAD)
            for piece in pieces:
                if gated:
                    while held[0] < sent:
                        event = anyio.Event()
                        events.append(event)
                        await event.wait()
                await stream.send(piece)
                sent += len(piece)

    async def main() -> tuple[bytes, g.cassette.Cassette | None]:
        got = b""
        async with (
            proxy_in_front_of(upstream, safety=60) as (run, address),
            await anyio.connect_tcp(*address) as client,
        ):
            await client.send(b"GET /x HTTP/1.1\r\nhost: h\r\n\r\n")
            await anyio.sleep(client_waits)
            while read_once is not None and not read_once():
                await anyio.sleep(0.01)  # (the proxy's loop runs meanwhile)
            while True:
                try:
                    got += await client.receive()
                except anyio.EndOfStream:
                    break
                held[0] = len(got)
                while events:
                    events.pop().set()
        return got, run.cassette

    got, cassette = anyio.run(main, backend="asyncio")
    assert cassette is not None
    [item] = cassette.interactions
    chunks = [chunk.data for chunk in item.response.chunks]
    times = [chunk.t for chunk in item.response.chunks]
    assert got == HEAD + body or not whole
    return got, chunks, times


def test_each_read_is_one_chunk_at_its_time(tee_path: str) -> None:
    """A gated upstream: each piece is one upstream read, so one recorded
    chunk, whatever its size (up to a pipe's), in order and in time."""
    pieces = [b"a", b"b" * 100, b"c" * 4096, b"d" * 40_000, b"e" * 7, b"f" * 60_000]
    _, chunks, times = _record(pieces, gated=True)
    assert chunks == [HEAD, *pieces]
    assert times == sorted(times)


def test_a_large_reply_to_a_slow_client_is_recorded_exactly(tee_path: str) -> None:
    """8 MB of random bytes, the client reading only after a while (its
    socket fills: what it did not take goes through its transport): the
    client and the cassette get every byte, in order, in reads no larger
    than a pipe holds."""
    rng = random.Random(7)
    pieces = [rng.randbytes(rng.randrange(1, 96 * 1024)) for _ in range(170)]
    got, chunks, _ = _record(pieces, gated=False, client_waits=0.5)
    assert b"".join(chunks) == got
    assert max(map(len, chunks)) <= max(spool.PIPE_SIZE, proxy_module.UPSTREAM_READ_SIZE)


@needs_splice
def test_what_a_full_client_socket_did_not_take_waits_in_the_pipe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Large reads to a client that reads late: its socket fills, the rest
    of each read stays in the pipe until it is writable (nothing read into
    memory for its transport), and the upstream is not read meanwhile."""
    monkeypatch.setattr(proxy_module, "SPLICE", True)
    copied: list[int] = []
    real_read = proxy_splice._read_exactly

    def read_exactly(fd: int, size: int) -> bytes:
        copied.append(size)
        return real_read(fd, size)

    monkeypatch.setattr(proxy_splice, "_read_exactly", read_exactly)
    waits = [0]
    real_wait = proxy_splice._SpliceTee._splice_left

    def splice_left(self: proxy_splice._SpliceTee) -> None:
        real_wait(self)
        if self._left:  # private: the client's socket is full
            waits[0] += 1
            assert not self._reading  # private: no upstream read meanwhile

    monkeypatch.setattr(proxy_splice._SpliceTee, "_splice_left", splice_left)
    rng = random.Random(5)
    pieces = [rng.randbytes(rng.randrange(64 * 1024, 700 * 1024)) for _ in range(12)]
    # The client reads once its socket was full (no time bound).
    got, chunks, _ = _record(pieces, gated=False, read_once=lambda: waits[0] > 0)
    assert b"".join(chunks) == got
    assert waits[0] > 0
    assert [size for size in copied if size >= spool.WRITE_HERE_BELOW] == []


@needs_splice
def test_the_upstreams_end_while_the_client_is_full_comes_after_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The upstream's end heard while the client has not taken the last read
    (its transport's loss, say, after a failed write of a request): the
    client still gets every byte read, then the exchange ends."""
    monkeypatch.setattr(proxy_module, "SPLICE", True)
    ended = [0]
    real = proxy_splice._SpliceTee._splice_left

    def splice_left(self: proxy_splice._SpliceTee) -> None:
        real(self)
        if self._left and not ended[0]:  # private: the client's socket is full
            ended[0] += 1
            self.end()
            assert not self.done.done()  # deferred: the rest goes first

    monkeypatch.setattr(proxy_splice._SpliceTee, "_splice_left", splice_left)
    body = random.Random(9).randbytes(6 * 1024 * 1024)
    got, chunks, _ = _record([body], gated=False, whole=False, read_once=lambda: ended[0] > 0)
    assert ended == [1]
    assert got == b"".join(chunks)  # every read, the last one whole
    assert len(got) < len(HEAD) + len(body)  # cut at that end, as recorded


def test_the_tee_holds_event_2_until_the_client_has_event_1(tee_path: str) -> None:
    test_record_proxy.test_tee_the_client_holds_event_1_before_the_upstream_sends_event_2("asyncio")


def test_a_client_that_does_not_read_holds_the_upstream_back(tee_path: str) -> None:
    test_record_proxy_tee.test_a_client_that_does_not_read_holds_the_upstream_back("asyncio")


def test_a_client_that_takes_nothing_is_cut_off(
    tee_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    test_record_proxy_tee.test_a_client_that_takes_nothing_for_send_timeout_is_cut_off(
        "asyncio", monkeypatch
    )


@pytest.mark.parametrize(
    "case",
    [
        hostile.test_a_client_gone_mid_stream,
        hostile.test_an_upstream_that_closes_mid_chunk,
        hostile.test_an_upstream_that_answers_before_the_request,
        hostile.test_pipelined_requests,
    ],
)
def test_hostile_peers(tee_path: str, case: Callable[[str], None]) -> None:
    case("asyncio")


@pytest.mark.parametrize("upstream", [hostile._garbage, hostile._cut_mid_head])
def test_an_upstream_that_sends_no_http_response(tee_path: str, upstream: Upstream) -> None:
    hostile.test_an_upstream_that_sends_no_http_response("asyncio", upstream)


@pytest.mark.parametrize("upstream", [hostile._answers_and_closes, hostile._keeps_alive])
def test_a_client_that_half_closes(tee_path: str, upstream: Upstream) -> None:
    hostile.test_a_client_that_half_closes_after_its_request("asyncio", upstream)


def test_with_chats_counted_the_bytes_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counting chats (``--chats``) reads each response: the portable tee."""
    used = [0]
    real = proxy_splice.splice_on_asyncio

    async def counted(*args: object, **kwargs: object) -> None:
        used[0] += 1  # pragma: no cover - the failure this test looks for
        await real(*args, **kwargs)  # type: ignore[arg-type]  # pragma: no cover

    monkeypatch.setattr(proxy_module, "splice_on_asyncio", counted)

    async def upstream(stream: anyio.abc.ByteStream) -> None:
        async with stream:
            while b"\r\n\r\n" not in (await stream.receive()):
                pass
            await stream.send(HEAD + b"counted")

    async def main() -> bytes:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        got = b""
        async with listener, anyio.create_task_group() as group:
            group.start_soon(listener.serve, upstream)
            async with proxy_run.record_through_proxy(
                f"http://127.0.0.1:{port}", chats=1, trust_env=False
            ) as run:
                host, _, bound = run.url.removeprefix("http://").partition(":")
                async with await anyio.connect_tcp(host, int(bound)) as client:
                    await client.send(b"GET /x HTTP/1.1\r\nhost: h\r\n\r\n")
                    while not got.endswith(b"counted"):
                        got += await client.receive()
            group.cancel_scope.cancel()
        return got

    assert anyio.run(main, backend="asyncio").endswith(b"counted")
    assert used == [0]


# The store's side.


def _pipe_with(data: bytes) -> tuple[int, int, int]:
    pipe = make_pipe()
    assert os.write(pipe[1], data) == len(data)
    return pipe


def _closed(*pipes: tuple[int, int, int]) -> None:
    for pipe in pipes:
        os.close(pipe[0])
        os.close(pipe[1])


@needs_splice
def test_teed_chunks_keep_their_keys_among_put_ones() -> None:
    """Teed reads (left in their pipe) and put ones, small and large, come
    back at their keys."""
    rng = random.Random(3)
    store = FileChunkStore()
    want: list[bytes] = []
    try:
        for i in range(60):
            data = rng.randbytes(rng.choice([1, 300, 40_000, 200_000]))
            if i % 3:
                source = _pipe_with(data)
                key = store.put_teed(source[0], len(data), source[2])
                assert os.read(source[0], len(data) + 1) == data  # still there
                _closed(source)
            else:
                key = store.put(data)
            assert key == len(want)
            want.append(data)
        assert [store.get(k) for k in range(len(want))] == want
        assert store.size == sum(map(len, want))
    finally:
        store.close()


@needs_splice
def test_a_teed_read_waits_for_a_pipe_and_the_writer_is_woken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With every pipe holding a read the writer has not been woken for
    (less than WAKE_WRITER_AT queued), the next ``put_teed`` wakes it and
    waits for a pipe: no deadlock, and no more than MAX_PIPES pipes."""
    monkeypatch.setattr(spool, "MAX_PIPES", 2)
    monkeypatch.setattr(spool, "WAKE_WRITER_AT", 1 << 40)
    monkeypatch.setattr(spool, "MAX_QUEUED", 1 << 40)
    store = FileChunkStore()
    done = threading.Event()

    def puts() -> None:
        for i in range(8):
            data = bytes([i]) * 40_000
            source = _pipe_with(data)
            store.put_teed(source[0], len(data), source[2])
            _closed(source)
            assert store._made <= 2  # private: the pipes made
        done.set()

    thread = threading.Thread(target=puts, daemon=True)
    thread.start()
    try:
        assert done.wait(30)
        assert [store.get(k) for k in range(8)] == [bytes([i]) * 40_000 for i in range(8)]
    finally:
        store.close()


@needs_splice
def test_a_source_larger_than_the_stores_pipes_is_not_teed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(spool, "PIPE_SIZE", 4096)
    store = FileChunkStore()
    source = _pipe_with(b"x" * 10)
    try:
        assert store.put_teed(source[0], 10, 1 << 20) is None
        assert store.size == 0
        assert store._made == 0  # private: the small pipe went
    finally:
        _closed(source)
        store.close()


@needs_splice
def test_close_frees_the_stores_pipes() -> None:
    before = len(os.listdir("/proc/self/fd"))
    store = FileChunkStore()
    source = _pipe_with(b"y" * 1000)
    for _ in range(3):
        store.put_teed(source[0], 1000, source[2])
    _closed(source)
    store.close()
    assert len(os.listdir("/proc/self/fd")) == before


@needs_splice
def test_a_failed_move_into_the_file_is_raised_by_every_later_put_and_get(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def full(*_: object, **__: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(spool, "DIRECT", False)  # the move is splice's (past the cache: below)
    monkeypatch.setattr(spool, "_SPLICE", full)
    store = FileChunkStore()
    source = _pipe_with(b"z" * 1000)
    try:
        store.put_teed(source[0], 1000, source[2])
        with pytest.raises(OSError, match="No space"):
            store.get(0)
        with pytest.raises(OSError, match="No space"):
            store.put_teed(source[0], 1000, source[2])
        with pytest.raises(OSError, match="No space"):
            store.put(b"w" * 100_000)
    finally:
        _closed(source)
        store.close()


# The core's side: reads the driver stored itself.


def _stored_cassette(pieces: list[bytes], stored: bool) -> g.cassette.Cassette:
    store = DictStore()
    recorder = g.cassette.Recorder("http://up.example", store=store)
    number = recorder.open_connection()
    recorder.sent(number, b"GET /x HTTP/1.1\r\nhost: h\r\n\r\n", 0.5)
    for i, piece in enumerate(pieces):
        if stored:
            recorder.received_stored(number, store.put(piece), 1.0 + i)
        else:
            recorder.received(number, piece, 1.0 + i)
    recorder.received(number, b"", 9.0)
    return recorder.cassette(recorded_at="2026-12-03T00:00:00Z")


def test_a_stored_read_is_recorded_as_a_received_one() -> None:
    pieces = [HEAD[:10], HEAD[10:] + b"body", b"more"]
    assert _stored_cassette(pieces, True) == _stored_cassette(pieces, False)


def test_stored_reads_are_refused_where_bytes_are_counted() -> None:
    recorder = g.cassette.Recorder("http://up.example", max_events=3)
    number = recorder.open_connection()
    recorder.sent(number, b"GET /x HTTP/1.1\r\nhost: h\r\n\r\n", 0.5)
    with pytest.raises(g.LocalProtocolError):
        recorder.received_stored(number, recorder.store.put(b"x"), 1.0)
    fresh = g.cassette.Recorder("http://up.example")
    unasked = fresh.open_connection()
    with pytest.raises(g.RemoteProtocolError):
        fresh.received_stored(unasked, 0, 1.0)


def test_the_proxy_connection_refuses_stored_reads_when_it_follows_responses() -> None:
    counting = g.cassette.ProxyRecorder("http://up.example", host="up.example").connection()
    assert counting.follows_responses
    with pytest.raises(g.LocalProtocolError):
        counting.upstream_stored(0, 1.0)
    proxy = g.cassette.ProxyRecorder("http://up.example", host="up.example", count_chats=False)
    conn = proxy.connection()
    conn.upstream_stored(proxy.recorder.store.put(b"early"), 0.5)  # nothing asked: not kept
    [action] = conn.client_data(b"GET /x HTTP/1.1\r\nhost: h\r\n\r\n", 1.0)
    assert isinstance(action, g.cassette.ToUpstream)
    conn.upstream_stored(proxy.recorder.store.put(HEAD + b"ok"), 2.0)
    cassette = proxy.cassette(recorded_at="2026-12-03T00:00:00Z", redact=False)
    [item] = cassette.interactions
    assert [(c.t, c.data) for c in item.response.chunks] == [(2.0, HEAD + b"ok")]
