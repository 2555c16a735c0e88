"""Replay matching: mismatches name their step and difference, and bindings hold."""

from __future__ import annotations

import json
import re
import urllib.parse

import pytest

import gptalk_proto as g
import gptalk_proto.cassette
import gptalk_proto.server
from gptalk_transports import AsyncClient, Client, RetryPolicy
from gptalk_transports._async.replay import AsyncReplayConnector
from gptalk_transports._session import recorded_clock, text_steps
from gptalk_transports._sync.replay import SyncReplayConnector

from .replay_cases import (
    CASSETTES,
    FakeClock,
    WatchedConnector,
    anyio_backend,  # noqa: F401 (a fixture: the anyio tests run on asyncio and trio)
    cassette_at,
)

# -- mismatches ---------------------------------------------------------------------------------


def replay_client(cassette: g.cassette.Cassette) -> tuple[Client, SyncReplayConnector]:
    connector = SyncReplayConnector(cassette)
    client = Client(
        cassette.origin,
        connector=connector,
        clock=recorded_clock(cassette),
        retry=RetryPolicy(backoff=0.0),
    )
    return client, connector


@pytest.mark.anyio
async def test_a_different_prompt_is_a_mismatch_at_step_2() -> None:
    cassette = cassette_at(CASSETTES / "plain-chat.json")
    connector = AsyncReplayConnector(cassette)
    async with AsyncClient(
        cassette.origin, connector=connector, clock=recorded_clock(cassette)
    ) as client:
        with pytest.raises(g.cassette.CassetteMismatch) as info:
            await client.chat("Goodbye, how were you?")
    error = info.value
    assert error.step == 1
    message = str(error)
    assert message.startswith("request 2 does not match the cassette")
    expected = "body.content: recorded '\"Hello, how are you?\"', sent '\"Goodbye, how were you?\"'"
    assert expected in message
    assert [d for d in error.differences if not d.startswith("body.content")] == []
    assert connector.replayer.played == 1


def test_a_different_model_is_a_mismatch_naming_body_model() -> None:
    client, _ = replay_client(cassette_at(CASSETTES / "plain-chat.json"))
    with client, pytest.raises(g.cassette.CassetteMismatch) as info:
        client.chat("Hello, how are you?", model="gpt-4")
    assert info.value.step == 1
    assert "request 2" in str(info.value)
    assert info.value.differences == ["body.model: recorded '\"gpt-3.5-turbo\"', sent '\"gpt-4\"'"]


def test_more_chats_than_recorded_is_a_mismatch() -> None:
    client, connector = replay_client(cassette_at(CASSETTES / "plain-chat.json"))
    with client:
        client.chat("Hello, how are you?")
        connector.assert_played()
        with pytest.raises(g.cassette.CassetteMismatch, match="no more steps") as info:
            client.chat("Hello, how are you?")
    assert info.value.step == 3
    assert "request 4" in str(info.value)


def test_stopping_early_leaves_steps_unplayed() -> None:
    cassette = cassette_at(CASSETTES / "seven-chats.json")
    client, connector = replay_client(cassette)
    with client:
        assert client.chat("Question number 1") == g.server.expected_reply("Question number 1")
    with pytest.raises(g.cassette.CassetteUnplayed) as info:
        connector.assert_played()
    kinds = [item.kind for item in cassette.interactions]
    assert info.value.steps == [(n, kinds[n]) for n in range(3, len(kinds))]
    message = str(info.value)
    assert "4 (text), 5 (stream)" in message
    assert "12 (login)" in message
    assert message.endswith("16 (stream) were never reached")


def test_a_request_header_difference_is_named() -> None:
    cassette = cassette_at(CASSETTES / "plain-chat.json")
    connector = SyncReplayConnector(cassette)
    with (
        Client(
            cassette.origin,
            connector=connector,
            clock=recorded_clock(cassette),
            headers={"x-extra": "1"},
        ) as client,
        pytest.raises(g.cassette.CassetteMismatch) as info,
    ):
        client.chat("Hello, how are you?")
    assert info.value.step == 0
    assert info.value.differences == ["header x-extra: not recorded, sent '1'"]


# -- bindings ---------------------------------------------------------------------------------

FINGERPRINT = re.compile(rb'"fingerprint":\s*"([^"]*)"')


@pytest.mark.anyio
@pytest.mark.parametrize("name", ["plain-chat", "seven-chats", "expired-token", "quota-then-retry"])
async def test_the_login_fingerprint_is_a_binding(name: str) -> None:
    cassette = cassette_at(CASSETTES / f"{name}.json")
    clock = FakeClock()
    watch = WatchedConnector(AsyncReplayConnector(cassette, clock=clock), clock)
    async with AsyncClient(
        cassette.origin, connector=watch, clock=recorded_clock(cassette)
    ) as client:
        for _, prompt, model in text_steps(cassette):
            if watch.inner.replayer.unplayed():
                await client.chat(prompt, model=model)
    watch.inner.assert_played()
    recorded = [
        item.request.json()["fingerprint"] for item in cassette.interactions if item.kind == "login"
    ]
    replayed = [m.decode() for m in FINGERPRINT.findall(b"".join(watch.sent))]
    assert len(replayed) == len(recorded) >= 1
    for old, new in zip(recorded, replayed, strict=True):
        assert old.startswith("<fingerprint-")
        assert re.fullmatch("[0-9a-f]{32}", new)
        assert new != old
    # A fresh fingerprint per login, each bound to its own recorded placeholder.
    assert len(set(replayed)) == len(replayed)
    assert len(set(recorded)) == len(recorded)


def _login_body(fingerprint: str) -> bytes:
    return json.dumps({"fingerprint": fingerprint, "platform": "fingerprint"}).encode()


def test_a_binding_holds_for_the_whole_replay() -> None:
    plain = cassette_at(CASSETTES / "plain-chat.json")
    login = plain.interactions[0]
    # A cassette in which one recorded fingerprint logs in twice.
    twice = g.cassette.Cassette((login, login), plain.recorded_at, plain.origin)
    headers = list(login.request.headers)
    replayer = g.cassette.Replayer(twice)
    path = login.request.target
    replayer.match("POST", path, headers, _login_body("a" * 32))
    with pytest.raises(g.cassette.CassetteMismatch) as info:
        replayer.match("POST", path, headers, _login_body("b" * 32))
    assert info.value.step == 1
    assert info.value.differences == ["body.fingerprint: bound to an earlier value, sent another"]
    # The same value again is fine; a failed match binds nothing.
    replayer.match("POST", path, headers, _login_body("a" * 32))
    assert replayer.unplayed() == []


def test_a_new_client_binds_afresh() -> None:
    """Two clients' logins, each redacted on its own, hold the same
    placeholder for two fingerprints: after new_client the second binds to
    whatever the replaying client makes, and holds again from there."""
    plain = cassette_at(CASSETTES / "plain-chat.json")
    login = plain.interactions[0]
    thrice = g.cassette.Cassette((login, login, login), plain.recorded_at, plain.origin)
    headers = list(login.request.headers)
    replayer = g.cassette.Replayer(thrice)
    path = login.request.target
    replayer.match("POST", path, headers, _login_body("a" * 32))
    replayer.new_client()
    replayer.match("POST", path, headers, _login_body("b" * 32))
    with pytest.raises(g.cassette.CassetteMismatch):
        replayer.match("POST", path, headers, _login_body("a" * 32))
    replayer.match("POST", path, headers, _login_body("b" * 32))
    assert replayer.unplayed() == []


# -- what is read once per cassette -----------------------------------------------------------


def test_a_recorded_request_is_read_once_and_matches_the_same_every_time() -> None:
    """The recorded target's parts and headers are cached on the request
    (shared by every replay of the cassette); each match still compares the
    sent request to them in full, the same the first time and the second."""
    plain = cassette_at(CASSETTES / "plain-chat.json")
    stream = next(item for item in plain.interactions if item.kind == "stream")
    recorded = stream.request
    path, query = recorded._target_parts
    assert recorded._target_parts is recorded._target_parts  # read once
    assert recorded._header_map is recorded._header_map
    assert recorded.target.startswith(path + "?")
    assert set(query) == {"token"}
    one = g.cassette.Cassette((stream,), plain.recorded_at, plain.origin)
    headers = list(recorded.headers)
    [token] = query["token"]
    encoded = f"{path}?token={urllib.parse.quote(token, safe='')}"
    assert encoded != recorded.target
    cases = [
        (recorded.target, headers, []),  # the same target: nothing to compare
        (encoded, headers, []),  # values compared percent-decoded
        # (The recorded token is a redaction placeholder: any value fits it.)
        (f"{path}?token=other", headers, []),
        (f"{recorded.target}&more=1", headers, ["query more: recorded None, sent ['1']"]),
        (f"{path}x?more=1", headers, None),  # the path and both keys
        (recorded.target, [(n.upper(), v) for n, v in headers], []),  # names: any case
        (recorded.target, [*headers, ("x-extra", "1")], ["header x-extra: not recorded, sent '1'"]),
    ]
    for _ in range(2):  # a second replay reads the cached parts
        for target, sent_headers, expected in cases:
            replayer = g.cassette.Replayer(one)
            try:
                replayer.match("GET", target, sent_headers, recorded.body)
                differences: list[str] = []
            except g.cassette.CassetteMismatch as error:
                differences = error.differences
            if expected is None:
                assert [d.split(":")[0] for d in differences] == [
                    "path",
                    "query more",
                    "query token",
                ]
            else:
                assert differences == expected


def test_equal_and_different_body_fields_are_told_apart() -> None:
    plain = cassette_at(CASSETTES / "plain-chat.json")
    text = next(item for item in plain.interactions if item.kind == "text")
    one = g.cassette.Cassette((text,), plain.recorded_at, plain.origin)
    fields = dict(text.request.json())
    headers = list(text.request.headers)
    replayer = g.cassette.Replayer(one)
    for key, value in [("model", "another"), ("from", 2), ("from", "1"), ("prompt", None)]:
        changed = json.dumps({**fields, key: value}).encode()
        with pytest.raises(g.cassette.CassetteMismatch) as info:
            replayer.match("POST", text.request.target, headers, changed)
        assert [d.split(":")[0] for d in info.value.differences] == [f"body.{key}"]
    # Equal values, and ones JSON reads as equal (1 and 1.0), match.
    same = json.dumps({**fields, "from": 1.0}).encode()
    replayer.match("POST", text.request.target, headers, same)
    assert replayer.unplayed() == []
