"""Issue 10, the client: whatever a server sends, the client raises one typed
error whose message is bounded, escaped and free of the client's secrets.

Every case runs on the core (scripted bytes into a ClientConnection), over
loopback against a scripted peer on every client kind, and through the
``gptalk`` command (its exit code and stderr).
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Iterator

import pytest

import gptalk_proto as g
from gptalk_proto.testing import play_responses
from gptalk_transports import RetryPolicy

from . import clients
from .client_hostile_cases import CASES, ECHOES, MAX_MESSAGE, NOW, RAW, Case, login, text
from .console import gptalk
from .hostile_peer import request_kind, scripted_peer

pytestmark = pytest.mark.timeout(120)

#: No retry and no backoff: each hostile answer is met once (or, for token
#: refusals, once more after the fresh login the policy always makes).
NO_RETRY = RetryPolicy(retries=0, backoff=0.0)


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo = [error]
    while todo:
        link = todo.pop()
        if id(link) not in seen:
            seen.add(id(link))
            yield link
            todo += [e for e in (link.__cause__, link.__context__) if e is not None]


def shown(error: BaseException) -> list[str]:
    """Everything a program may print of an error: str and repr along the
    chain, the attributes, and the formatted traceback."""
    texts = ["".join(traceback.format_exception_only(type(error), error))]
    for link in _chain(error):
        texts += [str(link), repr(link)]
        texts += [repr(value) for value in vars(link).values() if isinstance(value, (str, int))]
    return texts


def assert_bounded_and_escaped(error: BaseException) -> None:
    for link in _chain(error):
        message = str(link)
        assert len(message) <= MAX_MESSAGE, f"{len(message)} characters: {message[:200]!r}"
        for char in RAW:
            assert char not in message, f"{char!r} reached the message: {message[:300]!r}"
        assert message.isprintable(), repr(message[:300])


def play_core(case: Case) -> g.Played:
    """The case on the core: a ClientConnection fed scripted bytes."""
    chat = g.Chat("Hello", credentials=g.Credentials(), fingerprint="ab" * 16)
    conn = g.ClientConnection(chat, host="gptalk.test")
    before = {"login": [], "text": [login()], "stream": [login(), text()]}[case.kind]

    def script() -> Iterator[bytes]:
        for answer in [*before, case.answer]:
            request = chat.request
            assert request is not None
            yield answer(request.target, request.headers, request.body)

    return play_responses(conn, script(), now=NOW)


# -- the core ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CASES))
def test_core_raises_one_typed_bounded_escaped_error(name: str) -> None:
    case = CASES[name]
    played = play_core(case)
    assert type(played.error) is case.error, played.error
    assert_bounded_and_escaped(played.error)


@pytest.mark.parametrize("name", list(ECHOES))
def test_core_keeps_echoed_secrets_out_of_errors(name: str) -> None:
    case = ECHOES[name]
    chat_secrets: list[str] = []
    chat = g.Chat("Hello", credentials=g.Credentials(), fingerprint="ab" * 16)
    conn = g.ClientConnection(
        chat, host="gptalk.test", proxy_headers=[("Proxy-Authorization", "Basic dTpwYXNzd29yZA==")]
    )
    before = {"login": [], "text": [login()], "stream": [login(), text()]}[case.kind]

    def script() -> Iterator[bytes]:
        for answer in [*before, case.answer]:
            request = chat.request
            assert request is not None
            chat_secrets.extend(value for _, value in chat.secrets)
            yield answer(request.target, request.headers, request.body)

    played = play_responses(conn, script(), now=NOW)
    assert type(played.error) is case.error, played.error
    secrets = {s for s in chat_secrets if len(s) >= 8} | {"ab" * 16}
    assert {"password", "dTpwYXNzd29yZA==", "Basic dTpwYXNzd29yZA=="} <= {
        value for _, value in chat.secrets
    }
    for text_ in shown(played.error):
        for secret in secrets:
            assert secret not in text_, f"{secret[:4]}... leaked into {text_[:200]!r}"
    assert "<" in str(played.error)  # the placeholder names what was there


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


@pytest.mark.parametrize("name", list(ECHOES))
def test_no_client_lets_an_echoed_secret_into_an_error(name: str) -> None:
    case = ECHOES[name]
    sent: set[str] = set()

    def answer(target: str, headers: tuple[tuple[str, str], ...], body: bytes) -> bytes:
        # Note every secret the client sent, then echo it.
        for header, value in headers:
            if header.lower() == "authorization":
                sent.add(value.partition(" ")[2])
        if request_kind(target) == "login":
            sent.add(json.loads(body)["fingerprint"])
        if request_kind(target) == "stream":
            sent.add(target.partition("token=")[2])
        return case.answer(target, headers, body)

    with scripted_peer({case.kind: answer}) as url:
        for kind in clients.KINDS:
            with pytest.raises(g.GPTalkError) as caught:
                clients.stream(kind, url, retry=NO_RETRY)
            assert isinstance(caught.value, case.error), (kind, caught.value)
            assert sent
            texts = shown(caught.value) + ["".join(traceback.format_exception(caught.value))]
            for secret in sent:
                for text_ in texts:
                    assert secret not in text_, f"{kind}: a secret leaked into {text_[:300]!r}"
