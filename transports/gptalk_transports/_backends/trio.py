"""The trio-native backend: trio's own SocketStream and SSLStream."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress

import trio

from .base import (
    AsyncByteStream,
    AsyncLock,
    HasFileno,
    broke_while,
    cannot_connect,
    cannot_resolve,
    map_exceptions,
    socket_is_readable,
    tls_error,
)

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
        with map_exceptions(_BROKEN, broke_while(self._peer, True)), _fail_after(timeout):
            await self._stream.send_all(data)

    async def receive_some(self, max_bytes: int, timeout: float | None) -> bytes:
        with map_exceptions(_BROKEN, broke_while(self._peer, False)), _fail_after(timeout):
            return bytes(await self._stream.receive_some(max_bytes))

    async def start_tls(
        self, context: ssl.SSLContext, server_hostname: str, timeout: float | None
    ) -> AsyncByteStream:
        tls = trio.SSLStream(
            self._stream, context, server_hostname=server_hostname, https_compatible=True
        )
        failed = map_exceptions(_BROKEN, lambda exc: tls_error(_cause(exc), server_hostname))
        with failed, _fail_after(timeout):
            await tls.do_handshake()
        return TrioStream(tls, self._sock, self._peer)

    async def send_eof(self) -> None:
        """Half-close: no more bytes will be sent (a no-op where the stream
        cannot, e.g. over TLS)."""
        if isinstance(self._stream, trio.abc.HalfCloseableStream):
            with suppress(*_BROKEN):
                await self._stream.send_eof()

    def is_readable(self) -> bool:
        return socket_is_readable(self._sock)

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self._stream)


def _cause(exc: BaseException) -> BaseException:
    """What broke a trio stream: its BrokenResourceError wraps the ssl error."""
    if isinstance(exc, trio.BrokenResourceError) and exc.__cause__ is not None:
        return exc.__cause__
    return exc


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
        with map_exceptions(OSError, cannot_connect(host, port)):
            stream = await trio.open_tcp_stream(host, port)
        # trio's SocketStream sets TCP_NODELAY itself.
        return TrioStream(stream, stream.socket, f"{host}:{port}")

    async def resolve(self, host: str, port: int) -> str:
        with map_exceptions(OSError, cannot_resolve(host)):
            infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
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
