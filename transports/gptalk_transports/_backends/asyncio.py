"""The native asyncio backend: asyncio's own transports, no extra layers.

Why a backend of its own when anyio runs on asyncio too: every read of a
chat sits under a read timeout, and an anyio cancel scope costs about 13
microseconds to enter and leave -- more than parsing an event.  Here a read
that finds bytes waiting returns them at once, and only a read that must wait
arms a timer (one ``call_later``), which fails the wait with ``TimeoutError``
without cancelling the task.  On asyncio the client picks this backend by
default; ``backend="anyio"`` still runs the portable one.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from contextlib import AbstractContextManager, nullcontext
from itertools import islice

import anyio

from .._exceptions import ReadError, WriteError
from .base import (
    AsyncByteStream,
    AsyncLock,
    broke_while,
    cannot_connect,
    cannot_resolve,
    map_exceptions,
    socket_is_readable,
    tls_error,
)

__all__ = ["AsyncioBackend", "AsyncioStream"]

#: Cap on bytes read but not yet taken by the client, per connection.  Past
#: it the transport stops reading from the socket (TCP flow control pushes
#: back on the server) until the client catches up below the low mark.
MAX_BUFFERED = 1024 * 1024
RESUME_BELOW = 256 * 1024
#: Cap on the reads held for the client, per connection, whatever their
#: size: a peer trickling a byte at a time made each byte a read, and a
#: read costs about fifty bytes of its own, so MAX_BUFFERED of them held
#: some 50 MB.  Past it reading stops too, until a read of the client's
#: takes them below the low mark.
MAX_CHUNKS = 4096
RESUME_CHUNKS_BELOW = 1024


class _Protocol(asyncio.Protocol):
    """Collects what the transport reads, and wakes whoever waits for it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        # What the transport read and no read took yet, in order (at most
        # MAX_BUFFERED bytes and one read past it).  A list, taken from the
        # front a run at a time (see receive_some), not a deque: an empty
        # list holds no block of its own, where a deque's is 528 bytes, one
        # per connection of a client holding a thousand.
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.paused = False
        self.eof = False
        self.error: BaseException | None = None
        self.reader: asyncio.Future[None] | None = None
        self.writer: asyncio.Future[None] | None = None
        # The read timeout's timer, kept across reads (see arm_read_timer):
        # when the wait in progress fails (the loop's time), None for a wait
        # without a timeout; the armed timer, and the time it fires at.
        self.read_deadline: float | None = None
        self.read_timer: asyncio.TimerHandle | None = None
        self.read_timer_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        chunks = self.chunks
        chunks.append(data)
        self.buffered += len(data)
        if (
            (self.buffered > MAX_BUFFERED or len(chunks) > MAX_CHUNKS)
            and not self.paused
            and self.transport is not None
        ):
            self.paused = True
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return False  # close the transport (TLS cannot half-close anyway)

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self._wake_reader()
        self.disarm_read_timer()  # every read from now on returns at once
        if self.writer is not None and not self.writer.done():
            self.writer.set_result(None)

    def pause_writing(self) -> None:
        if self.writer is None or self.writer.done():
            self.writer = self.loop.create_future()

    def resume_writing(self) -> None:
        if self.writer is not None and not self.writer.done():
            self.writer.set_result(None)

    def _wake_reader(self) -> None:
        if self.reader is not None and not self.reader.done():
            self.reader.set_result(None)

    def arm_read_timer(self, timeout: float | None) -> None:
        """Fail the read wait that starts now (``self.reader``) with
        ``TimeoutError`` after ``timeout`` seconds.

        Why not a timer per wait: a chat waits for a read three times or so,
        and making, cancelling and unheaping a timer each time cost more than
        the rest of the wait.  One timer is kept instead, armed no later
        than the wait's deadline: a wait whose deadline is past the armed
        timer's only moves the deadline, and the timer, when it fires, arms
        itself again for the deadline of the wait in progress (or disarms,
        with no wait or a wait without a timeout).  So a wait fails exactly
        ``timeout`` seconds after it began, as with a timer of its own.
        """
        if timeout is None:
            self.read_deadline = None
            return
        deadline = self.read_deadline = self.loop.time() + timeout
        timer = self.read_timer
        if timer is None or self.read_timer_at > deadline:
            if timer is not None:
                timer.cancel()
            self.read_timer_at = deadline
            self.read_timer = self.loop.call_at(deadline, self._read_timer_fired)

    def _read_timer_fired(self) -> None:
        self.read_timer = None
        reader, deadline = self.reader, self.read_deadline
        if reader is None or reader.done() or deadline is None:
            return  # no wait, or one without a timeout: disarmed until the next
        if self.read_timer_at >= deadline:
            # Armed for this very wait (the loop runs a timer when its time
            # is due, to the clock's resolution): the wait timed out.
            reader.set_exception(TimeoutError())
        else:
            # Armed for an earlier wait, that ended: on to this one's deadline.
            self.read_timer_at = deadline
            self.read_timer = self.loop.call_at(deadline, self._read_timer_fired)

    def disarm_read_timer(self) -> None:
        """Drop the timer (the connection is closed: nothing will read)."""
        if self.read_timer is not None:
            self.read_timer.cancel()
            self.read_timer = None


def _expire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


async def _wait(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[None], timeout: float | None
) -> None:
    # Fails the wait, not the task: nothing to uncancel, on any Python.
    handle = None if timeout is None else loop.call_later(timeout, _expire, future)
    try:
        await future
    finally:
        if handle is not None:
            handle.cancel()


class AsyncioStream:
    """An asyncio transport behind the :class:`AsyncByteStream` interface."""

    __slots__ = ("_loop", "_peer", "_protocol", "_sock", "_transport")

    def __init__(
        self,
        transport: asyncio.Transport,
        protocol: _Protocol,
        peer: str,
        sock: socket.socket | None,
    ) -> None:
        self._transport = transport
        self._protocol = protocol
        self._loop = protocol.loop
        self._peer = peer
        self._sock = sock

    async def send_all(self, data: bytes, timeout: float | None) -> None:
        protocol = self._protocol
        if protocol.eof or self._transport.is_closing():
            raise WriteError(f"the connection to {self._peer} is closed")
        try:
            self._transport.write(data)
        except (OSError, RuntimeError):
            # The one mapping, entered only when the write failed: around
            # every write its block cost three calls and a closure.
            with map_exceptions((OSError, RuntimeError), broke_while(self._peer, True)):
                raise
        writer = protocol.writer
        if writer is not None and not writer.done():
            # Over the transport's high-water mark: wait until it drains.
            await _wait(self._loop, writer, timeout)
            if protocol.error is not None:
                raise WriteError(
                    f"the connection to {self._peer} broke while writing: {protocol.error}"
                )

    async def receive_some(self, max_bytes: int, timeout: float | None) -> bytes:
        protocol = self._protocol
        chunks = protocol.chunks
        while not chunks:
            if protocol.eof:
                if protocol.error is not None and not isinstance(protocol.error, ssl.SSLError):
                    raise ReadError(
                        f"the connection to {self._peer} broke while reading: {protocol.error}"
                    )
                return b""
            protocol.reader = reader = self._loop.create_future()
            try:
                protocol.arm_read_timer(timeout)
                await reader
            finally:
                protocol.reader = None
        data = chunks[0]
        if len(chunks) == 1:
            chunks.clear()  # the common read: all there was
        else:
            # Take more of what is buffered, up to max_bytes, in one piece
            # (the chunks taken go in one cut of the list: one pass over it
            # per read, however many tiny reads the transport made).
            taken, size = 1, len(data)
            if size < max_bytes:
                for part in islice(chunks, 1, None):
                    if size + len(part) > max_bytes:
                        break
                    taken += 1
                    size += len(part)
            if taken > 1:
                data = b"".join(chunks[:taken])
            del chunks[:taken]
        if len(data) > max_bytes:
            chunks.insert(0, data[max_bytes:])
            data = data[:max_bytes]
        protocol.buffered -= len(data)
        if (
            protocol.paused
            and protocol.buffered < RESUME_BELOW
            and len(chunks) < RESUME_CHUNKS_BELOW
        ):
            protocol.paused = False
            self._transport.resume_reading()
        return data

    async def start_tls(
        self, context: ssl.SSLContext, server_hostname: str, timeout: float | None
    ) -> AsyncByteStream:
        # asyncio.TimeoutError is the builtin one from Python 3.11 on.
        timed_out = map_exceptions(asyncio.TimeoutError, lambda exc: TimeoutError())
        failed = map_exceptions(OSError, lambda exc: tls_error(exc, server_hostname))
        with timed_out, failed:
            transport = await asyncio.wait_for(
                self._loop.start_tls(
                    self._transport, self._protocol, context, server_hostname=server_hostname
                ),
                timeout,
            )
        if transport is None:  # pragma: no cover - only for server-side TLS
            raise ReadError(f"the connection to {server_hostname} closed during the TLS handshake")
        return AsyncioStream(transport, self._protocol, self._peer, self._sock)

    async def send_eof(self) -> None:
        """Half-close: no more bytes will be sent (a no-op where the
        transport cannot, e.g. over TLS)."""
        if not self._transport.is_closing() and self._transport.can_write_eof():
            self._transport.write_eof()

    def parts(self) -> tuple[asyncio.Transport, _Protocol]:
        """The transport and its protocol, for a server that moves bytes at
        the protocol level (the recording proxy's tee)."""
        return self._transport, self._protocol

    def is_readable(self) -> bool:
        return bool(self._protocol.chunks) or self._protocol.eof or socket_is_readable(self._sock)

    async def aclose(self) -> None:
        # Forceful and synchronous: nothing here can be interrupted.
        self._protocol.disarm_read_timer()
        self._transport.abort()


class AsyncioBackend:
    """Needs a running asyncio loop."""

    name = "asyncio"

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None
    ) -> AsyncByteStream:
        loop = asyncio.get_running_loop()
        with map_exceptions(OSError, cannot_connect(host, port)):
            transport, protocol = await loop.create_connection(lambda: _Protocol(loop), host, port)
        sock = transport.get_extra_info("socket")
        # asyncio sets TCP_NODELAY on its TCP transports already.
        return AsyncioStream(transport, protocol, f"{host}:{port}", sock)

    async def resolve(self, host: str, port: int) -> str:
        with map_exceptions(OSError, cannot_resolve(host)):
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        return str(infos[0][4][0])

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def fail_after(self, seconds: float | None) -> AbstractContextManager[object]:
        # Connections are opened rarely: anyio's scope is fine there (and works
        # on every Python this supports).
        return anyio.fail_after(seconds)

    def shield(self) -> AbstractContextManager[object]:
        # Cleanup here never suspends (aclose aborts the transport at once).
        return nullcontext()

    def current_time(self) -> float:
        return asyncio.get_running_loop().time()

    def create_lock(self) -> AsyncLock:
        return asyncio.Lock()
