"""The replay server's core with a shared replayer (``ReplayServer(replayer=...)``),
as the plugin's ``gptalk_replay_server`` fixture runs it with the episode
replayer: clients play any chats of a cassette, in any order, each logging in
on its own, and only the episodes they began are owed.  Without it (the CLI),
each session plays the cassette whole from its first step, as before."""

from __future__ import annotations

import re
from pathlib import Path

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_transports import load_cassette
from gptalk_transports._episodes import EpisodeReplayer

from .test_replay_server_core import answer, refusal, token_of, wire

# login, chats 1-5 (steps 1-10), login (11), chats 6-7 (12-15), from 0.
SEVEN = load_cassette(Path(__file__).resolve().parent.parent / "cassettes" / "seven-chats.json")

_LOGIN_TOKEN = re.compile(rb"<login-token-\d+>\.*")
_STREAM_TOKEN = re.compile(rb"<stream-token-\d+>\.*")


def episodes(cassette: g.cassette.Cassette) -> g.cassette.Replayer:
    return EpisodeReplayer(cassette)


class Client:
    """One client on a connection of its own: its login's token in its
    chats, whichever login was recorded before them."""

    def __init__(self, server: g.cassette.ReplayServer) -> None:
        self.conn = server.connection()
        self.delivered: list[int] = []
        self.token = b""

    def send(self, step: int, token: bytes, pattern: re.Pattern[bytes]) -> bytes:
        data = pattern.sub(token, wire(SEVEN.interactions[step]))
        actions = self.conn.receive_data(data)
        for action in actions:
            if isinstance(action, g.cassette.ReplayDelivered):
                self.conn.delivered(action)
                self.delivered.append(action.step)
        return answer(actions)

    def login(self) -> None:
        self.token = token_of(self.send(0, b"", _LOGIN_TOKEN))

    def chat(self, step: int, *, stream: bool = True) -> None:
        stream_token = token_of(self.send(step, self.token, _LOGIN_TOKEN))
        if stream:
            assert b"data: [DONE]" in self.send(step + 1, stream_token, _STREAM_TOKEN)


def test_a_client_plays_a_later_chat_alone() -> None:
    server = g.cassette.ReplayServer([SEVEN], speed=0, replayer=episodes)
    client = Client(server)
    client.login()
    client.chat(14)  # chat 7, recorded after the second login
    assert client.delivered == [0, 14, 15]
    assert server.unplayed() == []
    # Nothing is owed, but not every step was played.
    assert not server.all_played
    assert server.played() == 3


def test_without_a_shared_replayer_a_session_plays_from_the_first_step() -> None:
    server = g.cassette.ReplayServer([SEVEN], speed=0)
    client = Client(server)
    client.login()
    status, body = refusal(
        client.conn.receive_data(_LOGIN_TOKEN.sub(client.token, wire(SEVEN.interactions[14])))
    )
    assert status == g.cassette.MISMATCH_STATUS
    assert body["step"] == 2
    assert len(server.unplayed()) == len(SEVEN.interactions) - 1


def test_clients_share_the_episodes_and_owe_only_those_begun() -> None:
    server = g.cassette.ReplayServer([SEVEN], speed=0, replayer=episodes)
    first, second = Client(server), Client(server)
    first.login()
    second.login()  # the second login episode: a token of its own
    assert first.token != second.token
    second.chat(3)
    first.chat(12)
    second.chat(1)
    assert first.delivered == [0, 12, 13]
    assert second.delivered == [11, 3, 4, 1, 2]
    assert server.unplayed() == []
    # A third client's login: no login episode is left to begin.
    third = Client(server)
    status, body = refusal(third.conn.receive_data(wire(SEVEN.interactions[0])))
    assert status == g.cassette.MISMATCH_STATUS
    assert "POST /api/chatgpt/user/login sent" in str(body["detail"])
    assert server.unplayed() == []


def test_a_begun_chat_owes_its_stream() -> None:
    server = g.cassette.ReplayServer([SEVEN], speed=0, replayer=episodes)
    client = Client(server)
    client.login()
    client.chat(5, stream=False)
    assert server.unplayed() == [("cassette 1", 7, "stream")]
    # A stream answered but never reported written whole stays owed too.
    actions = client.conn.receive_data(
        _STREAM_TOKEN.sub(
            token_of(client.send(7, client.token, _LOGIN_TOKEN)), wire(SEVEN.interactions[8])
        )
    )
    assert any(isinstance(a, g.cassette.ReplayDelivered) for a in actions)
    assert server.unplayed() == [("cassette 1", 7, "stream"), ("cassette 1", 9, "stream")]


def test_a_request_no_episode_has_is_refused() -> None:
    server = g.cassette.ReplayServer([SEVEN], speed=0, replayer=episodes)
    client = Client(server)
    client.login()
    data = _LOGIN_TOKEN.sub(client.token, wire(SEVEN.interactions[1]))
    data = data.replace(b"Question number 1", b"Question number 9")
    status, body = refusal(client.conn.receive_data(data))
    assert status == g.cassette.MISMATCH_STATUS
    assert any("body.content" in str(d) for d in body["differences"])  # type: ignore[attr-defined]
    assert server.unplayed() == []
