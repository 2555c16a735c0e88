"""The bounded load run (``gptalk load``, ``run_load``): loopback only, stops
by itself, counts what it claims to count, and survives faults.

These tests check counts and termination, never speed: the figures a run
prints depend on the machine.
"""

from __future__ import annotations

import functools
import io
import itertools
import json
from typing import Any

import anyio
import pytest

import gptalk_proto as g
import gptalk_proto.server
from gptalk_transports._cli import load as _cli
from gptalk_transports._cli import main
from gptalk_transports._load import DEFAULT_DURATION, LoadReport, check_loopback, run_load
from gptalk_transports._server.refserver import serve_in_background, serve_in_thread

from .clients import ASYNC_KINDS

PROMPT = "Hello, how are you?"
# Events per chat: one per non-empty reply piece, and ChatDone.
EVENTS_PER_CHAT = (
    len([piece for piece in g.server.default_reply(PROMPT, g.DEFAULT_MODEL) if piece]) + 1
)
ASYNC = ["asyncio", "anyio-asyncio", "anyio-trio", "trio"]


def load(kind: str, **kwargs: object) -> LoadReport:
    backend, loop = ASYNC_KINDS[kind]
    run = functools.partial(run_load, prompt=PROMPT, backend=backend, **kwargs)  # type: ignore[arg-type]
    result: LoadReport = anyio.run(run, backend=loop)
    return result


@pytest.mark.parametrize("kind", ASYNC)
def test_counts_add_up(kind: str) -> None:
    report = load(kind, chats=40, concurrency=4, duration=60)
    assert (report.chats, report.failed, report.errors) == (40, 0, {})
    # A login token serves five chats; logins are single-flight.
    assert report.logins == 8
    assert report.requests == 2 * 40 + report.logins
    assert report.events == 40 * EVENTS_PER_CHAT
    assert report.connections <= 4
    assert len(report.chat_times) == 40
    assert 0 < report.percentile(0.5) <= report.percentile(0.99) <= report.seconds
    figures = report.as_dict()
    assert figures["requests_per_second"] > 0
    assert figures["events_per_second"] > figures["requests_per_second"]


def test_stops_by_itself_after_the_duration() -> None:
    """A clock that moves 0.1 s at every look, so a busy machine changes
    nothing: looks 1 to 4 fall before the 0.5 s deadline, the fifth does not."""
    ticks = itertools.count()
    report = load("asyncio", duration=0.5, concurrency=3, clock=lambda: next(ticks) / 10)
    # Chats that started before the deadline finish; none starts after it.
    assert 0 < report.chats <= 4
    assert report.failed == 0


def test_chats_alone_bound_the_run_by_count_whatever_the_clock() -> None:
    """A clock that jumps 100 s at every look: a duration would stop the run
    after the first chat; ``chats`` alone runs them all."""
    ticks = iter(range(0, 10**9, 100))
    report = load("asyncio", chats=5, duration=None, concurrency=2, clock=lambda: next(ticks))
    assert (report.chats, report.failed) == (5, 0)
    timed = load("asyncio", chats=5, duration=150, concurrency=1, clock=lambda: next(ticks))
    assert timed.chats == 1  # the same clock does stop a run that has a duration


def test_failures_are_counted_not_raised() -> None:
    async def run() -> LoadReport:
        async with serve_in_background(faults=["cut=2"]) as url:
            return await run_load(url, chats=12, concurrency=3, prompt=PROMPT)

    report = anyio.run(run)
    assert (report.chats, report.failed) == (12, 12)
    assert report.errors == {"StreamInterrupted": 12}
    assert report.chat_times == ()
    assert "12 x StreamInterrupted" in report.format()


def test_a_separate_server_on_loopback() -> None:
    with serve_in_thread() as url:
        report = load("asyncio", url=url.replace("127.0.0.1", "localhost"), chats=10)
    assert (report.chats, report.failed) == (10, 0)


@pytest.mark.parametrize(
    "url", ["http://example.com", "http://10.0.0.1:80", "https://[2001:db8::1]"]
)
def test_only_loopback_targets(url: str) -> None:
    with pytest.raises(g.LocalProtocolError, match="loopback"):
        check_loopback(url)
    with pytest.raises(g.LocalProtocolError, match="loopback"):
        load("asyncio", url=url, chats=1)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:1", "http://127.9.9.9", "http://[::1]:8", "http://localhost"]
)
def test_loopback_addresses_pass(url: str) -> None:
    check_loopback(url)


@pytest.mark.parametrize(
    "kwargs",
    [{"concurrency": 0}, {"duration": 0}, {"duration": 10**6}, {"chats": 0}, {"duration": None}],
)
def test_bad_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(g.LocalProtocolError):
        load("asyncio", **kwargs)


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        code = main(list(argv), stdout=out, stderr=err)
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def test_cli_reports_json() -> None:
    code, out, err = run_cli("load", "--chats", "10", "--concurrency", "2", "--json")
    assert code == 0, err
    figures = json.loads(out)
    assert (figures["chats"], figures["failed"], figures["logins"]) == (10, 0, 2)
    assert figures["requests"] == 22
    assert figures["events"] == 10 * EVENTS_PER_CHAT
    assert "built-in reference server" in err


def test_cli_chats_alone_set_no_duration(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--chats N`` runs N chats however slow the machine is; with neither
    option the run lasts the default duration."""
    seen: list[tuple[float | None, int | None]] = []

    async def fake_run_load(url: object, **kwargs: Any) -> LoadReport:
        seen.append((kwargs["duration"], kwargs["chats"]))
        return LoadReport(1.0, 1, 0, 0, 0, 0, 0, 0, {}, ())

    monkeypatch.setattr(_cli, "run_load", fake_run_load)
    for argv in (["--chats", "3"], [], ["--duration", "2"], ["--chats", "3", "--duration", "2"]):
        assert run_cli("load", *argv)[0] == 0
    assert seen == [(None, 3), (DEFAULT_DURATION, None), (2.0, None), (2.0, 3)]


def test_cli_reports_text_and_fails_on_failed_chats() -> None:
    # Bounded by count: each chat retries its 500s with backoff, so a
    # loaded machine once finished 2 chats in the default 3 s.
    with serve_in_thread(faults=["status=500@stream"]) as url:
        code, out, err = run_cli("load", "--url", url, "--chats", "3", "--concurrency", "1")
    assert code == 1
    assert "3 chats in" in out
    assert "3 failed" in out
    assert "3 x HTTPStatusError" in out
    assert "requests:" in out
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--url", "http://192.0.2.1"], "loopback"),
        (["--concurrency", "0"], "positive"),
        (["--chats", "x"], "whole number"),
        (["--duration", "-1"], "positive"),
    ],
)
def test_cli_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli("load", *argv)
    err += capsys.readouterr().err  # argparse writes its own errors to sys.stderr
    assert code == 2
    assert message in err
    assert "Traceback" not in err
