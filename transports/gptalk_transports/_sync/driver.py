# GENERATED from _async/driver.py by `python -m tests.unasync`; do not edit.
"""The blocking driver loop: it pumps a ClientConnection, and only moves bytes.

Every decision (what to send, what a byte means, whether the connection may
be reused, when a login starts) is the core's; this loop reads, writes, waits,
holds the login lock and cleans up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import TypeVar

from gptalk_proto import (
    NEED_DATA,
    PAUSED,
    SEND_REQUEST,
    ChatDone,
    ChatEvent,
    ClientConnection,
    GPTalkError,
    ReconnectNeeded,
)

from .._backends.base import SyncBackend, SyncByteStream, SyncLock, ThreadLock
from .._backends.sync import concrete
from .._config import Timeout
from .._exceptions import (
    ConnectTimeout,
    DeadlineExceeded,
    ReadError,
    ReadTimeout,
    WriteError,
    WriteTimeout,
)
from .connector import SyncConnectorProtocol

__all__ = ["DRAIN_TIMEOUT", "READ_SIZE", "SyncPool", "drive"]

#: Bytes asked for per read: what asyncio's transports hand over at most in
#: one go, so a burst of events costs one read.  Nothing is allocated ahead:
#: an idle connection holds no buffer of this size.
READ_SIZE = 256 * 1024

#: After [DONE], how long to wait for the body's end before giving up on
#: keeping the connection (the server sends both together).
DRAIN_TIMEOUT = 1.0

T = TypeVar("T")


class SyncPool:
    """Idle kept-alive connections for later chats (at most ``max_idle``).

    The blocking twin is shared by threads: ``_guard`` keeps the list whole
    there (it is a no-op here, where no falls inside it).
    """

    def __init__(
        self, connector: SyncConnectorProtocol, backend: SyncBackend, *, max_idle: int = 16
    ) -> None:
        self.connector = connector
        self.backend = backend
        self.max_idle = max_idle
        self._idle: list[SyncByteStream] = []
        self._guard = ThreadLock()
        self._closed = False
        #: Connections opened over the pool's life.
        self.opened = 0

    def connect(self, timeout: float | None) -> SyncByteStream:
        stream = self.connector.connect(timeout)
        with self._guard:
            self.opened += 1
        return stream

    def acquire(self, timeout: float | None) -> tuple[SyncByteStream, bool]:
        """An idle connection still good for a request, else a new one; and
        whether it was reused."""
        while True:
            with self._guard:
                stream = self._idle.pop() if self._idle else None
            if stream is None:
                return self.connect(timeout), False
            if not stream.is_readable():
                return stream, True
            stream.close()  # the server closed it, or sent what nobody asked

    def release(self, stream: SyncByteStream, reusable: bool) -> None:
        with self._guard:
            if reusable and not self._closed and len(self._idle) < self.max_idle:
                self._idle.append(stream)
                return
        stream.close()

    def close(self) -> None:
        with self._guard:
            self._closed = True
            idle, self._idle = self._idle, []
        for stream in idle:
            stream.close()


class _Limits:
    """Per-operation timeouts bounded by the call's total deadline.

    Deadlines are ``time.monotonic()`` values: only durations reach the
    backend, so no event loop's own clock is needed (trio's is offset).
    """

    __slots__ = ("deadline", "timeout")

    def __init__(self, timeout: Timeout, deadline: float | None) -> None:
        self.timeout = timeout
        self.deadline = deadline

    def exceeded(self) -> DeadlineExceeded:
        """The one error for a call that ran out of its total time."""
        return DeadlineExceeded(f"the call ran past its total deadline of {self.timeout.total} s")

    def bound(self, base: float | None) -> tuple[float | None, bool]:
        if self.deadline is None:
            return base, False
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self.exceeded()
        if base is None or left < base:
            return left, True
        return base, False

    def run(
        self,
        operation: Callable[..., T],
        args: tuple[object, ...],
        base: float | None,
        what: str,
    ) -> T:
        """``operation(*args, timeout)`` within ``base`` and the deadline."""
        seconds, by_deadline = self.bound(base)
        try:
            return operation(*args, seconds)
        except TimeoutError:
            if by_deadline:
                raise self.exceeded() from None
            error = ReadTimeout if what == "read" else WriteTimeout
            raise error(f"no progress on the {what} for {base} s") from None

    def acquire(self, pool: SyncPool) -> tuple[SyncByteStream, bool]:
        """A kept-alive connection or a new one, within the connect timeout."""
        seconds, by_deadline = self.bound(self.timeout.connect)
        try:
            return pool.acquire(seconds)
        except ConnectTimeout:
            if by_deadline:
                raise self.exceeded() from None
            raise

    def connect(self, pool: SyncPool) -> SyncByteStream:
        """A new connection, within the connect timeout."""
        seconds, by_deadline = self.bound(self.timeout.connect)
        try:
            return pool.connect(seconds)
        except ConnectTimeout:
            if by_deadline:
                raise self.exceeded() from None
            raise


def drive(
    conn: ClientConnection,
    pool: SyncPool,
    timeout: Timeout,
    deadline: float | None,
    *,
    login_lock: SyncLock | None = None,
    wall_clock: Callable[[], float] = time.time,
) -> Generator[list[ChatEvent], None, None]:
    """Run one chat over ``pool``'s connections; yield its events in batches.

    A batch is every event the bytes of one read produced, yielded before the
    next read: a burst of events costs one trip through the layers above, not
    one per event, and no event waits for more IO.

    ``login_lock`` makes logins single-flight.  The core says when a request
    will be a login (``Chat.needs_login``); the lock is taken before it and
    held until the chat's next request, the one that uses the token, so
    concurrent chats that need a login wait for one login instead of each
    making their own.  ``wall_clock`` gives the unix time the core stamps
    requests with and judges token expiry by (replay passes the recorded time).
    """
    backend = concrete(pool.backend)
    limits = _Limits(timeout, deadline)
    stream: SyncByteStream | None = None
    reusable = False
    locked = False
    batch: list[ChatEvent] = []
    try:
        stream, reused = limits.acquire(pool)
        while True:
            try:
                event = conn.next_event()
            except GPTalkError:
                # The events before the error are delivered first: nothing lost.
                if batch:
                    yield batch
                    batch = []
                raise
            if event is NEED_DATA:
                if batch:
                    yield batch
                    batch = []
                try:
                    if deadline is None:  # the common read, without the general helper
                        data = stream.receive_some(READ_SIZE, timeout.read)
                    else:
                        data = limits.run(stream.receive_some, (READ_SIZE,), timeout.read, "read")
                except TimeoutError:
                    raise ReadTimeout(f"no progress on the read for {timeout.read} s") from None
                except ReadError:
                    data = b""  # a reset ends the stream; the core says what that means
                conn.receive_data(data)
            elif event is SEND_REQUEST:
                if conn.requests_on_connection and stream.is_readable():
                    # Closed by the server between two exchanges: nothing was
                    # sent on it yet, so a fresh connection is safe.
                    stream.close()
                    stream = None
                    stream = limits.connect(pool)
                    reused = False
                    conn.new_connection()
                now = wall_clock()
                if login_lock is not None and not locked and conn.chat.needs_login(now):
                    login_lock.acquire()
                    locked = True
                    now = wall_clock()  # after the wait: another chat may have logged in
                # Asked under the lock with the same time: what send() will send.
                logging_in = conn.chat.needs_login(now)
                data = conn.send(now=now)
                if locked and not logging_in:
                    assert login_lock is not None
                    login_lock.release()  # this request uses the token
                    locked = False
                try:
                    limits.run(stream.send_all, (data,), timeout.read, "write")
                    conn.request_sent()  # bookkeeping while the server works
                except WriteError:
                    if not reused or conn.requests_on_connection != 1:
                        raise
                    # A kept-alive connection that died while idle: nothing
                    # reached the server, so the request goes again, once.
                    stream.close()
                    stream = None
                    stream = limits.connect(pool)
                    reused = False
                    retry = conn.resend_on_new_connection()
                    limits.run(stream.send_all, (retry,), timeout.read, "write")
            elif type(event) is ReconnectNeeded:
                stream.close()
                stream = None
                stream = limits.connect(pool)
                reused = False
            elif event is PAUSED:
                reusable = conn.reusable
                return
            elif type(event) is ChatDone:
                reusable = _drain(conn, stream)
                with backend.shield():
                    pool.release(stream, reusable)
                stream = None
                batch.append(event)
                yield batch
                return
            else:
                batch.append(event)
    finally:
        if locked:
            assert login_lock is not None
            login_lock.release()
        if stream is not None:
            with backend.shield():
                pool.release(stream, reusable)


def _drain(conn: ClientConnection, stream: SyncByteStream) -> bool:
    """Read to the body's end after [DONE]; whether the connection is reusable."""
    while True:
        event = conn.next_event()
        if event is PAUSED:
            return conn.reusable
        if event is not NEED_DATA:
            return False
        try:
            data = stream.receive_some(READ_SIZE, DRAIN_TIMEOUT)
        except (TimeoutError, ReadError):
            return False
        conn.receive_data(data)
