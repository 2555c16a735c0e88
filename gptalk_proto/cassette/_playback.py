"""Replay timing and re-chunking, sans IO: when and in what pieces the
recorded server bytes go back to a client.

The drivers own the clock and the sleeping; this module only computes.
:class:`ReplayState` is one replayed connection's server side: the driver
tells it what the client sent (:meth:`ReplayState.sent`) and asks it for the
next bytes and when they are due (:meth:`ReplayState.next`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

from ._format import CassetteError
from ._replay import EOF, ReplayConnection

__all__ = ["MAX_RANDOM_PIECE", "ReplayState", "ReplayTiming", "rechunker"]

#: Cap on one random piece when re-chunking, in bytes: small enough that a
#: recorded read is cut into several pieces (the point of re-chunking: the
#: client must not rely on where the reads fell), large enough that a long
#: body does not turn into a piece per byte.
MAX_RANDOM_PIECE = 64


class ReplayTiming:
    """When each recorded chunk is delivered.

    ``speed`` None (the default) delivers at once; 1.0 as recorded; 2.0 twice
    as fast.  ``max_gap`` caps any one wait (seconds, after scaling).
    """

    def __init__(self, speed: float | None = None, max_gap: float | None = None) -> None:
        # NaN compares false both ways: "not > 0" catches it, where "<= 0" does not.
        if speed is not None and not (math.isfinite(speed) and speed > 0):
            raise ValueError("speed must be a finite positive number (None means instant)")
        if max_gap is not None and not (math.isfinite(max_gap) and max_gap > 0):
            raise ValueError("max_gap must be a finite positive number of seconds")
        self.speed = speed
        self.max_gap = max_gap

    def gap(self, recorded: float) -> float:
        """The wait, in seconds, for a recorded gap of ``recorded`` seconds."""
        if self.speed is None:
            return 0.0
        wait = max(recorded, 0.0) / self.speed
        return wait if self.max_gap is None else min(wait, self.max_gap)


def rechunker(how: str | Callable[[int, int], int]) -> Callable[[bytes], list[bytes]]:
    """A function that cuts one recorded read into the pieces to deliver.

    ``"recorded"`` keeps the reads as they were; ``"bytes"`` gives single
    bytes; a ``randint(a, b)`` function (``random.Random(seed).randint``: the
    entropy comes in from the caller) gives pieces of 1 to
    :data:`MAX_RANDOM_PIECE` bytes.
    """
    if how == "recorded":
        return _whole
    if how == "bytes":
        return lambda data: [data[i : i + 1] for i in range(len(data))]
    if callable(how):
        randint = how

        def cut(data: bytes) -> list[bytes]:
            pieces, start = [], 0
            while start < len(data):
                end = start + randint(1, MAX_RANDOM_PIECE)
                pieces.append(data[start:end])
                start = end
            return pieces

        return cut
    raise ValueError(f"rechunk must be 'recorded', 'bytes' or a randint function, not {how!r}")


def _whole(data: bytes) -> list[bytes]:
    """The ``"recorded"`` cut: the read as it was (:class:`ReplayState` knows
    it, and hands such reads over without a queue)."""
    return [data]


class ReplayState:
    """One replayed connection's server side, shared by the async and
    blocking drivers: what to send next, and when."""

    def __init__(
        self,
        connection: ReplayConnection,
        timing: ReplayTiming,
        cut: Callable[[bytes], list[bytes]],
    ) -> None:
        self.connection = connection
        self._queue = connection._queue
        self.timing = timing
        self.cut = cut
        # The pieces of one recorded read not yet delivered: at most one read,
        # which the cassette's loader already capped.
        self.pieces: deque[bytes] = deque()
        # Reads kept whole need no pieces when they fit the client's read.
        self._whole = cut is _whole
        self.last_t = 0.0
        self.due = 0.0

    def sent(self, data: bytes, now: float) -> None:
        """The client sent ``data`` at ``now`` (the driver's clock)."""
        self.connection.receive(data)
        current = self.connection.current
        if current is not None:
            self.last_t = current.request.t
        self.due = now

    def next(self, max_bytes: int) -> tuple[float, bytes | None]:
        """(when the bytes are due on the driver's clock, bytes) -- bytes None
        means EOF; a due time of 0.0 means at once."""
        if self.pieces:
            return 0.0, self._take(max_bytes)
        # (The connection's queue, read here without a call per read.)
        queue = self._queue
        item = queue.popleft() if queue else None
        if item is None:
            step = self.connection.current
            where = f"after step {step.kind!r}" if step is not None else "before any request"
            raise CassetteError(
                f"the client waits for bytes the cassette does not have ({where} on this "
                "connection)"
            )
        if item is EOF:
            return 0.0, None
        timing = self.timing
        if timing.speed is not None:  # (instant replay's gaps are all 0.0)
            self.due += timing.gap(item.t - self.last_t)
        self.last_t = item.t
        data = item.data
        if self._whole and len(data) <= max_bytes:
            return self.due, data  # what the queue would give back at once
        self.pieces.extend(self.cut(data))
        return self.due, self._take(max_bytes)

    def next_now(self, max_bytes: int) -> bytes | None:
        """:meth:`next`'s bytes, for a driver that does not wait (instant
        replay, which never waits for a due time): the same bytes, in the
        same pieces, with the same errors."""
        # The usual read of instant replay: a recorded read, whole, that fits
        # the client's, straight from the connection's queue (what next
        # gives, without its tuple and its steps for timed replay).
        queue = self._queue
        if queue and self._whole and not self.pieces:
            item = queue[0]
            if item is not EOF and len(data := item.data) <= max_bytes:
                queue.popleft()
                self.last_t = item.t
                return data
        return self.next(max_bytes)[1]

    def _take(self, max_bytes: int) -> bytes:
        piece = self.pieces.popleft()
        if len(piece) > max_bytes:
            self.pieces.appendleft(piece[max_bytes:])
            piece = piece[:max_bytes]
        return piece
