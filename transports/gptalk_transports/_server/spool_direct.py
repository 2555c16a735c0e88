"""The spool's writes past the page cache (Linux's ``O_DIRECT``), for the
proxy's splice tee: a buffer of the writer thread's own, filled from the
store's pipes and written to the file in whole blocks.

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

Where the file system refuses ``O_DIRECT`` (at ``open``, or with ``EINVAL``
on the first write: tmpfs before Linux 6.6, some FUSE file systems), the
buffer's bytes are written through the page cache instead and the stage is
``broken``: the store goes back to its ``splice`` writes.
"""

from __future__ import annotations

import errno
import mmap
import os
from collections.abc import Callable

__all__ = ["ALIGN", "STAGE_SIZE", "DirectStage"]

#: Offsets and sizes of ``O_DIRECT`` writes are multiples of this: the
#: largest logical block size of Linux's block devices (4 KiB sectors), a
#: multiple of the smaller ones (512 bytes).
ALIGN = 4096

#: Cap on the writer thread's buffer (memory of the proxy's own, for the
#: store's life): the bytes one ``O_DIRECT`` write moves.  A multiple of
#: ALIGN.
STAGE_SIZE = 1024 * 1024


def _reopen(fd: int, flags: int) -> int:
    """The file ``fd`` opened again, with ``flags`` (it has no name: through
    the process's own for it)."""
    return os.open(f"/proc/self/fd/{fd}", flags)


def _direct_write(fd: int, data: memoryview, offset: int) -> int:
    """One ``O_DIRECT`` write (a function of its own: the tests' disk)."""
    return os.pwrite(fd, data, offset)


class DirectStage:
    """The buffer between the store's pipes (or queued bytes) and the file:
    bytes go in at the store's next offset, whole blocks go out with
    ``O_DIRECT`` (see the module's docstring).  Used by the writer thread
    alone."""

    def __init__(self, fd: int, direct: int, at: int) -> None:
        self._fd = fd  # the file, through the page cache
        self._direct = direct  # the same file, past it
        self._buffer = mmap.mmap(-1, STAGE_SIZE)
        self._view = memoryview(self._buffer)
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
        """Whether the stage holds bytes the file does not."""
        return self._filled > self._clean

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
        if self._filled == STAGE_SIZE:
            self._write(STAGE_SIZE)

    def flush(self) -> None:
        """Write what the stage holds, its last block padded; that block
        stays, to be written again with what follows it."""
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
        kept = self._filled - keep
        if keep:
            self._view[:keep] = self._view[kept : self._filled]
        self._at += kept
        self._filled = self._clean = keep

    def _broken(self) -> None:
        view = self._view[: self._filled]
        at = self._at
        while view:
            done = os.pwrite(self._fd, view, at)
            view = view[done:]
            at += done
        self._at, self._filled, self._clean = at, 0, 0
        self.broken = True

    def close(self) -> None:
        """Free the buffer and the second descriptor."""
        os.close(self._direct)
        try:
            self._view.release()
            self._buffer.close()
        except BufferError:
            # A part of it is still referenced (by the traceback of a failed
            # write, kept as the store's error): freed with that.
            pass
