"""The client's transition table: every (state, input) pair, exhaustively."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

import gptalk_proto as g
from gptalk_proto import ClientInput as I
from gptalk_proto import ClientState as S

NOW = 1_700_000_000.0
JSON = [("content-type", "application/json")]
SSE = [("content-type", "text/event-stream")]
LOGIN_BODY = json.dumps({"code": 0, "data": {"token": "t" * 32, "expires_at": NOW + 3600}}).encode()
TEXT_BODY = json.dumps({"code": 0, "data": {"token": "s" * 32}}).encode()


def body(chat: g.Chat, data: bytes) -> None:
    """A whole response body, then its end."""
    chat.receive_body(data)
    chat.receive_body(b"")


def drive_to(chat: g.Chat, target: S) -> g.Chat:
    """Take a fresh chat (whose credentials need a login) to ``target``."""
    script: list[tuple[S, Callable[[], object]]] = [
        (S.START, lambda: None),
        (S.LOGIN_SENT, lambda: chat.next_request(NOW)),
        (S.LOGIN_BODY, lambda: chat.receive_response(200, JSON)),
        (S.LOGGED_IN, lambda: body(chat, LOGIN_BODY)),
        (S.TEXT_SENT, lambda: chat.next_request(NOW)),
        (S.TEXT_BODY, lambda: chat.receive_response(200, JSON)),
        (S.TEXT_DONE, lambda: body(chat, TEXT_BODY)),
        (S.STREAM_SENT, lambda: chat.next_request(NOW)),
        (S.STREAMING, lambda: chat.receive_response(200, SSE)),
        (S.DRAINING, lambda: chat.receive_body(b"data: [DONE]\n\n")),
        (S.DONE, lambda: chat.receive_body(b"")),
    ]
    if target is S.ERROR:
        drive_to(chat, S.STREAMING)
        chat.abort()
        assert chat.state is S.ERROR
        return chat
    for state, step in script:
        step()
        assert chat.state is state
        if state is target:
            return chat
    raise AssertionError(target)


def apply(chat: g.Chat, event: I) -> None:
    """Apply ``event`` with a payload that is valid wherever the pair is legal."""
    if event is I.SEND:
        chat.next_request(NOW)
    elif event is I.RESPONSE:
        headers = SSE if chat.state is S.STREAM_SENT else JSON
        chat.receive_response(200, headers)
    elif event is I.DATA:
        if chat.state is S.STREAMING:
            chat.receive_body(b'data: {"content": "hi"}\n\n')
        elif chat.state is S.LOGIN_BODY:
            chat.receive_body(LOGIN_BODY)
        else:
            chat.receive_body(TEXT_BODY)
    elif event is I.END:
        # A well-formed body first, so the pair is tested, not the peer's error.
        if chat.state is S.LOGIN_BODY:
            chat.receive_body(LOGIN_BODY)
        elif chat.state is S.TEXT_BODY:
            chat.receive_body(TEXT_BODY)
        chat.receive_body(b"")
    else:
        chat.abort()


def drain(chat: g.Chat, into: list[object] | None = None) -> None:
    """Take events until a sentinel (or the error the chat raises)."""
    while not isinstance(event := chat.next_event(), g.Sentinel):
        if into is not None:
            into.append(event)


PAIRS = [(state, event) for state in S for event in I]


@pytest.mark.parametrize(("state", "event"), PAIRS, ids=[f"{s.value}+{e.value}" for s, e in PAIRS])
def test_every_state_input_pair(state: S, event: I, make_chat: Callable[..., g.Chat]) -> None:
    chat = drive_to(make_chat(), state)
    targets = g.CLIENT_TRANSITIONS.get((state, event))
    if targets is None:
        with pytest.raises(g.LocalProtocolError):
            apply(chat, event)
        assert chat.state is S.ERROR
        # ...for good: nothing moves it out again.
        for other in I:
            with pytest.raises(g.LocalProtocolError):
                apply(chat, other)
            assert chat.state is S.ERROR
    else:
        apply(chat, event)
        assert chat.state in targets


def test_every_state_is_reachable_and_every_nonfinal_state_has_an_exit() -> None:
    sources = {state for state, _ in g.CLIENT_TRANSITIONS}
    targets = set().union(*g.CLIENT_TRANSITIONS.values())
    assert sources | targets == set(S)
    assert sources == set(S) - {S.DONE, S.ERROR}


def test_next_event_sentinels_follow_the_state(make_chat: Callable[..., g.Chat]) -> None:
    chat = make_chat()
    assert chat.next_event() is g.SEND_REQUEST
    chat.next_request(NOW)
    assert chat.next_event() is g.NEED_DATA
    done = drive_to(make_chat(), S.DONE)
    assert done.next_event() == g.LoggedIn(NOW + 3600)
    assert done.next_event() == g.ChatDone("")
    assert done.next_event() is g.PAUSED


def test_error_state_next_event_raises_local(make_chat: Callable[..., g.Chat]) -> None:
    chat = drive_to(make_chat(), S.STREAMING)
    chat.abort("test")
    with pytest.raises(g.StreamInterrupted):
        drain(chat)
    with pytest.raises(g.LocalProtocolError):
        chat.next_event()


def test_streaming_end_without_done_is_stream_interrupted(make_chat: Callable[..., g.Chat]) -> None:
    chat = drive_to(make_chat(), S.STREAMING)
    chat.receive_body(b'data: {"content": "par"}\n\ndata: {"content": "partial"}\n\n')
    chat.receive_body(b"")
    events: list[object] = []
    with pytest.raises(g.StreamInterrupted) as info:
        drain(chat, events)
    assert info.value.text == "partial"
    assert events[-2:] == [g.TextDelta("par"), g.TextDelta("tial")]


class _Status(int):
    """An int of a type of its own (as ``http.HTTPStatus`` is)."""


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, S.LOGIN_BODY),
        (_Status(200), S.LOGIN_BODY),
        (_Status(599), S.LOGIN_BODY),  # a 5xx: the service error comes with its body
        (True, g.LocalProtocolError),
        (150, g.LocalProtocolError),
        (_Status(101), g.LocalProtocolError),
        ("200", g.LocalProtocolError),
        (600, g.RemoteProtocolError),
        (_Status(99), g.RemoteProtocolError),
    ],
)
def test_a_status_is_judged_by_its_value_whatever_int_type_it_has(
    status: int, outcome: object
) -> None:
    # The common status (an int 200-599) is taken in one test; every other
    # value is judged as before: int subclasses by value, bools and 1xx refused.
    chat = drive_to(g.Chat("hi", credentials=g.Credentials(), fingerprint="a" * 32), S.LOGIN_SENT)
    if isinstance(outcome, type) and issubclass(outcome, g.LocalProtocolError):
        with pytest.raises(outcome, match="final response status"):
            chat.receive_response(status, JSON)
        assert chat.state is S.ERROR
        return
    chat.receive_response(status, JSON)
    if outcome is g.RemoteProtocolError:
        with pytest.raises(g.RemoteProtocolError, match="status from 100 to 599"):
            chat.next_event()
        return
    assert chat.state is outcome
