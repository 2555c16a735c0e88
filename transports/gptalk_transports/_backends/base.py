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
from contextlib import AbstractContextManager
from typing import Protocol

from .._exceptions import ReadError, TLSError, TLSVerificationError

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
    if sock is None or sock.fileno() < 0:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
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
