"""The blocking backend: the standard library's socket and ssl."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from contextlib import AbstractContextManager, nullcontext

from gptalk_proto import LocalProtocolError

from .._exceptions import ConnectError, ReadError, WriteError
from .base import SyncBackend, SyncByteStream, SyncLock, socket_is_readable, tls_error

__all__ = [
    "BlockingBackend",
    "SyncStream",
    "concrete",
    "connect_tcp",
    "make_sync_backend",
    "resolve",
]


class SyncStream:
    """A blocking socket behind the :class:`SyncByteStream` interface.

    Each call sets the socket's timeout: the driver passes the smaller of the
    read timeout and what is left of the total deadline.
    """

    __slots__ = ("_peer", "_sock")

    def __init__(self, sock: socket.socket, peer: str) -> None:
        self._sock = sock
        self._peer = peer

    def send_all(self, data: bytes, timeout: float | None) -> None:
        self._sock.settimeout(timeout)
        try:
            self._sock.sendall(data)
        except TimeoutError:
            raise
        except OSError as exc:
            raise WriteError(f"the connection to {self._peer} broke while writing: {exc}") from None

    def receive_some(self, max_bytes: int, timeout: float | None) -> bytes:
        self._sock.settimeout(timeout)
        try:
            return self._sock.recv(max_bytes)
        except TimeoutError:
            raise
        except ssl.SSLZeroReturnError:
            return b""
        except OSError as exc:
            raise ReadError(f"the connection to {self._peer} broke while reading: {exc}") from None

    def start_tls(
        self, context: ssl.SSLContext, server_hostname: str, timeout: float | None
    ) -> SyncByteStream:
        self._sock.settimeout(timeout)
        try:
            tls = context.wrap_socket(self._sock, server_hostname=server_hostname)
        except TimeoutError:
            raise
        except OSError as exc:  # ssl.SSLError is an OSError
            raise tls_error(exc, server_hostname) from None
        return SyncStream(tls, self._peer)

    def is_readable(self) -> bool:
        return socket_is_readable(self._sock)

    def close(self) -> None:
        self._sock.close()


def connect_tcp(host: str, port: int, timeout: float | None) -> SyncStream:
    """Open a TCP connection (Nagle off: requests go out whole, at once)."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except TimeoutError:
        raise
    except OSError as exc:
        raise ConnectError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return SyncStream(sock, f"{host}:{port}")


def resolve(host: str, port: int) -> str:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ConnectError(f"cannot resolve {host}: {exc}") from None
    return str(infos[0][4][0])


class BlockingBackend:
    """Blocking sockets behind the async backends' surface.

    Timeouts: a blocking call cannot be interrupted from outside, so every
    socket call takes its own timeout and :meth:`fail_after` is a plain scope;
    there is no cancellation to shield from either.
    """

    name = "sync"

    def connect_tcp(self, host: str, port: int, timeout: float | None = None) -> SyncByteStream:
        return connect_tcp(host, port, timeout)

    def resolve(self, host: str, port: int) -> str:
        return resolve(host, port)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def fail_after(self, seconds: float | None) -> AbstractContextManager[object]:
        return nullcontext()

    def shield(self) -> AbstractContextManager[object]:
        return nullcontext()

    def current_time(self) -> float:
        return time.monotonic()

    def create_lock(self) -> SyncLock:
        return threading.Lock()


def make_sync_backend(backend: str | SyncBackend) -> SyncBackend:
    """The blocking backend: ``"auto"`` or ``"sync"`` name blocking sockets
    (the only kind there is), or pass a backend object."""
    if backend in ("auto", "sync"):
        return BlockingBackend()
    if isinstance(backend, str):
        raise LocalProtocolError(f"unknown backend {backend!r}: expected 'sync'")
    return backend


def concrete(backend: SyncBackend) -> SyncBackend:
    """The backend itself: the blocking side picks nothing per call."""
    return backend
