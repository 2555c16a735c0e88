"""The blocking backend: the standard library's socket and ssl."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from contextlib import AbstractContextManager, nullcontext

from gptalk_proto import LocalProtocolError

from .base import (
    SyncBackend,
    SyncByteStream,
    SyncLock,
    broke_while,
    cannot_connect,
    cannot_resolve,
    map_exceptions,
    socket_is_readable,
    tls_error,
)

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
        with map_exceptions(OSError, broke_while(self._peer, True)):
            self._sock.sendall(data)

    def receive_some(self, max_bytes: int, timeout: float | None) -> bytes:
        self._sock.settimeout(timeout)
        with map_exceptions(OSError, broke_while(self._peer, False)):
            try:
                return self._sock.recv(max_bytes)
            except ssl.SSLZeroReturnError:
                return b""

    def start_tls(
        self, context: ssl.SSLContext, server_hostname: str, timeout: float | None
    ) -> SyncByteStream:
        self._sock.settimeout(timeout)
        # ssl.SSLError is an OSError.
        with map_exceptions(OSError, lambda exc: tls_error(exc, server_hostname)):
            tls = context.wrap_socket(self._sock, server_hostname=server_hostname)
        return SyncStream(tls, self._peer)

    def is_readable(self) -> bool:
        return socket_is_readable(self._sock)

    def close(self) -> None:
        self._sock.close()


def connect_tcp(host: str, port: int, timeout: float | None) -> SyncStream:
    """Open a TCP connection (Nagle off: requests go out whole, at once)."""
    with map_exceptions(OSError, cannot_connect(host, port)):
        sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return SyncStream(sock, f"{host}:{port}")


def resolve(host: str, port: int) -> str:
    with map_exceptions(OSError, cannot_resolve(host)):
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
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
