"""The byte-stream interface every backend provides, one per side.

A driver needs very little from the network: send all of some bytes, receive
up to N bytes (``b""`` at EOF), upgrade to TLS, tell whether an idle
connection has data (or EOF) waiting, and close.  Backends also give the
driver a clock, a sleep, a lock and timeouts, so the drivers run unchanged on
anyio (asyncio or trio), trio's own streams, or blocking sockets.

Every method raises this package's transport errors, never a backend's own.
"""

from __future__ import annotations

import select
import ssl
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Protocol

from .._exceptions import ConnectError, ReadError, TLSError, TLSVerificationError, WriteError

__all__ = [
    "AsyncBackend",
    "AsyncByteStream",
    "AsyncLock",
    "AsyncThreadLock",
    "HasFileno",
    "SyncBackend",
    "SyncByteStream",
    "SyncLock",
    "ThreadLock",
    "broke_while",
    "cannot_connect",
    "cannot_resolve",
    "map_exceptions",
    "socket_is_readable",
    "tls_error",
]


class AsyncByteStream(Protocol):
    """A connected byte stream (async side).

    Each operation takes its own timeout (``None``: none) and raises the
    builtin ``TimeoutError`` when it runs out, as the blocking side does: a
    backend then implements timeouts as cheaply as it can (the native asyncio
    one arms a timer only when a read must actually wait).
    """

    async def send_all(self, data: bytes, timeout: float | None) -> None: ...

    async def receive_some(self, max_bytes: int, timeout: float | None) -> bytes: ...

    async def start_tls(
        self, context: ssl.SSLContext, server_hostname: str, timeout: float | None
    ) -> AsyncByteStream: ...

    def is_readable(self) -> bool: ...

    async def aclose(self) -> None: ...


class AsyncLock(Protocol):
    async def acquire(self) -> object: ...

    def release(self) -> None: ...


class AsyncBackend(Protocol):
    """What an async driver needs from its IO library."""

    name: str

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None
    ) -> AsyncByteStream:
        """A TCP connection.  ``timeout`` bounds it on the blocking side only:
        an async caller bounds the whole setup with :meth:`fail_after`."""
        ...

    async def resolve(self, host: str, port: int) -> str: ...

    async def sleep(self, seconds: float) -> None: ...

    def fail_after(self, seconds: float | None) -> AbstractContextManager[object]:
        """Raise the builtin ``TimeoutError`` when the block runs too long."""
        ...

    def shield(self) -> AbstractContextManager[object]:
        """Protect cleanup from cancellation."""
        ...

    def current_time(self) -> float: ...

    def create_lock(self) -> AsyncLock: ...


class AsyncThreadLock:
    """Guards state shared by threads: nothing to guard on the async side.

    The blocking twin (:class:`threading.Lock`) is what ``_sync`` gets in its
    place, as httpcore does: one source guards for both.
    """

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


#: What guards state shared by threads on the blocking side.
ThreadLock = threading.Lock


class SyncByteStream(Protocol):
    """A connected byte stream (blocking side); ``timeout`` None blocks forever."""

    def send_all(self, data: bytes, timeout: float | None) -> None: ...

    def receive_some(self, max_bytes: int, timeout: float | None) -> bytes: ...

    def start_tls(
        self, context: ssl.SSLContext, server_hostname: str, timeout: float | None
    ) -> SyncByteStream: ...

    def is_readable(self) -> bool: ...

    def close(self) -> None: ...


class SyncLock(Protocol):
    def acquire(self) -> object: ...

    def release(self) -> None: ...


class SyncBackend(Protocol):
    """The async backend's surface over blocking calls (what ``_sync`` needs)."""

    name: str

    def connect_tcp(self, host: str, port: int, timeout: float | None = None) -> SyncByteStream: ...

    def resolve(self, host: str, port: int) -> str: ...

    def sleep(self, seconds: float) -> None: ...

    def fail_after(self, seconds: float | None) -> AbstractContextManager[object]:
        """A blocking call cannot be interrupted: each one takes its own timeout,
        so this scope only marks where the async side has one."""
        ...

    def shield(self) -> AbstractContextManager[object]: ...

    def current_time(self) -> float: ...

    def create_lock(self) -> SyncLock: ...


class HasFileno(Protocol):
    def fileno(self) -> int: ...


def socket_is_readable(sock: HasFileno | None) -> bool:
    """Whether bytes (or EOF) wait on an idle socket.

    On a kept-alive connection that nobody is reading, either means the
    connection is no good any more: the server closed it, or sent something
    no request asked for.
    """
    if sock is None:
        return True
    fd = sock.fileno()
    if fd < 0:
        return True
    try:
        # The descriptor just read, not the socket object: select would ask
        # the object for it again (a Python call for asyncio's sockets).
        readable, _, _ = select.select([fd], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def tls_error(exc: BaseException, host: str) -> Exception:
    """Our error for a failed TLS handshake."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TLSVerificationError(
            f"TLS certificate verification failed for {host}: {exc.verify_message or exc.reason}"
        )
    if isinstance(exc, ssl.SSLError):
        return TLSError(f"TLS handshake with {host} failed: {exc.reason or exc}")
    return ReadError(f"the connection to {host} broke during the TLS handshake: {exc}")


class map_exceptions:
    """Re-raise a backend's own errors as this package's, in one place.

    Inside the block, an exception that is one of ``errors`` becomes
    ``make(exc)``, raised without the chain (the backend's traceback says
    nothing a user can act on).  The builtin ``TimeoutError`` always passes
    through: it is an ``OSError`` too, but a timeout, not a broken connection.
    Every backend's try/except mappings are this one helper (httpcore's way).
    """

    __slots__ = ("_errors", "_make")

    def __init__(
        self,
        errors: type[BaseException] | tuple[type[BaseException], ...],
        make: Callable[[BaseException], Exception],
    ) -> None:
        self._errors = errors
        self._make = make

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Returns None: an exception not mapped goes on as it was.
        if exc is None or isinstance(exc, TimeoutError) or not isinstance(exc, self._errors):
            return
        raise self._make(exc) from None


def broke_while(peer: str, writing: bool) -> Callable[[BaseException], Exception]:
    """The error for a connection that broke while reading or writing."""
    if writing:
        return lambda exc: WriteError(f"the connection to {peer} broke while writing: {exc}")
    return lambda exc: ReadError(f"the connection to {peer} broke while reading: {exc}")


def cannot_connect(host: str, port: int) -> Callable[[BaseException], Exception]:
    """The error for a TCP connection that could not be opened."""
    return lambda exc: ConnectError(
        f"cannot connect to {host}:{port}: {getattr(exc, 'strerror', None) or exc}"
    )


def cannot_resolve(host: str) -> Callable[[BaseException], Exception]:
    """The error for a name that could not be resolved."""
    return lambda exc: ConnectError(f"cannot resolve {host}: {exc}")
