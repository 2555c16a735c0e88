"""Connectors: a ready HTTP/1.1 byte stream to the service, however it is reached.

A connector does TCP (to the service or to a proxy), the proxy handshake
(HTTP CONNECT or SOCKS5) and TLS, and says how requests must be framed (the
``Host`` header; absolute-form targets and ``Proxy-Authorization`` for an HTTP
proxy in front of a plain-HTTP service).  Record/replay wraps or replaces a
connector; nothing above it knows.  The sans-IO half (what to connect to, the
handshakes, the framing) is :mod:`.._handshake`'s.
"""

from __future__ import annotations

import ssl
from typing import Protocol

from .._backends.auto import make_async_backend
from .._backends.base import AsyncBackend, AsyncByteStream
from .._backends.heap import keep_heap
from .._config import Origin, ProxyURL
from .._exceptions import ConnectTimeout, TransportError
from .._handshake import HANDSHAKE_READ, ConnectBudget, ConnectPlan, Handshake, RequestOptions

__all__ = ["AsyncConnector", "AsyncConnectorProtocol", "RequestOptions"]


class AsyncConnectorProtocol(Protocol):
    """What the client needs from a connector (record/replay implement it)."""

    @property
    def request_options(self) -> RequestOptions: ...

    async def connect(self, timeout: float | None) -> AsyncByteStream: ...


class AsyncConnector:
    """Opens streams to the service over a backend (an object, or a name as
    the client takes)."""

    def __init__(
        self,
        backend: str | AsyncBackend,
        origin: Origin,
        *,
        proxy: ProxyURL | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.backend = make_async_backend(backend)
        self._plan = ConnectPlan(origin, proxy, ssl_context)

    @property
    def request_options(self) -> RequestOptions:
        return self._plan.options

    async def connect(self, timeout: float | None) -> AsyncByteStream:
        """A stream ready for HTTP/1.1; the whole setup within ``timeout``."""
        plan = self._plan
        left = ConnectBudget(timeout)
        keep_heap()  # this connection's reads go through the heap (see HEAP_KEEP)
        try:
            with self.backend.fail_after(timeout):
                try:
                    stream = await self.backend.connect_tcp(*plan.tcp, left())
                except TransportError as exc:
                    raise plan.connect_error(exc) from None
                try:
                    if plan.tunnel:
                        host = plan.origin.host
                        if plan.proxy is not None and plan.proxy.scheme == "socks5":
                            host = await self.backend.resolve(host, plan.origin.port)
                        plan.leftover(await self._pump(stream, plan.handshake(host), left))
                    if plan.origin.tls:
                        assert plan.ssl_context is not None
                        stream = await stream.start_tls(plan.ssl_context, plan.origin.host, left())
                except BaseException:
                    with self.backend.shield():
                        await stream.aclose()
                    raise
        except TimeoutError:
            raise ConnectTimeout(
                f"connecting to {plan.origin} took longer than {timeout} s"
            ) from None
        return stream

    async def _pump(
        self, stream: AsyncByteStream, handshake: Handshake, left: ConnectBudget
    ) -> bytes:
        # Yielded bytes go out; a yielded None asks for bytes in.
        try:
            out = next(handshake)
            while True:
                if out is None:
                    out = handshake.send(await stream.receive_some(HANDSHAKE_READ, left()))
                else:
                    await stream.send_all(out, left())
                    out = handshake.send(b"")
        except StopIteration as stop:
            leftover: bytes = stop.value
            return leftover
