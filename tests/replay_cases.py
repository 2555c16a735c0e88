"""Helpers for the replay tests (test_replay_playback, test_replay_matching,
test_cassette_har_and_commands): the shipped cassettes, the anyio backends, and
a fake clock with a connector that watches when each byte is delivered."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_transports._async.replay import AsyncReplayConnector
from gptalk_transports._backends.base import AsyncByteStream
from gptalk_transports._cassettes import load_cassette
from gptalk_transports._handshake import RequestOptions

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"
SHIPPED = sorted(p for p in CASSETTES.glob("*.json") if p.name != "cassette.schema.json")

shipped = pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])

#: The shipped GPTalk cassettes: the ones our client replays (the generic
#: ones, recorded from the official SDKs, replay to them in test_profiles_sdks).
CLIENT_SHIPPED = [p for p in SHIPPED if load_cassette(p).profile == "gptalk"]
client_shipped = pytest.mark.parametrize(
    "path", CLIENT_SHIPPED, ids=[p.stem for p in CLIENT_SHIPPED]
)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@functools.cache
def cassette_at(path: Path) -> g.cassette.Cassette:
    return load_cassette(path)


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
