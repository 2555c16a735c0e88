"""An upstream's out-of-range status must not cost the recording proxy's cassette.

h11 reads any three digits as a status; a cassette holds 100-599 only (RFC
9110 section 15) and loading refuses another.  The recording proxy kept an
upstream's ``HTTP/1.1 999`` answer, and the cassette it wrote could not be
loaded at all: every other exchange of the session was lost with it.
"""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

from gptalk_transports import load_cassette, save_cassette
from gptalk_transports._server.proxy_run import record_through_proxy_in_thread

from .hostile_peer import scripted_peer


def _get(url: str, path: str) -> bytes:
    """``GET path`` on a connection of its own; every byte until the close."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(b"GET %s HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n" % path.encode())
        got = b""
        while data := sock.recv(65536):
            got += data
    return got


def _answer(target: str, headers: object, body: bytes) -> bytes:
    if target.startswith("/odd"):
        return b"HTTP/1.1 999 Odd\r\ncontent-length: 2\r\n\r\nhi"
    return b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


def test_a_999_from_the_upstream_leaves_the_cassette_loadable(tmp_path: Path) -> None:
    with (
        scripted_peer({"any": _answer}) as upstream,
        record_through_proxy_in_thread(upstream, trust_env=False) as run,
    ):
        # The proxy passes the odd answer on as it came: it records, not judges.
        assert _get(run.url, "/odd") == b"HTTP/1.1 999 Odd\r\ncontent-length: 2\r\n\r\nhi"
        assert _get(run.url, "/fine") == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
    assert run.cassette is not None
    path = tmp_path / "c.json"
    save_cassette(path, run.cassette)
    loaded = load_cassette(path)  # raised CassetteError: status 999
    assert [(i.request.target, i.response.status) for i in loaded.interactions] == [("/fine", 200)]
