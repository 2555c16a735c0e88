"""The recording proxy's spool: recorded bytes wait in an unnamed temporary
file (``FileChunkStore``), not in memory, and the file goes on every exit."""

from __future__ import annotations

import errno
import os
import platform
import subprocess
import sys
import threading
from contextlib import suppress

import anyio
import anyio.abc
import pytest
from anyio import wait_all_tasks_blocked

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_transports import serve_in_thread
from gptalk_transports._server import proxy_run, spool
from gptalk_transports._server.proxy_run import record_through_proxy, record_through_proxy_in_thread
from gptalk_transports._server.spool import FileChunkStore

from .proxy_cases import proxy_in_front_of
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

    monkeypatch.setattr(proxy_run, "FileChunkStore", make)
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
        # (The safety net only: blocked tasks are what is tested.)
        async with (
            proxy_in_front_of(upstream) as (_, address),
            await anyio.connect_tcp(*address) as client,
        ):
            await client.send(b"GET /big HTTP/1.1\r\nhost: h\r\n\r\n")
            # Every task waits: the upstream on its full socket, the
            # proxy on the client's, the client reads nothing.
            while sent == 0:
                await anyio.sleep(0)
            await wait_all_tasks_blocked()
            [store] = made
            held = store.size
            # Socket buffers (a few MB each on loopback) hold the rest;
            # the proxy stopped reading long before the end.
            assert 0 < held < 32 * 1024 * 1024
            assert sent - held < 32 * 1024 * 1024
            assert sent < total

    anyio.run(main)


# -- the writer thread --------------------------------------------------------------------


def _varied(count: int) -> list[bytes]:
    """Chunks below and above the small-write size, each its own bytes."""
    return [bytes([i % 251]) * ((i * 389) % 3000) for i in range(count)]


@pytest.mark.parametrize("pwritev", ["os", "short", "none"])
def test_the_writer_thread_keeps_every_chunk_at_its_key(
    monkeypatch: pytest.MonkeyPatch, pwritev: str
) -> None:
    # Small sizes: reads above the size go to the writer, batches of a few
    # queued chunks, and puts past the cap wait for it.
    monkeypatch.setattr(spool, "WRITE_HERE_BELOW", 1000)
    monkeypatch.setattr(spool, "MAX_QUEUED", 5000)
    monkeypatch.setattr(spool, "_MAX_PIECES", 3)
    monkeypatch.setattr(spool, "DROP_EVERY", 4000)
    real = os.pwritev

    def short(fd: int, buffers: list[bytes], offset: int) -> int:
        # The first buffer, half of it: the rest goes one pwrite at a time.
        return real(fd, [buffers[0][: len(buffers[0]) // 2]], offset)

    monkeypatch.setattr(spool, "_PWRITEV", {"os": real, "short": short, "none": None}[pwritev])
    store = FileChunkStore()
    try:
        chunks = _varied(300)
        keys = [store.put(chunk) for chunk in chunks]
        assert store._writer is not None  # private: the large ones were queued
        assert [store.get(k) for k in keys] == chunks
        assert os.pread(store._fd, store.size + 1, 0) == b"".join(chunks)  # private
    finally:
        store.close()
    assert store._writer is not None
    assert not store._writer.is_alive()


def test_small_chunks_alone_start_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spool, "WRITE_HERE_BELOW", 3001)
    store = FileChunkStore()
    try:
        chunks = _varied(50)
        keys = [store.put(chunk) for chunk in chunks]
        assert [store.get(k) for k in keys] == chunks
        assert store._writer is None  # private: each was written by put
    finally:
        store.close()


@pytest.mark.parametrize("size", [10, 100])
def test_pages_are_asked_to_go_whoever_writes_them(
    monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    """Small reads (written by put) and large ones (by the writer thread)
    alike: every DROP_EVERY bytes the written-back pages are asked to go."""
    monkeypatch.setattr(spool, "WRITE_HERE_BELOW", 50)
    monkeypatch.setattr(spool, "DROP_EVERY", 300)
    asked: list[tuple[int, int]] = []
    monkeypatch.setattr(spool, "_ADVISE", lambda fd, at, size, advice: asked.append((at, size)))
    store = FileChunkStore()
    try:
        for _ in range(100):
            store.put(b"p" * size)
        store.get(0)  # the writer is done
    finally:
        store.close()
    # All but the last DROP_EVERY bytes were asked for (the writer thread
    # asks once per batch of queued reads)...
    ends = [at + length for at, length in asked]
    assert ends[-1] >= 100 * size - 300
    # ...and each ask starts where the one before the last ended: gapless.
    assert ends == sorted(ends)
    assert asked[0][0] == 0
    before_last = [0, *ends][: len(asked) - 1]
    assert [at for at, _ in asked[1:]] == before_last


def test_a_put_past_the_cap_waits_for_the_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spool, "WRITE_HERE_BELOW", 0)
    monkeypatch.setattr(spool, "MAX_QUEUED", 150)
    gate = threading.Event()
    real = spool._write_at

    def held(fd: int, pieces: list[bytes], offset: int) -> None:
        gate.wait(30)
        real(fd, pieces, offset)

    monkeypatch.setattr(spool, "_write_at", held)
    store = FileChunkStore()
    try:
        store.put(b"a" * 60)  # the writer takes it, and waits at the gate
        store.put(b"b" * 60)  # 120 bytes not written yet: under the cap
        third = threading.Thread(target=store.put, args=(b"c" * 60,))
        third.start()
        third.join(0.3)
        assert third.is_alive()  # 180 bytes: past the cap, it waits
        gate.set()
        third.join(30)
        assert not third.is_alive()
        assert [store.get(k) for k in range(3)] == [b"a" * 60, b"b" * 60, b"c" * 60]
    finally:
        gate.set()
        store.close()


def _disk_full(monkeypatch: pytest.MonkeyPatch) -> OSError:
    """From now on every write of the spool fails as a full disk does; the
    error it raises."""
    full = OSError(errno.ENOSPC, "No space left on device")

    def fail(fd: int, pieces: list[bytes], offset: int) -> None:
        raise full

    monkeypatch.setattr(spool, "_write_at", fail)
    return full


def test_the_writers_error_is_raised_by_the_next_put_and_get(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(spool, "WRITE_HERE_BELOW", 10)
    store = FileChunkStore()
    try:
        store.put(b"small")  # written by put itself
        full = _disk_full(monkeypatch)
        store.put(b"x" * 100)  # queued; the writer fails on it
        with pytest.raises(OSError, match="No space") as caught:
            store.get(0)
        assert caught.value is full
        with pytest.raises(OSError, match="No space"):
            store.put(b"more")
    finally:
        store.close()


def test_a_closed_store_takes_no_more_chunks() -> None:
    store = FileChunkStore()
    store.put(b"y" * (spool.WRITE_HERE_BELOW + 1))  # queued
    store.close()  # waits for the writer, then frees the file
    with pytest.raises(ValueError, match="closed"):
        store.put(b"z")


# Read buffers held by the spool's queue, freed, then made again, in a fresh
# interpreter (malloc's thresholds are per process) with a proxy running:
# prints the page faults of making them again.
_CHURN = """
import resource
from gptalk_transports._server.proxy_run import record_through_proxy_in_thread
from gptalk_transports._server.spool import MAX_QUEUED

def faults() -> int:
    n = MAX_QUEUED // (256 * 1024) - 1  # as many 256 KiB reads as may wait
    held = [bytearray(256 * 1024) for _ in range(n)]
    del held
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    held = [bytearray(256 * 1024) for _ in range(n)]
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

with record_through_proxy_in_thread("http://127.0.0.1:9", trust_env=False):
    print(faults())
"""


@pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc",
    reason="glibc's malloc thresholds",
)
def test_reads_the_spool_held_are_made_again_from_the_heap_without_faults() -> None:
    """The writer thread frees the reads it wrote, up to MAX_QUEUED at once:
    a heap that gave those pages back to the kernel took a page fault per
    4 KiB to make the next reads."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    found = subprocess.run(
        [sys.executable, "-c", _CHURN], capture_output=True, text=True, check=True, env=env
    )
    # 3.75 MiB made again: 960 pages; a trimmed heap faulted most of them.
    assert int(found.stdout) < 100


def test_the_writer_is_woken_per_batch_not_per_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reads wait in the queue until WAKE_WRITER_AT bytes are there: one
    write for many reads; a get wakes the writer for what is queued below it."""
    monkeypatch.setattr(spool, "WRITE_HERE_BELOW", 0)
    monkeypatch.setattr(spool, "WAKE_WRITER_AT", 1000)
    writes: list[int] = []
    real = spool._write_at

    def counted(fd: int, pieces: list[bytes], offset: int) -> None:
        writes.append(len(pieces))
        real(fd, pieces, offset)

    monkeypatch.setattr(spool, "_write_at", counted)
    store = FileChunkStore()
    try:
        chunks = [bytes([i]) * 100 for i in range(95)]  # 9,500 bytes
        keys = [store.put(chunk) for chunk in chunks]
        assert store.get(keys[-1]) == chunks[-1]  # the last 500 bytes: woken by get
        assert [store.get(k) for k in keys] == chunks
        assert sum(writes) == len(chunks)
        assert len(writes) <= 95 // 10 + 1  # batches of 1,000 bytes or more
    finally:
        store.close()


def test_small_chunks_are_held_and_written_together(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small chunks wait in memory, up to HOLD_UP_TO bytes, and go to the file
    in one write: at the cap, before a large chunk is queued (in order,
    before it), and when one is read back."""
    monkeypatch.setattr(spool, "WRITE_HERE_BELOW", 100)
    monkeypatch.setattr(spool, "HOLD_UP_TO", 250)
    monkeypatch.setattr(spool, "WAKE_WRITER_AT", 1)
    writes: list[list[bytes]] = []
    real = spool._write_at

    def counted(fd: int, pieces: list[bytes], offset: int) -> None:
        writes.append(list(pieces))
        real(fd, pieces, offset)

    monkeypatch.setattr(spool, "_write_at", counted)
    store = FileChunkStore()
    try:
        small = [bytes([i]) * 60 for i in range(5)]
        keys = [store.put(chunk) for chunk in small[:4]]
        assert writes == []  # 240 bytes held: no write yet
        keys.append(store.put(small[4]))  # 300 bytes: at the cap, one write
        assert writes == [[b"".join(small)]]
        keys.append(store.put(b"h" * 50))  # held...
        keys.append(store.put(b"L" * 500))  # ...and queued before this one
        keys.append(store.put(b"t" * 10))  # held until read back
        chunks = [*small, b"h" * 50, b"L" * 500, b"t" * 10]
        assert [store.get(k) for k in keys] == chunks
        assert os.pread(store._fd, store.size + 1, 0) == b"".join(chunks)  # private
        assert len(writes) <= 4
    finally:
        store.close()


def test_held_chunks_written_between_two_queued_ones_keep_their_place(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A large chunk waits in the queue (the writer is not woken), small
    ones after it reach HOLD_UP_TO and put writes them itself, then another
    large one is queued: the two queued chunks are not adjacent in the file,
    and the second goes at its own offset (it went right after the first,
    over the small ones, and the file ended short of the store's end)."""
    monkeypatch.setattr(spool, "WRITE_HERE_BELOW", 100)
    monkeypatch.setattr(spool, "HOLD_UP_TO", 250)
    monkeypatch.setattr(spool, "WAKE_WRITER_AT", 1 << 40)
    store = FileChunkStore()
    try:
        chunks = [b"A" * 400, *(bytes([66 + i]) * 60 for i in range(5)), b"Z" * 400]
        keys = [store.put(chunk) for chunk in chunks]
        assert [store.get(k) for k in keys] == chunks
        assert os.pread(store._fd, store.size + 1, 0) == b"".join(chunks)  # private
    finally:
        store.close()


def test_a_failed_write_of_held_chunks_is_raised_by_every_later_put_and_get(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(spool, "HOLD_UP_TO", 20)
    store = FileChunkStore()
    try:
        store.put(b"a" * 10)  # held
        _disk_full(monkeypatch)
        with pytest.raises(OSError, match="No space"):
            store.put(b"b" * 10)  # at the cap: the write fails
        with pytest.raises(OSError, match="No space"):
            store.get(0)  # its key was handed out: it cannot be read back
        with pytest.raises(OSError, match="No space"):
            store.put(b"c")
    finally:
        store.close()
