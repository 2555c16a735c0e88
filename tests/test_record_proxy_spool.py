"""The recording proxy's spool: recorded bytes wait in an unnamed temporary
file (``FileChunkStore``), not in memory, and the file goes on every exit."""

from __future__ import annotations

from contextlib import suppress
from urllib.parse import urlsplit

import anyio
import anyio.abc
import pytest
from anyio import wait_all_tasks_blocked

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_transports import serve_in_thread
from gptalk_transports._server import proxy as proxy_module
from gptalk_transports._server import spool
from gptalk_transports._server.proxy import record_through_proxy, record_through_proxy_in_thread
from gptalk_transports._server.spool import FileChunkStore

from .test_record_proxy import by_hand, check_cassette


class DictStore:
    """The core's store protocol, in memory: keys in order of arrival."""

    def __init__(self) -> None:
        self.kept: list[bytes] = []

    def put(self, data: bytes) -> int:
        self.kept.append(data)
        return len(self.kept) - 1

    def get(self, key: int) -> bytes:
        return self.kept[key]


def _recorded(store: g.cassette.ChunkStore | None) -> g.cassette.Cassette:
    recorder = g.cassette.Recorder("http://up.example", store=store)
    number = recorder.open_connection()
    recorder.sent(number, b"GET /x HTTP/1.1\r\nhost: h\r\n\r\n", 0.5)
    for i, piece in enumerate(
        [b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n", b"\r\ndata: a\n\n", b"data: b"]
    ):
        recorder.received(number, piece, 1.0 + i)
    recorder.received(number, b"", 9.0)
    recorder.sent(number, b"GET /unanswered HTTP/1.1\r\nhost: h\r\n\r\n", 10.0)
    return recorder.cassette(recorded_at="2026-12-02T00:00:00Z")


def test_a_recorder_with_a_store_records_what_one_without_does() -> None:
    store = DictStore()
    assert _recorded(store) == _recorded(None)
    assert len(store.kept) == 3  # only the bytes went there


def test_file_store_gives_back_every_chunk_between_puts_and_gets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Small drops: the advice path runs many times on a small file.
    monkeypatch.setattr(spool, "DROP_EVERY", 10)
    store = FileChunkStore()
    try:
        chunks = [bytes([i % 256]) * (i * 7 % 23) for i in range(200)]
        keys = []
        for i, chunk in enumerate(chunks):
            keys.append(store.put(chunk))
            if i % 17 == 0:  # a read between writes must not misplace the next write
                assert store.get(keys[i // 2]) == chunks[i // 2]
        assert [store.get(k) for k in keys] == chunks
        assert store.size == sum(map(len, chunks))
    finally:
        store.close()


def _stores(monkeypatch: pytest.MonkeyPatch) -> list[FileChunkStore]:
    made: list[FileChunkStore] = []

    def make() -> FileChunkStore:
        made.append(FileChunkStore())
        return made[-1]

    monkeypatch.setattr(proxy_module, "FileChunkStore", make)
    return made


def test_the_proxy_records_through_the_file_and_closes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = _stores(monkeypatch)
    with (
        serve_in_thread() as upstream,
        record_through_proxy_in_thread(upstream, trust_env=False) as run,
    ):
        got, tokens = by_hand(run.url, "Hello through the spool")
        [store] = made
        assert store.size > len(got)  # the responses went to the file
    assert run.cassette is not None
    check_cassette(run.cassette, "Hello through the spool", got, tokens)
    assert store._file.closed  # private: the file is gone with the proxy


def test_the_file_is_closed_when_the_block_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    made = _stores(monkeypatch)

    async def main() -> None:
        async with record_through_proxy("http://127.0.0.1:9", trust_env=False):
            raise KeyError("the caller's own error")

    with pytest.raises(KeyError):
        anyio.run(main)
    [store] = made
    assert store._file.closed


def test_the_file_is_closed_when_the_block_is_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    made = _stores(monkeypatch)

    async def main() -> None:
        with anyio.CancelScope() as scope:
            async with record_through_proxy("http://127.0.0.1:9", trust_env=False):
                scope.cancel()
                await anyio.sleep_forever()
        assert scope.cancelled_caught

    anyio.run(main)
    [store] = made
    assert store._file.closed


def test_the_file_is_closed_when_the_recorder_cannot_be_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = _stores(monkeypatch)

    async def main() -> None:
        async with record_through_proxy("http://127.0.0.1:9/base/path", trust_env=False):
            pass  # pragma: no cover - refused before

    with pytest.raises(g.LocalProtocolError):
        anyio.run(main)
    [store] = made
    assert store._file.closed


def test_a_client_that_stops_reading_stops_the_upstream_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fast upstream and a client that reads nothing: the proxy reads
    upstream only as fast as the client takes (tee, never buffer), so what
    it holds is bounded by the sockets' buffers, not by the stream."""
    made = _stores(monkeypatch)
    total = 256 * 1024 * 1024  # far past every socket buffer on the way
    piece = b"x" * (64 * 1024)
    sent = 0

    async def upstream(stream: anyio.abc.ByteStream) -> None:
        nonlocal sent
        # The proxy drops it at the end, mid-stream.
        with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            await send_all(stream)

    async def send_all(stream: anyio.abc.ByteStream) -> None:
        nonlocal sent
        async with stream:
            while b"\r\n\r\n" not in (await stream.receive()):
                pass
            await stream.send(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n"
                b"content-length: %d\r\n\r\n" % total
            )
            while sent < total:
                await stream.send(piece)
                sent += len(piece)

    async def main() -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        with anyio.fail_after(60):  # a safety net: blocked tasks are what is tested
            async with listener, anyio.create_task_group() as group:
                group.start_soon(listener.serve, upstream)
                async with record_through_proxy(f"http://127.0.0.1:{port}") as run:
                    parts = urlsplit(run.url)
                    client = await anyio.connect_tcp(parts.hostname or "", parts.port or 0)
                    async with client:
                        await client.send(b"GET /big HTTP/1.1\r\nhost: h\r\n\r\n")
                        # Every task waits: the upstream on its full socket,
                        # the proxy on the client's, the client reads nothing.
                        while sent == 0:
                            await anyio.sleep(0)
                        await wait_all_tasks_blocked()
                        [store] = made
                        held = store.size
                        # Socket buffers (a few MB each on loopback) hold the
                        # rest; the proxy stopped reading long before the end.
                        assert 0 < held < 32 * 1024 * 1024
                        assert sent - held < 32 * 1024 * 1024
                        assert sent < total
                group.cancel_scope.cancel()

    anyio.run(main)
