"""Proxies: a real proxy.py (HTTP) and a real microsocks (SOCKS5) on loopback,
every client kind, plain and TLS targets; and the sans-IO handshakes fed
replies cut at every byte."""

from __future__ import annotations

import base64
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, NamedTuple

import pytest

import gptalk_proto as g
import gptalk_proto.server
from gptalk_transports import ConnectError, ProxyError, ProxyURL, RetryPolicy
from gptalk_transports._handshake import Handshake, http_connect, socks5_connect
from gptalk_transports._server.refserver import serve_in_thread

from . import clients

PROMPT = "Hello through a proxy"
NO_RETRY = RetryPolicy(retries=0)

# Distinctive, so a leak into an error message cannot hide.
USER = "gptalk-proxy-user"
PASSWORD = "Pw-9c41e07b"
WRONG_USER = "intruder-user"
WRONG_PASSWORD = "Wrong-5d2f66aa"
SECRETS = (
    USER,
    PASSWORD,
    WRONG_USER,
    WRONG_PASSWORD,
    base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
    base64.b64encode(f"{WRONG_USER}:{WRONG_PASSWORD}".encode()).decode(),
)

#: How long a proxy may take to start listening.
STARTUP_TIMEOUT = 20.0


def assert_no_secrets(exc: BaseException) -> None:
    for text in (str(exc), repr(exc)):
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked into {text!r}"


# -- proxies in subprocesses -------------------------------------------------


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_listening(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"{process.args!r} exited with {process.returncode}: {log.read_text()}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{process.args!r} is not listening on port {port} after "
                    f"{STARTUP_TIMEOUT} s: {log.read_text()}"
                ) from None
            time.sleep(0.05)


@contextmanager
def running(argv: Sequence[str], port: int, log: Path) -> Iterator[None]:
    """Run ``argv`` (a server listening on ``port``) for the block."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        wait_until_listening(process, port, log)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def proxy_py(directory: Path, *extra: str) -> Iterator[int]:
    """proxy.py on a free loopback port, kept light: one acceptor, one worker,
    the default plugin only (HttpProxyPlugin, plus AuthPlugin with
    --basic-auth), its data, certificate and cache directories in ``directory``
    rather than in ~/.proxy."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "proxy",
        "--hostname",
        "127.0.0.1",
        "--port",
        str(port),
        "--num-acceptors",
        "1",
        "--num-workers",
        "1",
        "--log-level",
        "WARNING",
        "--data-dir",
        str(directory),
        "--ca-cert-dir",
        str(directory / "certificates"),
        "--cache-dir",
        str(directory / "cache"),
        *extra,
    ]
    with running(argv, port, directory / "proxy.log"):
        yield port


@pytest.fixture(scope="module")
def http_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """proxy.py without authentication; yields its port."""
    yield from proxy_py(tmp_path_factory.mktemp("proxy.py"))


@pytest.fixture(scope="module")
def http_proxy_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """proxy.py with --basic-auth USER:PASSWORD; yields its port."""
    yield from proxy_py(
        tmp_path_factory.mktemp("proxy.py-auth"), "--basic-auth", f"{USER}:{PASSWORD}"
    )


@pytest.fixture(scope="module")
def socks_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """microsocks requiring USER/PASSWORD; yields its port."""
    executable = shutil.which("microsocks")
    if executable is None:
        pytest.skip("microsocks is not installed: apt-get install microsocks")
    port = free_port()
    argv = [executable, "-i", "127.0.0.1", "-p", str(port), "-u", USER, "-P", PASSWORD]
    with running(argv, port, tmp_path_factory.mktemp("microsocks") / "microsocks.log"):
        yield port


# -- targets ---------------------------------------------------------------


class Target(NamedTuple):
    """A reference server, and what a client needs to trust it."""

    url: str
    client_kwargs: dict[str, Any]


@pytest.fixture(params=["http", "https"])
def target(
    request: pytest.FixtureRequest,
    reference_url: str,
    tls_reference_url: str,
    tls_client_context: ssl.SSLContext,
) -> Target:
    """The reference server at 127.0.0.1, over plain HTTP and over TLS."""
    if request.param == "http":
        return Target(reference_url, {})
    return Target(tls_reference_url, {"verify": tls_client_context})


@pytest.fixture(scope="module")
def localhost_urls(tls_server_context: ssl.SSLContext) -> Iterator[tuple[str, str]]:
    """Reference servers named ``localhost`` (plain, TLS), listening on every
    address the name resolves to, so whichever address a resolver picks works."""
    with (
        serve_in_thread(host="localhost") as plain,
        serve_in_thread(host="localhost", ssl_context=tls_server_context) as tls,
    ):
        yield plain, tls


@pytest.fixture(params=["http", "https"])
def localhost_target(
    request: pytest.FixtureRequest,
    localhost_urls: tuple[str, str],
    tls_client_context: ssl.SSLContext,
) -> Target:
    """The reference server at ``localhost``, over plain HTTP and over TLS."""
    plain, tls = localhost_urls
    if request.param == "http":
        target = Target(plain, {})
    else:
        target = Target(tls, {"verify": tls_client_context})
    assert target.url.startswith(f"{request.param}://localhost:")
    return target


def chat(kind: str, target: Target, proxy: str, **kwargs: Any) -> clients.Outcome:
    return clients.stream(kind, target.url, PROMPT, proxy=proxy, **target.client_kwargs, **kwargs)


def check_chat(outcome: clients.Outcome) -> None:
    assert outcome.text == g.server.expected_reply(PROMPT)
    assert "".join(outcome.deltas) == outcome.text
    assert outcome.retries == 0


# -- HTTP proxy: proxy.py --------------------------------------------------


@pytest.mark.parametrize("kind", clients.KINDS)
def test_http_proxy(kind: str, target: Target, http_proxy: int, no_leaks: None) -> None:
    """Plain HTTP targets go in absolute-form, TLS ones through a CONNECT tunnel."""
    check_chat(chat(kind, target, f"http://127.0.0.1:{http_proxy}"))


@pytest.mark.parametrize("kind", clients.KINDS)
def test_http_proxy_with_credentials(
    kind: str, target: Target, http_proxy_auth: int, no_leaks: None
) -> None:
    check_chat(chat(kind, target, f"http://{USER}:{PASSWORD}@127.0.0.1:{http_proxy_auth}"))


@pytest.mark.parametrize(
    "credentials",
    [f"{WRONG_USER}:{PASSWORD}@", f"{USER}:{WRONG_PASSWORD}@", ""],
    ids=["wrong-user", "wrong-password", "none"],
)
@pytest.mark.parametrize("kind", clients.KINDS)
def test_http_proxy_refuses_credentials(
    kind: str, target: Target, credentials: str, http_proxy_auth: int, no_leaks: None
) -> None:
    proxy = f"http://{credentials}127.0.0.1:{http_proxy_auth}"
    deltas: list[str] = []
    with pytest.raises(ProxyError) as info:
        chat(kind, target, proxy, into=deltas, retry=NO_RETRY, timeout=10)
    assert f"127.0.0.1:{http_proxy_auth}" in str(info.value)
    assert_no_secrets(info.value)
    assert deltas == []


@contextmanager
def recording_proxy() -> Iterator[tuple[int, list[bytes]]]:
    """A loopback "proxy" that records each request head, then hangs up.

    Shows what the client puts on the wire for a plain-HTTP target whatever a
    real proxy accepts; yields (port, heads).
    """
    heads: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            with sock, suppress(OSError):
                sock.settimeout(10)
                head = b""
                while b"\r\n\r\n" not in head:
                    data = sock.recv(4096)
                    if not data:
                        break
                    head += data
                heads.append(head)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield listener.getsockname()[1], heads
    finally:
        stop.set()
        thread.join()
        listener.close()


@pytest.mark.parametrize("auth", [True, False], ids=["credentials", "anonymous"])
@pytest.mark.parametrize("kind", clients.KINDS)
def test_http_proxy_request_framing_for_a_plain_target(
    kind: str, auth: bool, reference_url: str, no_leaks: None
) -> None:
    """Absolute-form target (RFC 9112 section 3.2.2), the origin's Host, and
    Basic Proxy-Authorization when the proxy URL has credentials."""
    authority = reference_url.removeprefix("http://")
    with recording_proxy() as (port, heads):
        credentials = f"{USER}:{PASSWORD}@" if auth else ""
        with pytest.raises(g.GPTalkError):
            chat(
                kind,
                Target(reference_url, {}),
                f"http://{credentials}127.0.0.1:{port}",
                retry=NO_RETRY,
                timeout=10,
            )
    assert len(heads) == 1
    request_line, *header_lines = heads[0].decode("latin-1").split("\r\n")
    method, request_target, version = request_line.split(" ")
    assert method in ("GET", "POST")
    assert request_target.startswith(f"http://{authority}/")
    assert version == "HTTP/1.1"
    headers = [line.split(":", 1) for line in header_lines if line]
    fields = {name.strip().lower(): value.strip() for name, value in headers}
    assert fields["host"] == authority
    if auth:
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        assert fields["proxy-authorization"] == f"Basic {token}"
    else:
        assert "proxy-authorization" not in fields


# -- SOCKS5: microsocks ----------------------------------------------------


@pytest.mark.parametrize("kind", clients.KINDS)
def test_socks5h(kind: str, target: Target, socks_proxy: int, no_leaks: None) -> None:
    check_chat(chat(kind, target, f"socks5h://{USER}:{PASSWORD}@127.0.0.1:{socks_proxy}"))


@pytest.mark.parametrize("kind", clients.KINDS)
def test_socks5h_lets_the_proxy_resolve(
    kind: str, localhost_target: Target, socks_proxy: int, no_leaks: None
) -> None:
    proxy = f"socks5h://{USER}:{PASSWORD}@127.0.0.1:{socks_proxy}"
    check_chat(chat(kind, localhost_target, proxy))


# No no_leaks: resolving "localhost" on trio leaves an idle worker thread in
# trio's thread cache for 10 s, which is not a leak.
@pytest.mark.parametrize("kind", clients.KINDS)
def test_socks5_resolves_locally(kind: str, localhost_target: Target, socks_proxy: int) -> None:
    proxy = f"socks5://{USER}:{PASSWORD}@127.0.0.1:{socks_proxy}"
    check_chat(chat(kind, localhost_target, proxy))


@pytest.mark.parametrize(
    ("credentials", "message"),
    [
        (f"{USER}:{WRONG_PASSWORD}@", "refused the credentials"),
        (f"{WRONG_USER}:{PASSWORD}@", "refused the credentials"),
        ("", "none of our authentication methods"),
    ],
    ids=["wrong-password", "wrong-user", "none"],
)
@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
@pytest.mark.parametrize("kind", clients.KINDS)
def test_socks5_refuses_credentials(
    kind: str,
    scheme: str,
    *,
    credentials: str,
    message: str,
    reference_url: str,
    socks_proxy: int,
    no_leaks: None,
) -> None:
    proxy = f"{scheme}://{credentials}127.0.0.1:{socks_proxy}"
    with pytest.raises(ProxyError, match=message) as info:
        chat(kind, Target(reference_url, {}), proxy, retry=NO_RETRY, timeout=10)
    assert f"127.0.0.1:{socks_proxy}" in str(info.value)
    assert_no_secrets(info.value)


# -- a proxy nobody listens on ---------------------------------------------


@pytest.mark.parametrize("scheme", ["http", "socks5", "socks5h"])
@pytest.mark.parametrize("kind", clients.KINDS)
def test_unreachable_proxy(kind: str, scheme: str, target: Target, no_leaks: None) -> None:
    port = free_port()
    proxy = f"{scheme}://{USER}:{PASSWORD}@127.0.0.1:{port}"
    with pytest.raises(ProxyError, match="cannot reach the proxy") as info:
        chat(kind, target, proxy, retry=NO_RETRY, timeout=2)
    assert not isinstance(info.value, ConnectError)
    assert f"127.0.0.1:{port}" in str(info.value)
    assert_no_secrets(info.value)


# -- the handshakes, sans-IO -----------------------------------------------


def pump(handshake: Handshake, pieces: Sequence[bytes]) -> tuple[bytes, bytes]:
    """Drive a handshake as the connectors do, the proxy's bytes arriving as
    ``pieces`` then EOF; (bytes sent, bytes past the handshake)."""
    incoming = list(pieces)
    sent = b""
    try:
        out = next(handshake)
        while True:
            if out is None:
                out = handshake.send(incoming.pop(0) if incoming else b"")
            else:
                sent += out
                out = handshake.send(b"")
    except StopIteration as stop:
        return sent, stop.value + b"".join(incoming)


def cuttings(data: bytes) -> Iterator[list[bytes]]:
    """``data`` whole, byte by byte, and cut in two at every position."""
    yield [data]
    yield [data[i : i + 1] for i in range(len(data))]
    for i in range(1, len(data)):
        yield [data[:i], data[i:]]


def truncations(data: bytes) -> Iterator[list[bytes]]:
    """Every proper prefix of ``data``, byte by byte (EOF follows)."""
    for end in range(len(data)):
        yield [data[i : i + 1] for i in range(end)]


HTTP_PROXY = ProxyURL.parse(f"http://{USER}:{PASSWORD}@proxy.test:3128")
TUNNELLED = b"\x16\x03\x03 bytes past the handshake"


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 200 Connection established\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nProxy-Agent: test\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
    ],
    ids=["200", "http1.0-headers", "1xx-first"],
)
def test_http_connect_reply_cut_anywhere(reply: bytes) -> None:
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode())
    request = (
        b"CONNECT 127.0.0.1:8443 HTTP/1.1\r\nhost: 127.0.0.1:8443\r\n"
        b"proxy-authorization: Basic " + auth + b"\r\n\r\n"
    )
    for pieces in cuttings(reply + TUNNELLED):
        sent, leftover = pump(http_connect(HTTP_PROXY, "127.0.0.1", 8443), pieces)
        assert sent == request
        assert leftover == TUNNELLED


def test_http_connect_brackets_ipv6_and_sends_no_credentials_it_has_not() -> None:
    proxy = ProxyURL.parse("http://proxy.test:3128")
    sent, _ = pump(http_connect(proxy, "::1", 443), [b"HTTP/1.1 200 OK\r\n\r\n"])
    assert sent == b"CONNECT [::1]:443 HTTP/1.1\r\nhost: [::1]:443\r\n\r\n"


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", "refused the credentials"),
        (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno", "HTTP 403"),
        (b"HTTP/1.1 502 Bad Gateway\r\n\r\n", "HTTP 502"),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "invalid HTTP"),
        (b"HTTP/1.1 2OO OK\r\n\r\n", "invalid HTTP"),
        (b"\x05\x00", "closed|invalid HTTP"),  # a SOCKS server, then EOF
    ],
    ids=["407", "403", "502", "ssh", "bad-status", "socks"],
)
def test_http_connect_refused_or_malformed(reply: bytes, message: str) -> None:
    for pieces in cuttings(reply):
        with pytest.raises(ProxyError, match=message) as info:
            pump(http_connect(HTTP_PROXY, "127.0.0.1", 8443), pieces)
        assert "proxy.test:3128" in str(info.value)
        assert_no_secrets(info.value)


def test_http_connect_proxy_closing_mid_reply() -> None:
    for pieces in truncations(b"HTTP/1.1 200 Connection established\r\n\r\n"):
        with pytest.raises(ProxyError) as info:
            pump(http_connect(HTTP_PROXY, "127.0.0.1", 8443), pieces)
        assert_no_secrets(info.value)


def socks_proxy_url(scheme: str = "socks5h", auth: bool = True) -> ProxyURL:
    credentials = f"{USER}:{PASSWORD}@" if auth else ""
    return ProxyURL.parse(f"{scheme}://{credentials}proxy.test:1080")


def userpass_request() -> bytes:
    user, password = USER.encode(), PASSWORD.encode()
    return b"\x01" + bytes([len(user)]) + user + bytes([len(password)]) + password


SOCKS_OK_IPV4 = b"\x05\x00\x00\x01\x7f\x00\x00\x01\x9c\x40"
SOCKS_OK_IPV6 = b"\x05\x00\x00\x04" + bytes(15) + b"\x01" + b"\x9c\x40"
SOCKS_OK_NAME = b"\x05\x00\x00\x03\x0bexample.org\x9c\x40"


@pytest.mark.parametrize(
    "connect_reply", [SOCKS_OK_IPV4, SOCKS_OK_IPV6, SOCKS_OK_NAME], ids=["ipv4", "ipv6", "name"]
)
@pytest.mark.parametrize(
    ("scheme", "host", "address"),
    [
        ("socks5h", "example.org", b"\x03\x0bexample.org"),
        ("socks5", "10.1.2.3", b"\x01\x0a\x01\x02\x03"),
        ("socks5", "2001:db8::1", b"\x04" + bytes.fromhex("20010db8" + "00" * 11 + "01")),
    ],
    ids=["name", "ipv4", "ipv6"],
)
def test_socks5_with_credentials_cut_anywhere(
    scheme: str, host: str, address: bytes, connect_reply: bytes
) -> None:
    expected = (
        b"\x05\x02\x02\x00"  # version 5, two methods: user/password, none
        + userpass_request()
        + b"\x05\x01\x00"  # CONNECT
        + address
        + b"\x01\xbb"  # port 443
    )
    replies = b"\x05\x02" + b"\x01\x00" + connect_reply + TUNNELLED
    for pieces in cuttings(replies):
        sent, leftover = pump(socks5_connect(socks_proxy_url(scheme), host, 443), pieces)
        assert sent == expected
        assert leftover == TUNNELLED


def test_socks5_without_credentials_cut_anywhere() -> None:
    replies = b"\x05\x00" + SOCKS_OK_IPV4 + TUNNELLED
    for pieces in cuttings(replies):
        sent, leftover = pump(
            socks5_connect(socks_proxy_url(auth=False), "example.org", 80), pieces
        )
        assert sent == b"\x05\x01\x00" + b"\x05\x01\x00\x03\x0bexample.org\x00\x50"
        assert leftover == TUNNELLED


@pytest.mark.parametrize(
    ("replies", "message"),
    [
        (b"\x05\x7f", "malformed"),  # no such method
        (b"\x04\x00" + SOCKS_OK_IPV4, "malformed"),  # SOCKS4's version
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", "malformed"),  # an HTTP server
        (b"\x05\x02\x01\x00\x04\x00\x00\x01\x7f\x00\x00\x01\x9c\x40", "malformed"),
        (b"\x05\x02\x01\x00\x05\x00\x00\x02\x00\x00\x00", "malformed"),  # no such address type
        (b"\x05\xff", "none of our authentication methods"),
        (b"\x05\x01", "none of our authentication methods"),  # GSSAPI
        (b"\x05\x02\x01\x01", "refused the credentials"),
        (b"\x05\x02\x01\x00\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00", "connection refused"),
        (b"\x05\x02\x01\x00\x05\x02\x00\x01\x00\x00\x00\x00\x00\x00", "not allowed"),
    ],
    ids=[
        "unknown-method",
        "wrong-version",
        "http",
        "bad-reply-version",
        "bad-address-type",
        "no-acceptable",
        "gssapi",
        "auth-failed",
        "refused",
        "not-allowed",
    ],
)
def test_socks5_refused_or_malformed(replies: bytes, message: str) -> None:
    for pieces in cuttings(replies):
        with pytest.raises(ProxyError, match=message) as info:
            pump(socks5_connect(socks_proxy_url(), "example.org", 443), pieces)
        assert "proxy.test:1080" in str(info.value)
        assert_no_secrets(info.value)


@pytest.mark.parametrize("connect_reply", [SOCKS_OK_IPV4, SOCKS_OK_NAME], ids=["ipv4", "name"])
def test_socks5_proxy_closing_mid_handshake(connect_reply: bytes) -> None:
    for pieces in truncations(b"\x05\x02" + b"\x01\x00" + connect_reply):
        with pytest.raises(ProxyError, match="closed the connection") as info:
            pump(socks5_connect(socks_proxy_url(), "example.org", 443), pieces)
        assert_no_secrets(info.value)


def test_socks5_without_h_needs_an_address() -> None:
    with pytest.raises(ProxyError, match="IP address") as info:
        pump(socks5_connect(socks_proxy_url("socks5"), "example.org", 443), [b"\x05\x02\x01\x00"])
    assert_no_secrets(info.value)
