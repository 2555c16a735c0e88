"""The plugin's ``gptalk_replay_server`` fixture, as its users run it (inner
pytest runs in subprocesses): replay for any client, unplayed steps failing
the test, and recording through the proxy in the recording modes."""

from __future__ import annotations

import json
import time

import pytest

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_transports._cassettes import load_cassette

from . import llm_app
from .plugin_cases import NOWHERE, folder, make_inner, plain_chat_recorded_at, run

pytest_plugins = ("pytester",)

TESTS = """
import http.client
import json
from urllib.parse import urlsplit

import pytest

from gptalk_transports import Client

PROMPT = "Hello, how are you?"


@pytest.mark.gptalk_cassette("chat.json")
def test_any_client(gptalk_replay_server):
    with Client(gptalk_replay_server, trust_env=False) as client:
        assert client.chat(PROMPT).startswith("Hello! You said")


@pytest.mark.gptalk_cassette("chat.json", allow_unplayed=True)
def test_a_wrong_request_is_named(gptalk_replay_server):
    parts = urlsplit(gptalk_replay_server)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request("POST", "/api/chatgpt/user/login", body=b"{}")
    response = conn.getresponse()
    body = json.loads(response.read())
    conn.close()
    assert response.status == 409
    assert body["step"] == 1
    assert any(d.startswith("body.fingerprint") for d in body["differences"])


@pytest.mark.gptalk_cassette("chat.json", allow_unplayed=True)
def test_unplayed_allowed(gptalk_replay_server):
    pass
"""

UNPLAYED = """
import pytest


@pytest.mark.gptalk_cassette("chat.json")
def test_plays_nothing(gptalk_replay_server):
    pass
"""


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    return make_inner(pytester)


def test_replay_for_any_client(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_any=TESTS)
    cassette = folder(inner, "test_any") / "chat.json"
    cassette.write_text(json.dumps(plain_chat_recorded_at(time.time())), encoding="utf-8")
    result = run(inner, None)
    result.assert_outcomes(passed=3)


def test_a_test_that_begins_no_episode_owes_no_step(inner: pytest.Pytester) -> None:
    # As with the client fixtures: the unplayed check covers the episodes
    # the test's clients began (a cassette may be shared by other tests);
    # a chat begun and left unfinished fails its test
    # (test_plugin_replay_server_shared.py).
    inner.makepyfile(test_unplayed=UNPLAYED)
    cassette = folder(inner, "test_unplayed") / "chat.json"
    cassette.write_text(json.dumps(plain_chat_recorded_at(time.time())), encoding="utf-8")
    result = run(inner, None)
    result.assert_outcomes(passed=1)


RECORD = """
import pytest

from gptalk_transports import Client


@pytest.mark.gptalk_cassette("recorded.json")
def test_records_through_the_proxy(gptalk_replay_server):
    with Client(gptalk_replay_server, trust_env=False) as client:
        assert client.chat("Recorded by any client").startswith("Hello! You said")
"""


def test_recording_modes_record_through_the_proxy(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_record=RECORD)
    result = run(inner, "once")
    result.assert_outcomes(passed=1)
    path = folder(inner, "test_record") / "recorded.json"
    cassette = load_cassette(path)
    assert [i.kind for i in cassette.interactions] == ["login", "text", "stream"]
    assert cassette.redacted
    assert g.cassette.lint(cassette) == []
    # Then it replays, through the replay server, with no server to record from.
    result = run(inner, "none")
    result.assert_outcomes(passed=1)


SDK_RECORD = """
import openai
import pytest


@pytest.fixture
def gptalk_config():
    return {"profile": "generic"}


@pytest.mark.gptalk_cassette("sdk.json")
def test_the_openai_sdk(gptalk_replay_server):
    http = openai.DefaultHttpxClient(trust_env=False)
    with openai.OpenAI(
        base_url=gptalk_replay_server + "/v1", api_key=KEY, max_retries=0, http_client=http
    ) as client:
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "Hi"}], stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream) == TEXT
"""


def test_the_profile_in_gptalk_config_records_and_replays_an_sdk(inner: pytest.Pytester) -> None:
    text = "".join(llm_app.PIECES)
    inner.makepyfile(test_sdk=f"KEY = {llm_app.API_KEY!r}\nTEXT = {text!r}\n" + SDK_RECORD)
    with llm_app.run_in_thread() as upstream:
        result = run(inner, "once", f"--gptalk-url={upstream}")
    result.assert_outcomes(passed=1)
    path = folder(inner, "test_sdk") / "sdk.json"
    cassette = load_cassette(path)
    assert cassette.profile == "generic"
    assert llm_app.API_KEY not in path.read_text(encoding="utf-8")
    # Then replayed, the upstream stopped, under the profile the file names.
    result = run(inner, "none")
    result.assert_outcomes(passed=1)


SECRET = "Sesame-secret-42"

SECRETS = """
import os

import pytest

from gptalk_transports import Client

PROMPT = os.environ["INNER_PROMPT"]


@pytest.fixture
def gptalk_config():
    return {"secrets": [SECRET]}


def test_our_client(gptalk_client):
    gptalk_client.chat(PROMPT)


def test_any_client(gptalk_replay_server):
    with Client(gptalk_replay_server, trust_env=False) as client:
        client.chat(PROMPT)
"""


def test_a_configured_secret_never_reaches_a_mismatch(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    inner.makepyfile(test_secrets=f"SECRET = {SECRET!r}\n" + SECRETS)
    monkeypatch.setenv("INNER_PROMPT", f"Open {SECRET} please")
    run(inner, "once").assert_outcomes(passed=2)
    # Replayed with another prompt holding the secret: each client's
    # mismatch (the exception, the replay server's 409 and stderr line)
    # shows its placeholder, as the recording does.
    monkeypatch.setenv("INNER_PROMPT", f"Open {SECRET} please!!")
    result = run(inner, "none", "--gptalk-url", NOWHERE)
    result.assert_outcomes(failed=2)
    output = result.stdout.str() + result.stderr.str()
    assert "does not match the cassette" in output
    assert "gptalk replay server: " in output  # the server's stderr line
    assert "sent '\"Open <secret-1> please!!\"'" in output
    assert SECRET[: len(SECRET) // 2] not in output
