"""Replay matching: mismatches name their step and difference, and bindings hold."""

from __future__ import annotations

import json
import re

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
