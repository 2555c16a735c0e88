"""Replay: every shipped cassette through the real clients, offline, on asyncio,
trio and blocking sockets; re-chunking, timing, mismatches, bindings, HAR and
the cassette commands."""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import re
import socket
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import gptalk_proto as g
from gptalk_proto._cassette import parse_response
from gptalk_transports import AsyncClient, Client, RetryPolicy, Timeout
from gptalk_transports._cassettes import (
    AsyncReplayConnector,
    ReplayTiming,
    SyncReplayConnector,
    load_cassette,
)
from gptalk_transports._connector import RequestOptions
from gptalk_transports._session import recorded_clock, replay_session, text_steps
from gptalk_transports._streams import AsyncByteStream

from .clients import open_fds

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"
SHIPPED = sorted(p for p in CASSETTES.glob("*.json") if p.name != "cassette.schema.json")
SMALL = [p for p in SHIPPED if p.stem != "long-reply"]
GPTALK = Path(sys.executable).with_name("gptalk")
ENV = {**os.environ, "PYTHONIOENCODING": "utf-8"}

shipped = pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])

Outcome = tuple[str, str, type | None]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@functools.cache
def cassette_at(path: Path) -> g.Cassette:
    return load_cassette(path)


def expected_outcomes(cassette: g.Cassette) -> list[Outcome]:
    """What the cassette's own events say each chat ended with: per event
    stream, the prompt of the text request before it, the last ``content``
    before ``[DONE]``, and StreamInterrupted when ``[DONE]`` never came."""
    out: list[Outcome] = []
    prompt = ""
    for item in cassette.interactions:
        if item.kind == "text":
            prompt = item.request.json()["content"]
        if item.kind != "stream" or not item.response.events:
            continue
        text, done = "", False
        for event in item.response.events:
            if event.event != "message":
                continue
            if event.data == "[DONE]":
                done = True
                break
            content = json.loads(event.data).get("content")
            if isinstance(content, str):
                text = content
        out.append((prompt, text, None if done else g.StreamInterrupted))
    return out


def outcomes(results: list[Any]) -> list[Outcome]:
    return [(r.prompt, r.text, None if r.error is None else type(r.error)) for r in results]


def blocking_replay(cassette: g.Cassette, **options: Any) -> list[Outcome]:
    """The cassette's chats through the blocking Client, one per prompt of its
    text requests (a retried request is the same chat)."""
    connector = SyncReplayConnector(cassette, **options)
    steps = text_steps(cassette)
    out: list[Outcome] = []
    with Client(
        cassette.origin,
        connector=connector,
        clock=recorded_clock(cassette),
        retry=RetryPolicy(backoff=0.0),
    ) as client:
        while True:
            played = connector.replayer.played
            upcoming = [(prompt, model) for index, prompt, model in steps if index >= played]
            if not upcoming:
                break
            prompt, model = upcoming[0]
            try:
                with client.events(prompt, model=model) as events:
                    for _ in events:
                        pass
                out.append((prompt, events.text, None))
            except g.CassetteError:
                raise
            except g.GPTalkError as error:
                out.append((prompt, getattr(error, "text", ""), type(error)))
    connector.assert_played()
    return out


# -- every shipped cassette, on every client -------------------------------------------------


def test_expected_outcomes_cover_the_scenarios() -> None:
    cut = expected_outcomes(cassette_at(CASSETTES / "cut-mid-event.json"))
    assert cut == [
        ("Tell me a long story", "You said: “Tell me a long story”. ", g.StreamInterrupted)
    ]
    assert len(expected_outcomes(cassette_at(CASSETTES / "seven-chats.json"))) == 7
    assert len(expected_outcomes(cassette_at(CASSETTES / "expired-token.json"))) == 2
    plain = expected_outcomes(cassette_at(CASSETTES / "plain-chat.json"))
    assert plain == [("Hello, how are you?", g.expected_reply("Hello, how are you?"), None)]


@pytest.mark.anyio
@shipped
async def test_shipped_cassette_replays_async(path: Path) -> None:
    cassette = cassette_at(path)
    results = await replay_session(cassette)
    assert outcomes(results) == expected_outcomes(cassette)


def test_replay_on_trio_native_streams() -> None:
    cassette = cassette_at(CASSETTES / "expired-token.json")
    results = anyio.run(functools.partial(replay_session, cassette, backend="trio"), backend="trio")
    assert outcomes(results) == expected_outcomes(cassette)


@shipped
def test_shipped_cassette_replays_blocking(path: Path) -> None:
    cassette = cassette_at(path)
    assert blocking_replay(cassette) == expected_outcomes(cassette)


# -- offline -------------------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to connect or resolve fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("replay touched the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    # The guard works:
    probe = socket.socket()
    try:
        with pytest.raises(AssertionError):
            probe.connect(("127.0.0.1", 9))
    finally:
        probe.close()


@pytest.mark.anyio
@pytest.mark.usefixtures("no_network")
async def test_async_replay_opens_no_socket() -> None:
    before = open_fds()
    for path in SMALL:
        cassette = cassette_at(path)
        assert outcomes(await replay_session(cassette)) == expected_outcomes(cassette)
    assert open_fds() == before


@pytest.mark.usefixtures("no_network")
def test_blocking_replay_opens_no_socket() -> None:
    before = open_fds()
    for path in SMALL:
        cassette = cassette_at(path)
        assert blocking_replay(cassette) == expected_outcomes(cassette)
    assert open_fds() == before


# -- re-chunking -------------------------------------------------------------------------------


@functools.cache
def as_recorded(path: Path) -> tuple[list[Any], list[Outcome]]:
    return replay_events(path, "recorded", "asyncio")


def replay_events(path: Path, rechunk: str | int, backend: str) -> tuple[list[Any], list[Outcome]]:
    events: list[Any] = []
    results = anyio.run(
        functools.partial(
            replay_session, cassette_at(path), rechunk=rechunk, on_event=events.append
        ),
        backend=backend,
    )
    return events, outcomes(results)


@pytest.mark.parametrize("path", SMALL, ids=[p.stem for p in SMALL])
@settings(max_examples=10, deadline=None)
@given(rechunk=st.integers(), backend=st.sampled_from(["asyncio", "trio"]))
@example(rechunk="bytes", backend="asyncio")
@example(rechunk="bytes", backend="trio")
def test_rechunked_replay_gives_the_same_chats(
    path: Path, rechunk: str | int, backend: str
) -> None:
    assert replay_events(path, rechunk, backend) == as_recorded(path)


@settings(max_examples=3, deadline=None)
@given(rechunk=st.integers(), backend=st.sampled_from(["asyncio", "trio"]))
def test_rechunked_long_reply_gives_the_same_chat(rechunk: int, backend: str) -> None:
    # Single bytes of its 700 KB take seconds; ``gptalk cassette verify`` does that.
    path = CASSETTES / "long-reply.json"
    assert replay_events(path, rechunk, backend) == as_recorded(path)


@shipped
def test_rechunked_blocking_replay_gives_the_same_chats(path: Path) -> None:
    cassette = cassette_at(path)
    assert blocking_replay(cassette, rechunk=12345) == expected_outcomes(cassette)


def test_rechunk_must_be_recorded_bytes_or_a_seed() -> None:
    cassette = cassette_at(CASSETTES / "plain-chat.json")
    for bad in ("random", True, 1.5):
        with pytest.raises(ValueError, match="rechunk"):
            AsyncReplayConnector(cassette, rechunk=bad)  # type: ignore[arg-type]


# -- timing ------------------------------------------------------------------------------------


class FakeClock:
    """Time that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.time = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += seconds


class WatchedConnector:
    """A replay connector that notes when each step was matched and when each
    byte was handed to the client, on the replay's clock."""

    def __init__(self, inner: AsyncReplayConnector, clock: FakeClock) -> None:
        self.inner = inner
        self.clock = clock
        self.matched: dict[int, float] = {}
        self.received: list[tuple[float, bytes]] = []
        self.sent: list[bytes] = []

    @property
    def request_options(self) -> RequestOptions:
        return self.inner.request_options

    async def connect(self, timeout: float | None) -> AsyncByteStream:
        return _WatchedStream(await self.inner.connect(timeout), self)


class _WatchedStream:
    def __init__(self, inner: AsyncByteStream, watch: WatchedConnector) -> None:
        self._inner = inner
        self._watch = watch

    async def send_all(self, data: bytes, timeout: float | None) -> None:
        replayer = self._watch.inner.replayer
        before = replayer.played
        self._watch.sent.append(data)
        await self._inner.send_all(data, timeout)
        for step in range(before, replayer.played):
            self._watch.matched[step] = self._watch.clock.now()

    async def receive_some(self, max_bytes: int, timeout: float | None) -> bytes:
        data = await self._inner.receive_some(max_bytes, timeout)
        if data:
            self._watch.received.append((self._watch.clock.now(), data))
        return data

    async def start_tls(
        self, context: Any, server_hostname: str, timeout: float | None
    ) -> AsyncByteStream:
        return await self._inner.start_tls(context, server_hostname, timeout)

    def is_readable(self) -> bool:
        return self._inner.is_readable()

    async def aclose(self) -> None:
        await self._inner.aclose()


async def timed_replay(cassette: g.Cassette, timing: ReplayTiming | None) -> WatchedConnector:
    clock = FakeClock()
    watch = WatchedConnector(AsyncReplayConnector(cassette, timing=timing, clock=clock), clock)
    async with AsyncClient(
        cassette.origin,
        connector=watch,
        retry=RetryPolicy(backoff=0.0),
        timeout=Timeout(None, None, None),
        clock=recorded_clock(cassette),
    ) as client:
        for _, prompt, model in text_steps(cassette):
            if watch.inner.replayer.unplayed():
                with contextlib.suppress(g.StreamInterrupted):
                    await client.chat(prompt, model=model)
    watch.inner.assert_played()
    return watch


def deliveries(cassette: g.Cassette, watch: WatchedConnector) -> list[tuple[int, float, float]]:
    """(step, delivered at, recorded at) of every chunk's first byte."""
    wire = b"".join(item.response.wire for item in cassette.interactions)
    assert b"".join(data for _, data in watch.received) == wire
    starts: list[tuple[int, float]] = []  # (offset in the whole wire, time)
    offset = 0
    for when, data in watch.received:
        starts.append((offset, when))
        offset += len(data)
    out = []
    offset = 0
    index = 0
    for step, item in enumerate(cassette.interactions):
        for chunk in item.response.chunks:
            while index + 1 < len(starts) and starts[index + 1][0] <= offset:
                index += 1
            out.append((step, starts[index][1], chunk.t))
            offset += len(chunk.data)
    return out


TIMED = ["plain-chat", "503-then-retry", "cut-mid-event", "expired-token"]


@pytest.mark.anyio
@pytest.mark.parametrize("name", TIMED)
@pytest.mark.parametrize("speed", [1.0, 2.0])
async def test_replay_as_recorded_keeps_the_recorded_offsets(name: str, speed: float) -> None:
    cassette = cassette_at(CASSETTES / f"{name}.json")
    watch = await timed_replay(cassette, ReplayTiming(speed=speed))
    assert watch.clock.sleeps, "as recorded, replay waits"
    assert set(watch.matched) == set(range(len(cassette.interactions)))
    for step, delivered, recorded in deliveries(cassette, watch):
        request_t = cassette.interactions[step].request.t
        assert delivered - watch.matched[step] == pytest.approx(
            (recorded - request_t) / speed, abs=1e-6
        )
    # The whole replay took the recorded response times, scaled.
    total = sum(
        item.response.chunks[-1].t - item.request.t
        for item in cassette.interactions
        if item.response.chunks
    )
    assert watch.clock.time == pytest.approx(total / speed, abs=1e-6)


@pytest.mark.anyio
async def test_max_gap_caps_every_wait() -> None:
    cassette = cassette_at(CASSETTES / "seven-chats.json")
    cap = 0.0002
    watch = await timed_replay(cassette, ReplayTiming(speed=1.0, max_gap=cap))
    assert watch.clock.sleeps
    assert max(watch.clock.sleeps) <= cap + 1e-12
    uncapped = [
        chunk.t - (item.response.chunks[n - 1].t if n else item.request.t)
        for item in cassette.interactions
        for n, chunk in enumerate(item.response.chunks)
    ]
    assert max(uncapped) > cap, "precondition: some recorded gap is longer than the cap"
    expected_total = sum(min(max(gap, 0.0), cap) for gap in uncapped)
    assert watch.clock.time == pytest.approx(expected_total, abs=1e-6)
    for step, delivered, recorded in deliveries(cassette, watch):
        request_t = cassette.interactions[step].request.t
        assert delivered - watch.matched[step] <= recorded - request_t + 1e-9


@pytest.mark.anyio
@pytest.mark.parametrize("name", ["plain-chat", "seven-chats", "cut-mid-event"])
async def test_default_timing_never_sleeps(name: str) -> None:
    cassette = cassette_at(CASSETTES / f"{name}.json")
    watch = await timed_replay(cassette, None)
    assert watch.clock.sleeps == []
    assert watch.clock.time == 0.0
    assert {when for when, _ in watch.received} == {0.0}


def test_timing_rejects_a_speed_of_zero() -> None:
    with pytest.raises(ValueError, match="speed"):
        ReplayTiming(speed=0)


# -- mismatches ---------------------------------------------------------------------------------


def replay_client(cassette: g.Cassette) -> tuple[Client, SyncReplayConnector]:
    connector = SyncReplayConnector(cassette)
    client = Client(
        cassette.origin,
        connector=connector,
        clock=recorded_clock(cassette),
        retry=RetryPolicy(backoff=0.0),
    )
    return client, connector


@pytest.mark.anyio
async def test_a_different_prompt_is_a_mismatch_at_step_2() -> None:
    cassette = cassette_at(CASSETTES / "plain-chat.json")
    connector = AsyncReplayConnector(cassette)
    async with AsyncClient(
        cassette.origin, connector=connector, clock=recorded_clock(cassette)
    ) as client:
        with pytest.raises(g.CassetteMismatch) as info:
            await client.chat("Goodbye, how were you?")
    error = info.value
    assert error.step == 1
    message = str(error)
    assert message.startswith("request 2 does not match the cassette")
    expected = "body.content: recorded '\"Hello, how are you?\"', sent '\"Goodbye, how were you?\"'"
    assert expected in message
    assert [d for d in error.differences if not d.startswith("body.content")] == []
    assert connector.replayer.played == 1


def test_a_different_model_is_a_mismatch_naming_body_model() -> None:
    client, _ = replay_client(cassette_at(CASSETTES / "plain-chat.json"))
    with client, pytest.raises(g.CassetteMismatch) as info:
        client.chat("Hello, how are you?", model="gpt-4")
    assert info.value.step == 1
    assert "request 2" in str(info.value)
    assert info.value.differences == ["body.model: recorded '\"gpt-3.5-turbo\"', sent '\"gpt-4\"'"]


def test_more_chats_than_recorded_is_a_mismatch() -> None:
    client, connector = replay_client(cassette_at(CASSETTES / "plain-chat.json"))
    with client:
        client.chat("Hello, how are you?")
        connector.assert_played()
        with pytest.raises(g.CassetteMismatch, match="no more steps") as info:
            client.chat("Hello, how are you?")
    assert info.value.step == 3
    assert "request 4" in str(info.value)


def test_stopping_early_leaves_steps_unplayed() -> None:
    cassette = cassette_at(CASSETTES / "seven-chats.json")
    client, connector = replay_client(cassette)
    with client:
        assert client.chat("Question number 1") == g.expected_reply("Question number 1")
    with pytest.raises(g.CassetteUnplayed) as info:
        connector.assert_played()
    kinds = [item.kind for item in cassette.interactions]
    assert info.value.steps == [(n, kinds[n]) for n in range(3, len(kinds))]
    message = str(info.value)
    assert "4 (text), 5 (stream)" in message
    assert "12 (login)" in message
    assert message.endswith("16 (stream) were never reached")


def test_a_request_header_difference_is_named() -> None:
    cassette = cassette_at(CASSETTES / "plain-chat.json")
    connector = SyncReplayConnector(cassette)
    with (
        Client(
            cassette.origin,
            connector=connector,
            clock=recorded_clock(cassette),
            headers={"x-extra": "1"},
        ) as client,
        pytest.raises(g.CassetteMismatch) as info,
    ):
        client.chat("Hello, how are you?")
    assert info.value.step == 0
    assert info.value.differences == ["header x-extra: not recorded, sent '1'"]


# -- bindings ---------------------------------------------------------------------------------

FINGERPRINT = re.compile(rb'"fingerprint":\s*"([^"]*)"')


@pytest.mark.anyio
@pytest.mark.parametrize("name", ["plain-chat", "seven-chats", "expired-token", "quota-then-retry"])
async def test_the_login_fingerprint_is_a_binding(name: str) -> None:
    cassette = cassette_at(CASSETTES / f"{name}.json")
    clock = FakeClock()
    watch = WatchedConnector(AsyncReplayConnector(cassette, clock=clock), clock)
    async with AsyncClient(
        cassette.origin, connector=watch, clock=recorded_clock(cassette)
    ) as client:
        for _, prompt, model in text_steps(cassette):
            if watch.inner.replayer.unplayed():
                await client.chat(prompt, model=model)
    watch.inner.assert_played()
    recorded = [
        item.request.json()["fingerprint"] for item in cassette.interactions if item.kind == "login"
    ]
    replayed = [m.decode() for m in FINGERPRINT.findall(b"".join(watch.sent))]
    assert len(replayed) == len(recorded) >= 1
    for old, new in zip(recorded, replayed, strict=True):
        assert old.startswith("<fingerprint-")
        assert re.fullmatch("[0-9a-f]{32}", new)
        assert new != old
    # A fresh fingerprint per login, each bound to its own recorded placeholder.
    assert len(set(replayed)) == len(replayed)
    assert len(set(recorded)) == len(recorded)


def _login_body(fingerprint: str) -> bytes:
    return json.dumps({"fingerprint": fingerprint, "platform": "fingerprint"}).encode()


def test_a_binding_holds_for_the_whole_replay() -> None:
    plain = cassette_at(CASSETTES / "plain-chat.json")
    login = plain.interactions[0]
    # A cassette in which one recorded fingerprint logs in twice.
    twice = g.Cassette((login, login), plain.recorded_at, plain.origin)
    headers = list(login.request.headers)
    replayer = g.Replayer(twice)
    path = login.request.target
    replayer.match("POST", path, headers, _login_body("a" * 32))
    with pytest.raises(g.CassetteMismatch) as info:
        replayer.match("POST", path, headers, _login_body("b" * 32))
    assert info.value.step == 1
    assert info.value.differences == ["body.fingerprint: bound to an earlier value, sent another"]
    # The same value again is fine; a failed match binds nothing.
    replayer.match("POST", path, headers, _login_body("a" * 32))
    assert replayer.unplayed() == []


# -- HAR ------------------------------------------------------------------------------------------


def _chunk_bytes(entry: dict[str, Any]) -> bytes:
    if entry.get("encoding") == "base64":
        return base64.b64decode(entry["text"])
    return str(entry["text"]).encode("utf-8")


@shipped
def test_har_export_has_the_har_1_2_shape(path: Path) -> None:
    cassette = cassette_at(path)
    har = g.to_har(cassette)
    json.dumps(har)  # JSON-ready
    log = har["log"]
    assert log["version"] == "1.2"
    assert log["creator"] == {"name": "gptalk-proto", "version": g.__version__}
    assert isinstance(log["pages"], list)
    assert len(log["entries"]) == len(cassette.interactions)
    start = datetime.fromisoformat(cassette.recorded_at.replace("Z", "+00:00"))
    previous = start
    for item, entry in zip(cassette.interactions, log["entries"], strict=True):
        when = datetime.fromisoformat(entry["startedDateTime"].replace("Z", "+00:00"))
        assert when.tzinfo is not None
        assert when >= previous
        assert abs((when - start).total_seconds() - item.request.t) < 0.001
        previous = when
        request, response = entry["request"], entry["response"]
        for key in ("method", "url", "httpVersion", "cookies", "headers", "queryString"):
            assert key in request
        assert request["method"] == item.request.method
        assert request["url"] == cassette.origin.rstrip("/") + item.request.target
        assert request["headers"] == [{"name": n, "value": v} for n, v in item.request.headers]
        assert request["bodySize"] == len(item.request.body)
        assert ("postData" in request) == bool(item.request.body)
        for key in ("status", "statusText", "httpVersion", "cookies", "headers", "content"):
            assert key in response
        assert response["redirectURL"] == ""
        assert response["status"] == item.response.status
        assert response["headers"] == [{"name": n, "value": v} for n, v in item.response.headers]
        _, _, body, _ = parse_response(item.request.method, item.response.wire)
        assert response["content"]["size"] == len(body)
        assert response["content"]["text"] == body.decode("utf-8")
        timings = entry["timings"]
        assert {"send", "wait", "receive"} <= set(timings)
        assert all(timings[key] >= 0 for key in ("send", "wait", "receive"))
        assert entry["time"] == pytest.approx(
            timings["send"] + timings["wait"] + timings["receive"], abs=0.01
        )
        assert entry["connection"] == str(item.connection)
        assert entry["_end"] == item.response.end
        # The extension fields carry the chunks and events, consistent with the cassette.
        chunks = entry["_chunks"]
        assert [c["size"] for c in chunks] == [len(c.data) for c in item.response.chunks]
        assert [_chunk_bytes(c) for c in chunks] == [c.data for c in item.response.chunks]
        for har_chunk, chunk in zip(chunks, item.response.chunks, strict=True):
            assert har_chunk["offset_ms"] == pytest.approx(
                (chunk.t - item.request.t) * 1000, abs=0.001
            )
        assert entry["_events"] == [event._asdict() for event in item.response.events]


def gptalk(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GPTALK), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=ENV,
        timeout=timeout,
        check=False,
    )


def test_to_har_command_writes_the_same_json(tmp_path: Path) -> None:
    path = CASSETTES / "503-then-retry.json"
    out = tmp_path / "out.har"
    done = gptalk("cassette", "to-har", str(path), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text(encoding="utf-8")) == g.to_har(load_cassette(path))
    printed = gptalk("cassette", "to-har", str(path))
    assert printed.returncode == 0
    assert json.loads(printed.stdout) == g.to_har(load_cassette(path))


# -- the cassette commands ------------------------------------------------------------------------


def test_verify_command_passes_every_shipped_cassette() -> None:
    done = gptalk("cassette", "verify", *map(str, SHIPPED), timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    for path in SHIPPED:
        assert re.search(rf"^{re.escape(str(path))}: ok \(", done.stdout, re.M), done.stdout


def test_verify_command_fails_a_tampered_cassette(tmp_path: Path) -> None:
    raw = json.loads((CASSETTES / "plain-chat.json").read_text(encoding="utf-8"))
    event = raw["interactions"][2]["events"][5]
    event["data"] = event["data"].replace("oscar", "OSCAR")
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    good = CASSETTES / "plain-chat.json"
    done = gptalk("cassette", "verify", str(good), str(tampered))
    assert done.returncode == 1
    assert f"{good}: ok" in done.stdout
    assert f"{tampered}: FAILED: interactions[2].events" in done.stdout


def test_replay_command_prints_the_recorded_reply() -> None:
    done = gptalk("replay", str(CASSETTES / "plain-chat.json"), "--speed", "0")
    assert done.returncode == 0, done.stderr
    assert done.stdout == g.expected_reply("Hello, how are you?") + "\n"


def test_record_command_then_verify_and_lint(tmp_path: Path) -> None:
    out = tmp_path / "hi.json"
    done = gptalk("record", "-o", str(out), "hi")
    assert done.returncode == 0, done.stderr
    assert done.stdout == g.expected_reply("hi") + "\n"
    assert "recorded 3 exchanges" in done.stderr
    verified = gptalk("cassette", "verify", str(out))
    assert verified.returncode == 0, verified.stdout
    assert "1 chats" in verified.stdout
    linted = gptalk("cassette", "lint", str(out))
    assert linted.returncode == 0, linted.stdout
    cassette = load_cassette(out)
    assert cassette.redacted
    assert [item.kind for item in cassette.interactions] == ["login", "text", "stream"]


def test_record_command_stops_a_stream_at_max_events(tmp_path: Path) -> None:
    out = tmp_path / "three.json"
    done = gptalk("record", "--max-events", "3", "-o", str(out), "hi")
    assert done.returncode == 0, done.stderr
    assert "gptalk: chat 'hi' ended with: the reply stream" in done.stderr
    cassette = load_cassette(out)
    stream = cassette.interactions[-1]
    assert stream.kind == "stream"
    assert stream.response.end == "stopped"
    assert len(stream.response.events) == 3
    verified = gptalk("cassette", "verify", str(out))
    assert verified.returncode == 0, verified.stdout
    results = anyio.run(replay_session, cassette)
    assert [type(r.error) for r in results] == [g.StreamInterrupted]


def test_max_events_cuts_exactly_inside_one_read() -> None:
    """Ten events in one read, a limit of three: the session keeps exactly the
    bytes up to the third event's end, and they parse to three events."""
    recorder = g.Recorder("http://x", max_events=3)
    number = recorder.open_connection()
    recorder.sent(
        number, b"GET /api/chatgpt/chatapi/stream?token=a HTTP/1.1\r\nhost: x\r\n\r\n", 0.0
    )
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    events = [b'data: {"content": "%d"}\n\n' % i for i in range(10)]
    data = head + b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events)
    keep = recorder.received(number, data, 0.1)
    assert recorder.should_stop(number)
    assert 0 < keep < len(data)
    _, _, _, parsed = g._cassette.parse_response("GET", data[:keep])
    assert [e.data for e in parsed] == ['{"content": "0"}', '{"content": "1"}', '{"content": "2"}']
