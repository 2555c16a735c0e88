"""Every shipped cassette replayed offline on asyncio, trio and blocking; re-chunking, timing."""

from __future__ import annotations

import contextlib
import functools
import json
import socket
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import gptalk_proto as g
import gptalk_proto.cassette
import gptalk_proto.server
from gptalk_transports import AsyncClient, Client, RetryPolicy, Timeout
from gptalk_transports._async.replay import AsyncReplayConnector
from gptalk_transports._cassettes import ReplayTiming
from gptalk_transports._session import next_chat, recorded_clock, replay_session, text_steps
from gptalk_transports._sync.replay import SyncReplayConnector

from .clients import open_fds
from .replay_cases import (
    CASSETTES,
    CLIENT_SHIPPED,
    FakeClock,
    WatchedConnector,
    anyio_backend,  # noqa: F401 (a fixture: the anyio tests run on asyncio and trio)
    cassette_at,
    client_shipped,
)

SMALL = [p for p in CLIENT_SHIPPED if p.stem != "long-reply"]

Outcome = tuple[str, str, type | None]


def expected_outcomes(cassette: g.cassette.Cassette) -> list[Outcome]:
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


def blocking_replay(cassette: g.cassette.Cassette, **options: Any) -> list[Outcome]:
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
            upcoming = next_chat(steps, connector.replayer.played)
            if upcoming is None:
                break
            prompt, model = upcoming
            try:
                with client.events(prompt, model=model) as events:
                    for _ in events:
                        pass
                out.append((prompt, events.text, None))
            except g.cassette.CassetteError:
                raise
            except g.GPTalkError as error:
                out.append((prompt, getattr(error, "text", ""), type(error)))
    connector.assert_played()
    return out


# -- every shipped cassette, on every client -------------------------------------------------


def test_expected_outcomes_cover_the_scenarios() -> None:
    cut = expected_outcomes(cassette_at(CASSETTES / "cut-mid-event.json"))
    assert cut == [
        # cut=3: the text of the first three events, then the cut.
        ("Tell me a long story", "Hello! You said: ", g.StreamInterrupted)
    ]
    assert "".join(g.server.default_reply("Tell me a long story")[:3]) == "Hello! You said: "
    assert len(expected_outcomes(cassette_at(CASSETTES / "seven-chats.json"))) == 7
    assert len(expected_outcomes(cassette_at(CASSETTES / "expired-token.json"))) == 2
    plain = expected_outcomes(cassette_at(CASSETTES / "plain-chat.json"))
    assert plain == [("Hello, how are you?", g.server.expected_reply("Hello, how are you?"), None)]


@pytest.mark.anyio
@client_shipped
async def test_shipped_cassette_replays_async(path: Path) -> None:
    cassette = cassette_at(path)
    results = await replay_session(cassette)
    assert outcomes(results) == expected_outcomes(cassette)


def test_replay_on_trio_native_streams() -> None:
    cassette = cassette_at(CASSETTES / "expired-token.json")
    results = anyio.run(functools.partial(replay_session, cassette, backend="trio"), backend="trio")
    assert outcomes(results) == expected_outcomes(cassette)


@client_shipped
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


@client_shipped
def test_rechunked_blocking_replay_gives_the_same_chats(path: Path) -> None:
    cassette = cassette_at(path)
    assert blocking_replay(cassette, rechunk=12345) == expected_outcomes(cassette)


def test_rechunk_must_be_recorded_bytes_or_a_seed() -> None:
    cassette = cassette_at(CASSETTES / "plain-chat.json")
    for bad in ("random", True, 1.5):
        with pytest.raises(ValueError, match="rechunk"):
            AsyncReplayConnector(cassette, rechunk=bad)  # type: ignore[arg-type]


# -- timing ------------------------------------------------------------------------------------


async def timed_replay(
    cassette: g.cassette.Cassette, timing: ReplayTiming | None
) -> WatchedConnector:
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


def deliveries(
    cassette: g.cassette.Cassette, watch: WatchedConnector
) -> list[tuple[int, float, float]]:
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
