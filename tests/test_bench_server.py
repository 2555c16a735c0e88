"""The benchmark server reads requests by hand (see ``BenchProtocol``): it
must take every request the clients send however the bytes arrive, and
answer what they never send with a 400, not a hang or a wrong reply."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import random

import pytest

from gptalk_transports import Client

from .bench import server as bench_server
from .bench.run import Server, _idle_memory, expected

LOGIN_BODY = json.dumps({"fingerprint": "0" * 32, "platform": "fingerprint"}).encode()
LOGIN = (
    b"POST /api/chatgpt/user/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(LOGIN_BODY), LOGIN_BODY)
)
TEXT_BODY = json.dumps({"content": "events:64:8:raw:lf"}).encode()
TEXT = b"POST /api/chatgpt/chatapi/text HTTP/1.1\r\nhost: x\r\nCONTENT-LENGTH:  %d \r\n\r\n%s" % (
    len(TEXT_BODY),
    TEXT_BODY,
)


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.limits = (high, low)


def served(pieces: list[bytes]) -> tuple[list[bytes], list[bytes], Transport]:
    """The targets and bodies the server answered, and its transport."""
    targets: list[bytes] = []
    bodies: list[bytes] = []

    class Recording(bench_server.BenchProtocol):
        def respond(self) -> None:
            targets.append(self.target)
            bodies.append(self.body)
            super().respond()

    protocol = Recording()
    transport = Transport()
    protocol.connection_made(transport)
    for piece in pieces:
        protocol.data_received(piece)
    return targets, bodies, transport


def cuts(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    points = sorted(rng.sample(range(1, len(data)), rng.randint(1, 8)))
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@pytest.mark.parametrize("way", ["whole", "byte by byte", *(f"cut {n}" for n in range(20))])
def test_pipelined_requests_in_any_pieces(way: str) -> None:
    data = LOGIN + TEXT
    if way == "whole":
        pieces = [data]
    elif way == "byte by byte":
        pieces = [data[i : i + 1] for i in range(len(data))]
    else:
        pieces = cuts(data, int(way.split()[1]))
    targets, bodies, transport = served(pieces)
    assert targets == [b"/api/chatgpt/user/login", b"/api/chatgpt/chatapi/text"]
    assert bodies == [LOGIN_BODY, TEXT_BODY]
    assert transport.written.count(b"HTTP/1.1 200 OK") == 2
    assert b'"token": "events.64.8.raw.lf"' in transport.written
    assert not transport.closed


@pytest.mark.parametrize(
    "request_",
    [
        # A chunked body: no client of the benchmark sends one.
        b"POST /x HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        # A head that never ends, past the cap.
        b"GET /x HTTP/1.1\r\n" + b"a: b\r\n" * (bench_server.MAX_REQUEST // 6 + 1),
        # A body past the cap.
        b"POST /x HTTP/1.1\r\ncontent-length: %d\r\n\r\n" % bench_server.MAX_REQUEST,
        # Not a request line.
        b"GET /x\r\n\r\n",
        b"GET /x SPDY/3\r\n\r\n",
    ],
)
def test_what_no_client_sends_gets_a_400_and_a_close(request_: bytes) -> None:
    targets, _, transport = served([request_])
    assert targets == []
    assert transport.written.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert transport.closed


class Lagging(Transport):
    """A transport whose peer takes nothing until told: past the high mark
    it pauses its protocol, as asyncio's and uvloop's transports do."""

    def __init__(self, protocol: bench_server.BenchProtocol) -> None:
        super().__init__()
        self.protocol = protocol
        self.held = 0
        self.writes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        super().write(data)
        self.writes += 1
        self.held += len(data)
        high = self.limits[0]
        assert high is not None
        if self.held > high and self.held - len(data) <= high:
            self.protocol.pause_writing()

    def drain(self) -> None:
        self.held = 0
        self.protocol.resume_writing()


def test_a_lagging_client_makes_the_stream_wait_for_resume_not_poll() -> None:
    # A 16 KB reply in 500 cumulative events is 4 MB: past the 1 MiB high
    # mark the stream must wait until the transport resumes it (it polled
    # with a sleep that uvloop made a busy loop), then go on, losing nothing.
    workload = "events:16384:500:raw:lf"

    async def main() -> tuple[int, bytes]:
        protocol = bench_server.BenchProtocol()
        transport = Lagging(protocol)
        protocol.connection_made(transport)
        assert transport.limits == (1 << 20, 1 << 18)
        task = asyncio.ensure_future(protocol.stream(workload))
        pauses = 0
        while not task.done():
            for _ in range(50):  # the loop runs on: the stream stays put
                await asyncio.sleep(0)
            if task.done():
                break
            assert protocol.paused is not None
            writes = transport.writes
            for _ in range(50):
                await asyncio.sleep(0)
            assert transport.writes == writes
            pauses += 1
            transport.drain()
        await task
        return pauses, bytes(transport.written)

    pauses, written = asyncio.run(main())
    body = b"".join(bench_server.stream_chunks(workload))
    assert written == bench_server.STREAM_HEAD + body + b"0\r\n\r\n"
    assert len(body) > 4 << 20
    assert pauses >= len(body) // ((1 << 20) + 65536) >= 3


def test_the_loop_is_uvloop_when_installed_unless_asyncio_is_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BENCH_SERVER_LOOP", raising=False)
    installed = importlib.util.find_spec("uvloop") is not None
    assert bench_server.loop_name() == ("uvloop" if installed else "asyncio")
    monkeypatch.setenv("BENCH_SERVER_LOOP", "asyncio")
    assert bench_server.loop_name() == "asyncio"


def _loops() -> list[str]:
    return ["asyncio"] + (["uvloop"] if importlib.util.find_spec("uvloop") is not None else [])


@pytest.mark.parametrize("loop", _loops())
@pytest.mark.parametrize("workload", ["events:300:40:raw:lf", "events:300:7:ascii:crlf"])
def test_the_server_process_serves_exact_chats_on_each_loop(
    monkeypatch: pytest.MonkeyPatch, loop: str, workload: str
) -> None:
    # The process as the benchmark starts it (bench.run.Server): its line
    # names the loop it runs, and three chats on one client (a login, then
    # kept-alive connections) get the workload's reply exactly.
    if loop == "asyncio":
        monkeypatch.setenv("BENCH_SERVER_LOOP", "asyncio")
    else:
        monkeypatch.delenv("BENCH_SERVER_LOOP", raising=False)
    server = Server([workload])
    try:
        assert server.loop == loop
        with Client(server.url) as client:
            for _ in range(3):
                assert client.chat(workload) == expected(workload)
    finally:
        server.close()


def test_idle_memory_is_measured_in_a_process_of_its_own() -> None:
    # The memory row as the benchmark measures it (its child,
    # tests.bench.idle_memory) against a real benchmark server: streams open
    # and held, a positive size per stream (the child refuses to print a
    # growth of zero or less).
    server = Server(["idle"])
    try:
        row = asyncio.run(_idle_memory(server.url, 50))
    finally:
        server.close()
    assert 0 < row.ratio < 1024  # KiB per stream
