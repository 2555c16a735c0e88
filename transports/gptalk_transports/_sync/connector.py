# GENERATED from _async/connector.py by `python -m tests.unasync`; do not edit.
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

from .._backends.base import SyncBackend, SyncByteStream
from .._backends.heap import keep_heap
from .._backends.sync import make_sync_backend
from .._config import Origin, ProxyURL
from .._exceptions import ConnectTimeout, TransportError
from .._handshake import HANDSHAKE_READ, ConnectBudget, ConnectPlan, Handshake, RequestOptions

__all__ = ["RequestOptions", "SyncConnector", "SyncConnectorProtocol"]


class SyncConnectorProtocol(Protocol):
    """What the client needs from a connector (record/replay implement it)."""

    @property
    def request_options(self) -> RequestOptions: ...

    def connect(self, timeout: float | None) -> SyncByteStream: ...


class SyncConnector:
    """Opens streams to the service over a backend (an object, or a name as
    the client takes)."""

    def __init__(
        self,
        backend: str | SyncBackend,
        origin: Origin,
        *,
        proxy: ProxyURL | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.backend = make_sync_backend(backend)
        self._plan = ConnectPlan(origin, proxy, ssl_context)

    @property
    def request_options(self) -> RequestOptions:
        return self._plan.options

    def connect(self, timeout: float | None) -> SyncByteStream:
        """A stream ready for HTTP/1.1; the whole setup within ``timeout``."""
        plan = self._plan
        left = ConnectBudget(timeout)
        keep_heap()  # this connection's reads go through the heap (see HEAP_KEEP)
        try:
            with self.backend.fail_after(timeout):
                try:
                    stream = self.backend.connect_tcp(*plan.tcp, left())
                except TransportError as exc:
                    raise plan.connect_error(exc) from None
                try:
                    if plan.tunnel:
                        host = plan.origin.host
                        if plan.proxy is not None and plan.proxy.scheme == "socks5":
                            host = self.backend.resolve(host, plan.origin.port)
                        plan.leftover(self._pump(stream, plan.handshake(host), left))
                    if plan.origin.tls:
                        assert plan.ssl_context is not None
                        stream = stream.start_tls(plan.ssl_context, plan.origin.host, left())
                except BaseException:
                    with self.backend.shield():
                        stream.close()
                    raise
        except TimeoutError:
            raise ConnectTimeout(
                f"connecting to {plan.origin} took longer than {timeout} s"
            ) from None
        return stream

    def _pump(self, stream: SyncByteStream, handshake: Handshake, left: ConnectBudget) -> bytes:
        # Yielded bytes go out; a yielded None asks for bytes in.
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
