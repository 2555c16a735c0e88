# GENERATED from _async/driver.py by `python -m tests.unasync`; do not edit.
"""The blocking driver loop: it pumps a ClientConnection, and only moves bytes.

Every decision (what to send, what a byte means, whether the connection may
be reused, when a login starts) is the core's; this loop reads, writes, waits,
holds the login lock and cleans up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import TypeVar, cast

from gptalk_proto import (
    NEED_DATA,
    NEED_HANDLE,
    PAUSED,
    SEND_REQUEST,
    Chat,
    ChatDone,
    ChatEvent,
    ClientConnection,
    GPTalkError,
    ReconnectNeeded,
    Sentinel,
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

__all__ = ["DEFAULT_MAX_IDLE", "DRAIN_TIMEOUT", "READ_SIZE", "SyncPool", "drive"]

#: Bytes asked for per read: what asyncio's transports hand over at most in
#: one go, so a burst of events costs one read.  Nothing is allocated ahead:
#: an idle connection holds no buffer of this size.
READ_SIZE = 256 * 1024

#: Kept-alive connections a client keeps idle for later chats, at most: as
#: many as aiohttp's connector holds by default (100), so that a hundred
#: chats at a time reuse their connections rather than reopen most of them
#: (with 16, 84 of 100 concurrent chats reconnected every time).  An idle
#: connection holds a socket and no read buffer.
DEFAULT_MAX_IDLE = 100

#: After [DONE], how long to wait for the body's end before giving up on
#: keeping the connection (the server sends both together).
DRAIN_TIMEOUT = 1.0

T = TypeVar("T")

#: Serialises the steps that change shared credentials' counts (a chat's
#: claim, its first request or text request, its release).  Each is one
#: synchronous step, so on the async side it is a no-op; the blocking twin,
#: whose clients share credentials among threads, gets one process-wide
#: lock (the steps take microseconds; credentials may be shared by clients).
_CREDENTIALS_GUARD = ThreadLock()


class SyncPool:
    """Idle kept-alive connections for later chats (at most ``max_idle``).

    The blocking twin is shared by threads: ``_guard`` keeps the list whole
    there (it is a no-op here, where no falls inside it).
    """

    def __init__(
        self,
        connector: SyncConnectorProtocol,
        backend: SyncBackend,
        *,
        max_idle: int = DEFAULT_MAX_IDLE,
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

    def take(self) -> SyncByteStream | None:
        """The idle connection released last, unchecked, or None."""
        with self._guard:
            return self._idle.pop() if self._idle else None

    def acquire(
        self, timeout: float | None, dead: SyncByteStream | None = None
    ) -> tuple[SyncByteStream, bool]:
        """An idle connection still good for a request, else a new one; and
        whether it was reused.  ``dead``, one :meth:`take` gave that is not
        good, is closed first."""
        if dead is not None:
            dead.close()  # the server closed it, or sent what nobody asked
        while True:
            stream = self.take()
            if stream is None:
                return self.connect(timeout), False
            if not stream.is_readable():
                return stream, True
            stream.close()  # the server closed it, or sent what nobody asked

    def keep(self, stream: SyncByteStream, reusable: bool) -> bool:
        """Keep ``stream`` idle if it is ``reusable`` and there is room; whether
        it was kept (if not, the caller closes it)."""
        with self._guard:
            if reusable and not self._closed and len(self._idle) < self.max_idle:
                self._idle.append(stream)
                return True
        return False

    def release(self, stream: SyncByteStream, reusable: bool) -> None:
        if not self.keep(stream, reusable):
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

    def beyond(self, base: float | None) -> bool:
        """Whether the deadline is further off than ``base`` (a timeout), so
        that ``base`` alone bounds the next operation (as :meth:`bound` says
        then): the operation can go without :meth:`run`'s layer."""
        deadline = self.deadline
        return deadline is None or (base is not None and deadline - time.monotonic() > base)

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
    shared_logins: bool = False,
    wall_clock: Callable[[], float] = time.time,
) -> Generator[list[ChatEvent], None, None]:
    """Run one chat over ``pool``'s connections; yield its events in batches.

    A batch is every event the bytes of one read produced, yielded before the
    next read: a burst of events costs one trip through the layers above, not
    one per event, and no event waits for more IO.

    ``shared_logins`` makes chats that share credentials share logins: before
    its first request the chat claims its token (``Chat.claim``: the core
    decides), and either uses one, or logs in while holding a lock that the
    chats seated on its login wait on, or waits on another chat's login.  So
    concurrent chats make one login per ``max_uses`` of them, all at once.
    ``wall_clock`` gives the unix time the core stamps requests with and
    judges token expiry by (replay passes the recorded time).
    """
    backend = concrete(pool.backend)
    limits = _Limits(timeout, deadline)
    stream: SyncByteStream | None = None
    reusable = False
    claimed = not shared_logins
    # Held while this chat's own login is in flight (the seated chats wait on it).
    login: SyncLock | None = None
    batch: list[ChatEvent] = []
    # The core said, as the request went out, that nothing of its answer is
    # in hand: the next event is NEED_DATA, read without asking for it.
    waiting = False
    event: list[ChatEvent] | ReconnectNeeded | Sentinel
    # What limits.beyond(timeout.read) says, asked before every read and
    # write: written out there (a call each, several per chat).
    read_timeout = timeout.read
    monotonic = time.monotonic
    try:
        if limits.beyond(timeout.connect):  # the connect timeout alone bounds it
            # The common start, a kept-alive connection still good, without
            # acquire()'s coroutine; else acquire() as ever (a dead one closed).
            stream = pool.take()
            if stream is not None and not stream.is_readable():
                reused = True
            else:
                # A dead one is acquire's to close, not ours too if it fails.
                dead, stream = stream, None
                stream, reused = pool.acquire(timeout.connect, dead)
        else:
            stream, reused = limits.acquire(pool)
        while True:
            try:
                if waiting:
                    waiting = False
                    event = NEED_DATA
                else:
                    # Every event one read produced in one call (not one per event).
                    event = conn.next_events()
            except GPTalkError:
                # The events before the error are delivered first: nothing lost.
                if batch:
                    yield batch
                    batch = []
                raise
            if type(event) is list:
                if type(event[-1]) is ChatDone:  # always the last of its list
                    # The body's end is nearly always in hand with [DONE]: the
                    # first step of _drain, and the release of a connection
                    # kept, without a coroutine each (this runs before the
                    # reply's last batch goes up: on a one-read reply, its
                    # first delta waits for it).
                    ended = _drained(conn)
                    reusable = ended if ended is not None else _drain(conn, stream)
                    if not pool.keep(stream, reusable):
                        with backend.shield():
                            stream.close()
                    stream = None
                    if batch:
                        event = batch + event
                    yield event
                    return
                if batch:
                    batch += event
                else:
                    batch = event
            elif event is NEED_DATA:
                if batch:
                    yield batch
                    batch = []
                try:
                    # The common read, without run()'s layer (a coroutine per
                    # read): the read timeout alone bounds it when the total
                    # deadline is further off (the default Timeout has one).
                    if deadline is None or (
                        read_timeout is not None and deadline - monotonic() > read_timeout
                    ):
                        data = stream.receive_some(READ_SIZE, read_timeout)
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
                if not claimed:
                    claimed = True
                    # The common answer, go now, without _claim's coroutine.
                    with _CREDENTIALS_GUARD:
                        wait = conn.chat.claim(wall_clock())
                    if wait is not None:
                        login = _claim(conn.chat, backend, wall_clock, wait)
                now = wall_clock()
                with _CREDENTIALS_GUARD:
                    data = conn.send(now=now)
                if login is not None and not conn.chat.logging_in:
                    login.release()  # the login ended: the seated chats take their uses
                    login = None
                try:
                    if deadline is None or (  # the common write, without run()
                        read_timeout is not None and deadline - monotonic() > read_timeout
                    ):
                        try:
                            stream.send_all(data, read_timeout)
                        except TimeoutError:
                            raise WriteTimeout(
                                f"no progress on the write for {timeout.read} s"
                            ) from None
                    else:
                        limits.run(stream.send_all, (data,), timeout.read, "write")
                    # Bookkeeping while the server works.
                    waiting = conn.request_sent()
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
            else:  # PAUSED
                reusable = conn.reusable
                return
    finally:
        with _CREDENTIALS_GUARD:
            conn.chat.release_claim()  # a seat, a login or a token it did not use
        if login is not None:
            login.release()
        if stream is not None:
            with backend.shield():
                pool.release(stream, reusable)


def _claim(
    chat: Chat, backend: SyncBackend, wall_clock: Callable[[], float], wait: object
) -> SyncLock | None:
    """Wait until ``chat`` may make its first request (``Chat.claim`` decides;
    ``wait`` is its first answer, given no handle: not None).

    Returns the lock this chat holds while its own login is in flight, which
    the chats seated on that login wait on; None when it took a token's use.
    """
    held: SyncLock | None = None  # a lock for a login of our own, if needed
    try:
        while True:
            if wait is None:
                if held is not None and not chat.logging_in:
                    held.release()  # a token turned up meanwhile
                    held = None
                return held
            if wait is NEED_HANDLE:
                # Held before anyone can see it, so waiting on it waits for the
                # login (a fresh lock is taken at once).
                fresh = backend.create_lock()
                fresh.acquire()
                held = fresh
            else:
                if held is not None:
                    held.release()  # another chat's login has a seat for us after all
                    held = None
                other = cast(SyncLock, wait)
                other.acquire()  # until that login ends
                other.release()
            with _CREDENTIALS_GUARD:
                wait = chat.claim(wall_clock(), held)
    except BaseException:
        if held is not None:
            held.release()
        raise


def _drained(conn: ClientConnection) -> bool | None:
    """After [DONE], from what is in hand: whether the connection is
    reusable, or None when more of the body must be read first."""
    event = conn.next_event()
    if event is PAUSED:
        return conn.reusable
    return None if event is NEED_DATA else False


def _drain(conn: ClientConnection, stream: SyncByteStream) -> bool:
    """Read to the body's end after [DONE]; whether the connection is reusable."""
    while True:
        reusable = _drained(conn)
        if reusable is not None:
            return reusable
        try:
            data = stream.receive_some(READ_SIZE, DRAIN_TIMEOUT)
        except (TimeoutError, ReadError):
            return False
        conn.receive_data(data)
