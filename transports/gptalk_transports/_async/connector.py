"""Connectors: a ready HTTP/1.1 byte stream to the service, however it is reached.

A connector does TCP (to the service or to a proxy), the proxy handshake
(HTTP CONNECT or SOCKS5) and TLS, and says how requests must be framed (the
``Host`` header; absolute-form targets and ``Proxy-Authorization`` for an HTTP
proxy in front of a plain-HTTP service).  Record/replay wraps or replaces a
connector; nothing above it knows.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from typing import NamedTuple, Protocol

from .._backends.base import AsyncBackend, AsyncByteStream, SyncByteStream
from .._backends.sync import connect_tcp, resolve
from .._config import Origin, ProxyURL
from .._exceptions import ConnectError, ConnectTimeout, ProxyError, TransportError
from .._handshake import Handshake, http_connect, proxy_authorization, socks5_connect

__all__ = [
    "AsyncConnector",
    "AsyncConnectorProtocol",
    "RequestOptions",
    "SyncConnector",
    "SyncConnectorProtocol",
]

#: Bytes read at a time during a proxy handshake (replies are tiny).
HANDSHAKE_READ = 4096


class RequestOptions(NamedTuple):
    """How ClientConnection frames requests on this connector's streams."""

    host: str
    #: Before every target: the service's base path, or for a plain-HTTP
    #: service behind an HTTP proxy, the absolute-form's scheme and authority too.
    target_prefix: str = ""
    proxy_headers: tuple[tuple[str, str], ...] = ()

    def __repr__(self) -> str:
        # The proxy headers carry credentials: named, never shown.
        hidden = tuple((name, "<redacted>") for name, _ in self.proxy_headers)
        return (
            f"RequestOptions(host={self.host!r}, target_prefix={self.target_prefix!r}, "
            f"proxy_headers={hidden!r})"
        )


class AsyncConnectorProtocol(Protocol):
    """What the async client needs from a connector (record/replay implement it)."""

    @property
    def request_options(self) -> RequestOptions: ...

    async def connect(self, timeout: float | None) -> AsyncByteStream: ...


class SyncConnectorProtocol(Protocol):
    """What the blocking client needs from a connector."""

    @property
    def request_options(self) -> RequestOptions: ...

    def connect(self, timeout: float | None) -> SyncByteStream: ...


class _Plan:
    """What connecting to ``origin`` through ``proxy`` takes; shared by both sides."""

    def __init__(
        self, origin: Origin, proxy: ProxyURL | None, ssl_context: ssl.SSLContext | None
    ) -> None:
        if origin.tls and ssl_context is None:
            raise ValueError("an https origin needs an SSL context")
        self.origin = origin
        self.proxy = proxy
        self.ssl_context = ssl_context
        if proxy is None:
            self.tcp = (origin.host, origin.port)
        else:
            self.tcp = (proxy.host, proxy.port)
        tunnel = proxy is not None and (proxy.scheme != "http" or origin.tls)
        self.tunnel = tunnel
        if proxy is not None and not tunnel:
            # A plain-HTTP service behind an HTTP proxy: no tunnel, requests in
            # absolute-form (RFC 9112 section 3.2.2) with the proxy's credentials.
            self.options = RequestOptions(
                origin.host_header,
                f"http://{origin.host_header}{origin.path}",
                tuple(proxy_authorization(proxy)),
            )
        else:
            # Origin-form under the service's base path, if it has one.
            self.options = RequestOptions(origin.host_header, origin.path)

    def handshake(self, resolved_host: str) -> Handshake:
        assert self.proxy is not None
        if self.proxy.scheme == "http":
            return http_connect(self.proxy, self.origin.host, self.origin.port)
        return socks5_connect(self.proxy, resolved_host, self.origin.port)

    def connect_error(self, exc: TransportError) -> TransportError:
        # A failure to reach the proxy is the proxy's failure; say so, by host
        # and port only (its credentials stay out of the message).
        if self.proxy is not None and isinstance(exc, ConnectError):
            return ProxyError(f"cannot reach the proxy {self.proxy}: {exc}")
        return exc


def _leftover(plan: _Plan, data: bytes) -> None:
    if data:
        raise ProxyError(f"the proxy {plan.proxy} sent data before the tunnel was used")


class AsyncConnector:
    """Opens streams to the service over an async backend."""

    def __init__(
        self,
        backend: AsyncBackend,
        origin: Origin,
        *,
        proxy: ProxyURL | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.backend = backend
        self._plan = _Plan(origin, proxy, ssl_context)

    @property
    def request_options(self) -> RequestOptions:
        return self._plan.options

    async def connect(self, timeout: float | None) -> AsyncByteStream:
        """A stream ready for HTTP/1.1; the whole setup within ``timeout``."""
        plan = self._plan
        try:
            with self.backend.fail_after(timeout):
                try:
                    stream = await self.backend.connect_tcp(*plan.tcp)
                except TransportError as exc:
                    raise plan.connect_error(exc) from None
                try:
                    if plan.tunnel:
                        host = plan.origin.host
                        if plan.proxy is not None and plan.proxy.scheme == "socks5":
                            host = await self.backend.resolve(host, plan.origin.port)
                        _leftover(plan, await self._pump(stream, plan.handshake(host)))
                    if plan.origin.tls:
                        assert plan.ssl_context is not None
                        # The scope around the whole setup is the timeout here.
                        stream = await stream.start_tls(plan.ssl_context, plan.origin.host, None)
                except BaseException:
                    with self.backend.shield():
                        await stream.aclose()
                    raise
        except TimeoutError:
            raise ConnectTimeout(
                f"connecting to {plan.origin} took longer than {timeout} s"
            ) from None
        return stream

    async def _pump(self, stream: AsyncByteStream, handshake: Handshake) -> bytes:
        # Yielded bytes go out; a yielded None asks for bytes in.
        try:
            out = next(handshake)
            while True:
                if out is None:
                    out = handshake.send(await stream.receive_some(HANDSHAKE_READ, None))
                else:
                    await stream.send_all(out, None)
                    out = handshake.send(b"")
        except StopIteration as stop:
            leftover: bytes = stop.value
            return leftover


class SyncConnector:
    """Opens blocking streams to the service."""

    def __init__(
        self,
        origin: Origin,
        *,
        proxy: ProxyURL | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._plan = _Plan(origin, proxy, ssl_context)

    @property
    def request_options(self) -> RequestOptions:
        return self._plan.options

    def connect(self, timeout: float | None) -> SyncByteStream:
        """A stream ready for HTTP/1.1; the whole setup within ``timeout``."""
        plan = self._plan
        deadline = None if timeout is None else time.monotonic() + timeout

        def left() -> float | None:
            if deadline is None:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            return remaining

        try:
            try:
                stream: SyncByteStream = connect_tcp(*plan.tcp, left())
            except TransportError as exc:
                raise plan.connect_error(exc) from None
            try:
                if plan.tunnel:
                    host = plan.origin.host
                    if plan.proxy is not None and plan.proxy.scheme == "socks5":
                        host = resolve(host, plan.origin.port)
                    _leftover(plan, self._pump(stream, plan.handshake(host), left))
                if plan.origin.tls:
                    assert plan.ssl_context is not None
                    stream = stream.start_tls(plan.ssl_context, plan.origin.host, left())
            except BaseException:
                stream.close()
                raise
        except TimeoutError:
            raise ConnectTimeout(
                f"connecting to {plan.origin} took longer than {timeout} s"
            ) from None
        return stream

    def _pump(
        self, stream: SyncByteStream, handshake: Handshake, left: Callable[[], float | None]
    ) -> bytes:
        try:
            out = next(handshake)
            while True:
                if out is None:
                    out = handshake.send(stream.receive_some(HANDSHAKE_READ, left()))
                else:
                    stream.send_all(out, left())
                    out = handshake.send(b"")
        except StopIteration as stop:
            leftover: bytes = stop.value
            return leftover
