"""Chat.request_sent builds the stream answer's parser while the server works:
the events, the caps and the errors are the same as without it."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gptalk_proto as g

NOW = 1_700_000_000.0


def _at_stream(*, sent: bool, max_line_size: int = 1 << 20) -> g.Chat:
    credentials = g.Credentials()
    credentials.store("t" * 32, NOW + 3600)
    chat = g.Chat("hi", credentials=credentials, fingerprint="0" * 32, max_line_size=max_line_size)
    chat.next_request(now=NOW)
    chat.receive_response(200, [(b"content-type", b"application/json")])
    chat.receive_body(b'{"code": 0, "data": {"token": "s"}}')
    chat.receive_body(b"")
    assert chat.next_event() is g.SEND_REQUEST
    assert chat.next_request(now=NOW).kind == "stream"
    if sent:
        chat.request_sent()
    return chat


def _events(chat: g.Chat) -> list[object]:
    out: list[object] = []
    while True:
        try:
            event = chat.next_event()
        except g.GPTalkError as error:
            out.append(type(error))
            return out
        if event is g.NEED_DATA or event is g.PAUSED:
            return out
        out.append(event)


STREAM = (
    b"".join(
        b"data: %s\n\n" % json.dumps({"content": text}).encode()
        for text in ("a", "ab", "abc\u00e9", "abc\u00e9d")
    )
    + b"data: [DONE]\n\n"
)


@settings(max_examples=100, deadline=None)
@given(cuts=st.lists(st.integers(0, len(STREAM)), max_size=6))
def test_the_same_events_with_and_without_request_sent(cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), len(STREAM)]
    _check_pieces([STREAM[a:b] for a, b in itertools.pairwise(bounds)])


def test_the_same_events_byte_by_byte() -> None:
    _check_pieces([STREAM[i : i + 1] for i in range(len(STREAM))])


def _check_pieces(pieces: list[bytes]) -> None:
    seen = []
    for sent in (False, True):
        chat = _at_stream(sent=sent)
        chat.receive_response(200, [(b"content-type", b"text/event-stream")])
        events: list[object] = []
        for piece in pieces:
            if piece:
                chat.receive_body(piece)
                events += _events(chat)
        seen.append((events, chat.text))
    assert seen[0] == seen[1]
    assert seen[1][1] == "abc\u00e9d"


@pytest.mark.parametrize("sent", [False, True])
def test_the_chat_s_line_cap_holds_in_the_parser_built_early(sent: bool) -> None:
    chat = _at_stream(sent=sent, max_line_size=16)
    chat.receive_response(200, [(b"content-type", b"text/event-stream")])
    chat.receive_body(b"data: " + b"x" * 64)
    assert _events(chat) == [g.SSELineTooLong]


@pytest.mark.parametrize("sent", [False, True])
def test_an_answer_that_is_no_event_stream_fails_as_before(sent: bool) -> None:
    chat = _at_stream(sent=sent)
    chat.receive_response(200, [(b"content-type", b"text/html")])
    chat.receive_body(b"<html>")
    chat.receive_body(b"")
    assert _events(chat) == [g.RemoteProtocolError]


def test_request_sent_is_a_no_op_outside_the_stream_request() -> None:
    chat = g.Chat("hi", credentials=g.Credentials(), fingerprint="0" * 32)
    chat.request_sent()  # nothing sent yet
    chat.next_request(now=NOW)
    chat.request_sent()  # the login request: nothing to build
    assert chat.state is g.ClientState.LOGIN_SENT
