"""A :class:`gptalk_proto.cassette.ChunkStore` in a temporary file: what the
recording proxy records waits there, not in memory, until the cassette is
built.

Why a file: the proxy keeps every byte it tees until it exits.  Held in
memory, each recorded MB is a MB the process never had before, and fresh
pages are what a long stream costs most: for the benchmark's 64 MB reply the
kernel spent more time zeroing new pages than moving the bytes.  Written to
a file, the bytes go through the page cache, whose pages are dropped once
written back (``POSIX_FADV_DONTNEED``) and reused for the next ones.

Why a thread writes it: copying a read into the page cache and having its
pages written back was the largest part of the proxy's work per forwarded
read (about a third of its CPU for the benchmark's 64 MB reply: more than
receiving the read, more than sending it on).  Done where the read is
forwarded, the client waited for it at every read.  :meth:`put` only queues
the read (bytes are immutable: nothing is copied) at the offset it will
have, and a writer thread of the store's own writes it there (``pwrite``
releases the GIL: it runs beside the event loop).  The bytes and the keys
are the same as when written in place; :meth:`get` waits for what is queued.
Small reads (a short chat's) are held and written many at a time by
:meth:`put` itself (see HOLD_UP_TO): no system call per read.

On Linux the proxy's splice tee (see .proxy_splice) never has a large read
in Python's memory: :meth:`put_teed` copies it from the tee's pipe into a
pipe of the store's (``tee``: page references, not the bytes), queued like
a put read, and the writer thread moves it into the file: the one copy of
the read, off the event loop's thread.  Where the file system allows it, that
copy goes into buffers of the writer's stage, written past the page cache
(``O_DIRECT``, by a thread of the stage's own, see .spool_direct: the page
cache's work per page was more than the copy); elsewhere the pipe is spliced into the file.

The file has no name (``tempfile.TemporaryFile``): nothing is left behind
on any exit path, a crash or ``SIGKILL`` included; :meth:`close` frees it at
once.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import tempfile
import threading
from array import array
from collections import deque
from collections.abc import Callable

from .spool_direct import DirectStage

__all__ = ["CAN_SPLICE", "DROP_EVERY", "MAX_QUEUED", "WRITE_HERE_BELOW", "FileChunkStore"]

#: Bytes written between two requests to the kernel to drop the spool's
#: pages that are written back (and to start writing back the others).  The
#: page cache is the kernel's, and so is its cap: past its dirty limits it
#: makes ``write`` wait for the disk.
DROP_EVERY = 4 * 1024 * 1024

#: Cap on the bytes put but not yet written, held in memory until the writer
#: thread has them in the file (a teed read's: until copied into the stage's
#: buffers, capped by STAGE_BUFFERS).  Past it :meth:`FileChunkStore.put` waits for
#: the writer (as an inline write would wait for the disk), so a disk slower
#: than the network does not turn the spool back into memory.
MAX_QUEUED = 4 * 1024 * 1024

#: Chunks below this many bytes are written by :meth:`FileChunkStore.put`
#: itself, not by the writer thread: copying a few KB costs less than waking
#: the writer thread (and taking turns with it for the GIL) on the way of a
#: read to the client.
WRITE_HERE_BELOW = 32 * 1024

#: Cap on the bytes of small chunks (below WRITE_HERE_BELOW) held in memory
#: by :meth:`FileChunkStore.put` until they are written, together, in one
#: system call.  A ``pwrite`` per chunk was on the way of every read to the
#: client: for a short chat's few small reads, a system call each, more than
#: the rest of the recording.  Held chunks are written once this many bytes
#: are held, before a larger chunk is queued, and by :meth:`get`.
HOLD_UP_TO = 64 * 1024

#: Bytes queued before the writer thread is woken to write them (one
#: ``pwritev`` for many reads): woken for every read, the writer took the GIL
#: back from the event loop as often (a ``futex`` pair each time, strace: about
#: 1,300 per 64 MB reply, more system time than the reads' own ``recvfrom``).
#: :meth:`FileChunkStore.get` and :meth:`FileChunkStore.close` wake it
#: whatever is queued; so does a put past MAX_QUEUED (the lower of the two
#: counts).
WAKE_WRITER_AT = 1024 * 1024

_ADVISE = getattr(os, "posix_fadvise", None)
_DONTNEED = getattr(os, "POSIX_FADV_DONTNEED", 0)


#: Most chunks one ``pwritev`` takes (POSIX guarantees IOV_MAX >= 16;
#: Linux's is 1024).
_MAX_PIECES = 16

_PWRITEV = getattr(os, "pwritev", None)
_SPLICE = getattr(os, "splice", None)
_NONBLOCK = getattr(os, "SPLICE_F_NONBLOCK", 2)

if sys.platform == "linux":  # pipes are resized only there (see make_pipe)
    import fcntl

#: Bytes each pipe of the store (and of the splicing tee) is asked to hold
#: (``F_SETPIPE_SZ``): the proxy's upstream read size.  Past a user's pipe
#: limits the kernel refuses, and a pipe keeps its default size.
#: 1 MiB, Linux's most for a user's pipe (``/proc/sys/fs/pipe-max-size``):
#: at 256 KiB the benchmark's 64 MB reply was 4 times as many reads, each a
#: turn of the event loop, a ``tee`` and a wake-up of the writer thread
#: (perf: the proxy's CPU per reply down by a sixth at 1 MiB).
PIPE_SIZE = 1024 * 1024

#: Cap on the store's pipes, each holding one read teed for the writer
#: thread (see :meth:`FileChunkStore.put_teed`): with MAX_QUEUED, what a
#: disk slower than the network may hold back, at most this many reads of
#: up to PIPE_SIZE bytes (the upstream's pages, referenced by the pipes):
#: 4 MiB, as MAX_QUEUED.
MAX_PIPES = 4

#: Whether teed reads are written past the page cache where the file
#: system allows it (``O_DIRECT``, see .spool_direct); off, the writer
#: thread moves them into the file with ``splice``.
DIRECT = True


@functools.cache
def _tee() -> Callable[[int, int, int, int], int] | None:
    """libc's ``tee(2)`` (Python has ``os.splice`` but no ``tee``), looked up
    in the symbols the process has loaded (the first time it is needed: not
    as the module loads), or None."""
    try:
        import ctypes  # noqa: PLC0415 (only where a tee runs: Linux, on its first use)

        function = ctypes.CDLL(None, use_errno=True).tee
    except (ImportError, OSError, AttributeError):  # pragma: no cover - no such libc
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_size_t, ctypes.c_uint]
    function.restype = ctypes.c_ssize_t

    def tee(fd_in: int, fd_out: int, size: int, flags: int) -> int:
        done = int(function(fd_in, fd_out, size, flags))
        if done < 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error))
        return done

    return tee


def make_pipe() -> tuple[int, int, int]:
    """A non-blocking pipe asked to hold PIPE_SIZE bytes: its read end, its
    write end, and the size it got (Linux only)."""
    read, write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        with contextlib.suppress(OSError):  # past the limits: the default size
            fcntl.fcntl(read, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        return read, write, fcntl.fcntl(read, fcntl.F_GETPIPE_SZ)
    except BaseException:
        os.close(read)
        os.close(write)
        raise


class _Teed:
    """A read teed into one of the store's pipes, for the writer thread."""

    __slots__ = ("pipe", "size", "written")

    def __init__(self, pipe: tuple[int, int, int], size: int) -> None:
        self.pipe = pipe
        self.size = size
        self.written = False  # then its pipe went back to the free ones

    def __len__(self) -> int:
        return self.size


# Writes and reads at an offset, the file's position untouched (POSIX).  Where
# they are missing (Windows), only the writer thread writes, and get reads
# once it is idle: the position is then never moved by two threads at once.
_POSITIONED = hasattr(os, "pwrite") and hasattr(os, "pread")

#: Whether :meth:`FileChunkStore.put_teed` can run (Linux, Python >= 3.10).
CAN_SPLICE = sys.platform == "linux" and _SPLICE is not None and _POSITIONED


def _wake_at() -> int:
    """Queued bytes that wake the writer (a put past MAX_QUEUED waits for it)."""
    return min(WAKE_WRITER_AT, MAX_QUEUED)


def _pwrite(fd: int, data: memoryview, offset: int) -> int:
    if _POSITIONED:
        return os.pwrite(fd, data, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # pragma: no cover - no pwrite (Windows)
    return os.write(fd, data)  # pragma: no cover


def _pread(fd: int, size: int, offset: int) -> bytes:
    if _POSITIONED:
        return os.pread(fd, size, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # pragma: no cover - no pread (Windows)
    return os.read(fd, size)  # pragma: no cover


def _write_at(fd: int, pieces: list[bytes], offset: int) -> None:
    """Write ``pieces``, adjacent, at ``offset``: a system call for up to
    _MAX_PIECES of them where there is ``pwritev`` (no copy to join them)."""
    while pieces:
        batch, pieces = pieces[:_MAX_PIECES], pieces[_MAX_PIECES:]
        size = sum(map(len, batch))
        written = _PWRITEV(fd, batch, offset) if _PWRITEV is not None else 0
        if written < size:  # short, or no pwritev: the rest one at a time
            view = memoryview(b"".join(batch))[written:]
            at = offset + written
            while view:
                done = _pwrite(fd, view, at)
                view = view[done:]
                at += done
        offset += size


class FileChunkStore:
    """Recorded chunks in an unnamed temporary file (``dir``: where),
    written by a thread of its own (see the module's docstring)."""

    def __init__(self, dir: str | None = None) -> None:
        # Closed by close(), or with the process: it has no name to leave.
        self._file = tempfile.TemporaryFile(dir=dir, buffering=0)  # noqa: SIM115
        self._fd = self._file.fileno()
        # Where chunk i starts; it ends where chunk i + 1 starts (or at _end).
        self._starts = array("q")
        self._end = 0
        # Shared with the writer thread, under _lock: what waits to be
        # written, as (offset, bytes); its size (capped by MAX_QUEUED); the
        # writer's error (raised by the next put or get); close asked.
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queue: deque[tuple[int, bytes | _Teed]] = deque()
        # The pipes put_teed tees into: free ones, and how many exist (up
        # to MAX_PIPES; the others hold a read for the writer).
        self._pipes: list[tuple[int, int, int]] = []
        self._made = 0
        self._queued = 0
        self._error: OSError | None = None
        self._closing = False
        # get()s waiting for everything queued to be written, and put_teed()s
        # for a free pipe: the writer writes whatever is queued.
        self._flushing = 0
        self._writer: threading.Thread | None = None  # started by the first put
        # [_dropped, _advised) was asked to go (by either thread, under _lock).
        self._advised = 0
        self._dropped = 0
        # Small chunks not written yet (see HOLD_UP_TO), adjacent, ending
        # at _end; only the caller's thread touches them.
        self._held: list[bytes] = []
        self._held_size = 0
        # Writes past the page cache (see DIRECT): asked for by the first
        # teed read (from then on put holds nothing: every byte goes through
        # the writer's stage, which owns the file's blocks); the stage, called
        # by the writer thread alone; whether the file refused it.  _unflushed:
        # the stage holds bytes the file does not (get waits for them), and
        # _reading counts the gets waiting (the stage is written for them).
        self._staging = False
        self._stage: DirectStage | None = None
        self._no_stage = False
        self._unflushed = False
        self._reading = 0

    @property
    def size(self) -> int:
        """Bytes kept so far (written, or queued to be)."""
        return self._end

    def put(self, data: bytes) -> int:
        """Hold ``data`` to be written (if small) or queue it for the writer
        thread; its key is its index."""
        if self._error is not None:
            raise self._error
        if self._closing:
            raise ValueError("the recording's spool is closed")
        start = self._end
        if _POSITIONED and len(data) < WRITE_HERE_BELOW and not self._staging:
            self._held.append(data)
            self._held_size += len(data)
            self._starts.append(start)
            self._end = start + len(data)
            if self._held_size >= HOLD_UP_TO:
                self._write_held()
            return len(self._starts) - 1
        self._enqueue(start, data)
        self._starts.append(start)
        self._end += len(data)
        return len(self._starts) - 1

    def _enqueue(self, start: int, data: bytes | _Teed) -> None:
        """Queue ``data`` at ``start`` for the writer thread (the held
        chunks first), waiting while past MAX_QUEUED."""
        with self._lock:
            if self._error is not None:
                if isinstance(data, _Teed):  # its bytes go nowhere: so does it
                    os.close(data.pipe[0])
                    os.close(data.pipe[1])
                    self._made -= 1
                raise self._error
            if isinstance(data, _Teed) and DIRECT and not self._no_stage:
                self._staging = True  # before the held chunks are queued
            before = self._queued
            held = self._held
            if held:  # before this chunk, and adjacent to it: queued first
                at = start - self._held_size
                for piece in held:
                    self._queue.append((at, piece))
                    at += len(piece)
                self._queued += self._held_size
                self._held, self._held_size = [], 0
            self._queue.append((start, data))
            self._queued += len(data)
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write, name="gptalk-spool", daemon=True
                )
                self._writer.start()
            elif self._queued >= _wake_at() > before:
                self._changed.notify_all()  # the writer waits for this much work
            while self._queued > MAX_QUEUED and self._error is None:
                self._changed.wait()

    def put_teed(self, source: int, size: int, capacity: int) -> int | None:
        """Keep a copy of the ``size`` bytes the pipe ``source`` (of
        ``capacity`` bytes) holds, which stay there: ``tee`` copies them into
        a pipe of the store's (references to the same pages, not the bytes),
        and the writer thread moves that into the file (``splice``: they
        never reach Python's memory).  Their key is its index; None (nothing
        kept) where the store's pipes are smaller than ``source`` (or libc
        has no ``tee``).  Waits
        while MAX_PIPES reads wait for the writer, as :meth:`put` past
        MAX_QUEUED does.  Linux only (see CAN_SPLICE)."""
        tee = _tee()
        if tee is None:  # pragma: no cover - a libc without tee
            return None
        if self._error is not None:
            raise self._error
        if self._closing:
            raise ValueError("the recording's spool is closed")
        with self._lock:
            if not self._pipes and self._made >= MAX_PIPES:
                # Every pipe holds a read for the writer, which may wait for
                # more bytes (WAKE_WRITER_AT) than they hold: woken as get is.
                self._flushing += 1
                self._changed.notify_all()
                try:
                    while not self._pipes and self._made >= MAX_PIPES and self._error is None:
                        self._changed.wait()
                finally:
                    self._flushing -= 1
            if self._error is not None:
                raise self._error
            made = not self._pipes
            if made:
                self._made += 1
        try:
            pipe = make_pipe() if made else self._pipes.pop()
        except BaseException:
            with self._lock:
                self._made -= 1
            raise
        if pipe[2] < capacity:  # a read that fits the source may not fit it
            self._discard(pipe)
            return None
        try:
            # The pipe is empty and no smaller than the source: all of it.
            copied = tee(source, pipe[1], size, _NONBLOCK)
            if copied != size:  # pragma: no cover - see above
                raise OSError(f"tee copied {copied} of {size} bytes")
        except BaseException:
            self._discard(pipe)
            raise
        start = self._end
        self._enqueue(start, _Teed(pipe, size))
        self._starts.append(start)
        self._end = start + size
        return len(self._starts) - 1

    def _discard(self, pipe: tuple[int, int, int]) -> None:
        os.close(pipe[0])
        os.close(pipe[1])
        with self._lock:
            self._made -= 1
            self._changed.notify_all()  # a put_teed may wait for a pipe

    def _write_held(self) -> None:
        """Write the held small chunks, in one piece, at their offset (the
        writer may be writing other offsets meanwhile)."""
        size = self._held_size
        joined = b"".join(self._held)
        self._held, self._held_size = [], 0
        start = self._end - size
        try:
            _write_at(self._fd, [joined], start)
        except OSError as exc:
            # Their keys were handed out: every later put and get raises it.
            with self._lock:
                self._error = exc
            raise
        self._advise(start + size)

    def get(self, key: int) -> bytes:
        """The chunk stored under ``key`` (once what was held or queued is
        written)."""
        if self._held:
            self._write_held()
        self._drain()
        start = self._starts[key]
        end = self._starts[key + 1] if key + 1 < len(self._starts) else self._end
        parts = []
        at = start
        while at < end:
            part = _pread(self._fd, end - at, at)
            if not part:
                raise OSError(f"the recording's spool file lost bytes at {at}")
            parts.append(part)
            at += len(part)
        return b"".join(parts)

    def close(self) -> None:
        """Free the file (its bytes are gone: build the cassette first)."""
        self._held, self._held_size = [], 0  # the file goes: nothing to write
        with self._lock:
            self._closing = True
            self._changed.notify_all()
            writer = self._writer
        if writer is not None:
            writer.join()
        if self._stage is not None:
            self._stage.close()
            self._stage = None
        with self._lock:
            pipes = self._pipes + [d.pipe for _, d in self._queue if isinstance(d, _Teed)]
            self._pipes, self._made = [], 0
            self._queue.clear()
        for pipe in pipes:
            os.close(pipe[0])
            os.close(pipe[1])
        self._file.close()

    def _advise(self, written: int) -> None:
        """Every DROP_EVERY bytes written (up to ``written``), ask the kernel
        to drop the spool's pages that are written back."""
        if _ADVISE is None or written - self._advised < DROP_EVERY:
            return
        with self._lock:
            if written - self._advised < DROP_EVERY:
                return  # the other thread just asked
            start = self._dropped
            # Pages asked for last time are written back by now, most of
            # them: ask again from there (dirty ones stay; they are asked
            # for once more next time).
            self._dropped, self._advised = self._advised, written
        _ADVISE(self._fd, start, written - start, _DONTNEED)

    def _drain(self) -> None:
        with self._lock:
            if (self._queued or self._unflushed) and self._error is None:
                self._flushing += 1
                self._reading += 1
                self._changed.notify_all()  # whatever is queued, now
                try:
                    while (self._queued or self._unflushed) and self._error is None:
                        self._changed.wait()
                finally:
                    self._flushing -= 1
                    self._reading -= 1
            if self._error is not None:
                raise self._error

    def _free(self, piece: _Teed, staged: bool = False) -> None:
        """A teed read is in the file, or in the stage (``staged``): its
        pipe is free, and its bytes no longer count against MAX_QUEUED (the
        stage's buffers have their own cap, STAGE_BUFFERS).  Counted until
        the whole batch was written, as they were, a put waited for the
        stage's writes to the disk.  A get waits for the stage meanwhile
        (``_unflushed``)."""
        piece.written = True
        with self._lock:
            self._pipes.append(piece.pipe)
            self._queued -= piece.size
            if staged:
                self._unflushed = True
            self._changed.notify_all()  # a put_teed may wait for a pipe

    def _to_stage(self, at: int, piece: bytes | _Teed) -> bool:
        """``piece``, at ``at``, into the stage where there is one (opened
        by the first piece once asked for); False where it goes to the file
        as before."""
        stage = self._stage
        if stage is None:
            if not self._staging or self._no_stage:
                return False
            stage = self._stage = DirectStage.open(self._fd, at)
            if stage is None:  # refused as it opened: splice, as before
                self._no_stage, self._staging = True, False
                return False
        # Held chunks put wrote itself before the stage was asked for.
        stage.fill_to(at)
        if isinstance(piece, bytes):
            stage.add(piece)
        else:
            assert _SPLICE is not None
            stage.add_from_pipe(piece.pipe[0], piece.size, _SPLICE)
            self._free(piece, staged=True)
        if stage.broken:  # refused at its first write: splice from now on
            stage.close()
            self._stage = None
            self._no_stage, self._staging = True, False
        return True

    def _write_pieces(self, items: list[tuple[int, bytes | _Teed]]) -> None:
        """Pieces into the file, each at its offset: into the stage (see
        DIRECT), or runs of adjacent bytes with :func:`_write_at` and teed
        reads moved from their pipe (which then goes back to the store's
        free ones).  Two queued pieces need not be adjacent: small chunks
        put wrote itself (see HOLD_UP_TO) may lie between them."""
        run: list[bytes] = []
        run_at = run_end = 0
        for at, piece in items:
            if (run and at != run_end) or (run and self._staging and self._stage is None):
                _write_at(self._fd, run, run_at)  # before what follows is read back
                run = []
            if self._to_stage(at, piece):
                continue
            if isinstance(piece, bytes):
                if not run:
                    run_at = at
                run.append(piece)
                run_end = at + len(piece)
                continue
            if run:
                _write_at(self._fd, run, run_at)
                run = []
            assert _SPLICE is not None
            done = 0
            while done < piece.size:
                moved = _SPLICE(piece.pipe[0], self._fd, piece.size - done, offset_dst=at + done)
                if not moved:  # pragma: no cover - the pipe holds them
                    raise OSError(f"a pipe ended with {piece.size - done} bytes not written")
                done += moved
            self._free(piece)
        if run:
            _write_at(self._fd, run, run_at)

    def _write(self) -> None:
        """The writer thread: the queue into the file, in order, until close."""
        while True:
            with self._lock:
                while not self._closing and not (
                    (self._queue and (self._queued >= _wake_at() or self._flushing))
                    or (self._unflushed and self._reading)
                ):
                    self._changed.wait()
                if self._closing and not self._queue:
                    return  # everything is written (the stage's rest: the file goes)
                items = list(self._queue)
                self._queue.clear()
                flush = self._reading > 0
            size = sum(len(data) for _, data in items)
            end = items[-1][0] + len(items[-1][1]) if items else 0
            try:
                self._write_pieces(items)
                stage = self._stage
                if stage is not None and flush:
                    stage.flush()  # a get waits for it
                elif stage is None and items:
                    self._advise(end)
            except OSError as exc:
                with self._lock:
                    self._error = exc
                    self._queue.clear()
                    self._queued = 0
                    self._changed.notify_all()
                for _, piece in items:
                    if isinstance(piece, _Teed) and not piece.written:
                        self._discard(piece.pipe)
                return
            with self._lock:
                # Teed reads' bytes were released as they went (see _free).
                self._queued -= size - sum(
                    len(piece) for _, piece in items if isinstance(piece, _Teed)
                )
                self._unflushed = stage is not None and stage.unflushed
                self._changed.notify_all()  # put past the cap, or get, may wait
