"""Proxy handshakes as sans-IO generators, pumped by both drivers.

A handshake is a generator that yields ``bytes`` to send, or ``None`` when
it needs bytes from the proxy (delivered with ``.send(data)``, ``b""`` at
EOF); its return value is whatever the proxy sent past the handshake.  The
async and the blocking connectors each pump it in a few lines, so the
protocol logic exists once.

* HTTP CONNECT (RFC 9110 section 9.3.6) through h11, with Basic
  ``Proxy-Authorization``.
* SOCKS5 (RFC 1928) with username/password auth (RFC 1929) through socksio,
  the sans-IO SOCKS library.
"""

from __future__ import annotations

import base64
import ipaddress
import ssl
import time
from collections.abc import Generator
from typing import NamedTuple

import h11
from socksio import socks5
from socksio.exceptions import ProtocolError as SOCKSProtocolError

from gptalk_proto import excerpt

from ._config import Origin, ProxyURL
from ._exceptions import ConnectError, ProxyError, TransportError

__all__ = [
    "HANDSHAKE_READ",
    "ConnectBudget",
    "ConnectPlan",
    "Handshake",
    "RequestOptions",
    "http_connect",
    "proxy_authorization",
    "socks5_connect",
]

Handshake = Generator[bytes | None, bytes, bytes]

#: Cap on a CONNECT response head, in bytes.
MAX_CONNECT_RESPONSE = 16 * 1024


def proxy_authorization(proxy: ProxyURL) -> list[tuple[str, str]]:
    """The ``Proxy-Authorization`` header for an HTTP proxy with credentials."""
    if proxy.username is None:
        return []
    secret = f"{proxy.username}:{proxy.password or ''}".encode()
    return [("proxy-authorization", "Basic " + base64.b64encode(secret).decode("ascii"))]


def http_connect(proxy: ProxyURL, host: str, port: int) -> Handshake:
    """Open a tunnel to ``host:port`` through an HTTP proxy with CONNECT."""
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_CONNECT_RESPONSE)
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    headers = [("host", authority), *proxy_authorization(proxy)]
    out = conn.send(h11.Request(method="CONNECT", target=authority, headers=headers))
    out = (out or b"") + (conn.send(h11.EndOfMessage()) or b"")
    yield out
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise ProxyError(
                f"the proxy {proxy} answered CONNECT with invalid HTTP: {excerpt(str(exc))}"
            ) from None
        if event is h11.NEED_DATA:
            data = yield None
            conn.receive_data(data)
            continue
        if isinstance(event, h11.Response):
            if 200 <= event.status_code < 300:
                leftover, _ = conn.trailing_data
                return leftover
            if event.status_code == 407:
                raise ProxyError(f"the proxy {proxy} refused the credentials (407)")
            raise ProxyError(
                f"the proxy {proxy} refused CONNECT to {authority}: HTTP {event.status_code}"
            )
        if isinstance(event, h11.ConnectionClosed):
            raise ProxyError(f"the proxy {proxy} closed the connection during CONNECT")
        # 1xx answers are not final: keep reading.


def _socks5_address(proxy: ProxyURL, host: str) -> str:
    # socks5h: the proxy resolves the name.  socks5: the name is sent as an
    # address, which needs it to be one already (resolving is the driver's job
    # and it passes the resolved address in).
    if proxy.scheme == "socks5":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ProxyError(
                "socks5:// sends an IP address; resolve the host first or use socks5h://"
            ) from None
    return host


def socks5_connect(proxy: ProxyURL, host: str, port: int) -> Handshake:
    """Open a tunnel to ``host:port`` through a SOCKS5 proxy.

    socksio parses and builds the messages; it takes each reply whole, so the
    framing (how many bytes a reply has) is done here from RFC 1928's layout.
    """
    conn = socks5.SOCKS5Connection()
    methods = [socks5.SOCKS5AuthMethod.NO_AUTH_REQUIRED]
    if proxy.username is not None:
        methods.insert(0, socks5.SOCKS5AuthMethod.USERNAME_PASSWORD)
    buffer = b""

    def read(count: int, step: str) -> Generator[None, bytes, bytes]:
        nonlocal buffer
        while len(buffer) < count:
            data = yield None
            if not data:
                raise ProxyError(f"the proxy {proxy} closed the connection during SOCKS5 {step}")
            buffer += data
        message, buffer = buffer[:count], buffer[count:]
        return message

    try:
        conn.send(socks5.SOCKS5AuthMethodsRequest(methods))
        yield conn.data_to_send()
        # RFC 1928 section 3: VER | METHOD.  socksio checks the method byte
        # only; a VER other than 5 is not a SOCKS5 proxy talking.
        selection = yield from read(2, "method selection")
        if selection[0] != 5:
            raise ProxyError(f"the proxy {proxy} sent a malformed SOCKS5 reply")
        reply = conn.receive_data(selection)
        assert isinstance(reply, socks5.SOCKS5AuthReply)
        if reply.method == socks5.SOCKS5AuthMethod.USERNAME_PASSWORD:
            if proxy.username is None:
                raise ProxyError(f"the proxy {proxy} wants a user name and password")
            conn.send(
                socks5.SOCKS5UsernamePasswordRequest(
                    proxy.username.encode(), (proxy.password or "").encode()
                )
            )
            yield conn.data_to_send()
            # RFC 1929 section 2: VER | STATUS
            auth = conn.receive_data((yield from read(2, "authentication")))
            assert isinstance(auth, socks5.SOCKS5UsernamePasswordReply)
            if not auth.success:
                raise ProxyError(f"the proxy {proxy} refused the credentials")
        elif reply.method != socks5.SOCKS5AuthMethod.NO_AUTH_REQUIRED:
            raise ProxyError(f"the proxy {proxy} accepts none of our authentication methods")
        conn.send(
            socks5.SOCKS5CommandRequest.from_address(
                socks5.SOCKS5Command.CONNECT, (_socks5_address(proxy, host), port)
            )
        )
        yield conn.data_to_send()
        # RFC 1928 section 6: VER | REP | RSV | ATYP | BND.ADDR | BND.PORT, the
        # address 4 bytes (IPv4), 16 (IPv6) or a length byte and a name.
        head = yield from read(5, "CONNECT")
        if head[3] == 1:
            rest = 4 - 1 + 2
        elif head[3] == 4:
            rest = 16 - 1 + 2
        else:
            rest = head[4] + 2
        answer = conn.receive_data(head + (yield from read(rest, "CONNECT")))
        assert isinstance(answer, socks5.SOCKS5Reply)
        if answer.reply_code != socks5.SOCKS5ReplyCode.SUCCEEDED:
            reason = answer.reply_code.name.lower().replace("_", " ")
            raise ProxyError(f"the proxy {proxy} could not connect to {host}:{port}: {reason}")
    except SOCKSProtocolError:
        raise ProxyError(f"the proxy {proxy} sent a malformed SOCKS5 reply") from None
    leftover, buffer = buffer, b""
    return leftover


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


class ConnectPlan:
    """What connecting to ``origin`` through ``proxy`` takes: the sans-IO half of a
    connector, shared by the async and blocking ones."""

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

    def leftover(self, data: bytes) -> None:
        """The bytes a proxy sent after its handshake reply: there must be none."""
        if data:
            raise ProxyError(f"the proxy {self.proxy} sent data before the tunnel was used")


class ConnectBudget:
    """What is left of a connect timeout, for each step of the setup.

    The async side also bounds the whole setup with one ``fail_after`` scope;
    a blocking call cannot be interrupted, so there each step takes its share.
    """

    __slots__ = ("_deadline",)

    def __init__(self, timeout: float | None) -> None:
        self._deadline = None if timeout is None else time.monotonic() + timeout

    def __call__(self) -> float | None:
        """Seconds left; the builtin ``TimeoutError`` once there are none."""
        if self._deadline is None:
            return None
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        return remaining
