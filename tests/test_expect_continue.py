"""``Expect: 100-continue`` (RFC 9110 section 10.1.1) at each of our servers,
over loopback, on asyncio and trio.

curl and other clients send it with a large body and wait (curl: 1 s) for
``HTTP/1.1 100 Continue`` before they send the body.  A server that sends
nothing meanwhile costs each such request that wait.  The reference server
and the replay server answer the head with a 100 when the body has not
come (not when some of it came with the head, which RFC 9110 lets a server
omit it for, nor before a refusal the head already earns: that comes at
once); the recording proxy, which reads a request whole before it forwards
it, does too where no response can be on its way to the client.  Each test
sends the head alone and reads the 100 before it sends the body: without
the 100 the read waits for the safety timeout and fails.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import anyio.abc
import pytest

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_transports import load_cassette, serve_in_background
from gptalk_transports._server.driver import in_background
from gptalk_transports._server.replay import serve_replay

from .proxy_cases import proxy_to
from .replay_cases import (
    CASSETTES,
    anyio_backend,  # noqa: F401 (a fixture: asyncio and trio)
)
from .test_replay_server_core import wire

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

#: Seconds any one read may wait before the test fails (a safety net: each
#: wait is for bytes the server sends at once).
SAFETY = 10.0
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
BODY = b'{"x": "' + b"y" * 200_000 + b'"}'
EXPECTING = (
    b"POST /nowhere HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
    b"expect: 100-continue\r\ncontent-length: %d\r\n\r\n" % len(BODY)
)
PLAIN = CASSETTES / "plain-chat.json"


async def connect(url: str) -> anyio.abc.SocketStream:
    parts = urlsplit(url)
    return await anyio.connect_tcp(parts.hostname or "", parts.port or 0)


async def read_head(stream: anyio.abc.SocketStream, got: bytes = b"") -> tuple[bytes, bytes]:
    """The next response head (through its blank line), and what came after it."""
    with anyio.fail_after(SAFETY):
        while b"\r\n\r\n" not in got:
            got += await stream.receive()
    head, _, rest = got.partition(b"\r\n\r\n")
    return head + b"\r\n\r\n", rest


async def read_response(stream: anyio.abc.SocketStream, got: bytes = b"") -> bytes:
    """The next whole response (content-length framed)."""
    head, rest = await read_head(stream, got)
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    with anyio.fail_after(SAFETY):
        while len(rest) < length:
            rest += await stream.receive()
    return head + rest


async def continue_then_answer(url: str, head: bytes, body: bytes) -> tuple[bytes, bytes]:
    """Send ``head``; read the 100; send ``body``; read the final response.
    Returns (the 100, the final response)."""
    async with await connect(url) as stream:
        await stream.send(head)
        interim, rest = await read_head(stream)
        await stream.send(body)
        return interim, await read_response(stream, rest)


@asynccontextmanager
async def replay_server() -> AsyncIterator[tuple[str, g.cassette.ReplayServer]]:
    server = g.cassette.ReplayServer([load_cassette(PLAIN)], speed=0)
    async with in_background(
        lambda task_status: serve_replay(server, task_status=task_status)
    ) as url:
        yield url, server


async def test_the_reference_server_answers_a_100_before_the_body() -> None:
    async with serve_in_background() as url:
        interim, final = await continue_then_answer(url, EXPECTING, BODY)
    assert interim == CONTINUE
    assert final.startswith(b"HTTP/1.1 404 "), final[:100]


async def test_the_reference_server_refuses_a_head_at_once_without_a_100() -> None:
    # A body over its cap (1 MiB): a 413 on the head alone, no 100 first.
    head = EXPECTING.replace(b"%d" % len(BODY), b"%d" % (2 * 1024 * 1024))
    async with serve_in_background() as url, await connect(url) as stream:
        await stream.send(head)
        answer = await read_response(stream)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:100]


async def test_no_100_when_the_body_began_with_the_head() -> None:
    # RFC 9110 lets a server omit the 100 once some of the content came:
    # the next bytes are the final response.
    async with serve_in_background() as url, await connect(url) as stream:
        await stream.send(EXPECTING + BODY[:10])
        await stream.send(BODY[10:])
        answer = await read_response(stream)
    assert answer.startswith(b"HTTP/1.1 404 "), answer[:100]


async def test_the_replay_server_answers_a_100_before_the_body() -> None:
    login = load_cassette(PLAIN).interactions[0]
    assert login.kind == "login"
    assert login.request.body
    request = wire(login)
    head, _, body = request.partition(b"\r\n\r\n")
    head = head + b"\r\nExpect: 100-continue\r\n\r\n"
    async with replay_server() as (url, _):
        interim, final = await continue_then_answer(url, head, body)
    assert interim == CONTINUE
    assert final.startswith(b"HTTP/1.1 200 "), final[:100]  # (matched: else a 409)


async def test_the_replay_server_refuses_a_head_at_once_without_a_100() -> None:
    head = EXPECTING.replace(b"%d" % len(BODY), b"%d" % (3 * 1024 * 1024))
    async with replay_server() as (url, _), await connect(url) as stream:
        await stream.send(head)
        answer = await read_response(stream)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:100]


@pytest.mark.parametrize("count_chats", [False, True], ids=["unfollowed", "followed"])
async def test_the_proxy_answers_a_100_and_records_the_final_response(count_chats: bool) -> None:
    # The proxy answers the head itself (it forwards requests whole); the
    # upstream gets the request whole, with its Expect.  A second request
    # on the connection gets its 100 only where responses are followed
    # (none can be on its way then); unfollowed, it is read without one.
    async with (
        serve_in_background() as upstream,
        proxy_to(upstream, count_chats=count_chats) as (url, recorder),
        await connect(url) as stream,
    ):
        await stream.send(EXPECTING)
        interim, rest = await read_head(stream)
        assert interim == CONTINUE
        await stream.send(BODY)
        first = await read_response(stream, rest)
        assert first.startswith(b"HTTP/1.1 404 "), first[:100]
        await stream.send(EXPECTING)
        if count_chats:
            interim, rest = await read_head(stream)
            assert interim == CONTINUE
        else:
            rest = b""
        await stream.send(BODY)
        second = await read_response(stream, rest)
        assert second.startswith(b"HTTP/1.1 404 "), second[:100]
    cassette = recorder.cassette(recorded_at="2026-01-01T00:00:00Z", redact=False)
    assert [i.response.status for i in cassette.interactions] == [404, 404]
    assert all(i.request.body == BODY for i in cassette.interactions)


def test_an_upstream_100_is_recorded_before_the_response_and_replayed() -> None:
    # The upstream may answer a 100 too (it gets the Expect): the client
    # gets it (any number of 1xx may come before the final response), and
    # the recorder keeps the final response's status, not 100; a replay
    # of the cassette answers the same request with the same bytes.
    recorder = g.cassette.ProxyRecorder("http://up.example", host="up.example")
    conn = recorder.connection()
    [up] = conn.client_data(EXPECTING + BODY, 0.0)
    assert isinstance(up, g.cassette.ToUpstream)
    assert b"expect: 100-continue" in up.data
    final = (
        b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
    )
    assert conn.upstream_data(CONTINUE + final, 0.1) == CONTINUE + final
    cassette = recorder.cassette(recorded_at="2026-01-01T00:00:00Z", redact=False)
    [item] = cassette.interactions
    assert item.response.status == 404
    replay = g.cassette.ReplayServer([cassette], speed=0).connection()
    actions = replay.receive_data(EXPECTING + BODY)
    written = b"".join(a.data for a in actions if isinstance(a, g.cassette.ReplayWrite))
    assert written.endswith(final)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize("server", ["reference", "replay", "proxy"])
async def test_curl_gets_its_100(server: str, tmp_path: Path) -> None:
    # curl -v shows the interim response it got; without one it sends the
    # body after its own wait and shows none.
    path = tmp_path / "body.json"
    path.write_bytes(BODY)

    async def run_curl(url: str) -> str:
        result = await anyio.run_process(
            [
                "curl",
                "-sS",
                "-v",
                "--noproxy",
                "*",
                "-H",
                "Expect: 100-continue",
                "--data-binary",
                f"@{path}",
                "-H",
                "content-type: application/json",
                f"{url}/nowhere",
            ],
            check=False,
        )
        return result.stderr.decode("utf-8", "replace")

    if server == "reference":
        async with serve_in_background() as url:
            shown = await run_curl(url)
    elif server == "replay":
        async with replay_server() as (url, _):
            shown = await run_curl(url)
    else:
        async with serve_in_background() as upstream, proxy_to(upstream) as (url, _):
            shown = await run_curl(url)
    assert "< HTTP/1.1 100 Continue" in shown, shown
    final = "< HTTP/1.1 409 " if server == "replay" else "< HTTP/1.1 404 "
    assert final in shown, shown
