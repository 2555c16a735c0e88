"""Requests that once stopped the reference server, sent to a live one: each
gets its answer, and a normal chat completes on the same server after it.
Prompts whose streams are never fetched stay within the server's caps.

The server runs as ``gptalk serve`` in a process of its own (see
tests/test_server_hostile.py), so its memory can be read from /proc.
"""

from __future__ import annotations

import http.client
import json
import re

import pytest

import gptalk_proto as g

from .console import gptalk
from .test_server_hostile import Server, exchange, healthy, post, server, start_server, stop_server

__all__ = ["server"]  # the shared module-scoped fixture

pytestmark = pytest.mark.timeout(120)

LOGIN = json.dumps({"fingerprint": "ab" * 16, "platform": "fingerprint"}).encode()


def plain(method: str, target: str) -> bytes:
    return f"{method} {target} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".encode()


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (plain("HEAD", "/"), 404),
        (plain("HEAD", g.LOGIN_PATH), 405),
        (plain("HEAD", f"{g.STREAM_PATH}?token=nope"), 200),
        (plain("GET", "//[x"), 400),
        (plain("GET", "http://[oops/api"), 400),
        (post(g.LOGIN_PATH, b"[" * 5000), 400),
        (post(g.TEXT_PATH, b'{"a":' * 3000), 400),
        (post(g.LOGIN_PATH, b"[" * 5000 + b"]" * 5000), 400),
    ],
    ids=[
        "head-root",
        "head-login",
        "head-stream",
        "target-bracket",
        "target-absolute",
        "deep-list",
        "deep-object",
        "deep-closed",
    ],
)
def test_a_request_that_stopped_the_server_gets_its_answer(
    server: Server, raw: bytes, status: int
) -> None:
    response = exchange(server, raw)
    assert response.startswith(f"HTTP/1.1 {status} ".encode()), response[:80]
    if raw.startswith(b"HEAD"):
        head, _, body = response.partition(b"\r\n\r\n")
        assert body == b""  # the head alone
        assert b"content-length: " in head
    assert server.process.poll() is None
    healthy(server)


def test_every_hostile_request_on_one_connection_then_a_chat(server: Server) -> None:
    # Pipelined on one kept-alive connection: each answered in turn.
    raws = [
        b"HEAD / HTTP/1.1\r\nhost: x\r\n\r\n",
        b"GET //[x HTTP/1.1\r\nhost: x\r\n\r\n",
        post(g.LOGIN_PATH, b"[" * 5000).replace(b"connection: close\r\n", b""),
        plain("HEAD", g.TEXT_PATH),
    ]
    response = exchange(server, b"".join(raws))
    statuses = [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", response)]
    assert statuses == [404, 400, 400, 405]
    healthy(server)


@pytest.mark.parametrize("status", ["204", "205", "304", "101"])
def test_a_body_less_status_fault_is_a_usage_error(status: str) -> None:
    result = gptalk("serve", "--fault", f"status={status}@login")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"status={status}@login" in result.stderr


def test_a_bad_fault_number_is_explained_in_plain_words() -> None:
    result = gptalk("serve", "--fault", "cut=abc")
    assert result.returncode == 2
    assert "'abc' is not a whole number" in result.stderr
    assert "invalid literal" not in result.stderr


def text_requests(server: Server, count: int, prompt_size: int) -> list[tuple[int, bytes]]:
    """``count`` text requests whose streams are not fetched; (status, body or
    Retry-After) of each."""
    host, port = server.address
    conn = http.client.HTTPConnection(host, port, timeout=30)
    body = json.dumps({"content": "p" * prompt_size, "accept": "stream", "model": "m"}).encode()
    answers = []
    try:
        token = ""
        for number in range(count):
            if number % 5 == 0:  # a login token serves five texts
                conn.request("POST", g.LOGIN_PATH, LOGIN)
                token = json.loads(conn.getresponse().read())["data"]["token"]
            conn.request("POST", g.TEXT_PATH, body, {"authorization": f"Bearer {token}"})
            response = conn.getresponse()
            data = response.read()
            answers.append(
                (response.status, response.getheader("retry-after", "").encode() or data)
            )
    finally:
        conn.close()
    return answers


def test_pending_prompts_stay_within_the_caps_of_the_command_line() -> None:
    # 4 prompts of 49,999 bytes and their model ("m") fill 200,000 bytes.
    capped = start_server("--max-pending-bytes", "200000", "--max-pending-streams", "50")
    try:
        answers = text_requests(capped, 12, 49_999)
        assert [status for status, _ in answers] == [200] * 4 + [503] * 8
        assert all(1 <= int(retry) <= 60 for _, retry in answers[4:])
        # Fetched streams free their room; the chat after them completes.
        for _, body in answers[:4]:
            token = json.loads(body)["data"]["token"]
            reply = exchange(capped, plain("GET", f"{g.STREAM_PATH}?token={token}"))
            assert b"data: [DONE]" in reply
        # The count cap: 50 small prompts are held, whatever their size.
        small = text_requests(capped, 60, 1)
        assert [status for status, _ in small] == [200] * 50 + [503] * 10
        token = json.loads(small[0][1])["data"]["token"]
        exchange(capped, plain("GET", f"{g.STREAM_PATH}?token={token}"))
        healthy(capped)  # in the room that stream left
    finally:
        stop_server(capped)


def test_a_flood_of_megabyte_prompts_grows_the_server_by_the_cap_only() -> None:
    # 60 prompts of 1 MB: unbounded, 60 MB more; with a 4 MiB cap, 4 are held.
    cap = 4 * 1024 * 1024
    capped = start_server("--max-pending-bytes", str(cap))
    try:
        healthy(capped)
        before = capped.rss()
        answers = text_requests(capped, 60, 1_000_000)
        assert [status for status, _ in answers] == [200] * 4 + [503] * 56
        assert capped.rss() - before < cap + 16 * 1024 * 1024
    finally:
        stop_server(capped)
