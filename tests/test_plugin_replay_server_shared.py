"""The ``gptalk_replay_server`` fixture with a cassette shared by several
tests: each test's clients (here ``http.client``, as a client that is not
ours) replay its own chats, alone, with the others or in another order, and
the unplayed check covers only the episodes the test began (inner pytest
runs, in subprocesses)."""

from __future__ import annotations

import pytest

from gptalk_transports._cassettes import load_cassette

from .plugin_cases import NOWHERE, folder, make_inner, prompts, run

pytest_plugins = ("pytester",)

TESTS = """
import http.client
import json
import os
from urllib.parse import urlsplit

import pytest

import gptalk_proto as g
import gptalk_proto.server

JSON = {"content-type": "application/json"}


def chat(url, asked):
    # One login, then a text request and its stream per prompt, on one
    # connection, by hand: a client that is not ours.
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)

    def call(method, path, body=None, **headers):
        data = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=data, headers={**JSON, **headers} if data else headers)
        response = conn.getresponse()
        answer = response.read()
        assert response.status == 200, answer.decode()
        return answer

    login = {"fingerprint": os.urandom(16).hex(), "platform": "fingerprint"}
    token = json.loads(call("POST", "/api/chatgpt/user/login", login))["data"]["token"]
    bearer = {"authorization": f"Bearer {token}"}
    for prompt in asked:
        text = {"content": prompt, "accept": "stream"}
        answer = call("POST", "/api/chatgpt/chatapi/text", text, **bearer)
        stream = json.loads(answer)["data"]["token"]
        events = call("GET", f"/api/chatgpt/chatapi/stream?token={stream}").decode()
        data = [line[6:] for line in events.splitlines() if line.startswith("data: {")]
        assert json.loads(data[-1])["content"] == g.server.expected_reply(prompt)
    conn.close()


@pytest.mark.gptalk_cassette("shared.json")
def test_first(gptalk_replay_server):
    chat(gptalk_replay_server, ["First one", "First two"])


@pytest.mark.gptalk_cassette("shared.json")
def test_second(gptalk_replay_server):
    chat(gptalk_replay_server, ["Second one"])


@pytest.mark.gptalk_cassette("shared.json")
def test_part(gptalk_replay_server):
    # Only the first test's second chat, and the second test's.
    chat(gptalk_replay_server, ["First two"])
    chat(gptalk_replay_server, ["Second one"])


@pytest.mark.gptalk_cassette("shared.json")
def test_reversed(gptalk_replay_server):
    chat(gptalk_replay_server, ["Second one", "First two", "First one"])


def begin_a_chat(url):
    # The text request of a chat, not its stream: that stream is unplayed.
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    login = {"fingerprint": os.urandom(16).hex(), "platform": "fingerprint"}
    conn.request("POST", "/api/chatgpt/user/login", json.dumps(login).encode(), JSON)
    token = json.loads(conn.getresponse().read())["data"]["token"]
    text = json.dumps({"content": "Second one", "accept": "stream"}).encode()
    conn.request(
        "POST", "/api/chatgpt/chatapi/text", text, {**JSON, "authorization": f"Bearer {token}"}
    )
    assert conn.getresponse().read()
    conn.close()


@pytest.mark.gptalk_cassette("shared.json")
def test_begun_not_finished(gptalk_replay_server):
    begin_a_chat(gptalk_replay_server)


@pytest.mark.gptalk_cassette("shared.json", allow_unplayed=True)
def test_begun_allowed(gptalk_replay_server):
    begin_a_chat(gptalk_replay_server)


@pytest.mark.gptalk_cassette("shared.json")
def test_wrong(gptalk_replay_server):
    chat(gptalk_replay_server, ["Nobody asked this"])
"""

RECORDED = ["First one", "First two", "Second one"]
MODULE = "test_shared_any"


@pytest.fixture
def recorded(pytester: pytest.Pytester) -> pytest.Pytester:
    """The inner tests, their shared cassette recorded in mode ``once`` by
    the first two (the second adds to what the first wrote this run)."""
    inner = make_inner(pytester)
    inner.makepyfile(**{MODULE: TESTS})
    run(inner, "once", "-k", "first or second").assert_outcomes(passed=2)
    return inner


def _replay(inner: pytest.Pytester, *args: str) -> pytest.RunResult:
    return run(inner, "none", "--gptalk-url", NOWHERE, *args)


def test_the_tests_record_one_cassette_together(recorded: pytest.Pytester) -> None:
    cassette = load_cassette(folder(recorded, MODULE) / "shared.json")
    assert prompts(cassette) == RECORDED
    kinds = [item.kind for item in cassette.interactions]
    assert kinds == ["login", "text", "stream", "text", "stream", "login", "text", "stream"]
    # The next run in mode once replays it, and writes nothing.
    text = (folder(recorded, MODULE) / "shared.json").read_bytes()
    run(recorded, "once", "--gptalk-url", NOWHERE, "-k", "first or second").assert_outcomes(
        passed=2
    )
    assert (folder(recorded, MODULE) / "shared.json").read_bytes() == text


@pytest.mark.parametrize(
    "chosen", ["first", "second", "first or second", "part", "reversed"], ids=str
)
def test_each_test_replays_its_own_chats(recorded: pytest.Pytester, chosen: str) -> None:
    _replay(recorded, "-k", chosen).assert_outcomes(passed=len(chosen.split(" or ")))


def test_the_tests_replay_in_another_order(recorded: pytest.Pytester) -> None:
    path = f"{MODULE}.py"
    result = _replay(recorded, "-v", f"{path}::test_second", f"{path}::test_first")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_second PASSED*", "*test_first PASSED*"])


def test_a_begun_chat_left_unfinished_fails(recorded: pytest.Pytester) -> None:
    result = _replay(recorded, "-k", "begun")
    # (allow_unplayed lets the other pass.)
    result.assert_outcomes(passed=2, errors=1)
    # The second test's stream (step 8) only: no other test's steps.
    result.stdout.fnmatch_lines(["*the cassette's steps 8 (stream) were never reached*"])


def test_a_wrong_request_fails_with_the_409(recorded: pytest.Pytester) -> None:
    result = _replay(recorded, "-k", "wrong")
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert '"code": 409' in output
    assert "the request does not match the cassette" in output
    assert "Nobody asked this" in output


def test_modes_all_and_rewrite_combine_the_tests_recordings(recorded: pytest.Pytester) -> None:
    path = folder(recorded, MODULE) / "shared.json"
    # all: each test's chats recorded again, after what was there.
    run(recorded, "all", "-k", "first or second").assert_outcomes(passed=2)
    assert prompts(load_cassette(path)) == RECORDED * 2
    _replay(recorded, "-k", "first or second or part or reversed").assert_outcomes(passed=4)
    # rewrite: the first test replaces the cassette, the second adds to it.
    run(recorded, "rewrite", "-k", "first or second").assert_outcomes(passed=2)
    assert prompts(load_cassette(path)) == RECORDED
    _replay(recorded, "-k", "first or second or part or reversed").assert_outcomes(passed=4)
