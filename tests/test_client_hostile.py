"""Issue 10, the client: whatever a server sends, the client raises one typed
error whose message is bounded, escaped and free of the client's secrets.

Every case runs on the core (scripted bytes into a ClientConnection), over
loopback against a scripted peer on every client kind, and through the
``gptalk`` command (its exit code and stderr).
"""

from __future__ import annotations

import math

import pytest

import gptalk_proto as g

from . import clients
from .client_hostile_cases import (
    CASES,
    MAX_MESSAGE,
    NO_RETRY,
    NOW,
    RAW,
    Case,
    chain,
    login,
    play_core,
    text,
)
from .console import gptalk
from .hostile_peer import scripted_peer

pytestmark = pytest.mark.timeout(120)


def assert_bounded_and_escaped(error: BaseException) -> None:
    for link in chain(error):
        message = str(link)
        assert len(message) <= MAX_MESSAGE, f"{len(message)} characters: {message[:200]!r}"
        for char in RAW:
            assert char not in message, f"{char!r} reached the message: {message[:300]!r}"
        assert message.isprintable(), repr(message[:300])


# -- the core ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CASES))
def test_core_raises_one_typed_bounded_escaped_error(name: str) -> None:
    case = CASES[name]
    played = play_core(case)
    assert type(played.error) is case.error, played.error
    assert_bounded_and_escaped(played.error)


@pytest.mark.parametrize("expires_at", [0, 1, NOW, float(g.MAX_EXPIRES_AT), g.MAX_EXPIRES_AT])
def test_login_values_at_the_edges_of_their_ranges_are_accepted(expires_at: float) -> None:
    token = "a-._~+/Z9=="
    played = play_core(Case("login", login(token=token, expires_at=expires_at), g.GPTalkError))
    assert played.events[0] == g.LoggedIn(float(expires_at))
    assert b"authorization: Bearer " + token.encode() + b"\r\n" in played.requests[1]


@pytest.mark.parametrize("token", ["<stream-token-1>........", "<s1>", "***", "a/b+c=="])
def test_b64tokens_and_replayed_placeholders_are_accepted(token: str) -> None:
    # A replayed, redacted cassette hands back placeholders in place of tokens.
    played = play_core(Case("text", text(token=token), g.GPTalkError))
    assert any(b"token=" in request for request in played.requests[2:]), played


def test_an_informational_or_non_int_status_is_still_the_callers_mistake() -> None:
    for status in (101, "200", True):
        chat = g.Chat("Hello", credentials=g.Credentials(), fingerprint="ab" * 16)
        assert chat.next_event() is g.SEND_REQUEST
        chat.next_request(now=NOW)
        with pytest.raises(g.LocalProtocolError):
            chat.receive_response(status)  # type: ignore[arg-type]


# -- over loopback, on every client kind ----------------------------------------------------


@pytest.mark.parametrize("name", list(CASES))
def test_every_client_raises_one_typed_bounded_escaped_error(name: str) -> None:
    case = CASES[name]
    with scripted_peer({case.kind: case.answer}) as url:
        for kind in clients.KINDS:
            with pytest.raises(g.GPTalkError) as caught:
                clients.stream(kind, url, retry=NO_RETRY)
            assert type(caught.value) is case.error, (kind, caught.value)
            assert_bounded_and_escaped(caught.value)


# -- through the gptalk command ----------------------------------------------------------------

CLI_CASES = {
    "login-expires-10**400": 5,
    "login-token-crlf": 5,
    "status-600-login": 5,
    "msg-900kb": 4,
    "msg-nasty": 4,
    "status-500-nasty": 4,
    "content-type-nasty": 5,
    "event-nasty": 5,
}


def assert_terminal_safe(output: str) -> None:
    assert "Traceback" not in output
    assert len(output) <= 2 * MAX_MESSAGE, f"{len(output)} characters"
    for char in RAW:
        assert char not in output, f"{char!r} reached the terminal: {output[:300]!r}"


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
@pytest.mark.parametrize("name", list(CLI_CASES))
def test_the_command_prints_one_bounded_escaped_line_and_the_right_exit_code(
    name: str, as_json: bool
) -> None:
    case = CASES[name]
    with scripted_peer({case.kind: case.answer}) as url:
        result = gptalk("chat", "--url", url, *(["--json"] if as_json else []), "Hello")
    assert result.returncode == CLI_CASES[name], result.stderr[:500]
    assert_terminal_safe(result.stderr)
    assert_terminal_safe(result.stdout)
    assert result.stderr.startswith("gptalk: error: ")


@pytest.mark.parametrize("expires_at", [10**400, math.nan, "soon", True, None])
def test_credentials_refuse_an_expiry_that_is_not_a_number(expires_at: object) -> None:
    with pytest.raises(g.LocalProtocolError, match="expires_at"):
        g.Credentials().store("tok", expires_at)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "status", [0, 99, 600, 999, 10**5000], ids=["0", "99", "600", "999", "huge"]
)
def test_a_status_http_does_not_define_is_the_peers_fault(status: int) -> None:
    chat = g.Chat("Hello", credentials=g.Credentials(), fingerprint="ab" * 16)
    assert chat.next_event() is g.SEND_REQUEST
    chat.next_request(now=NOW)
    chat.receive_response(status)
    with pytest.raises(g.RemoteProtocolError, match="status from 100 to 599") as caught:
        chat.next_event()
    assert len(str(caught.value)) < 100
    assert chat.state is g.ClientState.ERROR
