"""The blocking backend: the standard library's socket and ssl."""

from __future__ import annotations

import socket
import ssl

from .._exceptions import ConnectError, ReadError, WriteError
from .base import SyncByteStream, socket_is_readable, tls_error

__all__ = ["SyncStream", "connect_tcp", "resolve"]


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
