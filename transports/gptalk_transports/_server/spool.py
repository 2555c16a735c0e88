"""A :class:`gptalk_proto.cassette.ChunkStore` in a temporary file: what the
recording proxy records waits there, not in memory, until the cassette is
built.

Why a file: the proxy keeps every byte it tees until it exits.  Held in
memory, each recorded MB is a MB the process never had before, and fresh
pages are what a long stream costs most: for the benchmark's 64 MB reply the
kernel spent more time zeroing new pages than moving the bytes.  Written to
a file, the bytes go through the page cache, whose pages are dropped once
written back (``POSIX_FADV_DONTNEED``) and reused for the next ones.

The file has no name (``tempfile.TemporaryFile``): nothing is left behind
on any exit path, a crash or ``SIGKILL`` included; :meth:`close` frees it at
once.
"""

from __future__ import annotations

import os
import tempfile
from array import array

__all__ = ["DROP_EVERY", "FileChunkStore"]

#: Bytes written between two requests to the kernel to drop the spool's
#: pages that are written back (and to start writing back the others).  The
#: page cache is the kernel's, and so is its cap: past its dirty limits it
#: makes ``write`` wait for the disk.
DROP_EVERY = 4 * 1024 * 1024

_ADVISE = getattr(os, "posix_fadvise", None)
_DONTNEED = getattr(os, "POSIX_FADV_DONTNEED", 0)


class FileChunkStore:
    """Recorded chunks in an unnamed temporary file (``dir``: where)."""

    def __init__(self, dir: str | None = None) -> None:
        # Closed by close(), or with the process: it has no name to leave.
        self._file = tempfile.TemporaryFile(dir=dir, buffering=0)  # noqa: SIM115
        # Where chunk i starts; it ends where chunk i + 1 starts (or at _end).
        self._starts = array("q")
        self._end = 0
        self._at_end = True  # the file's position is _end
        self._advised = 0  # the range [_dropped, _advised) was asked to go
        self._dropped = 0

    @property
    def size(self) -> int:
        """Bytes kept so far."""
        return self._end

    def put(self, data: bytes) -> int:
        """Append ``data``; its key is its index."""
        if not self._at_end:
            self._file.seek(self._end)
            self._at_end = True
        view = memoryview(data)
        while view:
            written = self._file.write(view)
            if written is None:  # pragma: no cover - a blocking file never says so
                continue
            view = view[written:]
        self._starts.append(self._end)
        self._end += len(data)
        if _ADVISE is not None and self._end - self._advised >= DROP_EVERY:
            # Pages asked for last time are written back by now, most of
            # them: ask again from there (dirty ones stay; they are asked
            # for once more next time).
            fd = self._file.fileno()
            _ADVISE(fd, self._dropped, self._end - self._dropped, _DONTNEED)
            self._dropped, self._advised = self._advised, self._end
        return len(self._starts) - 1

    def get(self, key: int) -> bytes:
        """The chunk stored under ``key``."""
        start = self._starts[key]
        end = self._starts[key + 1] if key + 1 < len(self._starts) else self._end
        self._file.seek(start)
        self._at_end = False
        parts = []
        left = end - start
        while left:
            part = self._file.read(left)
            if not part:
                raise OSError(f"the recording's spool file lost bytes at {end - left}")
            parts.append(part)
            left -= len(part)
        return b"".join(parts)

    def close(self) -> None:
        """Free the file (its bytes are gone: build the cassette first)."""
        self._file.close()
