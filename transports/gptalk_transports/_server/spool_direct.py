"""The spool's writes past the page cache (Linux's ``O_DIRECT``), for the
proxy's splice tee: buffers the writer thread fills from the store's pipes,
written to the file in whole blocks (full ones by a thread of the stage's
own, while the writer thread fills the next).

Why: written through the page cache (``splice`` into the file), a large
reply cost the proxy more CPU for the spool than for the tee itself: for the
benchmark's 64 MB reply, the page cache's side of each page (a page found or
made for it, its buffer heads, its writeback, then dropping it again with
``POSIX_FADV_DONTNEED`` so the cache stays bounded) on top of the copy.
Here the copy (out of the pipe, into this buffer) is the only one, and the
disk reads the buffer itself: no page of the file is ever cached, so nothing
is dropped either (perf: the proxy's CPU per 64 MB reply down by a fifth).

``O_DIRECT`` writes whole blocks at block offsets (ALIGN).  The buffer starts
at the block where the first byte it takes would go (what the file already
holds before it, in that block, is read back first), and is written when
full.  Where the store needs what it holds (:meth:`DirectStage.flush`), the
last block goes too, padded (past the store's end: never read), and stays in
the buffer to be written again, whole, with what follows it.

Why several buffers, full ones written while another fills: an
``O_DIRECT`` write returns once the disk has the bytes, and the writer
thread, waiting there, copied nothing out of the store's pipes meanwhile;
those filled, and the proxy's event loop waited for a free one, the client
for its next read (the benchmark's 64 MB reply, timed in the proxy: about
77 ms of such waits per reply, more than the proxy's CPU; the disk took
~1 ms per MiB).  So each full buffer goes to the disk from a thread of the
stage's own (:class:`_Background`, one write at a time, in order) while the
writer thread fills the next one, and waits only where none is free
(STAGE_BUFFERS), or where the store needs what the file holds
(:meth:`DirectStage.flush`).  The first write is made by the writer thread
itself: a refusal shows there.

The buffers are one mapping, private and asked to be huge pages
(``MADV_HUGEPAGE``: 2 MiB on x86; advice, which the kernel follows where
it can): a disk request is then a few runs of memory, not 1,024 pages
pinned one by one (and split in five: the virtio disk takes 254 segments
per request).

Where the file system refuses ``O_DIRECT`` (at ``open``, or with ``EINVAL``
on the first write: tmpfs before Linux 6.6, some FUSE file systems), the
buffer's bytes are written through the page cache instead and the stage is
``broken``: the store goes back to its ``splice`` writes.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import threading
from collections import deque
from collections.abc import Callable

__all__ = ["ALIGN", "STAGE_SIZE", "DirectStage"]

#: Offsets and sizes of ``O_DIRECT`` writes are multiples of this: the
#: largest logical block size of Linux's block devices (4 KiB sectors), a
#: multiple of the smaller ones (512 bytes).
ALIGN = 4096

#: The bytes one ``O_DIRECT`` write moves: each of the stage's buffers.  A
#: multiple of ALIGN (and of a huge page, 2 MiB on x86: the kernel places a
#: mapping this large at a huge page's boundary).  Each write costs the
#: kernel about as much whatever its size up to the disk's largest request
#: (``max_sectors_kb``: 4 MiB on the virtio disk measured): the file
#: system's blocks allocated for it and converted once written, a request
#: and a doorbell to the disk (a VM exit).  At 1 MiB that was 64 writes per
#: 64 MB reply and the stage's thread spent 8.3-9.1 ms of CPU on them; at
#: 4 MiB, 16 writes and 4.8 (2 MiB: 5.9; schedstat medians of 30
#: interleaved chats, the proxy's CPU per chat 57.5-58.9 -> 49.6 ms).
STAGE_SIZE = 4 * 1024 * 1024

#: Cap on the stage's buffers (memory of the proxy's own, for the store's
#: life: STAGE_BUFFERS x STAGE_SIZE, 8 MiB, huge pages where given): one filled by
#: the writer thread while the other is written.  As 1 MiB buffers, two
#: were too few: a burst of the upstream past the disk's pace filled the
#: store's pipes within two buffers (2 MiB) and the event loop waited for a
#: free one (timed in the proxy: ~25-85 ms per 64 MB reply; ~15 with 4 MiB
#: more, in pipes), so there were four; two of 4 MiB leave a 4 MiB write under way while the next
#: 4 MiB is copied, more than the three 1 MiB buffers that waited before.
STAGE_BUFFERS = 2


def _reopen(fd: int, flags: int) -> int:
    """The file ``fd`` opened again, with ``flags`` (it has no name: through
    the process's own for it)."""
    return os.open(f"/proc/self/fd/{fd}", flags)


def _direct_write(fd: int, data: memoryview, offset: int) -> int:
    """One ``O_DIRECT`` write (a function of its own: the tests' disk)."""
    return os.pwrite(fd, data, offset)


class _Background:
    """Writes past the page cache on a thread of its own, one at a time, in
    the order they were :meth:`start`-ed (each a number, counted from 1)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._changed = threading.Condition()
        # Shared with the thread, under _changed: the writes to make, as
        # (bytes, offset) (at most STAGE_BUFFERS - 1: the stage's full
        # buffers); how many were started and how many are over; the first
        # failed one (its number, the bytes it wrote, its error: those after
        # it are not made); close asked.
        self._jobs: deque[tuple[memoryview, int]] = deque()
        self._started = 0
        self._over = 0
        self._failed: tuple[int, int, OSError] | None = None
        self._closing = False
        self._thread: threading.Thread | None = None

    def start(self, data: memoryview, offset: int) -> int:
        """Write ``data`` at ``offset`` after those started before; its number."""
        with self._changed:
            self._jobs.append((data, offset))
            self._started += 1
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="gptalk-spool-direct", daemon=True)
                thread.start()  # kept only once started: close() joins it
                self._thread = thread
            self._changed.notify_all()
            return self._started

    def wait(self, number: int) -> tuple[int, int, OSError] | None:
        """Once write ``number`` is over (or one before it failed): None if
        it and those before it went through, or the failed one."""
        with self._changed:
            while self._over < number and self._failed is None:
                self._changed.wait()
            if self._failed is not None and self._failed[0] <= number:
                return self._failed
            return None

    def close(self) -> None:
        """Stop the thread, once the write under way is over (those queued
        behind it are dropped: the file goes)."""
        with self._changed:
            self._closing = True
            self._jobs.clear()
            self._changed.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._jobs and not self._closing:
                    self._changed.wait()
                if not self._jobs:
                    return  # closing
                data, offset = self._jobs.popleft()
            done = 0
            try:
                while done < len(data):
                    done += _direct_write(self._fd, data[done:], offset + done)
            except BaseException as exc:  # any: wait() must never wait on for good
                if isinstance(exc, OSError):
                    error = exc
                else:
                    # As a disk's error, which the store raises from every
                    # later put and get (the cause kept).
                    error = OSError(errno.EIO, f"the spool's write failed: {exc!r}")
                    error.__cause__ = exc
                with self._changed:
                    self._failed = (self._over + 1, done, error)
                    self._jobs.clear()
                    self._changed.notify_all()
                return
            with self._changed:
                self._over += 1
                self._changed.notify_all()


class DirectStage:
    """The buffer between the store's pipes (or queued bytes) and the file:
    bytes go in at the store's next offset, whole blocks go out with
    ``O_DIRECT`` (see the module's docstring).  Called by the writer thread
    alone; the full buffers it hands to its :class:`_Background` are not
    touched again until written."""

    def __init__(self, fd: int, direct: int, at: int) -> None:
        self._fd = fd  # the file, through the page cache
        self._direct = direct  # the same file, past it
        # Private (not shared: Python's default), so that it can be a huge page.
        flags = getattr(mmap, "MAP_PRIVATE", 0)
        size = STAGE_BUFFERS * STAGE_SIZE
        self._buffer = mmap.mmap(-1, size, **({"flags": flags} if flags else {}))
        with contextlib.suppress(AttributeError, OSError):  # not Linux, or no THP
            self._buffer.madvise(mmap.MADV_HUGEPAGE)
        self._whole = memoryview(self._buffer)
        self._buffers = [self._whole[i : i + STAGE_SIZE] for i in range(0, size, STAGE_SIZE)]
        self._view = self._buffers[0]  # the one being filled
        self._free = deque(self._buffers[1:])
        # Full ones the background writes, in order: (buffer, offset, number).
        # At most STAGE_BUFFERS - 1: one is always the one being filled (a
        # full buffer waits in _taken for a free one).
        self._pending: deque[tuple[memoryview, int, int]] = deque()
        self._background = _Background(direct)
        self._proven = False  # a write past the cache went through
        self._at = at - at % ALIGN  # the file's offset of the buffer's first byte
        self._filled = 0
        self._clean = 0  # the buffer's first bytes the file holds too
        #: The file system refused ``O_DIRECT``: everything went through the
        #: page cache, and the store drops this stage.
        self.broken = False
        self.fill_to(at)

    @classmethod
    def open(cls, fd: int, at: int) -> DirectStage | None:
        """A stage for the file ``fd`` whose next byte goes at ``at``; None
        where it cannot be opened past the page cache."""
        flags = os.O_WRONLY | getattr(os, "O_DIRECT", 0) | os.O_CLOEXEC
        if flags == os.O_WRONLY | os.O_CLOEXEC:  # pragma: no cover - not Linux
            return None
        try:
            direct = _reopen(fd, flags)
        except OSError:
            return None
        try:
            return cls(fd, direct, at)
        except BaseException:
            os.close(direct)
            raise

    @property
    def end(self) -> int:
        """The file's offset of the next byte the stage takes."""
        return self._at + self._filled

    @property
    def unflushed(self) -> bool:
        """Whether the stage holds bytes the file does not (yet)."""
        return self._filled > self._clean or bool(self._pending)

    def fill_to(self, at: int) -> None:
        """Take the bytes the file already holds from :attr:`end` to ``at``
        (written by the store's caller before the stage got there)."""
        while self.end < at:
            size = min(STAGE_SIZE - self._filled, at - self.end)
            got = os.preadv(self._fd, [self._view[self._filled : self._filled + size]], self.end)
            if got <= 0:
                raise OSError(f"the recording's spool file lost bytes at {self.end}")
            clean = self._clean == self._filled
            self._taken(got)
            if clean:  # read from the file: it holds them
                self._clean = self._filled

    def add(self, data: bytes) -> None:
        """Take ``data`` (bytes put by the store's caller)."""
        view = memoryview(data)
        while view:
            if self.broken:
                done = os.pwrite(self._fd, view, self.end)
                self._at += done
                view = view[done:]
                continue
            size = min(STAGE_SIZE - self._filled, len(view))
            self._view[self._filled : self._filled + size] = view[:size]
            view = view[size:]
            self._taken(size)

    def add_from_pipe(self, pipe: int, size: int, splice: Callable[..., int]) -> None:
        """Take ``size`` bytes the pipe ``pipe`` holds (``splice``: os.splice,
        for what is left once the stage is broken)."""
        while size:
            if self.broken:
                moved = splice(pipe, self._fd, size, offset_dst=self.end)
            else:
                room = min(size, STAGE_SIZE - self._filled)
                moved = os.readv(pipe, [self._view[self._filled : self._filled + room]])
            if not moved:  # pragma: no cover - the pipe holds them
                raise OSError(f"a pipe ended with {size} bytes of a chunk not written")
            size -= moved
            if self.broken:
                self._at += moved
            else:
                self._taken(moved)

    def _taken(self, size: int) -> None:
        self._filled += size
        if self._filled < STAGE_SIZE:
            return
        if not self._proven:  # here: a refusal is seen at once
            self._write(STAGE_SIZE)
            return
        if not self._free:
            self._wait()  # for the oldest full one
            if self.broken:  # refused after all: this one went with the others
                return
        number = self._background.start(self._view, self._at)
        self._pending.append((self._view, self._at, number))
        self._view = self._free.popleft()
        self._at += STAGE_SIZE
        self._filled = self._clean = 0

    def _wait(self) -> None:
        """Until the oldest full buffer is written (its error raised; a
        refusal: it and those after it through the page cache, the stage
        broken)."""
        view, at, number = self._pending.popleft()
        failed = self._background.wait(number)
        self._free.append(view)
        if failed is None:
            return
        _, done, error = failed
        if error.errno != errno.EINVAL or done:
            raise error
        # Refused (see the module's docstring): through the cache, in order.
        pending = [(view, at), *((v, a) for v, a, _ in self._pending)]
        self._free.extend(v for v, _ in pending[1:])
        self._pending.clear()
        for data, offset in pending:
            self._through_cache(data, offset)
        self._broken()

    def _through_cache(self, data: memoryview, at: int) -> None:
        while data:
            done = os.pwrite(self._fd, data, at)
            data, at = data[done:], at + done

    def flush(self) -> None:
        """Write what the stage holds, its last block padded; that block
        stays, to be written again with what follows it."""
        while self._pending and not self.broken:
            self._wait()
        if self.broken or not self._filled:
            return
        tail = self._filled % ALIGN
        self._write(self._filled + (ALIGN - tail if tail else 0), keep=tail)

    def _write(self, size: int, keep: int = 0) -> None:
        """The buffer's first ``size`` bytes (whole blocks) to the file; then
        the buffer holds only its last ``keep`` bytes (the block they are in
        is not whole yet)."""
        done = 0
        try:
            while done < size:
                done += _direct_write(self._direct, self._view[done:size], self._at + done)
        except OSError as exc:
            if exc.errno != errno.EINVAL or done:
                raise
            # Refused (see the module's docstring): through the page cache.
            self._broken()
            return
        self._proven = True
        kept = self._filled - keep
        if keep:
            self._view[:keep] = self._view[kept : self._filled]
        self._at += kept
        self._filled = self._clean = keep

    def _broken(self) -> None:
        self._through_cache(self._view[: self._filled], self._at)
        self._at, self._filled, self._clean = self._at + self._filled, 0, 0
        self.broken = True

    def close(self) -> None:
        """Free the buffer and the second descriptor (once a write under
        way is over: its outcome no longer matters)."""
        self._background.close()
        self._pending.clear()
        self._free.clear()
        os.close(self._direct)
        try:
            for view in (*self._buffers, self._whole):
                view.release()
            self._buffer.close()
        except BufferError:
            # A part of it is still referenced (by the traceback of a failed
            # write, kept as the store's error): freed with that.
            pass
