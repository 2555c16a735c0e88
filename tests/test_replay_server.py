"""The replay server (``serve_cassettes``, ``gptalk replay --serve``): any
client, over loopback, gets the recorded bytes, chunk boundaries and pace."""

from __future__ import annotations

import http.client
import itertools
import json
import signal
import socket
import subprocess
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_transports import (
    AsyncClient,
    Client,
    GPTalk,
    load_cassette,
    record_session,
    replay_session,
)
from gptalk_transports._cli.replay_serve import MAX_SHOWN_MISMATCHES
from gptalk_transports._config import Timeout
from gptalk_transports._server.driver import LOGGER_NAME, Limits, ServerStats, serve_listener
from gptalk_transports._server.proxy import serve_proxy
from gptalk_transports._server.proxy_run import _recorder_for
from gptalk_transports._server.replay import (
    serve_cassettes,
    serve_cassettes_in_thread,
    serve_replay,
)
from gptalk_transports._session import REPLAY_RETRY, next_chat, recorded_clock, text_steps

from .console import listening

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"
SHIPPED = sorted(CASSETTES.glob("*.json"))
# The GPTalk ones: the SDK cassettes replay to the SDKs in test_profiles_sdks.
CLIENT_SHIPPED = [p for p in SHIPPED if load_cassette(p).profile == "gptalk"]
PLAIN = CASSETTES / "plain-chat.json"
SEVEN = CASSETTES / "seven-chats.json"


async def play(
    url: str,
    cassette: g.cassette.Cassette,
    server: g.cassette.ReplayServer,
    *,
    backend: str = "anyio",
) -> list[str]:
    """Every chat of ``cassette`` through our client against ``url``, as
    ``replay_session`` plays them (a retried request belongs to its chat)."""
    steps = text_steps(cassette)
    texts: list[str] = []
    async with AsyncClient(
        url,
        backend=backend,
        retry=REPLAY_RETRY,
        timeout=Timeout(10, 10, 60),
        clock=recorded_clock(cassette),
        trust_env=False,
    ) as client:
        while (upcoming := next_chat(steps, server.played())) is not None:
            before = server.played()
            prompt, model = upcoming
            try:
                async with client.events(prompt, model=model) as events:
                    async for _ in events:
                        pass
                texts.append(events.text)
            except g.GPTalkError as error:
                texts.append(f"{type(error).__name__}: {getattr(error, 'text', '')}")
            if server.played() == before:
                break
    return texts


async def expected(cassette: g.cassette.Cassette) -> list[str]:
    return [
        r.text if r.error is None else f"{type(r.error).__name__}: {getattr(r.error, 'text', '')}"
        for r in await replay_session(cassette)
    ]


@pytest.mark.parametrize("path", CLIENT_SHIPPED, ids=[p.stem for p in CLIENT_SHIPPED])
def test_every_shipped_cassette_replays_through_the_server(path: Path) -> None:
    cassette = load_cassette(path)
    server = g.cassette.ReplayServer([cassette], speed=0)

    async def main() -> list[str]:
        async with serve_cassettes([cassette], server=server) as url:
            return await play(url, cassette, server)

    assert anyio.run(main) == anyio.run(expected, cassette)
    assert server.all_played
    assert server.mismatches() == []


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_seven_chats_two_logins_in_order_on_each_backend(backend: str) -> None:
    cassette = load_cassette(SEVEN)
    server = g.cassette.ReplayServer([cassette], speed=0)

    async def main() -> list[str]:
        async with serve_cassettes([cassette], server=server) as url:
            return await play(url, cassette, server)

    texts = anyio.run(main, backend=backend)
    assert len(texts) == 7
    assert texts == anyio.run(expected, cassette)
    assert server.sessions == 1


def test_two_hundred_concurrent_sessions_never_cross() -> None:
    cassette = load_cassette(SEVEN)
    want = anyio.run(expected, cassette)
    steps = text_steps(cassette)
    clients = 200
    server = g.cassette.ReplayServer([cassette], speed=0)
    results: list[list[str]] = []

    async def one(url: str) -> None:
        texts = []
        async with AsyncClient(
            url,
            retry=REPLAY_RETRY,
            timeout=Timeout(30, 30, 120),
            clock=recorded_clock(cassette),
            trust_env=False,
        ) as client:
            for _, prompt, model in steps:
                texts.append(await client.chat(prompt, model=model))
        results.append(texts)

    async def main() -> None:
        async with (
            serve_cassettes([cassette], server=server) as url,
            anyio.create_task_group() as group,
        ):
            for _ in range(clients):
                group.start_soon(one, url)

    anyio.run(main)
    assert len(results) == clients
    assert all(texts == want for texts in results)
    assert server.sessions == clients
    assert server.mismatches() == []


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cassette recorded now (its login expires in an hour of real time,
    for the clients that read the real clock)."""
    cassette, _ = anyio.run(lambda: record_session(["Hello, how are you?"]))
    path = tmp_path_factory.mktemp("fresh") / "fresh.json"
    path.write_text(cassette.dumps(), encoding="utf-8")
    return path


def test_the_blocking_client_and_the_g4f_class(fresh: Path) -> None:
    want = anyio.run(expected, load_cassette(fresh))[0]
    with serve_cassettes_in_thread([fresh], speed=0) as url, Client(url, trust_env=False) as c:
        assert c.chat("Hello, how are you?") == want

    async def g4f(url: str) -> str:
        pieces = []
        async for piece in GPTalk.create_async_generator(
            "", [{"role": "user", "content": "Hello, how are you?"}], base_url=url
        ):
            pieces.append(piece)
        return "".join(pieces)

    with serve_cassettes_in_thread([fresh], speed=0, backend="trio") as url:
        assert anyio.run(g4f, url) == want


def _by_hand(url: str, cassette: g.cassette.Cassette) -> str:
    """The exchange driven with http.client, sending the recorded headers and
    bodies but the tokens the server handed out."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    tokens: dict[str, str] = {}
    text = ""
    try:
        for item in cassette.interactions:
            request = item.request
            target, body = request.target, request.body
            headers = [(n, v) for n, v in request.headers if n not in ("host", "content-length")]
            for old, new in tokens.items():
                target = target.replace(old, new)
                body = body.replace(old.encode(), new.encode())
                headers = [(n, v.replace(old, new)) for n, v in headers]
            conn.putrequest(request.method, target, skip_accept_encoding=True)
            for name, value in headers:
                conn.putheader(name, value)
            conn.putheader("content-length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            data = response.read()
            assert response.status == item.response.status, data
            if item.kind in ("login", "text"):
                recorded = json.loads(
                    g.parse_response if False else item.response.wire.split(b"\r\n\r\n", 1)[1]
                )
                tokens[recorded["data"]["token"]] = json.loads(data)["data"]["token"]
            elif item.kind == "stream":
                for line in data.decode().splitlines():
                    if line.startswith("data: {"):
                        # Each event holds the whole reply so far.
                        text = json.loads(line[6:]).get("content", text)
    finally:
        conn.close()
    return text


def test_http_client_by_hand() -> None:
    cassette = load_cassette(PLAIN)
    with serve_cassettes_in_thread([PLAIN], speed=0) as url:
        text = _by_hand(url, cassette)
    assert text == anyio.run(expected, cassette)[0]


def test_tokens_keep_the_placeholder_length_and_differ_per_session() -> None:
    cassette = load_cassette(PLAIN)
    login = cassette.interactions[0]
    server = g.cassette.ReplayServer([cassette], speed=0)
    request = (
        f"POST {login.request.target} HTTP/1.1\r\n".encode()
        + b"".join(f"{n}: {v}\r\n".encode() for n, v in login.request.headers)
        + b"\r\n"
        + login.request.body
    )
    answers = []
    for _ in range(2):
        actions = server.connection().receive_data(request)
        writes = [a for a in actions if isinstance(a, g.cassette.ReplayWrite)]
        assert [len(w.data) for w in writes] == [len(c.data) for c in login.response.chunks]
        answers.append(b"".join(w.data for w in writes))
    assert answers[0] != answers[1]
    assert b"<login-token" not in answers[0]
    assert server.sessions == 2


def replay_serving(*args: str) -> AbstractContextManager[tuple[subprocess.Popen[str], str]]:
    """``gptalk replay --serve ARGS``, once it listens: ``(process, url)``."""
    return listening("replay", "--serve", *args)


def _stop(process: subprocess.Popen[str], signum: int) -> tuple[int, str]:
    process.send_signal(signum)
    code = process.wait(timeout=15)
    assert process.stderr is not None
    return code, process.stderr.read()


def _wrong_login(url: str) -> tuple[int, Any]:
    """A login with an empty body, by http.client: (its status, its JSON body)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        conn.request(
            "POST",
            "/api/chatgpt/user/login",
            body=b"{}",
            headers={"content-type": "application/json"},
        )
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_cli_exits_1_listing_unplayed_steps_and_shows_mismatches(signum: int) -> None:
    with replay_serving("--speed", "0", str(PLAIN)) as (process, url):
        status, document = _wrong_login(url)
        assert status == g.cassette.MISMATCH_STATUS
        assert document["step"] == 1
        assert any(d.startswith("header user-agent") for d in document["differences"])
        assert any(d.startswith("body.fingerprint") for d in document["differences"])
        code, errors = _stop(process, signum)
    assert code == 1
    assert "header user-agent: recorded" in errors
    assert f"{PLAIN} step 1 (login)" in errors
    assert f"{PLAIN} step 3 (stream)" in errors


def test_cli_exits_0_once_everything_played_and_allow_unplayed() -> None:
    cassette = load_cassette(PLAIN)
    with replay_serving("--speed", "0", "--once", str(PLAIN)) as (process, url):
        _by_hand(url, cassette)
        code = process.wait(timeout=15)
        assert process.stderr is not None
        errors = process.stderr.read()
    assert code == 0, errors
    assert "unplayed" not in errors
    with replay_serving("--allow-unplayed", str(PLAIN)) as (process, _):
        code, errors = _stop(process, signal.SIGTERM)
    assert code == 0
    assert "unplayed: " in errors  # still listed, but not a failure


def test_cli_played_then_signal_exits_0() -> None:
    cassette = load_cassette(PLAIN)
    with replay_serving("--speed", "0", str(PLAIN)) as (process, url):
        _by_hand(url, cassette)
        code, errors = _stop(process, signal.SIGTERM)
    assert code == 0, errors


#: The gap the paced recording asks of the reference server between events.
PACE = 0.05


#: Recorded reads closer than this may reach a reader as one read or as two
#: (it may wake once for both); reads farther apart must stay apart.
BURST = 0.02


def _boundaries(item: g.cassette.Interaction) -> tuple[set[int], set[int]]:
    """(every recorded read's end offset, those followed by a gap >= BURST)."""
    every, apart = set(), set()
    at = 0
    chunks = item.response.chunks
    for number, chunk in enumerate(chunks):
        at += len(chunk.data)
        every.add(at)
        following = chunks[number + 1].t if number + 1 < len(chunks) else None
        if following is None or following - chunk.t >= BURST:
            apart.add(at)
    return every, apart


@pytest.fixture(scope="module")
def paced() -> g.cassette.Cassette:
    """A chat recorded with ``PACE`` s between events (``delay`` fault).  A
    busy machine may make the recording client read two events at once and
    the next one soon after: such a recording is made again (three tries)."""
    for _ in range(3):
        cassette, _ = anyio.run(
            lambda: record_session(["Hello, how are you?"], faults=[f"delay={PACE}"])
        )
        # Every event apart (the chunked body's last, empty chunk follows
        # [DONE] at once and joins it).
        if len(_boundaries(cassette.interactions[2])[1]) >= 20:
            return cassette
    pytest.fail(f"three recordings had events closer than {BURST} s")


def _raw_replay(cassette: g.cassette.Cassette) -> tuple[list[int], float]:
    """Play the cassette's steps to a raw socket at ``--speed 1``: the sizes of
    the stream's reads, and the seconds the stream took."""
    reads: list[int] = []
    lasted = 0.0
    with serve_cassettes_in_thread([cassette], speed=1.0) as url:
        parts = urlsplit(url)
        sock = socket.create_connection((parts.hostname or "", parts.port or 0), timeout=30)
        try:
            handed: dict[bytes, bytes] = {}
            for item in cassette.interactions:
                raw = (
                    f"{item.request.method} {item.request.target} HTTP/1.1\r\n".encode()
                    + b"".join(f"{n}: {v}\r\n".encode() for n, v in item.request.headers)
                    + b"\r\n"
                    + item.request.body
                )
                for old, new in handed.items():
                    raw = raw.replace(old, new)
                sock.sendall(raw)
                want = len(item.response.wire)
                got = b""
                sizes = []
                started = time.monotonic()
                while len(got) < want:
                    data = sock.recv(65536)
                    assert data, "closed early"
                    got += data
                    sizes.append(len(data))
                took = time.monotonic() - started
                if item.kind in ("login", "text"):
                    old = json.loads(item.response.wire.split(b"\r\n\r\n", 1)[1])["data"]["token"]
                    new = json.loads(got.split(b"\r\n\r\n", 1)[1])["data"]["token"]
                    handed[old.encode()] = new.encode()
                else:
                    reads, lasted = sizes, took
        finally:
            sock.close()
    return reads, lasted


#: Replays tried for the pace check: a busy machine may stall one replay
#: (it can only make a replay slower, never faster than recorded).
PACE_TRIES = 3


def test_raw_socket_reads_have_the_recorded_lengths_and_pace(paced: g.cassette.Cassette) -> None:
    cassette = paced
    stream = cassette.interactions[2]
    every, apart = _boundaries(stream)
    lasting = stream.response.chunks[-1].t - stream.request.t
    times = []
    for _ in range(PACE_TRIES):
        reads, lasted = _raw_replay(cassette)
        # Each read ends where a recorded read ended, and every recorded read
        # that had a gap >= 20 ms after it ends a read: the recorded
        # boundaries, on every try.
        ends = set(itertools.accumulate(reads))
        assert ends <= every
        assert apart <= ends
        assert len(apart) >= 20
        # Never faster than recorded (beyond 30 %): the waits are the server's.
        assert lasted >= 0.7 * lasting, (lasted, lasting)
        times.append(lasted)
        if lasted <= 1.3 * lasting:
            break
    # The recorded time, within 30 % (the one wall-clock check: >= 20 waits),
    # on one try of PACE_TRIES: load only ever adds time.
    assert min(times) <= 1.3 * lasting, (times, lasting)


@pytest.mark.parametrize("server_kind", ["replay", "proxy"])
def test_a_trickled_request_is_dropped_not_waited_for(server_kind: str) -> None:
    """A client that sends half a request head and stops loses its
    connection at the head deadline (not the idle timeout of 60 s)."""
    limits = Limits(
        header_timeout=0.5,
        request_timeout=1.0,
        min_rate=None,
        min_rate_grace=0.0,
        idle_timeout=60.0,
    )

    async def main() -> bytes:
        async with anyio.create_task_group() as group:
            if server_kind == "replay":
                server = g.cassette.ReplayServer([load_cassette(PLAIN)])
                url = await group.start(
                    lambda task_status: serve_replay(server, limits=limits, task_status=task_status)
                )
            else:
                recorder, connector = _recorder_for("http://127.0.0.1:1", None, False, True, False)
                url = await group.start(
                    lambda task_status: serve_proxy(
                        recorder, connector, limits=limits, task_status=task_status
                    )
                )
            parts = urlsplit(url)
            with anyio.fail_after(20):  # a safety net far past the 0.5 s deadline
                async with await anyio.connect_tcp(parts.hostname or "", parts.port or 0) as s:
                    await s.send(b"POST /api/chatgpt/user/login HTTP/1.1\r\nhost: x\r\n")
                    try:
                        rest = await s.receive()
                    except anyio.EndOfStream:
                        rest = b""
            group.cancel_scope.cancel()
        return rest

    assert anyio.run(main) == b""


def test_the_shared_accept_loop_contains_a_connections_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """serve_listener, under the replay server and the proxy: what one
    connection raises is logged and counted; the next is served."""
    stats = ServerStats()

    async def handler(stream: anyio.abc.ByteStream) -> None:
        if stats.accepted == 1:
            raise RuntimeError("a bug, with a secret: sk-123")
        await stream.send(b"served")

    async def main() -> bytes:
        async with anyio.create_task_group() as group:
            url = await group.start(
                lambda task_status: serve_listener(
                    handler,
                    host="127.0.0.1",
                    port=0,
                    max_connections=10,
                    stats=stats,
                    task_status=task_status,
                )
            )
            parts = urlsplit(url)
            answers = []
            for _ in range(2):
                async with await anyio.connect_tcp(parts.hostname or "", parts.port or 0) as s:
                    try:
                        answers.append(await s.receive())
                    except anyio.EndOfStream:
                        answers.append(b"")
            group.cancel_scope.cancel()
        return b"|".join(answers)

    with caplog.at_level("ERROR", logger=LOGGER_NAME):
        assert anyio.run(main) == b"|served"
    assert stats.internal_errors == 1
    assert stats.accepted == 2
    [line] = [r.getMessage() for r in caplog.records]
    assert "RuntimeError" in line
    assert "sk-123" not in line


def test_cli_shows_the_first_mismatches_only() -> None:
    # A client that loops on a wrong request (each a 409, then a close) must
    # not fill its runner's terminal: the first MAX_SHOWN_MISMATCHES are
    # shown, then a line saying later ones are not, as the recording proxy
    # notes its refusals (MAX_NOTED_REFUSALS).
    with replay_serving("--speed", "0", str(PLAIN)) as (process, url):
        for _ in range(MAX_SHOWN_MISMATCHES + 3):
            assert _wrong_login(url)[0] == g.cassette.MISMATCH_STATUS
        code, errors = _stop(process, signal.SIGTERM)
    assert code == 1
    assert errors.count("does not match the cassette") == MAX_SHOWN_MISMATCHES
    assert errors.count("further mismatches are not shown") == 1
