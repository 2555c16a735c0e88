"""The spool's writes past the page cache (Linux's ``O_DIRECT``, see
``_server.spool_direct``): teed reads and the chunks put after them come back
exact at their keys, whatever the blocks they straddle and the gets between
them, and a file system that refuses ``O_DIRECT`` gets them through the page
cache, as before."""

from __future__ import annotations

import errno
import os
import random
import threading
import time
from collections.abc import Iterator

import pytest

from gptalk_transports._server import proxy as proxy_module
from gptalk_transports._server import spool, spool_direct
from gptalk_transports._server.spool import CAN_SPLICE, FileChunkStore

from .test_record_proxy_splice import _closed, _pipe_with, _record

pytestmark = pytest.mark.skipif(not CAN_SPLICE, reason="splice, tee and O_DIRECT are Linux's")


@pytest.fixture
def direct_writes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, int]]]:
    """A small stage (16 KiB: many blocks, many stage writes in a short
    test); the ``O_DIRECT`` writes made, as (offset, size)."""
    monkeypatch.setattr(spool_direct, "STAGE_SIZE", 16 * 1024)
    made: list[tuple[int, int]] = []
    real = spool_direct._direct_write

    def counted(fd: int, data: memoryview, offset: int) -> int:
        done = real(fd, data, offset)
        made.append((offset, done))
        return done

    monkeypatch.setattr(spool_direct, "_direct_write", counted)
    yield made
    for offset, size in made:
        assert offset % spool_direct.ALIGN == 0
        assert size % spool_direct.ALIGN == 0


def _teed(store: FileChunkStore, data: bytes) -> int:
    source = _pipe_with(data)
    try:
        key = store.put_teed(source[0], len(data), source[2])
        assert key is not None
        return key
    finally:
        _closed(source)


def _mixed(store: FileChunkStore, seed: int, count: int) -> list[bytes]:
    """``count`` chunks, teed and put, small and large, into ``store`` (its
    keys counted from the chunks it has), with gets between them (each makes
    the stage write its last block, padded, and again with what follows)."""
    before = len(store._starts)  # private
    rng = random.Random(seed)
    want: list[bytes] = []
    for i in range(count):
        data = rng.randbytes(rng.choice([1, 77, 4096, 5000, 40_000, 70_000]))
        key = _teed(store, data) if i % 3 else store.put(data)
        assert key == before + len(want)
        want.append(data)
        if i % 7 == 0:
            k = rng.randrange(len(want))
            assert store.get(before + k) == want[k]
    return want


def _head(store: FileChunkStore) -> list[bytes]:
    """Small chunks put writes itself (HOLD_UP_TO reached), before any teed
    read: the stage then starts in the middle of a block, which it reads
    back from the file."""
    head = [bytes([i]) * 1234 for i in range(60)]
    for data in head:
        store.put(data)
    return head


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_teed_and_put_chunks_keep_their_keys_past_the_cache(
    direct_writes: list[tuple[int, int]], seed: int
) -> None:
    store = FileChunkStore()
    try:
        want = _head(store) + _mixed(store, seed, 60)
        assert [store.get(k) for k in range(len(want))] == want
        assert store.size == sum(map(len, want))
        assert store._stage is not None  # private: it ran
        store.put(b"x")
        assert store._held == []  # private: put holds nothing once staging
        assert store.get(len(want)) == b"x"
        assert len(direct_writes) > 10
    finally:
        store.close()


def test_with_direct_off_teed_reads_are_spliced_into_the_cache(
    monkeypatch: pytest.MonkeyPatch, direct_writes: list[tuple[int, int]]
) -> None:
    monkeypatch.setattr(spool, "DIRECT", False)
    store = FileChunkStore()
    try:
        want = _head(store) + _mixed(store, 4, 40)
        assert [store.get(k) for k in range(len(want))] == want
        assert store._stage is None  # private
        assert direct_writes == []
    finally:
        store.close()


def test_a_file_system_that_refuses_direct_at_open_gets_splice(
    monkeypatch: pytest.MonkeyPatch, direct_writes: list[tuple[int, int]]
) -> None:
    def refused(fd: int, flags: int) -> int:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(spool_direct, "_reopen", refused)
    store = FileChunkStore()
    try:
        want = _head(store) + _mixed(store, 6, 40)
        assert [store.get(k) for k in range(len(want))] == want
        assert store._stage is None  # private
        assert store._no_stage  # private: asked once, then never again
        assert not store._staging  # private: put holds small chunks again
        assert direct_writes == []
    finally:
        store.close()


@pytest.mark.parametrize("after", [0, 3, 5, 8])
def test_a_refused_direct_write_goes_through_the_cache(
    monkeypatch: pytest.MonkeyPatch, direct_writes: list[tuple[int, int]], after: int
) -> None:
    """``EINVAL`` at the stage's first write (or after a few, whatever the
    cause): what it holds, and all that follows, goes through the page
    cache."""
    real = spool_direct._direct_write  # the fixture's, counting
    left = [after]

    def refused(fd: int, data: memoryview, offset: int) -> int:
        if left[0]:
            left[0] -= 1
            return real(fd, data, offset)
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(spool_direct, "_direct_write", refused)
    store = FileChunkStore()
    try:
        want = _head(store) + _mixed(store, 7, 40)
        assert [store.get(k) for k in range(len(want))] == want
        assert store._stage is None  # private: dropped
        assert store._no_stage  # private
        assert len(direct_writes) == after
    finally:
        store.close()


def test_a_failed_direct_write_is_raised_by_every_later_put_and_get(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def full(fd: int, data: memoryview, offset: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool_direct, "_direct_write", full)
    store = FileChunkStore()
    try:
        _teed(store, b"z" * 1000)
        with pytest.raises(OSError, match="No space"):
            store.get(0)
        with pytest.raises(OSError, match="No space"):
            store.put(b"w" * 100_000)
        source = _pipe_with(b"z" * 10)
        try:
            with pytest.raises(OSError, match="No space"):
                store.put_teed(source[0], 10, source[2])
        finally:
            _closed(source)
    finally:
        store.close()


def test_the_stage_writes_whole_blocks_and_a_get_only_the_last_one_again(
    direct_writes: list[tuple[int, int]],
) -> None:
    """Each full stage is written whole, once; a get writes the rest, its
    last block padded, and that block goes again, whole, with what follows
    it."""
    size = spool_direct.STAGE_SIZE
    store = FileChunkStore()
    try:
        data = b"s" * (3 * size + 100)
        _teed(store, data)
        assert store.get(0) == data
        assert direct_writes == [(i * size, size) for i in range(3)] + [(3 * size, 4096)]
        more = b"m" * size
        _teed(store, more)
        assert store.get(1) == more
        assert direct_writes[4] == (3 * size, size)  # from the last block, again
        assert [store.get(0), store.get(1)] == [data, more]
        with open(f"/proc/self/fd/{store._fd}", "rb") as file:  # private: the file
            assert file.read(len(data) + len(more)) == data + more
    finally:
        store.close()


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="no tmpfs at /dev/shm")
def test_a_spool_on_tmpfs_keeps_every_chunk(direct_writes: list[tuple[int, int]]) -> None:
    """tmpfs takes ``O_DIRECT`` since Linux 6.6 and refuses it before: the
    chunks come back either way."""
    store = FileChunkStore(dir="/dev/shm")
    try:
        want = _head(store) + _mixed(store, 8, 30)
        assert [store.get(k) for k in range(len(want))] == want
    finally:
        store.close()


@pytest.mark.parametrize("direct", [True, False])
def test_a_large_reply_through_the_proxy_is_recorded_exactly(
    monkeypatch: pytest.MonkeyPatch, direct: bool
) -> None:
    """Through the proxy's splice tee, past the cache or spliced into it."""
    monkeypatch.setattr(spool, "DIRECT", direct)
    monkeypatch.setattr(proxy_module, "SPLICE", True)
    rng = random.Random(11)
    pieces = [rng.randbytes(rng.randrange(1, 300 * 1024)) for _ in range(40)]
    got, chunks, _ = _record(pieces, gated=False, client_waits=0.2)
    assert b"".join(chunks) == got
    assert max(map(len, chunks)) <= max(spool.PIPE_SIZE, proxy_module.UPSTREAM_READ_SIZE)


def _behind_the_writer(name: str = "gptalk-spool-direct") -> bool:
    return threading.current_thread().name == name


def test_full_buffers_go_to_the_disk_beside_the_next_copies(
    monkeypatch: pytest.MonkeyPatch, direct_writes: list[tuple[int, int]]
) -> None:
    """Once a write went through, each full buffer is written by the
    stage's own thread while the writer thread copies the next reads into
    another (their pipes free, their bytes no longer queued), up to
    STAGE_BUFFERS; a get waits for the writes under way."""
    monkeypatch.setattr(spool, "WAKE_WRITER_AT", 1)  # the writer takes each read
    gate = threading.Event()
    counted = spool_direct._direct_write  # the fixture's
    writers: list[str] = []

    def held(fd: int, data: memoryview, offset: int) -> int:
        writers.append(threading.current_thread().name)
        if _behind_the_writer():
            assert gate.wait(30)
        return counted(fd, data, offset)

    monkeypatch.setattr(spool_direct, "_direct_write", held)
    size = spool_direct.STAGE_SIZE
    store = FileChunkStore()
    try:
        assert [_teed(store, b"a" * size), _teed(store, b"b" * size)] == [0, 1]
        # The first buffer went from the writer thread; the second is held.
        deadline = time.monotonic() + 30
        while len(writers) < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert writers == ["gptalk-spool", "gptalk-spool-direct"]
        more = bytes(range(256)) * (size // 256 - 1)
        key = _teed(store, more)
        while store._queued and time.monotonic() < deadline:  # private
            time.sleep(0.005)
        assert store._queued == 0  # private: copied while the write is held
        assert len(writers) == 2
        got: list[bytes] = []
        reader = threading.Thread(target=lambda: got.append(store.get(key)))
        reader.start()
        time.sleep(0.05)
        assert got == []  # the get waits for the write under way
        gate.set()
        reader.join(30)
        assert got == [more]
        assert [store.get(k) for k in range(3)] == [b"a" * size, b"b" * size, more]
        assert direct_writes[:2] == [(0, size), (size, size)]
    finally:
        gate.set()
        store.close()


@pytest.mark.parametrize(
    "failure",
    [
        OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),
        OSError(errno.EIO, os.strerror(errno.EIO)),
        RuntimeError("not a disk's error"),
    ],
    ids=["ENOSPC", "EIO", "not-an-OSError"],
)
def test_a_failed_background_write_is_raised_by_later_puts_and_gets(
    monkeypatch: pytest.MonkeyPatch, direct_writes: list[tuple[int, int]], failure: Exception
) -> None:
    """A disk's error in the stage's thread, or anything else it meets
    (ended as a disk's error, its cause kept): later gets and puts raise
    it, none waits for good."""
    counted = spool_direct._direct_write  # the fixture's

    def failing(fd: int, data: memoryview, offset: int) -> int:
        if _behind_the_writer():
            raise failure
        return counted(fd, data, offset)

    monkeypatch.setattr(spool_direct, "_direct_write", failing)
    size = spool_direct.STAGE_SIZE
    store = FileChunkStore()
    message = failure.strerror if isinstance(failure, OSError) else str(failure)
    try:
        for part in (b"a", b"b", b"c"):
            _teed(store, part * size)
        with pytest.raises(OSError, match=message) as raised:
            store.get(1)
        if not isinstance(failure, OSError):
            assert raised.value.__cause__ is failure
        with pytest.raises(OSError, match=message):
            store.put(b"w" * 100_000)
        assert direct_writes == [(0, size)]  # the writer thread's, before
    finally:
        store.close()


def test_the_stage_buffers_are_one_private_mapping(
    direct_writes: list[tuple[int, int]],
) -> None:
    """Private (huge pages where the kernel gives them): STAGE_BUFFERS of
    STAGE_SIZE."""
    store = FileChunkStore()
    try:
        _teed(store, b"x" * 5000)
        assert store.get(0) == b"x" * 5000
        stage = store._stage  # private
        assert stage is not None
        size, count = spool_direct.STAGE_SIZE, spool_direct.STAGE_BUFFERS
        assert len(stage._buffer) == count * size  # private
        assert [len(buffer) for buffer in stage._buffers] == [size] * count
    finally:
        store.close()


def test_close_with_a_write_held_and_more_queued_ends(
    monkeypatch: pytest.MonkeyPatch, direct_writes: list[tuple[int, int]]
) -> None:
    """Closed while the stage's thread is in a write and full buffers wait
    behind it: close waits for that write alone, drops the rest, and the
    file's descriptors are closed."""
    monkeypatch.setattr(spool, "WAKE_WRITER_AT", 1)  # the writer takes each read
    gate = threading.Event()
    counted = spool_direct._direct_write  # the fixture's
    held_once = threading.Event()

    def held(fd: int, data: memoryview, offset: int) -> int:
        if _behind_the_writer():
            held_once.set()
            assert gate.wait(30)
        return counted(fd, data, offset)

    monkeypatch.setattr(spool_direct, "_direct_write", held)
    size = spool_direct.STAGE_SIZE
    store = FileChunkStore()
    closer: threading.Thread | None = None
    try:
        for part in (b"a", b"b", b"c"):
            _teed(store, part * size)
        assert held_once.wait(30)
        deadline = time.monotonic() + 30
        while store._queued and time.monotonic() < deadline:  # private
            time.sleep(0.005)
        stage = store._stage  # private
        assert stage is not None
        descriptor = stage._direct  # private
        closer = threading.Thread(target=store.close)
        closer.start()
        gate.set()
        closer.join(30)
        assert not closer.is_alive()
        with pytest.raises(OSError, match="Bad file descriptor"):
            os.fstat(descriptor)
    finally:
        gate.set()
        if closer is None:
            store.close()
