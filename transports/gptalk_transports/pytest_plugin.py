"""A pytest plugin: GPTalk clients wired to cassettes.

Registered through the ``pytest11`` entry point, so installing gptalk-proto
is enough::

    @pytest.mark.gptalk_cassette("plain-chat.json")
    def test_hello(gptalk_client):
        assert gptalk_client.chat("Hello, how are you?").startswith("Hello! You said")

    @pytest.mark.gptalk_cassette("plain-chat.json")
    async def test_hello_async(gptalk_async_client):      # asyncio or trio
        assert (await gptalk_async_client.chat("Hello, how are you?"))

As with pytest-recording, each test module has its own cassette folder, the
``gptalk_cassette_dir`` fixture: ``cassettes/<test module>/`` beside the test
file (the ``gptalk_cassette_dir`` ini option moves the base folder).  The
marker names a file inside that folder (a path that leaves it is refused at
collection); without a name the cassette is ``<test name>.json``, the test's
name made a file's (``default_cassette_name``: one name, one file; tests
whose names still meet are refused at collection).

``--gptalk-record-mode`` (or ``record_mode`` in ``gptalk_config`` or the
marker) picks what happens, as pytest-recording users know it:

* ``none`` (default): replay only; a missing cassette is an error.
* ``once``: replay if the cassette exists, else record it.
* ``new_episodes``: replay the recorded episodes that match, record the
  rest and add it after them.  Logins go live (a replayed one would hand
  the client a placeholder token for its new chats); the client runs on the
  cassette's recorded clock throughout, so the extended cassette replays
  with the same token decisions.
* ``all``: record every chat, replay none, and add them after the recorded
  episodes.
* ``rewrite``: record every chat and replace the cassette.

Tests may share a cassette: each replays its own chats whatever login it
makes (``_episodes.py``), and the tests of one run record a shared cassette
together: ``once`` goes on recording one this run created (as
``new_episodes``), ``rewrite`` adds to one this run replaced
(``_plugin/save.py``'s ``WrittenThisRun``).

Only ``rewrite`` drops what was recorded, and only a test that passed
writes its cassette (a failed one leaves the file as it was).  A replay plays *episodes* (a
login, or a chat with its retries and stream: see ``_episodes.py``) in any
subset; after a test that passed, the unplayed steps of the episodes it began
fail it (``allow_unplayed=True`` switches that off).

Recording talks to ``--gptalk-url``, or to the built-in reference server
(started for the test, with the ``faults`` setting).  A cassette error is
reported as its message and field differences, without the library's frames.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import gptalk_proto
from gptalk_proto.cassette import Cassette, CassetteError

from ._async.cassette_client import cassette_client as async_cassette_client
from ._async.client import AsyncClient
from ._cassettes import CassetteFileError, Recording, load_cassette
from ._episodes import EpisodeReplayer, used_logins
from ._plugin.outcome import OUTCOME
from ._plugin.save import RUN_LOG, WrittenThisRun, save_recording
from ._plugin.settings import (
    MODES,
    Settings,
    cassette_name_problem,
    default_cassette_name,
    inside,
    settings_problems,
    shared_default_names,
    url_problem,
)
from ._server.refserver import serve_in_thread
from ._session import recorded_clock
from ._sync.cassette_client import cassette_client as sync_cassette_client
from ._sync.client import Client

__all__ = ["CassetteSession", "Settings"]

#: Where the library's own frames live: hidden from cassette failures.
_OURS = (
    str(Path(gptalk_proto.__file__ or "").resolve().parent),
    str(Path(__file__).resolve().parent),
)

#: The cassettes this run wrote (see ``WrittenThisRun``), on the config.
WRITTEN = pytest.StashKey[WrittenThisRun]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gptalk", "GPTalk cassettes")
    group.addoption(
        "--gptalk-record-mode",
        choices=MODES,
        default=None,
        help="none (replay only, the default), once, new_episodes, all or rewrite; "
        "wins over record_mode in gptalk_config and markers",
    )
    group.addoption(
        "--gptalk-url",
        default=None,
        help="the service to record from (default: the built-in reference server)",
    )
    parser.addini(
        "gptalk_cassette_dir",
        "the base cassette folder (relative to the ini file); each test module gets "
        "<base>/<module>/ (default: cassettes/<module>/ beside the test file)",
        default="",
    )


def pytest_configure(config: pytest.Config) -> None:
    url = config.getoption("--gptalk-url")
    problem = None if url is None else url_problem(url)
    if problem is not None:
        # Once, before any test: not every recording test's setup error.
        raise pytest.UsageError(f"--gptalk-url: {problem}")
    # A pytest-xdist worker gets the run's log from the controller (see
    # WrittenThisRun and pytest_configure_node).
    log = getattr(config, "workerinput", {}).get(RUN_LOG)
    config.stash[WRITTEN] = WrittenThisRun(None if log is None else Path(log))
    config.addinivalue_line(
        "markers",
        "gptalk_cassette([path], *, record_mode, secrets, faults, max_events, "
        "allow_unplayed, ignore_headers, ignore_fields): the cassette the test's GPTalk "
        "client replays or records, a file in the gptalk_cassette_dir folder",
    )


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist's hook: the log of the cassettes the run's workers write."""
    written = node.config.stash[WRITTEN]
    if written.log is None:
        written.log = Path(tempfile.gettempdir()) / f"gptalk-cassettes-{uuid.uuid4().hex}"
    node.workerinput[RUN_LOG] = str(written.log)


def pytest_unconfigure(config: pytest.Config) -> None:
    written = config.stash.get(WRITTEN, None)
    if written is not None and written.log is not None and not hasattr(config, "workerinput"):
        written.log.unlink(missing_ok=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse, before any test runs, markers that name cassettes outside the
    cassette folder or settings that do not exist, and tests whose default
    cassette names are one file."""
    problems = []
    defaults = []
    for item in items:
        marker = item.get_closest_marker("gptalk_cassette")
        if not (marker and marker.args) and "gptalk_cassette" in getattr(item, "fixturenames", ()):
            defaults.append((item.nodeid, item.path, item.name))
        if marker is None:
            continue
        where = f"{item.nodeid}: gptalk_cassette"
        if len(marker.args) > 1:
            problems.append(f"{where}: one cassette path at most, not {len(marker.args)}")
        if marker.args:
            problem = cassette_name_problem(marker.args[0])
            if problem is not None:
                problems.append(f"{where}: {problem}")
        problems += settings_problems(marker.kwargs, where)
    problems += shared_default_names(defaults)
    if problems:
        raise pytest.UsageError("\n".join(problems))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[OUTCOME] = report
    excinfo = call.excinfo
    if (
        report.failed
        and excinfo is not None
        and isinstance(excinfo.value, CassetteError)
        and not item.config.getoption("fulltrace", False)
    ):
        report.longrepr = _short_failure(item, excinfo, report.when)
    return report


def _short_failure(
    item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException], when: str
) -> Any:
    """A cassette failure as the test's own frames and the error's message
    (with the differing fields): the library's frames say nothing to a test
    author.  ``--full-trace`` shows them all."""
    # The error's context is the library's own: no "during handling" chain.
    excinfo.value.__suppress_context__ = True
    entries = list(excinfo.traceback)
    # From the test module's first frame on (pytest's and the event loop's
    # frames come before it), without the library's own frames.
    starts = [n for n, entry in enumerate(entries) if Path(entry.path) == item.path]
    kept = [entry for entry in entries[starts[0] if starts else 0 :] if not _ours(entry)]
    if not starts or not kept:
        # Raised by the plugin itself (setup, teardown): the message says it all.
        return excinfo.getrepr(style="value", chain=False)
    excinfo.traceback = excinfo.traceback.filter(lambda entry: entry in kept)
    style = item.config.getoption("tbstyle", "auto")
    return excinfo.getrepr(
        style="long" if style == "auto" else style,
        funcargs=True,
        tbfilter=True,
        chain=False,
        showlocals=item.config.getoption("showlocals", False),
    )


def _ours(entry: Any) -> bool:
    return str(entry.path).startswith(_OURS)


class CassetteSession:
    """One test's cassette: where it is, the settings, and the connectors."""

    def __init__(
        self,
        path: Path,
        settings: Settings,
        *,
        url: str | None,
        written: WrittenThisRun | None = None,
    ) -> None:
        self.path = path
        #: The cassettes this run wrote (None: the session's mode as it is).
        self.written = written
        if written is not None:
            # Tests of this run recording one cassette together (see
            # WrittenThisRun): once records on, rewrite adds.
            mode = written.mode_at_setup(path, settings.record_mode)
            settings = replace(settings, record_mode=mode)
        self.settings = settings
        self.mode = settings.record_mode
        self._url = url
        self._server: Any = None
        self.recording: Recording | None = None
        self.replayer: EpisodeReplayer | None = None
        self.existing: Cassette | None = None
        try:
            exists = path.exists()
        except OSError as exc:  # a name too long, a loop of links
            raise CassetteFileError(
                f"{path}: cannot read the cassette: {exc.strerror or exc}"
            ) from None
        if self.mode == "none" and not exists:
            raise CassetteError(f"no cassette at {path}; record it with --gptalk-record-mode=once")
        if exists and self.mode != "rewrite":
            self.existing = load_cassette(path)

    @property
    def replaying(self) -> bool:
        """Whether the test only replays (no live request at all)."""
        return self.existing is not None and self.mode in ("none", "once")

    def _live_url(self) -> str:
        if self._url is not None:
            return self._url
        if self._server is None:
            self._server = serve_in_thread(faults=self.settings.faults)
            self._url = self._server.__enter__()
        assert self._url is not None
        return self._url

    def _new_recording(self) -> Recording:
        self.recording = Recording(self._live_url(), max_events=self.settings.max_events)
        return self.recording

    def _wired(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        # Replayed requests carry the time of the recording (token expiry).
        if self.existing is not None and (self.replaying or self.mode == "new_episodes"):
            kwargs.setdefault("clock", recorded_clock(self.existing))
        return {
            "replaying": self.replaying,
            "new_episodes": self.mode == "new_episodes",
            "matching": self.settings.matching,
            "new_recording": self._new_recording,
            **kwargs,
        }

    def async_client(self, **kwargs: Any) -> AsyncClient:
        """An AsyncClient playing (or recording) this cassette."""
        if not self.replaying:
            # No idle connections are kept: the fixture's client needs no
            # closing, each connection closes in the test's own event loop as
            # its chat ends.
            kwargs.setdefault("max_idle_connections", 0)
        client, replayer = async_cassette_client(
            self.existing, backend="anyio", **self._wired(kwargs)
        )
        self.replayer = replayer or self.replayer
        return client

    def client(self, **kwargs: Any) -> Client:
        """A blocking Client playing (or recording) this cassette."""
        client, replayer = sync_cassette_client(
            self.existing, backend="sync", **self._wired(kwargs)
        )
        self.replayer = replayer or self.replayer
        return client

    def finish(self, passed: bool) -> None:
        """Save what was recorded; check the episodes begun were played out.

        Only a test that passed writes: a failed one (the service down, an
        error the test did not expect) recorded what went wrong, which would
        replace the cassette (rewrite), add broken episodes to it (all,
        new_episodes) or be replayed by the next run as if it were the
        service (once)."""
        try:
            if passed and self.recording is not None:
                recorded = self.recording.cassette(redact=False)
                if self.mode == "new_episodes":
                    # Its logins went live; those that served replayed chats
                    # only are no new episodes.
                    recorded = used_logins(recorded)
                save_recording(self.path, recorded, self.mode, self.settings.secrets, self.written)
            if self.replayer is not None and passed and not self.settings.allow_unplayed:
                self.replayer.assert_played()
        finally:
            if self._server is not None:
                self._server.__exit__(None, None, None)
                self._server = None


@pytest.fixture(scope="module")
def gptalk_cassette_dir(request: pytest.FixtureRequest) -> Path:
    """The test module's cassette folder: ``<base>/<module name>/``, where the
    base is the ``gptalk_cassette_dir`` ini option (relative to the ini file)
    or ``cassettes`` beside the test file.  Override it to move a module's
    cassettes, as pytest-recording's ``vcr_cassette_dir``."""
    base = str(request.config.getini("gptalk_cassette_dir"))
    module = Path(request.path)
    if base:
        config = request.config
        anchor = config.inipath.parent if config.inipath is not None else config.rootpath
        root = anchor / base
    else:
        root = module.parent / "cassettes"
    return root / module.stem


@pytest.fixture(scope="module")
def gptalk_config() -> dict[str, Any]:
    """Settings for every cassette in scope, overridden in a conftest or a
    module, as pytest-recording's ``vcr_config``.  Keys: record_mode, secrets,
    faults, max_events, allow_unplayed, ignore_headers, ignore_fields; a
    marker's keyword arguments win over them."""
    return {}


def _cassette_path(request: pytest.FixtureRequest, folder: Path, name: str | None) -> Path:
    if name is None:
        name = default_cassette_name(request.node.name)
    path = folder / name
    if not inside(folder, path):
        # Checked at collection already; a symbolic link may still lead out.
        pytest.fail(f"the cassette {path} is outside the cassette folder {folder}", pytrace=False)
    return path


@pytest.fixture
def gptalk_cassette(
    request: pytest.FixtureRequest, gptalk_cassette_dir: Path, gptalk_config: dict[str, Any]
) -> Iterator[CassetteSession]:
    """The test's cassette session (see the plugin's docstring)."""
    marker = request.node.get_closest_marker("gptalk_cassette")
    args = marker.args if marker else ()
    kwargs = dict(marker.kwargs) if marker else {}
    problems = settings_problems(gptalk_config, "gptalk_config")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
    settings = Settings.merge(
        gptalk_config, kwargs, cli_mode=request.config.getoption("--gptalk-record-mode")
    )
    path = _cassette_path(request, Path(gptalk_cassette_dir), args[0] if args else None)
    session = CassetteSession(
        path,
        settings,
        url=request.config.getoption("--gptalk-url"),
        written=request.config.stash[WRITTEN],
    )
    yield session
    report = request.node.stash.get(OUTCOME, None)
    session.finish(passed=report is not None and report.passed)


@pytest.fixture
def gptalk_client(gptalk_cassette: CassetteSession) -> Iterator[Client]:
    """A blocking GPTalk Client wired to the test's cassette."""
    with gptalk_cassette.client() as client:
        yield client


@pytest.fixture
def gptalk_async_client(gptalk_cassette: CassetteSession) -> AsyncClient:
    """An AsyncClient wired to the test's cassette (asyncio, or trio under
    anyio's pytest plugin or pytest-trio)."""
    return gptalk_cassette.async_client()


# The fixture for clients that are not ours (its own module: it needs the
# replay server and the recording proxy).
from ._plugin.replay_server import gptalk_replay_server  # noqa: E402, F401
