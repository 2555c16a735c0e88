"""The trio-native backend: trio's own SocketStream and SSLStream."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import trio

from .._exceptions import ConnectError, ReadError, WriteError
from .base import AsyncByteStream, AsyncLock, HasFileno, socket_is_readable, tls_error

__all__ = ["TrioBackend", "TrioStream"]

_BROKEN = (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ssl.SSLError)


class TrioStream:
    """A trio stream behind the :class:`AsyncByteStream` interface."""

    __slots__ = ("_peer", "_sock", "_stream")

    def __init__(self, stream: trio.abc.Stream, sock: HasFileno | None, peer: str) -> None:
        self._stream = stream
        self._sock = sock
        self._peer = peer

    async def send_all(self, data: bytes, timeout: float | None) -> None:
        try:
            with _fail_after(timeout):
                await self._stream.send_all(data)
        except TimeoutError:
            raise  # an OSError too, but not a broken connection
        except _BROKEN as exc:
            raise WriteError(f"the connection to {self._peer} broke while writing: {exc}") from None

    async def receive_some(self, max_bytes: int, timeout: float | None) -> bytes:
        try:
            with _fail_after(timeout):
                return bytes(await self._stream.receive_some(max_bytes))
        except TimeoutError:
            raise  # an OSError too, but not a broken connection
        except _BROKEN as exc:
            raise ReadError(f"the connection to {self._peer} broke while reading: {exc}") from None

    async def start_tls(
        self, context: ssl.SSLContext, server_hostname: str, timeout: float | None
    ) -> AsyncByteStream:
        tls = trio.SSLStream(
            self._stream, context, server_hostname=server_hostname, https_compatible=True
        )
        try:
            with _fail_after(timeout):
                await tls.do_handshake()
        except TimeoutError:
            raise
        except _BROKEN as exc:
            cause = exc.__cause__ if isinstance(exc, trio.BrokenResourceError) else exc
            raise tls_error(cause or exc, server_hostname) from None
        return TrioStream(tls, self._sock, self._peer)

    def is_readable(self) -> bool:
        return socket_is_readable(self._sock)

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self._stream)


@contextmanager
def _fail_after(seconds: float | None) -> Iterator[None]:
    if seconds is None:
        yield
        return
    try:
        with trio.fail_after(seconds):
            yield
    except trio.TooSlowError:
        raise TimeoutError from None


class TrioBackend:
    """Needs a running trio loop."""

    name = "trio"

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None
    ) -> AsyncByteStream:
        try:
            stream = await trio.open_tcp_stream(host, port)
        except OSError as exc:
            raise ConnectError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
        # trio's SocketStream sets TCP_NODELAY itself.
        return TrioStream(stream, stream.socket, f"{host}:{port}")

    async def resolve(self, host: str, port: int) -> str:
        try:
            infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise ConnectError(f"cannot resolve {host}: {exc}") from None
        return str(infos[0][4][0])

    async def sleep(self, seconds: float) -> None:
        await trio.sleep(seconds)

    def fail_after(self, seconds: float | None) -> AbstractContextManager[object]:
        return _fail_after(seconds)

    def shield(self) -> AbstractContextManager[object]:
        return trio.CancelScope(shield=True)

    def current_time(self) -> float:
        return trio.current_time()

    def create_lock(self) -> AsyncLock:
        return trio.Lock()
