"""The recording proxy (``record_through_proxy``, ``gptalk record --listen``):
clients that are not ours, recorded against the reference server and a
foreign app, then replayed by ``gptalk replay`` and by the replay server."""

from __future__ import annotations

import asyncio.selector_events
import http.client
import json
import os
import platform
import signal
import socket
import sys
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import pytest

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_transports import load_cassette, replay_session, serve_in_thread
from gptalk_transports._server import driver as driver_module
from gptalk_transports._server import proxy_listener
from gptalk_transports._server.proxy import UPSTREAM_READ_SIZE
from gptalk_transports._server.proxy_accepted import Accepted
from gptalk_transports._server.proxy_run import record_through_proxy_in_thread
from gptalk_transports._server.replay import serve_cassettes_in_thread

from .console import gptalk, listening
from .foreign_app import AppState, reply_pieces, run_in_thread
from .fresh_interpreter import count_in_fresh_interpreter
from .proxy_cases import fail_the_second_request, proxy_in_front_of, serving_proxy

PLAIN = Path(__file__).resolve().parent.parent / "cassettes" / "plain-chat.json"
#: The headers our client sends, from a shipped cassette: a hand-driven
#: client sends the same, so its recording replays through ours too.
HEADERS = {
    item.request.target.split("?")[0]: [
        (n, v)
        for n, v in item.request.headers
        if n not in ("host", "content-length", "authorization")
    ]
    for item in load_cassette(PLAIN).interactions
}
TEXT_BODY = load_cassette(PLAIN).interactions[1].request.json()


def by_hand(url: str, prompt: str, *, via_proxy: str | None = None) -> tuple[str, list[str]]:
    """One GPTalk chat driven with http.client: (the reply, the tokens the
    service handed out).  ``via_proxy``: use it as an HTTP proxy
    (absolute-form targets), as ``HTTP_PROXY`` makes clients do."""
    parts = urlsplit(via_proxy or url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    prefix = url if via_proxy else ""
    tokens: list[str] = []

    def call(method: str, path: str, body: object, auth: str | None = None) -> bytes:
        data = b"" if body is None else json.dumps(body).encode()
        conn.putrequest(method, prefix + path, skip_accept_encoding=True)
        for name, value in HEADERS[path.split("?", maxsplit=1)[0]]:
            conn.putheader(name, value)
        if auth is not None:
            conn.putheader("authorization", f"Bearer {auth}")
        if method == "POST":
            conn.putheader("content-length", str(len(data)))
        conn.endheaders(data if method == "POST" else None)
        response = conn.getresponse()
        answer = response.read()
        assert response.status == 200, answer
        return answer

    try:
        login = json.loads(
            call(
                "POST",
                g.LOGIN_PATH,
                {"fingerprint": os.urandom(16).hex(), "platform": "fingerprint"},
            )
        )
        tokens.append(login["data"]["token"])
        text = json.loads(call("POST", g.TEXT_PATH, {**TEXT_BODY, "content": prompt}, tokens[0]))
        tokens.append(text["data"]["token"])
        stream = call("GET", f"{g.STREAM_PATH}?token={tokens[1]}", None)
    finally:
        conn.close()
    reply = ""
    for line in stream.decode().replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line.startswith("data: {"):
            reply = json.loads(line[6:]).get("content", reply)  # the reply so far
    return reply, tokens


def check_cassette(
    cassette: g.cassette.Cassette, prompt: str, want: str, tokens: list[str]
) -> None:
    """Redacted, origin-form, and replayed to the exact text by ``replay``
    (our client, offline) and by the replay server (a hand-driven client)."""
    text = cassette.dumps()
    assert all(token not in text for token in tokens)
    assert all(item.request.target.startswith("/") for item in cassette.interactions)
    [result] = anyio.run(replay_session, cassette)
    assert result.text == want
    assert result.error is None
    with serve_cassettes_in_thread([cassette], speed=0) as url:
        assert by_hand(url, prompt)[0] == want


@pytest.mark.parametrize("absolute", [False, True], ids=["service-url", "http-proxy"])
def test_http_client_through_the_proxy_to_the_reference_server(absolute: bool) -> None:
    prompt = "Hello through the proxy"
    with serve_in_thread() as upstream:
        direct, _ = by_hand(upstream, prompt)
        with record_through_proxy_in_thread(upstream, trust_env=False) as run:
            if absolute:
                got, tokens = by_hand("http://gptalk.example", prompt, via_proxy=run.url)
            else:
                got, tokens = by_hand(run.url, prompt)
        assert got == direct
        assert run.recorder.chats == 0  # counted only when a count is asked for
    assert run.cassette is not None
    check_cassette(run.cassette, prompt, direct, tokens)


@pytest.mark.parametrize("variant", ["sse", "raw"])
def test_http_client_through_the_proxy_to_the_foreign_app(variant: str) -> None:
    prompt = "Hello from elsewhere"
    state = AppState(variant=variant)
    with run_in_thread(state) as upstream:
        with record_through_proxy_in_thread(upstream, trust_env=False, backend="trio") as run:
            got, tokens = by_hand(run.url, prompt)
        assert state.problems == []
    assert got == "".join(reply_pieces(prompt))
    assert run.cassette is not None
    check_cassette(run.cassette, prompt, got, tokens)
    # The cassette file loads, and gptalk replay prints the same text.
    assert run.cassette.interactions[2].response.events


def test_connect_is_refused_with_501_naming_the_proxy_url() -> None:
    with serve_in_thread() as upstream, record_through_proxy_in_thread(upstream) as run:
        parts = urlsplit(run.url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        conn.request("CONNECT", "gptalk.net:443")
        response = conn.getresponse()
        message = json.loads(response.read())["msg"]
        conn.close()
    assert response.status == 501
    assert "CONNECT" in message
    assert run.url in message
    assert run.cassette is not None
    assert run.cassette.interactions == ()


def test_one_upstream_read_takes_all_an_asyncio_transport_read_got() -> None:
    """anyio hands a ``receive`` smaller than the asyncio transport's read
    the head of it and copies the rest back into its queue, at every read:
    a large stream cost the proxy a quadratic copy per transport read (the
    largest cost in its profile of the benchmark's 64 KB reply)."""
    transport_read = vars(asyncio.selector_events)["_SelectorTransport"].max_size  # private
    assert transport_read <= UPSTREAM_READ_SIZE


# Reads of a few bytes into 256 KiB buffers, as a transport makes them, in
# a fresh interpreter (malloc's thresholds are per process) that imported
# the proxy, and started one when asked.  Prints the page faults the reads
# cost.
_READS = """
import resource, socket, sys
from gptalk_transports._server.proxy_run import record_through_proxy_in_thread

def reads() -> int:
    a, b = socket.socketpair()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(200):
        a.send(b"x" * 100)
        b.recv(256 * 1024)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

if sys.argv[1] == "proxy":
    with record_through_proxy_in_thread("http://127.0.0.1:9", trust_env=False):
        print(reads())
else:
    print(reads())
"""


@pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc",
    reason="glibc's malloc thresholds",
)
def test_a_running_proxy_reads_into_heap_buffers_not_fresh_mappings(tmp_path: Path) -> None:
    """Each 256 KiB read buffer was a fresh mapping (mmap, mremap, munmap
    and a page fault per read) until a proxy started in the process."""

    def faults(mode: str) -> int:
        return count_in_fresh_interpreter(_READS, mode, tmp_path)

    faults("imported")  # fills the bytecode cache
    if faults("imported") < 200:  # a fault (or two) per read is the premise
        pytest.skip("importing the package raised malloc's threshold by itself")
    assert faults("proxy") < 20


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_tee_the_client_holds_event_1_before_the_upstream_sends_event_2(backend: str) -> None:
    """A gated upstream sends event 2 only once the client, through the
    proxy, holds event 1: a proxy that buffered would never get there (on
    asyncio the tee runs at the protocol level, on trio as a pump)."""
    gate = anyio.Event()
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )

    def chunk(data: bytes) -> bytes:
        return b"%x\r\n%s\r\n" % (len(data), data)

    async def upstream(stream: anyio.abc.ByteStream) -> None:
        async with stream:
            while b"\r\n\r\n" not in (await stream.receive()):
                pass
            await stream.send(head + chunk(b'data: {"content": "one"}\n\n'))
            await gate.wait()
            await stream.send(chunk(b'data: {"content": "one two"}\n\n') + b"0\r\n\r\n")

    async def main() -> g.cassette.Cassette | None:
        # (The safety net only: the gate is what is tested.)
        async with (
            proxy_in_front_of(upstream, safety=30) as (run, address),
            await anyio.connect_tcp(*address) as client,
        ):
            await client.send(f"GET {g.STREAM_PATH}?token=x HTTP/1.1\r\nhost: h\r\n\r\n".encode())
            seen = b""
            while b'"one"' not in seen:
                seen += await client.receive()
            assert b"one two" not in seen
            gate.set()  # only now may event 2 be sent
            while not seen.endswith(b"0\r\n\r\n"):
                seen += await client.receive()
        return run.cassette

    cassette = anyio.run(main, backend=backend)
    assert cassette is not None
    [item] = cassette.interactions
    assert [e.data for e in item.response.events] == [
        '{"content": "one"}',
        '{"content": "one two"}',
    ]
    assert len(item.response.chunks) >= 2  # the reads as they came


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_cli_record_listen_writes_the_cassette_on_a_signal(signum: int, tmp_path: Path) -> None:
    output = tmp_path / "proxied.json"
    prompt = "Hello, recorded by the CLI"
    command = ("record", "--listen", "--url")
    with serve_in_thread() as upstream, listening(*command, upstream, "-o", str(output)) as running:
        proc, url = running
        got, tokens = by_hand(url, prompt)
        proc.send_signal(signum)
        code = proc.wait(timeout=15)
        assert proc.stderr is not None
        errors = proc.stderr.read()
    assert code == 0, errors
    assert "recorded 1 chats, 3 exchanges" in errors
    text = output.read_text(encoding="utf-8")
    assert all(token not in text for token in tokens)
    replayed = gptalk("replay", "--speed", "0", str(output))
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.rstrip("\n") == got


def test_cli_record_listen_stops_after_n_chats(tmp_path: Path) -> None:
    output = tmp_path / "two.json"
    with (
        serve_in_thread() as upstream,
        listening("record", "--listen", "--url", upstream, "-o", str(output), "--chats", "2") as (
            proc,
            url,
        ),
    ):
        by_hand(url, "one")
        by_hand(url, "two")
        code = proc.wait(timeout=15)
    assert code == 0
    assert [i.kind for i in load_cassette(output).interactions] == ["login", "text", "stream"] * 2


def test_cli_record_listen_usage() -> None:
    result = gptalk("record", "--listen", "-o", "x.json")
    assert result.returncode == 2
    assert "--url" in result.stderr
    result = gptalk("record", "-o", "x.json")
    assert result.returncode == 2
    assert "PROMPT" in result.stderr


async def _tiny_upstream(stream: anyio.abc.ByteStream) -> None:
    """Answers every request head it gets with a 2-byte body."""
    async with stream:
        seen = b""
        with suppress(anyio.EndOfStream, anyio.BrokenResourceError):
            while True:
                seen += await stream.receive()
                while b"\r\n\r\n" in seen:
                    _, seen = seen.split(b"\r\n\r\n", 1)
                    await stream.send(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")


async def _ask(url: str) -> bytes:
    """One GET through the proxy at ``url``: all the bytes until the
    response's body (or the proxy's close), once the proxy let go of it."""
    parts = urlsplit(url)
    client = await anyio.connect_tcp(parts.hostname or "", parts.port or 0)
    got = b""
    async with client:
        await client.send(b"GET /x HTTP/1.1\r\nhost: h\r\n\r\n")
        with suppress(anyio.EndOfStream):
            while not got.endswith(b"\r\n\r\nok"):
                got += await client.receive()
        await _until_closed(client)
    return got


async def _until_closed(client: anyio.abc.SocketStream) -> None:
    """Half-close, then read until the proxy closes: the event that says it
    let go of the connection (it tells the upstream, and waits for it to
    close too: a response may be in flight)."""
    with suppress(anyio.EndOfStream, anyio.BrokenResourceError, OSError):
        await client.send_eof()
        while await client.receive():
            pass


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_proxy_caps_connections_and_contains_a_connections_error(
    backend: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Both listeners (asyncio's own transports, and anyio's on trio) keep
    the cap and contain one connection's error: it alone ends, logged."""
    fail_the_second_request(monkeypatch)

    async def main() -> None:
        # (What is checked are counts; the helper's deadline is a safety net.)
        async with serving_proxy(_tiny_upstream, max_connections=1) as url:
            assert (await _ask(url)).endswith(b"ok")
            assert await _ask(url) == b""  # the bug's connection: closed
            assert (await _ask(url)).endswith(b"ok")  # the listener goes on
            # One connection held open: the next one is refused.
            parts = urlsplit(url)
            held = await anyio.connect_tcp(parts.hostname or "", parts.port or 0)
            async with held:
                await held.send(b"GET /x HTTP/1.1\r\nhost: h\r\n\r\n")
                got = b""
                while not got.endswith(b"ok"):
                    got += await held.receive()
                assert await _ask(url) == b""
                await _until_closed(held)
            assert (await _ask(url)).endswith(b"ok")

    with caplog.at_level("ERROR", logger="gptalk_transports.server"):
        anyio.run(main, backend=backend)
    [line] = [r.getMessage() for r in caplog.records]
    assert "internal error #1" in line
    assert "a bug" not in line  # code locations only, never a message


def test_a_slow_client_gets_the_whole_reply_when_the_upstream_closes_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reply that ends with the upstream's close, to a client that has not
    read it yet: what the proxy still buffers for the client (more than the
    sockets hold, less than the transport's high-water mark, so the proxy's
    last write did not wait) reaches it after the proxy let go of the
    connection.  (The asyncio listener aborted the transport: its buffered
    tail was dropped, the reply cut short by tens of kilobytes.)"""
    size = 40 * 1024
    small = 4096  # socket buffers that hold far less than the reply
    ended = anyio.Event()
    real_contained = driver_module.serve_contained
    real_made = Accepted.connection_made

    async def contained(*args: object, **kwargs: object) -> None:
        await real_contained(*args, **kwargs)  # type: ignore[arg-type]
        ended.set()  # the proxy let go of the client's connection

    def made(self: Accepted, transport: asyncio.BaseTransport) -> None:
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, small)
        real_made(self, transport)

    monkeypatch.setattr(proxy_listener, "serve_contained", contained)
    monkeypatch.setattr(Accepted, "connection_made", made)

    async def upstream(stream: anyio.abc.ByteStream) -> None:
        async with stream:
            while b"\r\n\r\n" not in (await stream.receive()):
                pass
            await stream.send(
                b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % size
                + b"z" * size
            )

    async def main() -> None:
        # (What is checked are bytes; the helper's deadline is a safety net.)
        async with serving_proxy(upstream) as url:
            parts = urlsplit(url)
            loop = asyncio.get_running_loop()
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, small)  # before connect
                sock.setblocking(False)
                await loop.sock_connect(sock, (parts.hostname or "", parts.port or 0))
                await loop.sock_sendall(sock, b"GET /x HTTP/1.1\r\nhost: h\r\n\r\n")
                await ended.wait()  # nothing read until the proxy is done
                got = b""
                while data := await loop.sock_recv(sock, 65536):
                    got += data
        assert len(got.partition(b"\r\n\r\n")[2]) == size

    anyio.run(main, backend="asyncio")


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_half_closed_client_is_let_go_when_the_upstream_never_answers(backend: str) -> None:
    """Hostile: a client half-closes after its request, and the upstream
    neither answers nor closes.  The proxy waits for the answer no longer
    than its idle timeout, then closes the client: the client's end of
    stream is the event checked."""

    async def silent(stream: anyio.abc.ByteStream) -> None:
        # Reads the request and the proxy's half-close, answers nothing, and
        # keeps its side open until the test ends.
        async with stream:
            with suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                while True:
                    await stream.receive()
            await anyio.sleep_forever()

    async def main() -> bytes:
        # Generous for the request, short for what follows the client's end.
        limits = driver_module.Limits(
            header_timeout=30,
            request_timeout=30,
            min_rate=None,
            min_rate_grace=30,
            idle_timeout=0.2,
        )
        # (What is checked are events; the helper's deadline is a safety net.)
        async with serving_proxy(silent, limits=limits) as url:
            parts = urlsplit(url)
            async with await anyio.connect_tcp(parts.hostname or "", parts.port or 0) as client:
                await client.send(b"GET /x HTTP/1.1\r\nhost: h\r\n\r\n")
                await client.send_eof()
                got = b""
                with suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                    while True:
                        got += await client.receive()
        return got

    assert anyio.run(main, backend=backend) == b""
