"""The anyio backend: one implementation for asyncio and trio alike."""

from __future__ import annotations

import socket
import ssl
from contextlib import AbstractContextManager, suppress

import anyio
from anyio.abc import ByteStream, SocketAttribute, SocketStream
from anyio.streams.tls import TLSStream

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

__all__ = ["AnyioBackend", "AnyioStream"]

_BROKEN = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError, ssl.SSLError)


class AnyioStream:
    """An anyio byte stream behind the :class:`AsyncByteStream` interface."""

    __slots__ = ("_peer", "_sock", "_stream")

    def __init__(self, stream: ByteStream, peer: str, sock: socket.socket | None) -> None:
        self._stream = stream
        self._peer = peer
        # Looked up once: anyio builds its extra-attribute table on every call.
        self._sock = sock

    async def send_all(self, data: bytes, timeout: float | None) -> None:
        with map_exceptions(_BROKEN, broke_while(self._peer, True)), anyio.fail_after(timeout):
            await self._stream.send(data)

    async def receive_some(self, max_bytes: int, timeout: float | None) -> bytes:
        with map_exceptions(_BROKEN, broke_while(self._peer, False)), anyio.fail_after(timeout):
            try:
                return await self._stream.receive(max_bytes)
            except anyio.EndOfStream:
                return b""

    async def start_tls(
        self, context: ssl.SSLContext, server_hostname: str, timeout: float | None
    ) -> AsyncByteStream:
        failed = map_exceptions(_BROKEN, lambda exc: tls_error(exc, server_hostname))
        with failed, anyio.fail_after(timeout):
            tls = await TLSStream.wrap(
                self._stream,
                hostname=server_hostname,
                ssl_context=context,
                # GPTalk frames every body itself; a missing close_notify
                # cannot truncate anything unnoticed.
                standard_compatible=False,
            )
        return AnyioStream(tls, self._peer, self._sock)

    def is_readable(self) -> bool:
        return socket_is_readable(self._sock)

    async def send_eof(self) -> None:
        """Half-close: no more bytes will be sent (a no-op where the stream
        cannot, e.g. over TLS)."""
        if isinstance(self._stream, SocketStream):
            with suppress(*_BROKEN):
                await self._stream.send_eof()

    async def aclose(self) -> None:
        # Forceful: no TLS closing handshake that could block a cancelled task.
        await anyio.aclose_forcefully(self._stream)


class AnyioBackend:
    """Runs on whatever event loop anyio finds (asyncio or trio)."""

    name = "anyio"

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None
    ) -> AsyncByteStream:
        with map_exceptions(OSError, cannot_connect(host, port)):
            stream = await anyio.connect_tcp(host, port)
        sock = stream.extra(SocketAttribute.raw_socket)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return AnyioStream(stream, f"{host}:{port}", sock)

    async def resolve(self, host: str, port: int) -> str:
        with map_exceptions(OSError, cannot_resolve(host)):
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return str(infos[0][4][0])

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)

    def fail_after(self, seconds: float | None) -> AbstractContextManager[object]:
        return anyio.fail_after(seconds)

    def shield(self) -> AbstractContextManager[object]:
        return anyio.CancelScope(shield=True)

    def current_time(self) -> float:
        return anyio.current_time()

    def create_lock(self) -> AsyncLock:
        return anyio.Lock()
