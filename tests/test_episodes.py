"""Episodes: how a cassette is cut, and replays of any subset of its chats,
through the blocking client, offline."""

from __future__ import annotations

from itertools import combinations
from typing import Any

import pytest

import gptalk_proto as g
import gptalk_proto.cassette
import gptalk_proto.server
from gptalk_transports import Client, RetryPolicy
from gptalk_transports._cassettes import load_cassette
from gptalk_transports._episodes import EpisodeReplayer, Matching, _Episodes, _Route, split_episodes
from gptalk_transports._session import recorded_clock
from gptalk_transports._sync.episodes import SyncEpisodeReplayConnector

from .plugin_cases import CASSETTES


def _cut(name: str) -> list[list[str]]:
    cassette = load_cassette(CASSETTES / name)
    kinds = [item.kind for item in cassette.interactions]
    return [[kinds[n] for n in steps] for steps in split_episodes(cassette)]


def test_a_login_is_an_episode_and_a_chat_runs_to_its_stream() -> None:
    assert _cut("plain-chat.json") == [["login"], ["text", "stream"]]
    # The retry after a 503 belongs to its chat.
    assert _cut("503-then-retry.json") == [["login"], ["text", "text", "stream"]]
    # A refusal, the login it calls for, and the chat sent again.
    assert _cut("quota-then-retry.json") == [["login"], ["text"], ["login"], ["text", "stream"]]
    assert _cut("seven-chats.json") == [
        ["login"],
        *[["text", "stream"]] * 5,
        ["login"],
        *[["text", "stream"]] * 2,
    ]
    empty = g.cassette.Cassette(
        interactions=(), recorded_at="2026-01-01T00:00:00Z", origin="http://a"
    )
    assert split_episodes(empty) == []


def _client(
    cassette: g.cassette.Cassette, matching: Matching | None = None, **kwargs: Any
) -> tuple[Client, EpisodeReplayer]:
    connector = SyncEpisodeReplayConnector(cassette, matching)
    client = Client(cassette.origin, connector=connector, clock=recorded_clock(cassette), **kwargs)
    return client, connector.replayer


SUBSETS = [
    chats
    for size in range(1, 6)
    for chats in combinations(range(1, 6), size)
    if size in (1, 5) or chats[0] != 1  # a spread, not all 31
]


@pytest.mark.parametrize("order", ["recorded", "reversed"])
@pytest.mark.parametrize("chats", SUBSETS, ids=str)
def test_any_subset_of_whole_episodes_replays(chats: tuple[int, ...], order: str) -> None:
    cassette = load_cassette(CASSETTES / "seven-chats.json")
    client, replayer = _client(cassette)
    with client:
        for number in chats if order == "recorded" else chats[::-1]:
            prompt = f"Question number {number}"
            assert client.chat(prompt) == g.server.expected_reply(prompt)
    replayer.assert_played()  # every episode begun was played out
    assert replayer.played == 1 + 2 * len(chats)
    assert len(replayer.unplayed()) == 0


def test_the_unplayed_steps_are_those_of_the_episodes_begun() -> None:
    cassette = load_cassette(CASSETTES / "503-then-retry.json")
    client, replayer = _client(cassette, retry=RetryPolicy(retries=0))
    with client, pytest.raises(g.GPTalkError):
        client.chat("Are you there?")
    assert replayer.unplayed() == [(2, "text"), (3, "stream")]
    with pytest.raises(
        g.cassette.CassetteUnplayed, match=r"steps 3 \(text\), 4 \(stream\) were never"
    ):
        replayer.assert_played()


def test_a_mismatch_names_the_closest_step_and_its_fields() -> None:
    cassette = load_cassette(CASSETTES / "seven-chats.json")
    client, _ = _client(cassette)
    with client:
        client.chat("Question number 2")
        with pytest.raises(g.cassette.CassetteMismatch) as caught:
            client.chat("Question number 20")
    # Chat 1 (step 2) is the first of the closest candidates: one field differs.
    assert caught.value.step == 1
    assert caught.value.differences == [
        "body.content: recorded '\"Question number 1\"', sent '\"Question number 20\"'"
    ]


def test_a_request_after_every_episode_was_played() -> None:
    cassette = load_cassette(CASSETTES / "plain-chat.json")
    client, _ = _client(cassette)
    with client:
        client.chat("Hello, how are you?")
        with pytest.raises(
            g.cassette.CassetteMismatch, match="every episode of the cassette was played"
        ):
            client.chat("Hello, how are you?")


def test_ignored_headers_and_fields_are_not_compared() -> None:
    cassette = load_cassette(CASSETTES / "plain-chat.json")
    prompt = "Hello, how are you?"
    client, _ = _client(cassette, headers={"X-Trace": "abc"})
    with client, pytest.raises(g.cassette.CassetteMismatch) as caught:
        client.chat(prompt)
    assert caught.value.differences == ["header x-trace: not recorded, sent 'abc'"]
    client, _ = _client(cassette, model="gpt-4")
    with client, pytest.raises(g.cassette.CassetteMismatch) as caught:
        client.chat(prompt)
    assert caught.value.differences == [
        "body.model: recorded '\"gpt-3.5-turbo\"', sent '\"gpt-4\"'"
    ]
    matching = Matching.of(headers=["X-TRACE"], fields=["model"])
    client, replayer = _client(
        cassette, headers={"X-Trace": "abc"}, model="gpt-4", matching=matching
    )
    with client:
        assert client.chat(prompt) == g.server.expected_reply(prompt)
    replayer.assert_played()


def test_chats_recorded_after_another_login_replay_after_the_first() -> None:
    # Chats 6 and 7 were recorded with the second login's token; a client
    # that logs in once (the first login episode) replays them with its own.
    cassette = load_cassette(CASSETTES / "seven-chats.json")
    client, replayer = _client(cassette)
    with client:
        for number in (6, 7, 1):
            prompt = f"Question number {number}"
            assert client.chat(prompt) == g.server.expected_reply(prompt)
    replayer.assert_played()
    assert replayer.played == 7


def _text_request(item: g.cassette.Interaction, token: str) -> tuple[Any, ...]:
    request = item.request
    headers = [
        (name, f"Bearer {token}" if name == "authorization" else value)
        for name, value in request.headers
    ]
    return request.method, request.target, headers, request.body


def test_a_recorded_token_stands_for_one_sent_token() -> None:
    cassette = load_cassette(CASSETTES / "seven-chats.json")
    items = cassette.interactions
    first, second = "<login-token-1>.................", "<login-token-9>................."
    # Chat 6 (recorded with the second login's token) sent with the first's.
    replayer = EpisodeReplayer(cassette)
    assert replayer.match(*_text_request(items[12], first)) is items[12]
    # The second login's token now stands for the first's: chat 7 sent with
    # yet another token does not match, with the first's it does.
    with pytest.raises(g.cassette.CassetteMismatch):
        replayer.match(*_text_request(items[14], second))
    assert replayer.match(*_text_request(items[14], first)) is items[14]
    # A token of another kind stands for none.
    fresh = EpisodeReplayer(cassette)
    with pytest.raises(g.cassette.CassetteMismatch):
        fresh.match(*_text_request(items[12], "<stream-token-1>................"))


def test_new_episodes_never_sends_a_handed_out_placeholder_live() -> None:
    # A stream request for a token only the replay could have handed out,
    # which no episode has at this point: refused, not sent live.
    cassette = load_cassette(CASSETTES / "plain-chat.json")
    route = _Route(_Episodes(cassette, None))
    stream = cassette.interactions[2].request
    head = f"GET {stream.target} HTTP/1.1\r\nhost: a\r\n\r\n".encode()
    with pytest.raises(g.cassette.CassetteError, match="carries the placeholder '<stream-token-1>"):
        route.sent(head)
    # A login always goes live, whole.
    login = cassette.interactions[0].request
    data = f"POST {login.target} HTTP/1.1\r\nhost: a\r\n\r\n".encode() + login.body
    fresh = _Route(_Episodes(cassette, None))
    assert fresh.sent(data[:10]) == b""  # not the whole request line yet
    assert fresh.sent(data[10:]) == data
    assert fresh.live
