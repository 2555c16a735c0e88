"""The reference server under hostile clients: it answers clearly or drops the
connection, keeps serving everyone else, and its memory stays bounded.

The server runs as ``gptalk serve`` in a process of its own, so its file
descriptors and memory can be read from /proc.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import gptalk_proto as g
import gptalk_proto.server
from gptalk_transports import Client

from .console import GPTALK

pytestmark = pytest.mark.timeout(120)


class Server:
    def __init__(self, process: subprocess.Popen[str], host: str, port: int) -> None:
        self.process = process
        self.address = (host, port)
        self.url = f"http://{host}:{port}"

    def fds(self) -> int:
        return len(list(Path(f"/proc/{self.process.pid}/fd").iterdir()))

    def rss(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        assert match is not None
        return int(match.group(1)) * 1024


def start_server(*args: str) -> Server:
    process = subprocess.Popen(
        [str(GPTALK), "serve", "--header-timeout", "1", "--idle-timeout", "5", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.fullmatch(r"listening on http://([\d.]+):(\d+)\n", line)
    assert match, line
    return Server(process, match.group(1), int(match.group(2)))


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        assert server.process.wait(timeout=10) == 0
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
        assert server.process.stdout is not None
        server.process.stdout.close()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    running = start_server()
    try:
        yield running
    finally:
        stop_server(running)


def exchange(server: Server, raw: bytes, read_until_close: bool = True) -> bytes:
    with socket.create_connection(server.address, timeout=10) as sock:
        sock.sendall(raw)
        chunks = []
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            chunks.append(data)
            if not read_until_close and b"\r\n\r\n" in b"".join(chunks):
                break
        return b"".join(chunks)


def post(path: str, body: bytes, extra: str = "") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\n{extra}"
    return head.encode() + b"connection: close\r\n\r\n" + body


def healthy(server: Server, prompt: str = "still there?") -> None:
    with Client(server.url) as client:
        assert client.chat(prompt) == g.server.expected_reply(prompt)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", 400),
        (b"GET /nowhere HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n", 404),
        (
            b"GET " + g.LOGIN_PATH.encode() + b" HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
            405,
        ),
        (post(g.LOGIN_PATH, b"x" * (g.server.DEFAULT_MAX_REQUEST_BODY + 1)), 413),
        (b"GET / HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 20_000 + b"\r\n\r\n", 431),
    ],
    ids=["garbage", "bad-header", "404", "405", "413", "431"],
)
def test_bad_requests_get_a_clear_status(server: Server, raw: bytes, status: int) -> None:
    response = exchange(server, raw)
    assert response.startswith(f"HTTP/1.1 {status} ".encode()), response[:80]
    healthy(server)


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"x"'])
def test_bad_json_gets_a_bad_request_envelope(server: Server, body: bytes) -> None:
    response = exchange(server, post(g.LOGIN_PATH, body))
    head, _, payload = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert json.loads(payload)["code"] == g.ErrorCode.BAD_REQUEST


def test_a_slow_header_client_is_dropped_and_others_are_served(server: Server) -> None:
    head = b"GET / HTTP/1.1\r\nhost: slowloris\r\n"
    with socket.create_connection(server.address, timeout=10) as slow:
        dropped = False
        sent = 0
        for byte in head:
            try:
                slow.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                dropped = True
                break
            sent += 1
            if byte % 4 == 0:
                healthy(server)  # others are served meanwhile
            time.sleep(0.25)
        if not dropped:
            slow.settimeout(5)
            try:
                # Closed, or told 408 (Request Timeout) before the close.
                first = slow.recv(64)
                dropped = first == b"" or first.startswith(b"HTTP/1.1 408 ")
            except ConnectionResetError:
                dropped = True
        assert dropped
        # The header timeout is 1 s and a byte goes every 0.25 s: the drop
        # came while the client was still sending, long before the last byte
        # (counted in bytes sent, not in seconds, so a busy machine passes).
        assert sent < len(head) - 4, sent


def test_a_thousand_concurrent_connections(server: Server) -> None:
    before_fds = server.fds()
    before_rss = server.rss()
    sockets = []
    try:
        for _ in range(1000):
            sockets.append(socket.create_connection(server.address, timeout=10))
        healthy(server, "while a thousand wait")
        body = json.dumps({"fingerprint": "ab" * 16, "platform": "fingerprint"}).encode()
        request = post(g.LOGIN_PATH, body)
        for sock in sockets:
            sock.sendall(request)
        for sock in sockets:
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
    finally:
        for sock in sockets:
            sock.close()
    healthy(server)
    deadline = time.monotonic() + 10
    while server.fds() > before_fds + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.fds() <= before_fds + 2
    assert server.rss() < before_rss + 64 * 1024 * 1024


def test_abrupt_disconnects_mid_stream() -> None:
    slow = start_server("--fault", "delay=0.05")
    try:
        before = slow.fds()
        for number in range(20):
            with Client(slow.url) as client, client.stream(f"abort {number}") as chat:
                next(chat)
                next(chat)
            # Leaving the block closes the socket mid-stream.
        healthy(slow, "after the aborts")
        deadline = time.monotonic() + 10
        while slow.fds() > before + 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert slow.fds() <= before + 2
    finally:
        stop_server(slow)
