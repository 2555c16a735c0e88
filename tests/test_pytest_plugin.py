"""The pytest plugin, as its users run it: inner test files in a pytest of their
own (``pytester``, in subprocesses), in each record mode."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import gptalk_proto as g
import gptalk_proto.cassette
import gptalk_proto.server
from gptalk_transports._cassettes import load_cassette
from gptalk_transports.pytest_plugin import CassetteSession, Settings

from .plugin_cases import (
    CASSETTES,
    NOWHERE,
    assert_good_cassette,
    copy_shipped,
    folder,
    make_inner,
    plain_chat_recorded_at,
    prompts,
    run,
)

pytest_plugins = ("pytester",)


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    return make_inner(pytester)


# -- mode none ----------------------------------------------------------------------------------

NONE_TESTS = """
import pytest

import gptalk_proto as g
import gptalk_proto.cassette
import gptalk_proto.server
from gptalk_transports import RetryPolicy

PROMPT = "Hello, how are you?"


@pytest.mark.gptalk_cassette("plain-chat.json")
def test_blocking(gptalk_client):
    assert gptalk_client.chat(PROMPT) == g.server.expected_reply(PROMPT)


@pytest.mark.anyio
@pytest.mark.gptalk_cassette("plain-chat.json")
async def test_async(gptalk_async_client):
    async with gptalk_async_client as client:
        assert await client.chat(PROMPT) == g.server.expected_reply(PROMPT)


@pytest.mark.gptalk_cassette("missing.json")
def test_missing(gptalk_client):
    raise AssertionError("never reached")


@pytest.mark.gptalk_cassette("seven-chats.json")
def test_some_of_the_chats(gptalk_client):
    # Whole episodes (the login, chats 1 and 3), so nothing is left unplayed.
    for number in (1, 3):
        assert gptalk_client.chat(f"Question number {number}")


def _gives_up(gptalk_cassette):
    # The recording client retried after the 503; this one does not, so the
    # chat it began leaves the retry and the stream unplayed.
    with gptalk_cassette.client(retry=RetryPolicy(retries=0)) as client:
        with pytest.raises(g.GPTalkError):
            client.chat("Are you there?")


@pytest.mark.gptalk_cassette("503-then-retry.json")
def test_leaves_a_chat_unfinished(gptalk_cassette):
    _gives_up(gptalk_cassette)


@pytest.mark.gptalk_cassette("503-then-retry.json", allow_unplayed=True)
def test_leaves_a_chat_unfinished_as_allowed(gptalk_cassette):
    _gives_up(gptalk_cassette)


@pytest.mark.gptalk_cassette("503-then-retry.json")
def test_leaves_a_chat_unfinished_and_fails_by_itself(gptalk_cassette):
    _gives_up(gptalk_cassette)
    raise AssertionError("the test's own failure")
"""


def test_mode_none_replays_and_checks_the_episodes_begun(inner: pytest.Pytester) -> None:
    for name in ("plain-chat.json", "seven-chats.json", "503-then-retry.json"):
        copy_shipped(inner, name, "test_none")
    before = {p.name: p.read_bytes() for p in folder(inner, "test_none").iterdir()}
    inner.makepyfile(test_none=NONE_TESTS)
    result = run(inner, "none", "--gptalk-url", NOWHERE)
    # blocking, async on asyncio and trio, the subset of chats, the test that
    # left a chat unfinished (at call) and its allowed twin pass; the missing
    # cassette errors at setup, the unfinished chat at teardown; the test that
    # failed by itself is just failed.
    result.assert_outcomes(passed=6, failed=1, errors=2)
    result.stdout.fnmatch_lines(
        ["no cassette at *test_none/missing.json; record it with --gptalk-record-mode=once"]
    )
    # (In CI, pytest does not cut its short summary lines: those are left out.)
    unplayed = [
        line
        for line in result.outlines
        if "were never reached" in line and not line.startswith(("ERROR ", "FAILED "))
    ]
    assert unplayed == ["the cassette's steps 3 (text), 4 (stream) were never reached"]
    result.stdout.fnmatch_lines(
        [
            "ERROR test_none.py::test_missing - gptalk_proto.cassette.CassetteError*",
            "ERROR test_none.py::test_leaves_a_chat_unfinished - gptalk_proto.cassette.Cas*",
            "FAILED test_none.py::test_leaves_a_chat_unfinished_and_fails_by_itself - *",
        ]
    )
    result.stdout.no_fnmatch_line("ERROR *_as_allowed*")
    result.stdout.no_fnmatch_line("ERROR *_and_fails_by_itself*")
    result.stdout.no_fnmatch_line("ERROR *test_some_of_the_chats*")
    # Replay wrote nothing.
    assert {p.name: p.read_bytes() for p in folder(inner, "test_none").iterdir()} == before


# -- mode once ----------------------------------------------------------------------------------

ONCE_TESTS = """
import pytest

import gptalk_proto as g
import gptalk_proto.cassette
import gptalk_proto.server


@pytest.mark.gptalk_cassette("recorded.json")
def test_blocking(gptalk_client):
    for prompt in ("Record me", "And me"):
        assert gptalk_client.chat(prompt) == g.server.expected_reply(prompt)


@pytest.mark.anyio
async def test_async(gptalk_async_client):
    async with gptalk_async_client as client:
        assert await client.chat("Async me") == g.server.expected_reply("Async me")
"""


def test_mode_once_records_then_replays(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_once=ONCE_TESTS)
    first = run(inner, "once")
    first.assert_outcomes(passed=3)
    where = folder(inner, "test_once")
    names = ["recorded.json", "test_async_asyncio_.json", "test_async_trio_.json"]
    assert sorted(p.name for p in where.iterdir()) == names
    assert sorted(p.name for p in (inner.path / "cassettes").iterdir()) == ["test_once"]
    recorded = {name: (where / name).read_bytes() for name in names}
    blocking = assert_good_cassette(where / "recorded.json")
    assert [item.kind for item in blocking.interactions] == [
        "login",
        "text",
        "stream",
        "text",
        "stream",
    ]
    assert prompts(blocking) == ["Record me", "And me"]
    for name in names[1:]:
        cassette = assert_good_cassette(where / name)
        assert [item.kind for item in cassette.interactions] == ["login", "text", "stream"]
    # The second run replays: no server needed (nothing listens at NOWHERE),
    # and the cassettes stay as they were.
    second = run(inner, "once", "--gptalk-url", NOWHERE)
    second.assert_outcomes(passed=3)
    assert {name: (where / name).read_bytes() for name in names} == recorded


DOCUMENTED_ASYNC = """
import gc

import pytest


@pytest.mark.anyio
async def test_hello_async(gptalk_async_client):
    # As the plugin's docstring shows it: no ``async with``.
    assert await gptalk_async_client.chat("Hello, how are you?")


def test_after():
    gc.collect()
"""


def test_documented_async_usage_leaves_no_socket_open(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_documented=DOCUMENTED_ASYNC)
    result = run(inner, "once")
    result.stdout.no_fnmatch_line("*ResourceWarning: unclosed <socket*")
    result.assert_outcomes(passed=3)


# -- modes all and rewrite ----------------------------------------------------------------------

RECORD_OVER_TESTS = """
import pytest

import gptalk_proto as g
import gptalk_proto.cassette
import gptalk_proto.server


@pytest.mark.gptalk_cassette("plain-chat.json")
def test_blocking(gptalk_client):
    assert gptalk_client.chat("Something new") == g.server.expected_reply("Something new")
"""


def test_mode_rewrite_replaces_the_cassette(inner: pytest.Pytester) -> None:
    target = copy_shipped(inner, "plain-chat.json", "test_rewrite")
    inner.makepyfile(test_rewrite=RECORD_OVER_TESTS)
    result = run(inner, "rewrite")
    result.assert_outcomes(passed=1)
    cassette = assert_good_cassette(target)
    shipped = load_cassette(CASSETTES / "plain-chat.json")
    assert cassette.origin != shipped.origin
    assert cassette.meta == {}
    assert [item.kind for item in cassette.interactions] == ["login", "text", "stream"]
    assert prompts(cassette) == ["Something new"]


def test_mode_all_records_every_chat_and_keeps_the_recorded_ones(inner: pytest.Pytester) -> None:
    # As vcrpy's "all": every request goes to the service, none is replayed
    # (the prompt the cassette has is recorded again), and what the cassette
    # had stays in it, before the new steps.
    target = copy_shipped(inner, "plain-chat.json", "test_all")
    shipped = load_cassette(target)
    inner.makepyfile(test_all=RECORD_OVER_TESTS.replace("Something new", "Hello, how are you?"))
    result = run(inner, "all")
    result.assert_outcomes(passed=1)
    # (Not one session any more: two clients' logins, so no whole-session
    # replay as ``cassette verify`` does; the plugin plays its episodes.)
    cassette = load_cassette(target)
    assert cassette.redacted
    assert g.cassette.lint(cassette) == []
    assert cassette.interactions[:3] == shipped.interactions
    assert [item.kind for item in cassette.interactions[3:]] == ["login", "text", "stream"]
    assert prompts(cassette) == ["Hello, how are you?", "Hello, how are you?"]
    # Both recordings replay: the test uses the first, whole.
    again = run(inner, "none", "--gptalk-url", NOWHERE)
    again.assert_outcomes(passed=1)


FAILING_RECORDINGS = """
import http.client
from urllib.parse import urlsplit

import pytest


@pytest.mark.gptalk_cassette("down.json")
def test_service_down(gptalk_client):
    gptalk_client.chat("Is anyone there?")


@pytest.mark.gptalk_cassette("down-any-client.json")
def test_service_down_any_client(gptalk_replay_server):
    url = urlsplit(gptalk_replay_server)
    connection = http.client.HTTPConnection(url.hostname, url.port)
    connection.request("POST", "/api/chatgpt/user/login", body=b"{}")
    assert connection.getresponse().status == 200
"""


@pytest.mark.parametrize("mode", ["once", "new_episodes", "all", "rewrite"])
def test_a_test_that_fails_while_recording_writes_no_cassette(
    inner: pytest.Pytester, mode: str
) -> None:
    # The service is down: the tests fail, and what was on disk stays as it
    # was (rewrite would have emptied it); "once" writes no empty cassette
    # that the next run would replay.
    inner.makepyfile(test_failing=FAILING_RECORDINGS)
    names = ("down.json", "down-any-client.json")
    if mode != "once":
        for name in names:
            copy_shipped(inner, "plain-chat.json", "test_failing", as_name=name)
    result = run(inner, mode, "--gptalk-url", NOWHERE)
    result.assert_outcomes(failed=2)
    where = folder(inner, "test_failing")
    if mode == "once":
        assert sorted(where.iterdir()) == []
    else:
        shipped = (CASSETTES / "plain-chat.json").read_bytes()
        assert sorted(path.name for path in where.iterdir()) == sorted(names)
        for name in names:
            assert (where / name).read_bytes() == shipped


@pytest.mark.parametrize("mode", ["all", "new_episodes"])
def test_adding_to_a_cassette_keeps_what_another_worker_added(tmp_path: Path, mode: str) -> None:
    # Tests sharing a cassette on two pytest-xdist workers: the other worker
    # saved its episodes while this test ran; this test's save adds its own
    # after them instead of writing over them what it loaded at setup.
    path = tmp_path / "shared.json"
    path.write_bytes((CASSETTES / "plain-chat.json").read_bytes())
    session = CassetteSession(path, Settings(record_mode=mode), url=None)
    with session.client() as client:
        assert client.chat("Something new") == g.server.expected_reply("Something new")
    theirs = load_cassette(CASSETTES / "seven-chats.json")
    path.write_bytes((CASSETTES / "seven-chats.json").read_bytes())
    session.finish(passed=True)
    cassette = load_cassette(path)
    assert cassette.interactions[: len(theirs.interactions)] == theirs.interactions
    added = prompts(cassette)[len(prompts(theirs)) :]
    assert added == ["Something new"]


SHARED_ON_WORKERS = """
import pytest

import gptalk_proto as g
import gptalk_proto.cassette
import gptalk_proto.server


@pytest.mark.parametrize("number", range(12))
@pytest.mark.gptalk_cassette("shared.json")
def test_shared(gptalk_client, number):
    prompt = f"Question {number}"
    assert gptalk_client.chat(prompt) == g.server.expected_reply(prompt)
"""


def test_tests_sharing_a_cassette_on_xdist_workers_all_add_to_it(inner: pytest.Pytester) -> None:
    # Two workers add to one cassette at once: no save fails, none is lost.
    inner.makepyfile(test_workers=SHARED_ON_WORKERS)
    run(inner, "all", "-n", "2").assert_outcomes(passed=12)
    cassette = load_cassette(folder(inner, "test_workers") / "shared.json")
    assert sorted(prompts(cassette)) == sorted(f"Question {number}" for number in range(12))
    assert sorted(path.name for path in folder(inner, "test_workers").iterdir()) == ["shared.json"]


# -- mode new_episodes -----------------------------------------------------------------------

EPISODE_TESTS = """
import pytest

import gptalk_proto as g
import gptalk_proto.cassette
import gptalk_proto.server

PROMPTS = ("Hello, how are you?", "And one more")


def test_blocking(gptalk_client):
    for prompt in PROMPTS:
        assert gptalk_client.chat(prompt) == g.server.expected_reply(prompt)


@pytest.mark.anyio
async def test_async(gptalk_async_client):
    async with gptalk_async_client as client:
        for prompt in PROMPTS:
            assert await client.chat(prompt) == g.server.expected_reply(prompt)
"""


def _check_extended(path: Path, original: g.cassette.Cassette) -> g.cassette.Cassette:
    cassette = load_cassette(path)
    assert cassette.redacted
    assert g.cassette.lint(cassette) == []
    kept = len(original.interactions)
    # The recorded steps, then the new chat's after the live login (no
    # request refused for a placeholder token: see _episodes.py).
    assert cassette.interactions[:kept] == original.interactions
    new = [item.kind for item in cassette.interactions[kept:]]
    assert new == ["login", "text", "stream"], new
    assert prompts(cassette)[-1] == "And one more"
    assert cassette.interactions[-1].response.end == "complete"
    times = [item.request.t for item in cassette.interactions]
    assert times == sorted(times)
    # A new login gets a new placeholder, never one the old steps use.
    login_tokens = [
        json.loads(item.response.wire.split(b"\r\n\r\n", 1)[1])["data"]["token"]
        for item in cassette.interactions
        if item.kind == "login"
    ]
    assert len(set(login_tokens)) == len(login_tokens) == 2
    return cassette


def test_mode_new_episodes_adds_the_new_chats(inner: pytest.Pytester) -> None:
    raw = plain_chat_recorded_at(time.time())
    where = folder(inner, "test_episodes")
    names = ["test_blocking.json", "test_async_asyncio_.json", "test_async_trio_.json"]
    for name in names:
        (where / name).write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    original = g.cassette.Cassette.loads(json.dumps(raw))
    inner.makepyfile(test_episodes=EPISODE_TESTS)
    result = run(inner, "new_episodes")
    result.assert_outcomes(passed=3)
    for name in names:
        _check_extended(where / name, original)
    # The extended cassettes replay, offline, with every step reached.
    again = run(inner, "none", "--gptalk-url", NOWHERE)
    again.assert_outcomes(passed=3)


def test_mode_new_episodes_on_a_cassette_recorded_days_ago(inner: pytest.Pytester) -> None:
    # The usual case: the cassette's login token expired long ago in real
    # time, though not in the cassette's recorded time.
    raw = plain_chat_recorded_at(time.time() - 3 * 86400)
    path = folder(inner, "test_episodes") / "test_blocking.json"
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    original = g.cassette.Cassette.loads(json.dumps(raw))
    inner.makepyfile(test_episodes=EPISODE_TESTS.split("@pytest.mark.anyio", maxsplit=1)[0])
    result = run(inner, "new_episodes")
    result.assert_outcomes(passed=1)
    _check_extended(path, original)
    again = run(inner, "none", "--gptalk-url", NOWHERE)
    again.assert_outcomes(passed=1)


CHANGING_TEST = """
import pytest

import gptalk_proto as g
import gptalk_proto.cassette
import gptalk_proto.server


@pytest.mark.gptalk_cassette("chats.json")
def test_chat(gptalk_client):
    assert gptalk_client.chat("PROMPT") == g.server.expected_reply("PROMPT")


@pytest.mark.anyio
@pytest.mark.gptalk_cassette("chats-async.json")
async def test_chat_async(gptalk_async_client, anyio_backend):
    if anyio_backend == "trio":
        pytest.skip("one backend records the shared cassette")
    async with gptalk_async_client as client:
        assert await client.chat("PROMPT") == g.server.expected_reply("PROMPT")
"""


def test_new_episodes_never_loses_what_was_recorded(inner: pytest.Pytester) -> None:
    # Record "alpha"; change the test to "gamma" and add its episodes: the
    # test as it was still replays, and so does the new one.
    def write(prompt: str) -> None:
        inner.makepyfile(test_change=CHANGING_TEST.replace("PROMPT", prompt))

    write("alpha")
    run(inner, "once").assert_outcomes(passed=2, skipped=1)
    where = folder(inner, "test_change")
    recorded = {name: load_cassette(where / name) for name in ("chats.json", "chats-async.json")}
    write("gamma")
    run(inner, "new_episodes").assert_outcomes(passed=2, skipped=1)
    for name, before in recorded.items():
        # (Two clients' logins, as after "all": no whole-session replay as
        # ``cassette verify`` does; the plugin plays its episodes, below.)
        cassette = load_cassette(where / name)
        assert cassette.redacted
        assert g.cassette.lint(cassette) == []
        assert cassette.interactions[: len(before.interactions)] == before.interactions
        assert prompts(cassette)[0] == "alpha"
        assert prompts(cassette)[-1] == "gamma"
    for prompt in ("alpha", "gamma", "alpha"):
        write(prompt)
        again = run(inner, "none", "--gptalk-url", NOWHERE)
        again.assert_outcomes(passed=2, skipped=1)
    # A prompt never recorded is a mismatch, in every replaying mode.
    write("delta")
    for mode in ("none", "once"):
        missed = run(inner, mode, "--gptalk-url", NOWHERE)
        missed.assert_outcomes(failed=2, skipped=1)
        missed.stdout.fnmatch_lines(["*body.content: recorded '\"alpha\"', sent '\"delta\"'"])
