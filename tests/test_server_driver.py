"""The reference server's driver under bugs and slow clients, over loopback.

* Whatever one connection raises stays in it: a 500 where a response can still
  begin, the connection closed, one log line, a count; the listener and the
  other connections go on.  Checked on asyncio and trio, in the caller's event
  loop and in a thread.
* A request must arrive whole within a deadline and at a minimum rate: slow
  clients get a 408 and are closed, so they cannot hold the connection slots.

The deadlines are set small here (tenths of a second) and each test waits
for the server's answer or close, an event, with a generous safety timeout.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import ssl
from collections.abc import Callable, Iterator, Sequence

import anyio
import pytest

import gptalk_proto as g
import gptalk_proto.server
from gptalk_transports import (
    AsyncClient,
    Client,
    ServerStats,
    serve_in_background,
    serve_in_thread,
)
from gptalk_transports._server import driver as _server_driver
from gptalk_transports._server.refserver import LOGGER_NAME

from .replay_cases import anyio_backend  # noqa: F401 (a fixture: asyncio and trio)

pytestmark = pytest.mark.timeout(60)

#: Seconds any single wait for the server may take before the test fails.
SAFETY = 10.0
SECRET = "LLLL0123-a-token-the-log-must-not-show"


def runtime_error() -> None:
    raise RuntimeError(f"invalid token {SECRET}")


def deep_json() -> None:
    """A real RecursionError: a JSON body nested too deep."""
    json.loads("[" * 100_000)


#: The bugs injected: a plain one, with a secret in its message, and the
#: recursion a deeply nested JSON body causes.
BUGS = {"RuntimeError": runtime_error, "RecursionError": deep_json}


class BrokenService(g.server.Service):
    """The reference service with a bug on two paths.

    ``/boom`` fails before any response begins; ``/late-boom`` fails after the
    response head went out.
    """

    def __init__(self, bug: Callable[[], None], faults: Sequence[str] = ()) -> None:
        super().__init__(entropy=os.urandom, faults=faults)
        self.bug = bug

    def handle(
        self,
        method: str,
        target: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        *,
        now: float,
    ) -> Iterator[g.server.Step]:
        if target == "/boom":
            self.bug()
        if target == "/late-boom":
            return self._late(now)
        return super().handle(method, target, headers, body, now=now)

    def _late(self, now: float) -> Iterator[g.server.Step]:
        steps = super().handle("GET", "/nowhere", (), b"", now=now)
        yield next(steps)  # the head of a 404
        self.bug()


def request(target: str) -> bytes:
    return f"GET {target} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".encode()


def check_log(records: list[logging.LogRecord], error: str, outcome: str) -> None:
    """One ERROR line naming the error's type and the outcome; no request data."""
    lines = [r for r in records if r.name == LOGGER_NAME]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    record = lines[0]
    message = record.getMessage()
    assert record.levelno == logging.ERROR
    assert record.exc_info is None  # no traceback
    assert "\n" not in message
    assert len(message) < 400
    assert f": {error} at " in message
    assert outcome in message
    assert SECRET not in message
    assert "internal error #1 on a connection from 127.0.0.1:" in message


# -- in the caller's event loop: asyncio and trio ---------------------------------


async def exchange(url: str, raw: bytes) -> bytes:
    """Send ``raw`` on a new connection; everything the server sends until it closes."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    chunks = []
    with anyio.fail_after(SAFETY):
        async with await anyio.connect_tcp(host, int(port)) as stream:
            await stream.send(raw)
            while True:
                try:
                    chunks.append(await stream.receive())
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    break
    return b"".join(chunks)


@pytest.mark.anyio
@pytest.mark.parametrize("error", BUGS)
async def test_an_exception_gets_a_500_and_stays_in_its_connection(
    error: str, caplog: pytest.LogCaptureFixture
) -> None:
    stats = ServerStats()
    service = BrokenService(BUGS[error], faults=["delay=0.01"])
    async with serve_in_background(service, stats=stats) as url, AsyncClient(url) as client:
        # A chat is streaming on another connection while the bug strikes.
        async with client.stream("Hello, how are you?") as chat:
            deltas = [await chat.__anext__()]
            answer = await exchange(url, request("/boom"))
            deltas.extend([delta async for delta in chat])
        assert "".join(deltas) == g.server.expected_reply("Hello, how are you?")
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 500 ")
        assert b"connection: close" in head.lower()
        assert json.loads(body) == {"code": 500, "msg": "internal server error"}
        assert stats.internal_errors == 1
        check_log(caplog.records, error, "answered 500 and closed it")
        # The listener goes on: a new chat completes.
        assert await client.chat("And now?") == g.server.expected_reply("And now?")


@pytest.mark.anyio
async def test_an_exception_after_the_head_closes_the_connection_without_a_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stats = ServerStats()
    async with serve_in_background(BrokenService(runtime_error), stats=stats) as url:
        answer = await exchange(url, request("/late-boom"))
        # The 404 head went out, its body never did: no second status line.
        assert answer.startswith(b"HTTP/1.1 404 ")
        assert answer.count(b"HTTP/1.1") == 1
        head, _, body = answer.partition(b"\r\n\r\n")
        assert len(body) < int(dict(_headers(head))["content-length"])
        assert stats.internal_errors == 1
        check_log(caplog.records, "RuntimeError", "closed it mid-response")
        async with AsyncClient(url) as client:
            assert await client.chat("still there?") == g.server.expected_reply("still there?")


def _headers(head: bytes) -> Iterator[tuple[str, str]]:
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        yield name.strip().lower(), value.strip()


class ExplodingConnection(g.server.ServerConnection):
    """The core's server machine with a bug: it fails on a header it reads."""

    def receive_data(self, data: bytes) -> None:
        if b"x-explode" in data:
            runtime_error()
        super().receive_data(data)


def broken_deadline(*args: object, **kwargs: object) -> float:
    raise RuntimeError(SECRET)  # a bug in the driver itself


@pytest.mark.anyio
@pytest.mark.parametrize("where", ["connection", "driver"])
async def test_an_exception_in_the_core_machine_or_the_driver_stays_in_its_connection(
    where: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    if where == "connection":
        monkeypatch.setattr(_server_driver, "ServerConnection", ExplodingConnection)
        raw = b"GET / HTTP/1.1\r\nhost: x\r\nx-explode: 1\r\n\r\n"
    else:
        monkeypatch.setattr(_server_driver.Limits, "request_deadline", broken_deadline)
        raw = b"GET / HTTP/1.1\r\n"  # a head begun: its deadline is computed
    stats = ServerStats()
    async with serve_in_background(stats=stats) as url:
        answer = await exchange(url, raw)
        assert answer.startswith(b"HTTP/1.1 500 ")
        assert stats.internal_errors == 1
        check_log(caplog.records, "RuntimeError", "answered 500 and closed it")
        if where == "driver":
            monkeypatch.undo()  # every request has a deadline: mend it to chat
        async with AsyncClient(url) as client:
            assert await client.chat("still there?") == g.server.expected_reply("still there?")


@pytest.mark.anyio
async def test_many_failing_connections_leave_the_server_serving() -> None:
    stats = ServerStats()
    async with serve_in_background(BrokenService(runtime_error), stats=stats) as url:
        answers: list[bytes] = []

        async def fail() -> None:
            answers.append(await exchange(url, request("/boom")))

        async with anyio.create_task_group() as group:
            for _ in range(50):
                group.start_soon(fail)
        assert all(a.startswith(b"HTTP/1.1 500 ") for a in answers)
        assert stats.internal_errors == 50
        assert stats.active == 0
        async with AsyncClient(url) as client:
            assert await client.chat("after fifty") == g.server.expected_reply("after fifty")


# -- in a thread (the blocking use), on asyncio and trio ------------------------------


def blocking_exchange(url: str, raw: bytes) -> bytes:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    chunks = []
    with socket.create_connection((host, int(port)), timeout=SAFETY) as sock:
        sock.sendall(raw)
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("error", BUGS)
def test_in_a_thread_an_exception_stays_in_its_connection(
    backend: str, error: str, caplog: pytest.LogCaptureFixture
) -> None:
    stats = ServerStats()
    with serve_in_thread(BrokenService(BUGS[error]), stats=stats, backend=backend) as url:
        answer = blocking_exchange(url, request("/boom"))
        assert answer.startswith(b"HTTP/1.1 500 ")
        assert stats.internal_errors == 1
        check_log(caplog.records, error, "answered 500 and closed it")
        with Client(url) as client:
            assert client.chat("Hello, how are you?") == g.server.expected_reply(
                "Hello, how are you?"
            )


# -- slow requests ----------------------------------------------------------------------


def login_head(length: int) -> bytes:
    return (
        f"POST {g.LOGIN_PATH} HTTP/1.1\r\nhost: x\r\ncontent-length: {length}\r\n"
        "content-type: application/json\r\n\r\n"
    ).encode()


async def trickle(url: str, *, every: float = 0.02, limit: int = 2000) -> tuple[bytes, int]:
    """Send a login head, then its body one byte every ``every`` s until the
    server answers or closes; (what it sent back, body bytes sent).

    The body would need ``limit`` bytes: the server must act long before.
    """
    host, port = url.removeprefix("http://").rsplit(":", 1)
    sent = 0
    chunks: list[bytes] = []
    async with await anyio.connect_tcp(host, int(port)) as stream:
        await stream.send(login_head(limit))
        with anyio.fail_after(SAFETY):
            while True:
                with anyio.move_on_after(every):
                    try:
                        data = await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        break
                    chunks.append(data)
                    continue
                assert sent < limit, "the server waited for the whole trickled body"
                try:
                    await stream.send(b" ")
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    break
                sent += 1
    return b"".join(chunks), sent


def dropped_with_408(answer: bytes) -> bool:
    """The server said 408 and closed, or (its 408 lost to a reset) just closed."""
    return answer == b"" or answer.startswith(b"HTTP/1.1 408 ")


@pytest.mark.anyio
async def test_a_trickled_body_is_dropped_at_the_request_deadline() -> None:
    stats = ServerStats()
    # No minimum rate: only the whole-request deadline can end it.
    async with serve_in_background(stats=stats, request_timeout=0.3, min_rate=None) as url:
        started = anyio.current_time()
        async with anyio.create_task_group() as group:
            answers: list[tuple[bytes, int]] = []

            async def slow() -> None:
                answers.append(await trickle(url))

            group.start_soon(slow)
            # Meanwhile a normal client chats with the same server.
            async with AsyncClient(url) as client:
                assert await client.chat("meanwhile") == g.server.expected_reply("meanwhile")
        answer, sent = answers[0]
        assert dropped_with_408(answer), answer[:80]
        assert sent > 0  # bytes kept coming; the deadline held all the same
        assert anyio.current_time() - started >= 0.3
        assert stats.timed_out == 1
        assert stats.internal_errors == 0


@pytest.mark.anyio
async def test_a_pipelined_request_cut_in_its_body_is_timed_from_its_read() -> None:
    # One read: a whole request, then the head of another and part of its
    # body.  The second is a request begun: timed by the request deadline
    # (it was left to the idle timeout, here a minute, past the safety
    # timeout), and counted as partial (test_server_partial_budget).
    stats = ServerStats()
    async with serve_in_background(
        stats=stats, request_timeout=0.3, min_rate=None, idle_timeout=60
    ) as url:
        parts = url.removeprefix("http://").rsplit(":", 1)
        async with await anyio.connect_tcp(parts[0], int(parts[1])) as stream:
            await stream.send(
                b"GET /nowhere HTTP/1.1\r\nhost: x\r\n\r\n"
                b"POST /nowhere HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{"
            )
            answer = b""
            with anyio.fail_after(SAFETY):
                try:
                    while True:
                        answer += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    pass
    first, _, rest = answer.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 404 "), answer[:80]
    length = int(first.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    assert dropped_with_408(rest[length:]), rest[:200]
    assert stats.timed_out == 1


@pytest.mark.anyio
async def test_a_body_under_the_minimum_rate_is_dropped() -> None:
    stats = ServerStats()
    # A whole minute for the request: only the rate (1000 bytes/s after 0.2 s,
    # against the trickle's 50) can end it within the test's safety timeout.
    async with serve_in_background(
        stats=stats, request_timeout=60, min_rate=1000, min_rate_grace=0.2
    ) as url:
        answer, _ = await trickle(url)
        assert dropped_with_408(answer), answer[:80]
        assert stats.timed_out == 1
        async with AsyncClient(url) as client:
            assert await client.chat("after it") == g.server.expected_reply("after it")


@pytest.mark.anyio
async def test_slow_clients_at_the_connection_cap_are_dropped_and_others_served() -> None:
    stats = ServerStats()
    cap = 5
    async with serve_in_background(
        stats=stats, max_connections=cap, request_timeout=0.3, min_rate=None
    ) as url:
        answers: list[tuple[bytes, int]] = []

        async def slow() -> None:
            answers.append(await trickle(url))

        async with anyio.create_task_group() as group:
            for _ in range(cap):
                group.start_soon(slow)
        assert len(answers) == cap
        assert all(dropped_with_408(answer) for answer, _ in answers)
        assert stats.timed_out == cap
        # Each slot was free before its client saw the close.
        assert stats.active == 0
        async with AsyncClient(url) as client:
            assert await client.chat("served after") == g.server.expected_reply("served after")


@pytest.mark.anyio
async def test_past_the_cap_a_connection_is_closed_unanswered() -> None:
    stats = ServerStats()
    async with serve_in_background(stats=stats, max_connections=2) as url:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        holders = [await anyio.connect_tcp(host, int(port)) for _ in range(2)]
        try:
            with anyio.fail_after(SAFETY):
                while stats.active < 2:  # both accepted (idle, they hold a slot)
                    await anyio.sleep(0.01)
            assert await exchange(url, request("/")) == b""
            assert stats.refused == 1
        finally:
            await holders.pop().aclose()
        try:
            with anyio.fail_after(SAFETY):
                while stats.active > 1:
                    await anyio.sleep(0.01)
            answer = await exchange(url, request("/nowhere"))
            assert answer.startswith(b"HTTP/1.1 404 ")
        finally:
            await holders.pop().aclose()


# -- bad settings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("request_timeout", math.nan),
        ("request_timeout", -1.0),
        ("request_timeout", math.inf),
        ("min_rate", math.nan),
        ("min_rate", 0),
        ("min_rate_grace", -0.5),
        ("header_timeout", math.inf),
        ("idle_timeout", 0),
        ("max_connections", 0),
        ("max_connections", 2.5),
    ],
)
def test_bad_limits_are_refused_before_the_server_starts(name: str, value: float) -> None:
    with pytest.raises(g.LocalProtocolError, match=name), serve_in_thread(**{name: value}):  # type: ignore[arg-type]
        pass


# -- over TLS ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_over_tls_a_silent_handshake_and_a_stalled_body_are_dropped(
    tls_server_context: ssl.SSLContext, tls_client_context: ssl.SSLContext
) -> None:
    stats = ServerStats()
    async with serve_in_background(
        stats=stats,
        ssl_context=tls_server_context,
        header_timeout=0.3,
        request_timeout=0.3,
        min_rate=None,
    ) as url:
        host, port = url.removeprefix("https://").rsplit(":", 1)
        # No ClientHello: closed once the header timeout passed.
        with anyio.fail_after(SAFETY):
            async with await anyio.connect_tcp(host, int(port)) as silent:
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await silent.receive()
        # A request head, then no body, inside TLS: 408, then closed.
        with anyio.fail_after(SAFETY):
            async with await anyio.connect_tcp(
                host, int(port), ssl_context=tls_client_context, tls_standard_compatible=False
            ) as stream:
                await stream.send(login_head(1000))
                chunks = []
                while True:
                    try:
                        chunks.append(await stream.receive())
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        break
        assert dropped_with_408(b"".join(chunks))
        assert stats.timed_out == 1
        async with AsyncClient(url, verify=tls_client_context) as client:
            assert await client.chat("over TLS") == g.server.expected_reply("over TLS")
