"""The pytest plugin's cassettes shared by several tests (parametrized tests,
markers naming one file), as vcrpy users share theirs: each test replays
its own chats whatever login it makes, the recording modes keep the other
tests' episodes, no placeholder goes to the live service, and a recording
run replays offline (inner pytest runs, in subprocesses)."""

from __future__ import annotations

import json

import pytest

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_transports._cassettes import load_cassette

from .plugin_cases import CASSETTES, NOWHERE, folder, make_inner, prompts, run

pytest_plugins = ("pytester",)

SHARED = """
import pytest

import gptalk_proto as g
import gptalk_proto.server

EXTRA = EXTRA_PROMPTS


@pytest.mark.parametrize("number", range(3))
@pytest.mark.gptalk_cassette("shared.json")
def test_blocking(gptalk_client, number):
    # Test 1 chats six times: past a token's five chats, it logs in again.
    for k in range(6 if number == 1 else 2):
        prompt = f"Question {number}.{k}"
        assert gptalk_client.chat(prompt) == g.server.expected_reply(prompt)


@pytest.mark.anyio
@pytest.mark.gptalk_cassette("shared.json")
async def test_async(gptalk_async_client):
    # One chat of its own, one another test has too, and the new ones.
    async with gptalk_async_client as client:
        for prompt in ("Same question", "Question 0.0", *EXTRA):
            assert await client.chat(prompt) == g.server.expected_reply(prompt)
"""

TESTS = 5  # three blocking, async on asyncio and trio


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    return make_inner(pytester)


def _write(inner: pytest.Pytester, *extra: str) -> None:
    inner.makepyfile(test_shared=SHARED.replace("EXTRA_PROMPTS", repr(extra)))


def _cassette(inner: pytest.Pytester) -> g.cassette.Cassette:
    cassette = load_cassette(folder(inner, "test_shared") / "shared.json")
    assert cassette.redacted
    assert g.cassette.lint(cassette) == []
    return cassette


def _refusals(cassette: g.cassette.Cassette) -> list[str]:
    """Responses that refused a token: a placeholder the replay handed out,
    sent to the live service."""
    return [
        item.response.wire.decode("utf-8", "replace")
        for item in cassette.interactions
        if b"invalid token" in item.response.wire
    ]


def _blocking_prompts() -> list[str]:
    return [f"Question {n}.{k}" for n in range(3) for k in range(6 if n == 1 else 2)]


def test_mode_all_each_test_replays_its_own_chats(inner: pytest.Pytester) -> None:
    _write(inner)
    run(inner, "all").assert_outcomes(passed=TESTS)
    first = _cassette(inner)
    async_prompts = ["Same question", "Question 0.0"] * 2
    assert prompts(first) == _blocking_prompts() + async_prompts
    # Every test logged in on its own; test 1 twice (six chats).
    assert [item.kind for item in first.interactions].count("login") == TESTS + 1
    # Each replays offline, whatever login the replay gives it.
    run(inner, "none", "--gptalk-url", NOWHERE).assert_outcomes(passed=TESTS)
    # "all" again: every chat recorded after the ones recorded before, and
    # both recordings replay.
    run(inner, "all").assert_outcomes(passed=TESTS)
    second = _cassette(inner)
    assert second.interactions[: len(first.interactions)] == first.interactions
    assert prompts(second) == prompts(first) * 2
    run(inner, "none", "--gptalk-url", NOWHERE).assert_outcomes(passed=TESTS)


def test_mode_new_episodes_records_a_shared_cassette_from_scratch(
    inner: pytest.Pytester,
) -> None:
    _write(inner)
    run(inner, "new_episodes").assert_outcomes(passed=TESTS)
    first = _cassette(inner)
    assert _refusals(first) == []
    # The async tests' shared chat ("Question 0.0") and the trio test's
    # chats replayed what was recorded before them.
    assert prompts(first) == [*_blocking_prompts(), "Same question"]
    run(inner, "none", "--gptalk-url", NOWHERE).assert_outcomes(passed=TESTS)
    # Again: every chat replays, nothing is added (the live logins the
    # replayed chats did not need are not kept).
    text = (folder(inner, "test_shared") / "shared.json").read_bytes()
    run(inner, "new_episodes").assert_outcomes(passed=TESTS)
    assert (folder(inner, "test_shared") / "shared.json").read_bytes() == text


def test_mode_new_episodes_adds_new_chats_to_a_shared_cassette(inner: pytest.Pytester) -> None:
    _write(inner)
    run(inner, "all").assert_outcomes(passed=TESTS)
    before = _cassette(inner)
    _write(inner, "New one", "And another")
    run(inner, "new_episodes").assert_outcomes(passed=TESTS)
    after = _cassette(inner)
    assert after.interactions[: len(before.interactions)] == before.interactions
    assert _refusals(after) == []
    added = after.interactions[len(before.interactions) :]
    # Once (by the asyncio test; the trio test replays them): a login and
    # two chats.
    assert [item.kind for item in added] == ["login", "text", "stream", "text", "stream"]
    assert prompts(after)[len(prompts(before)) :] == ["New one", "And another"]
    tokens = {
        json.loads(item.response.wire.split(b"\r\n\r\n", 1)[1])["data"]["token"]
        for item in after.interactions
        if item.kind == "login"
    }
    assert len(tokens) == [item.kind for item in after.interactions].count("login")
    run(inner, "none", "--gptalk-url", NOWHERE).assert_outcomes(passed=TESTS)


def test_shared_cassette_recorded_on_xdist_workers_replays(inner: pytest.Pytester) -> None:
    _write(inner)
    run(inner, "all", "-n", "2").assert_outcomes(passed=TESTS)
    assert sorted(prompts(_cassette(inner))) == sorted(
        _blocking_prompts() + ["Same question", "Question 0.0"] * 2
    )
    run(inner, "none", "--gptalk-url", NOWHERE, "-n", "2").assert_outcomes(passed=TESTS)


def test_mode_once_records_a_shared_cassette_with_every_test(inner: pytest.Pytester) -> None:
    # The first test creates the cassette; the others of the run go on
    # recording it (as new_episodes) instead of replaying the first's chats.
    _write(inner)
    run(inner, "once").assert_outcomes(passed=TESTS)
    first = _cassette(inner)
    assert _refusals(first) == []
    assert prompts(first) == [*_blocking_prompts(), "Same question"]
    text = (folder(inner, "test_shared") / "shared.json").read_bytes()
    # The next run replays it, offline, and writes nothing.
    run(inner, "once", "--gptalk-url", NOWHERE).assert_outcomes(passed=TESTS)
    assert (folder(inner, "test_shared") / "shared.json").read_bytes() == text


def test_mode_rewrite_replaces_a_shared_cassette_once_per_run(inner: pytest.Pytester) -> None:
    _write(inner)
    run(inner, "all").assert_outcomes(passed=TESTS)
    run(inner, "all").assert_outcomes(passed=TESTS)
    assert len(prompts(_cassette(inner))) == 2 * len(_blocking_prompts() + ["x"] * 4)
    # The first test replaces the cassette; the others add to it: each
    # test's chats once, none of the old ones.
    run(inner, "rewrite").assert_outcomes(passed=TESTS)
    cassette = _cassette(inner)
    assert prompts(cassette) == _blocking_prompts() + ["Same question", "Question 0.0"] * 2
    run(inner, "none", "--gptalk-url", NOWHERE).assert_outcomes(passed=TESTS)


@pytest.mark.parametrize("mode", ["once", "rewrite"])
def test_a_shared_cassette_recorded_in_one_run_on_xdist_workers(
    inner: pytest.Pytester, mode: str
) -> None:
    # Each worker's first test of the cassette sees what the other wrote in
    # this run (or writes first): nothing a test recorded is lost.
    _write(inner)
    if mode == "rewrite":
        run(inner, "all").assert_outcomes(passed=TESTS)
    run(inner, mode, "-n", "2").assert_outcomes(passed=TESTS)
    recorded = prompts(_cassette(inner))
    for prompt in [*_blocking_prompts(), "Same question"]:
        assert prompt in recorded
    if mode == "rewrite":
        # (Old chats gone: each blocking prompt once.)
        assert sorted(p for p in recorded if p.startswith("Question 1.")) == [
            f"Question 1.{k}" for k in range(6)
        ]
    run(inner, "none", "--gptalk-url", NOWHERE, "-n", "2").assert_outcomes(passed=TESTS)


COPIED = """
import shutil

import pytest

import gptalk_proto as g
import gptalk_proto.server

PROMPT = "Hello, how are you?"


@pytest.fixture
def gptalk_cassette_dir(tmp_path):
    # A cassette put in place during the run: not the run's recording.
    shutil.copyfile(SHIPPED, tmp_path / "plain-chat.json")
    return tmp_path


@pytest.mark.parametrize("number", range(2))
@pytest.mark.gptalk_cassette("plain-chat.json")
def test_copied(gptalk_client, number):
    assert gptalk_client.chat(PROMPT) == g.server.expected_reply(PROMPT)
"""


@pytest.mark.parametrize("workers", [(), ("-n", "2")])
def test_once_replays_a_cassette_a_fixture_put_in_place(
    inner: pytest.Pytester, workers: tuple[str, ...]
) -> None:
    inner.makepyfile(
        test_copied=COPIED.replace("SHIPPED", repr(str(CASSETTES / "plain-chat.json")))
    )
    run(inner, "once", "--gptalk-url", NOWHERE, *workers).assert_outcomes(passed=2)
