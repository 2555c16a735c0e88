"""The replay server's refusals, as a hostile client provokes them: every
mismatch text (stderr, and the 409 body) is bounded and escaped, pipelined
requests past a cap are refused rather than held, and a guessed token plays
no other client's session."""

from __future__ import annotations

import json
import signal
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import gptalk_proto as g
import gptalk_proto.cassette
from gptalk_proto.cassette import _replay_server
from gptalk_transports import load_cassette
from gptalk_transports._server.replay import replay_server

from .console import listening
from .test_replay_server_core import PLAIN, answer, recorded_token, refusal, token_of, wire

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"
LOGIN = PLAIN.interactions[0]

# The bytes of the recorded login request (a hostile client starts from it).
_LOGIN_BODY = LOGIN.request.body


def _post(target: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"POST %s HTTP/1.1\r\nhost: x\r\n%scontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n" % (target, extra, len(body))
    ) + body


#: Requests whose mismatch names client text that is huge, numerous or full
#: of terminal controls: each was a message of megabytes or carried a raw ESC.
HOSTILE = {
    "invalid-request-line-of-a-megabyte": b"GET /\x1b" + b"A" * 1_000_000 + b" HTTP/1.1\r\n\r\n",
    "path-of-a-megabyte": _post(b"/" + b"A" * 1_000_000, _LOGIN_BODY),
    "method-of-a-megabyte": b"A" * 1_000_000 + b" / HTTP/1.1\r\nhost: x\r\n\r\n",
    "query-key-with-escapes": _post(b"/api/chatgpt/user/login?%1b[2J%07=1&%e2%80%ae=2", b"{}"),
    "query-value-of-a-megabyte": _post(b"/api/chatgpt/user/login?a=" + b"v" * 1_000_000, b"{}"),
    "json-key-with-escapes": _post(b"/api/chatgpt/user/login", b'{"a\\u001b[2J\\u202e": 1}'),
    # A lone surrogate: its JSON refusal could not be encoded (an internal error).
    "json-key-lone-surrogate": _post(b"/api/chatgpt/user/login", b'{"\\ud800": 1}'),
    "json-key-of-escapes": _post(
        b"/api/chatgpt/user/login", b'{"' + b"\\udbff\\udfff" * 2000 + b'": 1}'
    ),
    "json-key-of-a-megabyte": _post(
        b"/api/chatgpt/user/login", b'{"' + b"k" * 1_000_000 + b'": 1}'
    ),
    "a-hundred-thousand-json-keys": _post(
        b"/api/chatgpt/user/login", json.dumps({f"k{i}": i for i in range(100_000)}).encode()
    ),
    "fifty-thousand-headers": _post(
        b"/api/chatgpt/user/login", b"{}", b"".join(b"x-%d: 1\r\n" % i for i in range(50_000))
    ),
    "header-name-of-a-megabyte": _post(
        b"/api/chatgpt/user/login", b"{}", b"x" * 1_000_000 + b": 1\r\n"
    ),
}

#: The most a mismatch's text may be: its lines of at most LINE_LIMIT
#: characters (and the "(N characters)" tail), MAX_DIFFERENCES of them.
MOST = 2 + (g.cassette._replay.MAX_DIFFERENCES + 1) * 600


def _visible(text: str) -> bool:
    return all(c.isprintable() or c == "\n" for c in text)


@pytest.mark.parametrize("request_bytes", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_mismatch_text_is_bounded_and_escaped(request_bytes: bytes) -> None:
    server = g.cassette.ReplayServer([PLAIN], speed=0)
    actions = server.connection().receive_data(request_bytes)
    [mismatch] = [a for a in actions if isinstance(a, g.cassette.ReplayMismatch)]
    assert len(mismatch.text) <= MOST
    assert _visible(mismatch.text), mismatch.text[:300]
    status, body = refusal(actions)
    assert status in (400, 409)
    assert len(answer(actions)) <= 2 * MOST
    differences = body["differences"]
    assert isinstance(differences, list)
    assert all(_visible(line) and len(line) <= 600 for line in differences)


def test_the_differences_past_the_cap_are_counted_once() -> None:
    many = [f"difference {n}" for n in range(100)]
    first = g.cassette.CassetteMismatch(0, "x", many)
    assert first.differences[-1] == "... and 60 more differences"
    # Wrapped again (as episodes do with the closest step's), still the count.
    again = g.cassette.CassetteMismatch(1, "y", first.differences)
    assert again.differences == first.differences


def test_pipelined_requests_past_the_cap_get_a_429_not_held_answers() -> None:
    # One step, a stream: each request plays a session whole, the next one
    # on the connection starts another, so every request is answered.
    cassette = load_cassette(CASSETTES / "openai-stream.json")
    [step] = cassette.interactions
    cap = g.cassette.MAX_PIPELINED_ANSWERS
    server = g.cassette.ReplayServer([cassette], speed=0)
    conn = server.connection()
    actions = conn.receive_data(wire(step) * (cap * 8))
    assert answer(actions).count(step.response.wire) == cap
    status, body = refusal(actions[-3:])  # the refusal's mismatch, write and close
    assert status == 429
    assert body["msg"] == "too many requests sent ahead of their responses"
    assert server.sessions == cap
    assert conn.receive_data(wire(step)) == []


def test_a_guessed_token_plays_no_other_session() -> None:
    server = replay_server([PLAIN], speed=0)
    victim = server.connection()
    token = token_of(answer(victim.receive_data(wire(LOGIN))))
    assert token.startswith(b"gtR1T1K")
    assert len(token) == len(recorded_token(LOGIN))
    # The session and serial part, as the server without entropy hands out.
    guess = b"gtR1T1" + b"_" * (len(token) - 6)
    text = PLAIN.interactions[1]
    status, body = refusal(
        server.connection().receive_data(wire(text, {recorded_token(LOGIN): guess}))
    )
    assert status == g.cassette.MISMATCH_STATUS
    assert body["differences"] == ["the token sent was not handed out by this server"]
    # The victim's session is where it was: its own token plays its text step.
    played = victim.receive_data(wire(text, {recorded_token(LOGIN): token}))
    assert answer(played).startswith(b"HTTP/1.1 200 ")


def test_two_servers_hand_out_different_tokens() -> None:
    tokens = {
        token_of(answer(replay_server([PLAIN], speed=0).connection().receive_data(wire(LOGIN))))
        for _ in range(2)
    }
    assert len(tokens) == 2


def test_the_cli_writes_hostile_mismatches_escaped_and_bounded() -> None:
    """``gptalk replay --serve``: what a hostile client sends reaches stderr
    escaped and bounded, and the server goes on to exit 1 on SIGTERM with
    the unplayed steps listed, no traceback."""
    hostile = [HOSTILE["json-key-with-escapes"], HOSTILE["a-hundred-thousand-json-keys"]]
    with listening("replay", "--serve", "--speed", "0", str(CASSETTES / "plain-chat.json")) as (
        process,
        url,
    ):
        parts = urlsplit(url)
        for request_bytes in hostile:
            with socket.create_connection((parts.hostname or "", parts.port or 0), 30) as sock:
                sock.sendall(request_bytes)
                got = b""
                while data := sock.recv(65536):  # the server closes after a refusal
                    got += data
            assert got.startswith(b"HTTP/1.1 409 ")
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=15)
        assert process.stderr is not None
        errors = process.stderr.read()
    assert code == 1
    assert _visible(errors), errors[:300]
    assert "\\x1b[2J\\u202e" in errors
    assert "... and " in errors
    assert len(errors) <= 3 * MOST
    assert "Traceback" not in errors
    assert errors.count("gptalk: unplayed: ") == len(PLAIN.interactions)


def test_sessions_left_unfinished_do_not_fill_the_server_for_good(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Logins whose clients went away hold sessions that never finish: past
    the cap, the oldest one no connection is on makes room, so the next
    client is served (and a token of the dropped one is named as such)."""
    monkeypatch.setattr(_replay_server, "MAX_REPLAY_SESSIONS", 3)
    server = g.cassette.ReplayServer([PLAIN], speed=0)
    tokens = []
    for _ in range(3):
        conn = server.connection()
        tokens.append(token_of(answer(conn.receive_data(wire(LOGIN)))))
        conn.close()
    newcomer = server.connection()
    assert answer(newcomer.receive_data(wire(LOGIN))).startswith(b"HTTP/1.1 200 ")
    assert server.sessions == 3
    text = PLAIN.interactions[1]
    status, body = refusal(
        server.connection().receive_data(wire(text, {recorded_token(LOGIN): tokens[0]}))
    )
    assert status == g.cassette.MISMATCH_STATUS
    assert body["differences"] == [
        "the token sent was handed out by a session this server no longer holds"
    ]
    # The second client's session is still there.
    played = server.connection().receive_data(wire(text, {recorded_token(LOGIN): tokens[1]}))
    assert answer(played).startswith(b"HTTP/1.1 200 ")
