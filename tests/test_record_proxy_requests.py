"""The recording proxy's requests on a kept-alive connection, once the
upstream is teed: on asyncio they are read and forwarded in the client
protocol's ``data_received`` (no task woken per request), and what is not a
plain write to the upstream -- a refusal, a bug -- is handed to the
connection's task.  Each behaviour holds on trio (the task alone) too."""

from __future__ import annotations

from contextlib import suppress
from urllib.parse import urlsplit

import anyio
import anyio.abc
import pytest
from anyio import wait_all_tasks_blocked

from gptalk_transports._server import proxy as proxy_module
from gptalk_transports._server.driver import Limits

from .proxy_cases import fail_the_second_request, serving_proxy
from .test_record_proxy import _tiny_upstream

GET = b"GET /x HTTP/1.1\r\nhost: h\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"

#: Short deadlines, so a request left half-sent is cut off within the test.
LIMITS = Limits(
    header_timeout=0.5, request_timeout=1.0, min_rate=None, min_rate_grace=0.0, idle_timeout=30.0
)


async def _until(client: anyio.abc.ByteStream, end: bytes) -> bytes:
    """What the client gets until ``end`` (or the proxy's close)."""
    got = b""
    with suppress(anyio.EndOfStream, anyio.BrokenResourceError):
        while not got.endswith(end):
            got += await client.receive()
    return got


async def _on_one_connection(steps: list[bytes], ends: list[bytes]) -> tuple[list[bytes], bool]:
    """Through a proxy to an upstream that answers ``ok``: a GET (the upstream
    is then teed), then each step, reading until its end; what came, and
    whether the proxy then closed the connection."""
    got: list[bytes] = []
    async with serving_proxy(_tiny_upstream, limits=LIMITS, safety=30) as url:
        parts = urlsplit(url)
        async with await anyio.connect_tcp(parts.hostname or "", parts.port or 0) as client:
            await client.send(GET)
            got.append(await _until(client, b"ok"))
            await wait_all_tasks_blocked()  # the tee runs, the task waits
            for step, end in zip(steps, ends, strict=True):
                await client.send(step)
                got.append(await _until(client, end))
                if not end:  # a piece of a request: the next one comes apart
                    await anyio.sleep(0.05)
            closed = False
            with anyio.move_on_after(3):
                closed = await _until(client, b"never") == b""
    return got, closed


@pytest.fixture
def handed(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Each read handed to a connection's task (asyncio's listener only)."""
    made: list[object] = []

    class Counted(proxy_module._HandedOver):
        def __init__(self) -> None:
            super().__init__()
            made.append(self)

    monkeypatch.setattr(proxy_module, "_HandedOver", Counted)
    return made


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_kept_alive_requests_whole_and_cut_are_forwarded(
    backend: str, handed: list[object]
) -> None:
    """A request in one write, and one cut in three (its head's clock runs
    across the pieces), each forwarded once whole, with nothing handed over."""
    steps = [GET, GET[:7], GET[7:20], GET[20:]]
    ends = [b"ok", b"", b"", b"ok"]
    got, _ = anyio.run(_on_one_connection, steps, ends, backend=backend)
    assert got == [OK, OK, b"", b"", OK]
    assert handed == []


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_refusal_on_a_kept_alive_connection_is_sent_and_closes_it(
    backend: str, handed: list[object]
) -> None:
    steps = [b"CONNECT up.example:443 HTTP/1.1\r\nhost: up.example:443\r\n\r\n"]
    got, closed = anyio.run(_on_one_connection, steps, [b"}"], backend=backend)
    assert got[1].startswith(b"HTTP/1.1 501 ")
    assert closed
    assert len(handed) == (1 if backend == "asyncio" else 0)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_request_left_half_sent_is_cut_off_at_its_deadline(
    backend: str, handed: list[object]
) -> None:
    """The head's deadline (0.5 s here) holds for a request begun between
    reads: the connection is closed, not held for the idle timeout."""
    got, closed = anyio.run(_on_one_connection, [GET[:10]], [b""], backend=backend)
    assert got == [OK, b""]
    assert closed


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_bug_on_a_kept_alive_connection_is_contained(
    backend: str,
    handed: list[object],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The core raising for a connection's second request (read where it
    came in, on asyncio) ends that connection, with one log line."""
    fail_the_second_request(monkeypatch)
    with caplog.at_level("ERROR", logger="gptalk_transports.server"):
        got, closed = anyio.run(_on_one_connection, [GET], [b"ok"], backend=backend)
    assert got == [OK, b""]
    assert closed
    [line] = [r.getMessage() for r in caplog.records]
    assert "internal error #1" in line
    assert "a bug" not in line
