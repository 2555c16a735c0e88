"""A pytest plugin: GPTalk clients wired to cassettes.

Registered through the ``pytest11`` entry point, so installing gptalk-proto
is enough::

    @pytest.mark.gptalk_cassette("plain-chat.json")
    def test_hello(gptalk_client):
        assert gptalk_client.chat("Hello, how are you?").startswith("You said")

    @pytest.mark.gptalk_cassette("plain-chat.json")
    async def test_hello_async(gptalk_async_client):      # asyncio or trio
        assert (await gptalk_async_client.chat("Hello, how are you?"))

A relative cassette path is looked up in a ``cassettes`` folder beside the
test file; without the marker the cassette is ``cassettes/<test name>.json``.

``--gptalk-record-mode`` picks what happens, as VCR users know it:

* ``none`` (default): replay only; a missing cassette is an error.
* ``once``: replay if the cassette exists, else record it.
* ``new_episodes``: replay while the requests match, then record the rest and
  add it to the cassette.  The client runs on the cassette's recorded clock
  throughout, so the extended cassette replays with the same token decisions.
* ``all``: always record, replacing the cassette.

Recording talks to ``--gptalk-url``, or to the built-in reference server
(started for the test, with the marker's ``faults``).  After a test that
passed, replayed steps that were never reached fail it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gptalk_proto import Cassette, CassetteError, LocalProtocolError, check_secrets, redact

from ._anyio_backend import AnyioBackend
from ._async_client import AsyncClient
from ._cassettes import (
    AsyncRecordingConnector,
    AsyncReplayConnector,
    Recording,
    SyncRecordingConnector,
    SyncReplayConnector,
    load_cassette,
    save_cassette,
)
from ._config import Origin, make_ssl_context
from ._connector import AsyncConnector, SyncConnector
from ._episodes import AsyncEpisodeConnector, SyncEpisodeConnector
from ._refserver import serve_in_thread
from ._session import recorded_clock
from ._sync_client import Client

__all__ = ["CassetteSession"]

MODES = ("none", "once", "new_episodes", "all")
_OUTCOME = pytest.StashKey[pytest.TestReport]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gptalk", "GPTalk cassettes")
    group.addoption(
        "--gptalk-record-mode",
        choices=MODES,
        default="none",
        help="none (replay only, the default), once, new_episodes or all",
    )
    group.addoption(
        "--gptalk-url",
        default=None,
        help="the service to record from (default: the built-in reference server)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "gptalk_cassette(path, *, secrets=(), faults=(), max_events=None): the cassette the "
        "test's GPTalk client replays or records",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_OUTCOME] = report
    return report


class CassetteSession:
    """One test's cassette: where it is, the mode, and the connectors to use."""

    def __init__(
        self,
        path: Path,
        mode: str,
        *,
        url: str | None,
        secrets: tuple[str, ...] = (),
        faults: tuple[str, ...] = (),
        max_events: int | None = None,
    ) -> None:
        self.path = path
        self.mode = mode
        self._url = url
        self._secrets = secrets
        self._faults = faults
        self._max_events = max_events
        self._server: Any = None
        self.recording: Recording | None = None
        self.replay: AsyncReplayConnector | SyncReplayConnector | None = None
        self.existing: Cassette | None = None
        self.episodes: AsyncEpisodeConnector | SyncEpisodeConnector | None = None
        exists = path.exists()
        if mode == "none" and not exists:
            raise CassetteError(f"no cassette at {path}; record it with --gptalk-record-mode=once")
        if exists and mode in ("none", "once", "new_episodes"):
            self.existing = load_cassette(path)

    @property
    def replaying(self) -> bool:
        return self.existing is not None and self.mode in ("none", "once")

    def _live_url(self) -> str:
        if self._url is not None:
            return self._url
        if self._server is None:
            self._server = serve_in_thread(faults=self._faults)
            self._url = self._server.__enter__()
        assert self._url is not None
        return self._url

    def _new_recording(self) -> Recording:
        self.recording = Recording(self._live_url(), max_events=self._max_events)
        return self.recording

    def async_client(self, **kwargs: Any) -> AsyncClient:
        """An AsyncClient playing (or recording) this cassette."""
        if self.replaying:
            assert self.existing is not None
            connector = AsyncReplayConnector(self.existing)
            self.replay = connector
            kwargs.setdefault("clock", recorded_clock(self.existing))
            return AsyncClient(self.existing.origin, connector=connector, **kwargs)
        recording = self._new_recording()
        origin = Origin.parse(recording.recorder.origin)
        backend = AnyioBackend()
        inner = AsyncConnector(
            backend, origin, ssl_context=make_ssl_context(True) if origin.tls else None
        )
        if self.mode == "new_episodes" and self.existing is not None:
            episodes = AsyncEpisodeConnector(self.existing, inner, recording)
            self.episodes = episodes
            kwargs.setdefault("clock", recorded_clock(self.existing))
            kwargs.setdefault("max_idle_connections", 0)
            return AsyncClient(str(origin), connector=episodes, **kwargs)
        # No idle connections are kept: the fixture's client needs no closing,
        # each connection closes in the test's own event loop as its chat ends.
        kwargs.setdefault("max_idle_connections", 0)
        return AsyncClient(
            str(origin),
            connector=AsyncRecordingConnector(inner, recording),
            **kwargs,
        )

    def client(self, **kwargs: Any) -> Client:
        """A blocking Client playing (or recording) this cassette."""
        if self.replaying:
            assert self.existing is not None
            connector = SyncReplayConnector(self.existing)
            self.replay = connector
            kwargs.setdefault("clock", recorded_clock(self.existing))
            return Client(self.existing.origin, connector=connector, **kwargs)
        recording = self._new_recording()
        origin = Origin.parse(recording.recorder.origin)
        inner = SyncConnector(origin, ssl_context=make_ssl_context(True) if origin.tls else None)
        if self.mode == "new_episodes" and self.existing is not None:
            episodes = SyncEpisodeConnector(self.existing, inner, recording)
            self.episodes = episodes
            kwargs.setdefault("clock", recorded_clock(self.existing))
            return Client(str(origin), connector=episodes, **kwargs)
        return Client(str(origin), connector=SyncRecordingConnector(inner, recording), **kwargs)

    def finish(self, passed: bool) -> None:
        """Save what was recorded; check every replayed step was reached."""
        try:
            if self.episodes is not None:
                save_cassette(self.path, redact(self.episodes.cassette(), self._secrets))
            elif self.recording is not None:
                cassette = self.recording.cassette(redact=False)
                save_cassette(self.path, redact(cassette, self._secrets))
            elif self.replay is not None and passed:
                self.replay.assert_played()
        finally:
            if self._server is not None:
                self._server.__exit__(None, None, None)
                self._server = None


def _cassette_path(request: pytest.FixtureRequest, name: str | None) -> Path:
    base = Path(request.path).parent
    if name is None:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        return base / "cassettes" / f"{safe}.json"
    path = Path(name)
    return path if path.is_absolute() else base / "cassettes" / path


@pytest.fixture
def gptalk_cassette(request: pytest.FixtureRequest) -> Iterator[CassetteSession]:
    """The test's cassette session (see the plugin's docstring)."""
    marker = request.node.get_closest_marker("gptalk_cassette")
    args = marker.args if marker else ()
    kwargs = dict(marker.kwargs) if marker else {}
    try:
        secrets = check_secrets(kwargs.get("secrets", ()))
    except LocalProtocolError as error:
        # A usage error: one clear line, not the plugin's traceback.
        pytest.fail(f"gptalk_cassette marker: {error}", pytrace=False)
    session = CassetteSession(
        _cassette_path(request, args[0] if args else None),
        request.config.getoption("--gptalk-record-mode"),
        url=request.config.getoption("--gptalk-url"),
        secrets=secrets,
        faults=tuple(kwargs.get("faults", ())),
        max_events=kwargs.get("max_events"),
    )
    yield session
    report = request.node.stash.get(_OUTCOME, None)
    session.finish(passed=report is not None and report.passed)


@pytest.fixture
def gptalk_client(gptalk_cassette: CassetteSession) -> Iterator[Client]:
    """A blocking GPTalk Client wired to the test's cassette."""
    with gptalk_cassette.client() as client:
        yield client


@pytest.fixture
def gptalk_async_client(gptalk_cassette: CassetteSession) -> AsyncClient:
    """An AsyncClient wired to the test's cassette (asyncio or trio)."""
    return gptalk_cassette.async_client()
