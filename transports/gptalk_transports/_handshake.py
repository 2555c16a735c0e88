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
from collections.abc import Generator

import h11
from socksio import socks5
from socksio.exceptions import ProtocolError as SOCKSProtocolError

from gptalk_proto import excerpt

from ._config import ProxyURL
from ._exceptions import ProxyError

__all__ = ["Handshake", "http_connect", "proxy_authorization", "socks5_connect"]

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
