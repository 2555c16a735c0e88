"""The pytest plugin, as its users run it: inner test files in a pytest of their
own (``pytester``, in subprocesses), in each record mode."""

from __future__ import annotations

import json
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import gptalk_proto as g
from gptalk_transports._cassettes import load_cassette
from gptalk_transports._cli_cassette import verify_cassette

pytest_plugins = ("pytester",)

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"
#: Nothing listens here: a run given this URL proves it needed no server.
NOWHERE = "http://127.0.0.1:1"

CONFTEST = """
import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param
"""

INI = """
[pytest]
addopts = --strict-markers -ra
filterwarnings = error
"""


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester with the inner conftest (anyio on asyncio and trio)."""
    pytester.makeconftest(CONFTEST)
    pytester.makeini(INI)
    (pytester.path / "cassettes").mkdir()
    return pytester


def run(pytester: pytest.Pytester, mode: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--gptalk-record-mode={mode}", *args, timeout=120
    )


def copy_shipped(pytester: pytest.Pytester, name: str, as_name: str | None = None) -> Path:
    target = pytester.path / "cassettes" / (as_name or name)
    shutil.copyfile(CASSETTES / name, target)
    return target


def plain_chat_recorded_at(moment: float) -> dict[str, Any]:
    """plain-chat.json as if recorded at unix time ``moment`` (its login token
    expiring an hour later, as the service's tokens do)."""
    raw: dict[str, Any] = json.loads((CASSETTES / "plain-chat.json").read_text(encoding="utf-8"))
    login = load_cassette(CASSETTES / "plain-chat.json").interactions[0]
    old_expiry = str(json.loads(login.response.wire.split(b"\r\n\r\n", 1)[1])["data"]["expires_at"])
    new_expiry = str(int(moment) + 3600)
    assert len(new_expiry) == len(old_expiry)  # the Content-Length stays true
    chunk = raw["interactions"][0]["chunks"][0]
    chunk["data"] = chunk["data"].replace(old_expiry, new_expiry)
    raw["recorded_at"] = datetime.fromtimestamp(int(moment), timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    g.Cassette.loads(json.dumps(raw))  # still a valid cassette
    return raw


def assert_good_cassette(path: Path) -> g.Cassette:
    """It loads, verifies (re-parse and replays) and lints clean."""
    cassette, _ = verify_cassette(path)
    assert cassette.redacted
    assert g.lint(cassette) == []
    return cassette


# -- mode none ----------------------------------------------------------------------------------

NONE_TESTS = """
import pytest

import gptalk_proto as g

PROMPT = "Hello, how are you?"


@pytest.mark.gptalk_cassette("plain-chat.json")
def test_blocking(gptalk_client):
    assert gptalk_client.chat(PROMPT) == g.expected_reply(PROMPT)


@pytest.mark.anyio
@pytest.mark.gptalk_cassette("plain-chat.json")
async def test_async(gptalk_async_client):
    async with gptalk_async_client as client:
        assert await client.chat(PROMPT) == g.expected_reply(PROMPT)


@pytest.mark.gptalk_cassette("missing.json")
def test_missing(gptalk_client):
    raise AssertionError("never reached")


@pytest.mark.gptalk_cassette("seven-chats.json")
def test_fewer_chats(gptalk_client):
    assert gptalk_client.chat("Question number 1")


@pytest.mark.gptalk_cassette("seven-chats.json")
def test_fewer_chats_and_its_own_failure(gptalk_client):
    gptalk_client.chat("Question number 1")
    raise AssertionError("the test's own failure")
"""


def test_mode_none_replays_and_checks_every_step_was_reached(inner: pytest.Pytester) -> None:
    copy_shipped(inner, "plain-chat.json")
    copy_shipped(inner, "seven-chats.json")
    inner.makepyfile(test_none=NONE_TESTS)
    result = run(inner, "none", "--gptalk-url", NOWHERE)
    # blocking, async on asyncio and trio, and the test with fewer chats pass
    # their call; the missing cassette errors at setup, the unreached steps at
    # teardown; the test that failed by itself is just failed.
    result.assert_outcomes(passed=4, failed=1, errors=2)
    result.stdout.fnmatch_lines(
        [
            "E * gptalk_proto.CassetteError: no cassette at *missing.json; "
            "record it with --gptalk-record-mode=once",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "E * gptalk_proto.CassetteUnplayed: the cassette's steps 4 (text), 5 (stream), *"
            "16 (stream) were never reached",
        ]
    )
    unplayed = [
        line for line in result.outlines if line.startswith("E ") and "CassetteUnplayed:" in line
    ]
    assert len(unplayed) == 1, "only the test that passed is failed for unreached steps"
    result.stdout.fnmatch_lines(
        [
            "ERROR test_none.py::test_missing - gptalk_proto.CassetteError*",
            "ERROR test_none.py::test_fewer_chats - gptalk_proto.CassetteUnplayed*",
            "FAILED test_none.py::test_fewer_chats_and_its_own_failure - AssertionError*",
        ]
    )
    result.stdout.no_fnmatch_line("ERROR test_none.py::test_fewer_chats_and_its_own_failure*")
    result.stdout.no_fnmatch_line("ERROR test_none.py::test_blocking*")
    result.stdout.no_fnmatch_line("ERROR test_none.py::test_async*")
    # Replay wrote nothing.
    assert sorted(p.name for p in (inner.path / "cassettes").iterdir()) == [
        "plain-chat.json",
        "seven-chats.json",
    ]
    assert (inner.path / "cassettes" / "plain-chat.json").read_bytes() == (
        CASSETTES / "plain-chat.json"
    ).read_bytes()


# -- mode once ----------------------------------------------------------------------------------

ONCE_TESTS = """
import pytest

import gptalk_proto as g


@pytest.mark.gptalk_cassette("recorded.json")
def test_blocking(gptalk_client):
    for prompt in ("Record me", "And me"):
        assert gptalk_client.chat(prompt) == g.expected_reply(prompt)


@pytest.mark.anyio
async def test_async(gptalk_async_client):
    async with gptalk_async_client as client:
        assert await client.chat("Async me") == g.expected_reply("Async me")
"""


def test_mode_once_records_then_replays(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_once=ONCE_TESTS)
    first = run(inner, "once")
    first.assert_outcomes(passed=3)
    folder = inner.path / "cassettes"
    names = ["recorded.json", "test_async_asyncio_.json", "test_async_trio_.json"]
    assert sorted(p.name for p in folder.iterdir()) == names
    recorded = {name: (folder / name).read_bytes() for name in names}
    blocking = assert_good_cassette(folder / "recorded.json")
    assert [item.kind for item in blocking.interactions] == [
        "login",
        "text",
        "stream",
        "text",
        "stream",
    ]
    prompts = [item.request.json()["content"] for item in blocking.interactions[1::2]]
    assert prompts == ["Record me", "And me"]
    for name in names[1:]:
        cassette = assert_good_cassette(folder / name)
        assert [item.kind for item in cassette.interactions] == ["login", "text", "stream"]
    # The second run replays: no server needed (nothing listens at NOWHERE),
    # and the cassettes stay as they were.
    second = run(inner, "once", "--gptalk-url", NOWHERE)
    second.assert_outcomes(passed=3)
    assert {name: (folder / name).read_bytes() for name in names} == recorded


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


# -- mode all -----------------------------------------------------------------------------------

ALL_TESTS = """
import pytest

import gptalk_proto as g


@pytest.mark.gptalk_cassette("plain-chat.json")
def test_blocking(gptalk_client):
    assert gptalk_client.chat("Something new") == g.expected_reply("Something new")
"""


def test_mode_all_records_over_an_existing_cassette(inner: pytest.Pytester) -> None:
    target = copy_shipped(inner, "plain-chat.json")
    inner.makepyfile(test_all=ALL_TESTS)
    result = run(inner, "all")
    result.assert_outcomes(passed=1)
    cassette = assert_good_cassette(target)
    shipped = load_cassette(CASSETTES / "plain-chat.json")
    assert cassette.origin != shipped.origin
    assert cassette.meta == {}
    assert [item.kind for item in cassette.interactions] == ["login", "text", "stream"]
    assert cassette.interactions[1].request.json()["content"] == "Something new"


# -- mode new_episodes -----------------------------------------------------------------------

EPISODE_TESTS = """
import pytest

import gptalk_proto as g

PROMPTS = ("Hello, how are you?", "And one more")


def test_blocking(gptalk_client):
    for prompt in PROMPTS:
        assert gptalk_client.chat(prompt) == g.expected_reply(prompt)


@pytest.mark.anyio
async def test_async(gptalk_async_client):
    async with gptalk_async_client as client:
        for prompt in PROMPTS:
            assert await client.chat(prompt) == g.expected_reply(prompt)
"""


def _check_extended(path: Path, original: g.Cassette) -> g.Cassette:
    cassette = load_cassette(path)
    assert cassette.redacted
    assert g.lint(cassette) == []
    kept = len(original.interactions)
    # The recorded steps, then the new chat's (after a login: see the
    # placeholder-token caveat in _episodes.py).
    assert cassette.interactions[:kept] == original.interactions
    new = [item.kind for item in cassette.interactions[kept:]]
    assert new in (["login", "text", "stream"], ["text", "login", "text", "stream"]), new
    last_text = [item for item in cassette.interactions if item.kind == "text"][-1]
    assert last_text.request.json()["content"] == "And one more"
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
    folder = inner.path / "cassettes"
    names = ["test_blocking.json", "test_async_asyncio_.json", "test_async_trio_.json"]
    for name in names:
        (folder / name).write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    original = g.Cassette.loads(json.dumps(raw))
    inner.makepyfile(test_episodes=EPISODE_TESTS)
    result = run(inner, "new_episodes")
    result.assert_outcomes(passed=3)
    for name in names:
        _check_extended(folder / name, original)
    # The extended cassettes replay, offline, with every step reached.
    again = run(inner, "none", "--gptalk-url", NOWHERE)
    again.assert_outcomes(passed=3)


def test_mode_new_episodes_on_a_cassette_recorded_days_ago(inner: pytest.Pytester) -> None:
    # The usual case: the cassette's login token expired long ago in real
    # time, though not in the cassette's recorded time.
    raw = plain_chat_recorded_at(time.time() - 3 * 86400)
    path = inner.path / "cassettes" / "test_blocking.json"
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    original = g.Cassette.loads(json.dumps(raw))
    inner.makepyfile(test_episodes=EPISODE_TESTS.split("@pytest.mark.anyio", maxsplit=1)[0])
    result = run(inner, "new_episodes")
    result.assert_outcomes(passed=1)
    _check_extended(path, original)
    again = run(inner, "none", "--gptalk-url", NOWHERE)
    again.assert_outcomes(passed=1)
