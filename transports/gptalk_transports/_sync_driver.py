"""The blocking driver loop: the async driver's twin over blocking sockets."""

from __future__ import annotations

import threading
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
    ClientState,
    GPTalkError,
    ReconnectNeeded,
)

from ._async_driver import DRAIN_TIMEOUT, READ_SIZE
from ._config import Timeout
from ._connector import SyncConnectorProtocol
from ._exceptions import (
    ConnectTimeout,
    DeadlineExceeded,
    ReadError,
    ReadTimeout,
    WriteError,
    WriteTimeout,
)
from ._streams import SyncByteStream

__all__ = ["SyncPool", "drive_sync"]

T = TypeVar("T")


class SyncPool:
    """Idle kept-alive connections, shared by threads (a lock guards the list)."""

    def __init__(self, connector: SyncConnectorProtocol, *, max_idle: int = 16) -> None:
        self.connector = connector
        self.max_idle = max_idle
        self._idle: list[SyncByteStream] = []
        self._lock = threading.Lock()
        self._closed = False
        #: Connections opened over the pool's life.
        self.opened = 0

    def connect(self, timeout: float | None) -> SyncByteStream:
        stream = self.connector.connect(timeout)
        with self._lock:
            self.opened += 1
        return stream

    def acquire(self, timeout: float | None) -> tuple[SyncByteStream, bool]:
        while True:
            with self._lock:
                stream = self._idle.pop() if self._idle else None
            if stream is None:
                return self.connect(timeout), False
            if not stream.is_readable():
                return stream, True
            stream.close()

    def release(self, stream: SyncByteStream, reusable: bool) -> None:
        with self._lock:
            if reusable and not self._closed and len(self._idle) < self.max_idle:
                self._idle.append(stream)
                return
        stream.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for stream in idle:
            stream.close()


class _Limits:
    """Per-operation timeouts bounded by the call's total deadline."""

    __slots__ = ("deadline", "timeout")

    def __init__(self, timeout: Timeout, deadline: float | None) -> None:
        self.timeout = timeout
        self.deadline = deadline

    def _exceeded(self) -> DeadlineExceeded:
        return DeadlineExceeded(f"the call ran past its total deadline of {self.timeout.total} s")

    def bound(self, base: float | None) -> tuple[float | None, bool]:
        if self.deadline is None:
            return base, False
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self._exceeded()
        if base is None or left < base:
            return left, True
        return base, False

    def run(
        self, operation: Callable[..., T], args: tuple[object, ...], base: float | None, what: str
    ) -> T:
        """``operation(*args, timeout)`` within ``base`` and the deadline."""
        seconds, by_deadline = self.bound(base)
        try:
            return operation(*args, seconds)
        except TimeoutError:
            if by_deadline:
                raise self._exceeded() from None
            error = ReadTimeout if what == "read" else WriteTimeout
            raise error(f"no progress on the {what} for {base} s") from None

    def connect(self, pool: SyncPool) -> SyncByteStream:
        seconds, by_deadline = self.bound(self.timeout.connect)
        try:
            return pool.connect(seconds)
        except ConnectTimeout:
            if by_deadline:
                raise self._exceeded() from None
            raise


def drive_sync(
    conn: ClientConnection,
    pool: SyncPool,
    timeout: Timeout,
    deadline: float | None,
    *,
    login_lock: threading.Lock | None = None,
    wall_clock: Callable[[], float] = time.time,
) -> Generator[list[ChatEvent], None, None]:
    """Run one chat over ``pool``'s connections; yield its events in batches.

    The same loop as :func:`~gptalk_transports._async_driver.drive`: see there.
    """
    limits = _Limits(timeout, deadline)
    stream: SyncByteStream | None = None
    reusable = False
    locked = False
    batch: list[ChatEvent] = []
    try:
        seconds, by_deadline = limits.bound(timeout.connect)
        try:
            stream, reused = pool.acquire(seconds)
        except ConnectTimeout:
            if by_deadline:
                raise limits._exceeded() from None
            raise
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
                    data = limits.run(stream.receive_some, (READ_SIZE,), timeout.read, "read")
                except ReadError:
                    data = b""
                conn.receive_data(data)
            elif event is SEND_REQUEST:
                if conn.requests_on_connection and stream.is_readable():
                    stream.close()
                    stream = None
                    stream = limits.connect(pool)
                    reused = False
                    conn.new_connection()
                if login_lock is not None and conn.state is ClientState.START:
                    login_lock.acquire()
                    locked = True
                data = conn.send(now=wall_clock())
                if locked and conn.state is not ClientState.LOGIN_SENT:
                    login_lock.release()  # type: ignore[union-attr]
                    locked = False
                try:
                    limits.run(stream.send_all, (data,), timeout.read, "write")
                    conn.request_sent()  # bookkeeping while the server works
                except WriteError:
                    if not reused or conn.requests_on_connection != 1:
                        raise
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
                pool.release(stream, reusable)
                stream = None
                batch.append(event)
                yield batch
                return
            else:
                batch.append(event)
    finally:
        if locked:
            login_lock.release()  # type: ignore[union-attr]
        if stream is not None:
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
